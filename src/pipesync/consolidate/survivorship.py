"""Survivorship: which member's value each field of a golden deal takes, and why.

Rules per field (``survivorship:`` in the rules file): source priority, most
recently updated, most complete, most advanced stage, earliest, latest, union
of lists; a field may ``follow`` another so that values that belong together
(amount and currency, stage and status) come from the same member. Every
surviving value records the member it came from and the rule; members that
disagree beyond a field's tolerance are recorded as conflicts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pipesync.consolidate.keys import fold
from pipesync.consolidate.records import DEAL_FIELDS, FIELD_INDEX, Record
from pipesync.consolidate.rules import FieldRule, Survivorship
from pipesync.model import Category, SharedPipeline

_UPDATED = FIELD_INDEX["updated_at"]
_STAGE = FIELD_INDEX["stage"]
_KEY = FIELD_INDEX["key"]
_FIRST_FIELD = FIELD_INDEX[DEAL_FIELDS[0]]


@dataclass(slots=True)
class GoldenDeal:
    golden_id: str
    source: str  # the source of the member that won the most fields
    values: dict[str, Any]  # every deal field
    members: list[str]
    confidence: float
    # field → {"deal_key", "rule"} (for a union: "deal_keys")
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)


def stage_ranks(pipeline: SharedPipeline) -> dict[str, int]:
    """How far along each shared stage is: closed beyond open, parked behind active stages."""
    ranks = {}
    for order, stage in enumerate(pipeline.stages):
        if stage.category is not Category.OPEN:
            ranks[stage.key] = 1000
        else:
            ranks[stage.key] = -1 if stage.parked else order
    return ranks


def _present(value: Any) -> bool:
    return value is not None and value != "" and value != []


def _json_safe(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class Survivor:
    """Builds golden deals from clusters of records, with the rules and the shared pipeline."""

    def __init__(self, rules: Survivorship, pipeline: SharedPipeline):
        self.rules = rules
        self.ranks = stage_ranks(pipeline)
        priority = {s: i for i, s in enumerate(rules.source_priority)}
        self._priority = lambda source: (priority.get(source, len(priority)), source)
        default = FieldRule(rule=rules.default)
        self._rules = {name: rules.fields.get(name, default) for name in DEAL_FIELDS}
        # leaders before the fields that follow them
        ordered = sorted(DEAL_FIELDS, key=lambda f: self._rules[f].follow is not None)
        self._steps = [(f, FIELD_INDEX[f], self._rules[f].rule, self._rules[f].follow) for f in ordered]
        self._follows = {f: f"follows {f}" for f in DEAL_FIELDS}
        self._checked = [(f, FIELD_INDEX[f], r.tolerance or 0.0) for f, r in rules.fields.items() if r.conflicts]

    def _recency(self, r: Record) -> tuple:
        # most recent first; an unknown update time counts as oldest; ties to the smaller key
        updated = r[_UPDATED]
        return (updated is None, -(updated.timestamp()) if updated else 0.0, r[_KEY])

    def _pick(self, rule: str, i: int, by_recency: list[Record], by_priority: list[Record]) -> Record | None:
        """The member whose value of field ``i`` survives under ``rule`` (None: no member has one)."""
        if rule == "most_recent" or rule == "source_priority":
            for r in by_recency if rule == "most_recent" else by_priority:
                v = r[i]
                if v is not None and v != "" and v != []:
                    return r
            return None
        having = [r for r in by_recency if _present(r[i])]
        if not having:
            return None
        if rule == "most_complete":
            return max(having, key=lambda r: len(str(r[i])))  # first of the longest: the most recent
        if rule == "most_advanced":
            return max(having, key=lambda r: self.ranks.get(r[_STAGE], -2))
        if rule == "earliest":
            return min(having, key=lambda r: r[i])
        if rule == "latest":
            return max(having, key=lambda r: r[i])
        raise ValueError(f"unknown survivorship rule {rule!r}")

    def golden(self, golden_id: str, members: Sequence[Record], confidence: float) -> GoldenDeal:
        if len(members) == 1:
            only = members[0]
            values = dict(zip(DEAL_FIELDS, only[_FIRST_FIELD:]))
            return GoldenDeal(golden_id, only.source, values, [only.key], confidence)
        by_recency = sorted(members, key=self._recency)
        by_priority = sorted(by_recency, key=lambda r: self._priority(r.source))  # stable: recency breaks ties
        values: dict[str, Any] = {}
        provenance: dict[str, dict[str, Any]] = {}
        winners: dict[str, Record | None] = {}
        for name, i, how, follow in self._steps:
            if follow is not None:
                leader = winners.get(follow)
                if leader is None:
                    how = self.rules.default
                    winner = self._pick(how, i, by_recency, by_priority)
                else:
                    winner, how = leader, self._follows[follow]
            elif how == "union":
                values[name] = sorted({v for r in members for v in (r[i] or [])})
                winners[name] = None
                provenance[name] = {"deal_keys": sorted(r.key for r in members if r[i]), "rule": "union"}
                continue
            else:
                winner = self._pick(how, i, by_recency, by_priority)
            values[name] = None if winner is None else winner[i]
            winners[name] = winner
            if winner is not None:
                provenance[name] = {"deal_key": winner.key, "rule": how}
        conflicts = [c for name, i, tolerance in self._checked if (c := _conflict(name, i, tolerance, members))]
        tally = Counter(w.source for w in winners.values() if w is not None)
        source = min(tally, key=lambda s: (-tally[s], self._priority(s))) if tally else by_recency[0].source
        keys = sorted(r.key for r in members)
        return GoldenDeal(golden_id, source, values, keys, confidence, provenance, conflicts)


def _conflict(name: str, i: int, tolerance: float, members: Sequence[Record]) -> dict[str, Any] | None:
    """The members' values of a field when they disagree beyond ``tolerance``."""
    present = {r.key: r[i] for r in members if _present(r[i])}
    if len(present) < 2:
        return None
    values = list(present.values())
    first = values[0]
    if isinstance(first, (int, float, Decimal)) and not isinstance(first, bool):
        low, high = min(values), max(values)
        differ = float(high - low) > tolerance * max(abs(float(low)), abs(float(high)))
    elif isinstance(first, (date, datetime)):
        differ = (max(values) - min(values)).total_seconds() / 86400 > tolerance
    else:
        differ = len({fold(str(v)) for v in values}) > 1
    if not differ:
        return None
    return {"field": name, "values": {k: _json_safe(v) for k, v in sorted(present.items())}}

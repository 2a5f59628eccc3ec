"""Survivorship: which member's value each field of a golden deal takes, and why.

Rules per field (``survivorship:`` in the rules file): source priority, most
recently updated, most complete, most advanced stage, earliest, latest, union
of lists; a field may ``follow`` another so that values that belong together
(amount and currency, stage and status) come from the same member. Every
surviving value records the member it came from and the rule; members that
disagree beyond a field's tolerance are recorded as conflicts.

Most clusters are one deal, whose golden deal is its record. For the others,
each rule is applied to all clusters at once: the members' values are read
field by field, ranked with numpy, and the winner of each field in every
cluster is known (``Survivor.decide``: numbers only, so the engine can have
them worked out in another process) before the first golden deal is built.

A million deals make hundreds of thousands of golden deals, so they are built
once, as the rows the ``golden_deals`` table takes (``Survivor.rows``);
``GoldenDeal`` reads one of them field by field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cached_property
from itertools import compress, count, repeat
from operator import attrgetter, is_not, itemgetter
from typing import Any

import numpy as np

from pipesync.consolidate.keys import fold
from pipesync.consolidate.records import DEAL_FIELDS, FIELD_INDEX, SIZED_FIELDS, TEXT_FIELDS, Record
from pipesync.consolidate.rules import FieldRule, Survivorship
from pipesync.model import Category, SharedPipeline

_UPDATED = FIELD_INDEX["updated_at"]
_STAGE = FIELD_INDEX["stage"]
_KEY = FIELD_INDEX["key"]
_SOURCE = FIELD_INDEX["source"]
_TZINFO = attrgetter("tzinfo")
_FIRST_FIELD = FIELD_INDEX[DEAL_FIELDS[0]]


# A golden row: every deal field, then these (the columns of the golden_deals table)
ROW_FIELDS: tuple[str, ...] = (
    *DEAL_FIELDS, "golden_id", "source", "members", "confidence", "provenance", "conflicts"
)
# Deal fields a golden row never leaves missing (NOT NULL columns), with their empty value (a record's
# never are missing)
_NOT_NULL: tuple[tuple[str, Callable[[], Any]], ...] = (
    ("name", str), ("contact_emails", list), ("external_refs", list)
)


@dataclass(slots=True)
class GoldenDeal:
    """One golden deal: a golden row (``ROW_FIELDS``) read as fields."""

    golden_id: str
    source: str  # the source of the member that won the most fields
    values: dict[str, Any]  # every deal field
    members: list[str]
    confidence: float
    # field → {"deal_key", "rule"} (for a union: "deal_keys")
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> GoldenDeal:
        return cls(row["golden_id"], row["source"], {name: row[name] for name in DEAL_FIELDS}, row["members"],
                   row["confidence"], row["provenance"], row["conflicts"])


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
    """Not None, "" or [] (asked of the type first: comparing a Decimal with "" is slow)."""
    if isinstance(value, (str, list)):
        return len(value) > 0
    return value is not None


def _json_safe(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


@dataclass(frozen=True, slots=True)
class _Step:
    """One field of the golden deal, in the order fields are decided (leaders before their followers)."""

    name: str
    i: int  # its column in a Record
    rule: str
    leader: int | None  # the step this field follows, if it follows one


class Survivor:
    """Builds golden deals from clusters of records, with the rules and the shared pipeline."""

    def __init__(self, rules: Survivorship, pipeline: SharedPipeline):
        self.rules = rules
        self.ranks = stage_ranks(pipeline)
        priority = {s: i for i, s in enumerate(rules.source_priority)}
        self._priority = lambda source: (priority.get(source, len(priority)), source)
        default = FieldRule(rule=rules.default)
        field_rules = {name: rules.fields.get(name, default) for name in DEAL_FIELDS}
        ordered = sorted(DEAL_FIELDS, key=lambda f: field_rules[f].follow is not None)
        position = {f: s for s, f in enumerate(ordered)}
        self._steps = [
            _Step(f, FIELD_INDEX[f], field_rules[f].rule or rules.default,
                  None if field_rules[f].follow is None else position[field_rules[f].follow])
            for f in ordered
        ]
        self._checked = [(f, FIELD_INDEX[f], r.tolerance or 0.0) for f, r in rules.fields.items() if r.conflicts]

    def golden(self, golden_id: str, members: Sequence[Record], confidence: float) -> GoldenDeal:
        """The golden deal of one cluster (``rows`` builds many at once, the same way)."""
        members = sorted(members, key=itemgetter(_KEY))
        everyone = np.arange(len(members))
        return GoldenDeal.of_row(next(self.rows(members, everyone, np.array([0, len(members)]), [golden_id],
                                                [confidence])))

    def decide(self, records: Sequence[Record], order: np.ndarray, starts: np.ndarray) -> Decisions:
        """Which member wins each field of every cluster ``order[starts[c]:starts[c + 1]]`` of two or more."""
        sizes = np.diff(starts)
        merged = sizes > 1
        return _Decider(self, records, order[np.repeat(merged, sizes)], sizes[merged]).decisions()

    def rows(
        self, records: Sequence[Record], order: np.ndarray, starts: np.ndarray, golden_ids: Sequence[str],
        confidences: Sequence[float], decided: Callable[[], Decisions] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """The golden row (``ROW_FIELDS``) of each cluster ``order[starts[c]:starts[c + 1]]`` of ``records``:
        those of one deal first, then the others, each in cluster order.

        ``records`` are sorted by key and each cluster's members ascending, as
        the engine holds them. ``decided`` gives ``decide``'s answer, when it
        is being worked out elsewhere (on another core, while the rows of
        single deals are built).
        """
        sizes = np.diff(starts)
        merged = sizes > 1
        single = ~merged
        order_list = order.tolist()
        for c, first in zip(np.flatnonzero(single).tolist(), starts[:-1][single].tolist()):
            # the record is its own golden deal (a record's name and lists are never None)
            only = records[order_list[first]]
            yield dict(zip(ROW_FIELDS, (*only[_FIRST_FIELD:], golden_ids[c], only[_SOURCE], [only[_KEY]],
                                        confidences[c], {}, [])))
        if not merged.any():
            return
        merged_at = np.flatnonzero(merged).tolist()
        builder = _Builder(self, records, order[np.repeat(merged, sizes)], sizes[merged])
        decisions = decided() if decided is not None else self.decide(records, order, starts)
        yield from builder.rows(decisions, [golden_ids[c] for c in merged_at], [confidences[c] for c in merged_at])


# Golden deals are built this many clusters at a time: column by column is
# fast, and a bounded batch keeps a million provenance dicts from piling up.
_BATCH = 512


@dataclass(slots=True)
class Decisions:
    """Which member wins each field of every cluster of two or more, and where members disagree.

    Worked out for all clusters at once (``_Decider``), then the golden rows
    built from them (``_Builder``). Numbers only, cheap to pickle: the engine
    has them worked out in another process.
    """

    picks: np.ndarray  # (clusters, steps): a member position (member layout), -1 for no winner
    sources: np.ndarray  # per cluster, the source of the member that won the most fields (in source_names)
    source_names: list[str]
    # per checked field (``Survivor._checked``): the clusters whose members disagree or may, and whether surely
    conflicts: list[tuple[np.ndarray, np.ndarray]]


class _Decider:
    """Each field's winning member in every cluster of two or more, decided column by column.

    Members are laid out as given, cluster after cluster; a rule ranks each
    cluster's members, most recently updated first where it does not decide
    (an unknown update time counts as oldest; ties to the smaller key), and the
    first with a value wins.
    """

    def __init__(self, survivor: Survivor, records: Sequence[Record], members: np.ndarray, sizes: np.ndarray):
        self.survivor = survivor
        self.first = np.r_[0, np.cumsum(sizes)][:-1].astype(np.int64)
        self.cluster = np.repeat(np.arange(len(sizes)), sizes)
        # The members' values, field by field (``columns``), are read in record
        # order: records sit in memory about in that order, while cluster order
        # jumps between sources. ``in_column`` is each member's position there.
        ascending = np.argsort(members, kind="stable")
        self.in_column = np.empty_like(ascending)
        self.in_column[ascending] = np.arange(len(ascending))
        self.columns = list(zip(*[records[i] for i in members[ascending].tolist()])) or [()] * len(Record._fields)
        self._listed: dict[int, list[bool]] = {}
        self._present: dict[int, np.ndarray] = {}
        self._timestamps: dict[int, np.ndarray] = {}
        updated = self.timestamps(_UPDATED)
        newest_first = np.where(np.isnan(updated), np.inf, -updated)
        # records are sorted by key, so the record index breaks ties as the key would
        self.by_recency = np.lexsort((members, newest_first, self.cluster))

    def decisions(self) -> Decisions:
        picks = self._pick_all()
        conflicts = [self._differ(i, tolerance) for _, i, tolerance in self.survivor._checked]
        return Decisions(picks.astype(np.int32), self._winning_sources(picks), self._sources,
                         [(np.flatnonzero(differ | unsure), differ[differ | unsure]) for differ, unsure in conflicts])

    def _has_value(self, i: int) -> Iterator[bool]:
        """Whether each member has a value of field ``i`` (``_present``: text and lists may be empty), in
        column order."""
        column = self.columns[i]
        return map(bool, column) if Record._fields[i] in SIZED_FIELDS else map(is_not, column, repeat(None))

    def listed(self, i: int) -> list[bool]:
        """``_has_value`` as a list (only for fields whose values are read: a list per field is memory)."""
        if i not in self._listed:
            self._listed[i] = list(self._has_value(i))
        return self._listed[i]

    def present(self, i: int) -> np.ndarray:
        """``_has_value`` in the member layout."""
        if i not in self._present:
            has = np.fromiter(self._has_value(i), dtype=bool, count=len(self.columns[i]))
            self._present[i] = has[self.in_column]
        return self._present[i]

    def by_member(self, i: int, of_values: Callable[[Iterator[Any]], Iterator[Any]], dtype: Any = np.int64,
                  missing: Any = 0) -> np.ndarray:
        """``of_values`` (a map over the present values) of field ``i``, ``missing`` where absent; member layout."""
        listed = self.listed(i)
        out = np.full(len(listed), missing, dtype=dtype)
        out[np.fromiter(listed, dtype=bool, count=len(listed))] = np.fromiter(
            of_values(compress(self.columns[i], listed)), dtype=dtype)
        return out[self.in_column]

    def _pick_all(self) -> np.ndarray:
        steps = self.survivor._steps
        picks = np.full((len(self.first), len(steps)), -1, dtype=np.int64)
        for s, step in enumerate(steps):
            if _is_union(step):
                continue  # a union has no single winner
            if step.leader is None:
                picks[:, s] = self._pick(step.rule, step.i)
                continue
            picks[:, s] = picks[:, step.leader]
            leaderless = picks[:, s] < 0
            if leaderless.any():
                picks[leaderless, s] = self._pick(self.survivor.rules.default, step.i)[leaderless]
        return picks

    def _pick(self, rule: str, i: int) -> np.ndarray:
        """Per cluster, the position of the member whose value of field ``i`` survives under ``rule`` (-1: none)."""
        present = self.present(i)
        if rule == "most_recent":
            return self._first_present(present)
        if rule == "source_priority":
            return self._first_present(present, self._source_ranks)
        if rule == "most_complete":  # the longest value; the first of the longest is the most recent
            as_text = Record._fields[i] in TEXT_FIELDS
            lengths = self.by_member(i, lambda values: map(len, values if as_text else map(str, values)))
            return self._first_present(present, -lengths)
        if rule == "most_advanced":
            ranks = self.survivor.ranks
            stages = self.by_member(_STAGE, lambda values: map(ranks.get, values, repeat(-2)), missing=-2)
            return self._first_present(present, -stages)
        if rule == "earliest":
            return self._first_present(present, self._value_ranks(i, present))
        if rule == "latest":
            return self._first_present(present, -self._value_ranks(i, present))
        raise ValueError(f"unknown survivorship rule {rule!r}")

    def _first_present(self, present: np.ndarray, preference: np.ndarray | None = None) -> np.ndarray:
        """Per cluster, the first member with a value, by ``preference`` (smaller first), then by recency."""
        recency = self.by_recency
        if preference is None:
            ranked = recency
        else:  # stable: recency breaks the ties of preference
            ranked = recency[np.lexsort((preference[recency], self.cluster[recency]))]
        ranked_present = present[ranked]
        position = np.arange(len(ranked))
        first = np.minimum.reduceat(np.where(ranked_present, position, len(ranked)), self.first)
        return np.where(first < len(ranked), ranked[np.minimum(first, len(ranked) - 1)], -1)

    @cached_property
    def _sources(self) -> list[str]:
        """The members' sources, highest priority first."""
        return sorted(set(self.columns[_SOURCE]), key=self.survivor._priority)

    @cached_property
    def _source_ranks(self) -> np.ndarray:
        rank = {source: r for r, source in enumerate(self._sources)}
        return self.by_member(_SOURCE, lambda values: map(rank.__getitem__, values))

    def _value_ranks(self, i: int, present: np.ndarray) -> np.ndarray:
        """Numbers in the order of the members' values of field ``i``, equal for equal values (any comparable type)."""
        column = self.columns[i]
        if set(map(type, column)) <= {type(None), datetime} and None not in set(map(_TZINFO, filter(None, column))):
            stamps = self.timestamps(i)
            # aware instants order as their timestamps, which tell apart every microsecond up to 2**33 s from 1970
            if (np.abs(stamps[present]) < 2.0**33).all():
                return stamps
        having = sorted(compress(range(len(column)), self.listed(i)), key=column.__getitem__)
        ranks = np.zeros(len(column), dtype=np.int64)
        if having:
            values = [column[j] for j in having]
            ranks[having] = np.cumsum([False] + [a != b for a, b in zip(values, values[1:])])
        return ranks[self.in_column]

    def timestamps(self, i: int) -> np.ndarray:
        """The members' instants of field ``i`` as POSIX timestamps, NaN where unknown."""
        if i not in self._timestamps:
            self._timestamps[i] = self.by_member(i, lambda values: map(datetime.timestamp, values), float, np.nan)
        return self._timestamps[i]

    def _winning_sources(self, picks: np.ndarray) -> np.ndarray:
        """Per cluster, the source of the member that won the most fields (ties: the higher priority)."""
        sources = self._sources
        if not sources:
            return np.zeros(0, dtype=np.int64)
        code, clusters = self._source_ranks, len(self.first)
        won = picks >= 0
        cluster = np.broadcast_to(np.arange(clusters)[:, None], picks.shape)[won]
        tally = np.bincount(cluster * len(sources) + code[picks[won]], minlength=clusters * len(sources))
        tally = tally.reshape(clusters, len(sources))
        # no field has a winner: the most recent member's source
        return np.where(tally.max(axis=1) > 0, tally.argmax(axis=1), code[self.by_recency[self.first]])

    def _differ(self, i: int, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
        """Per cluster, whether its members surely disagree on field ``i`` beyond ``tolerance``, and whether
        that is unsure (``_conflict`` decides those). As ``_conflict`` has it: numbers and dates differ
        beyond the tolerance (with a margin for floating point), text once folded, anything else if not all
        equal (a cheap test)."""
        present = self.present(i)
        several = np.add.reduceat(present, self.first) >= 2
        kinds = set(map(type, self.columns[i])) - {type(None)}
        if kinds and kinds <= {int, float, Decimal}:
            low, high = self._low_high(self.by_member(i, lambda values: map(float, values), float), present)
            scale = np.maximum(np.abs(low), np.abs(high))
            with np.errstate(invalid="ignore", over="ignore"):
                differ = (high - low) - 1e-9 * scale > tolerance * scale
                agree = (high - low) + 1e-9 * scale <= tolerance * scale
            return several & differ, several & ~differ & ~agree
        if kinds == {date}:
            low, high = self._low_high(self.by_member(i, lambda values: map(date.toordinal, values)), present)
            return several & (high - low > tolerance), np.zeros_like(several)
        if kinds == {str}:  # equal once folded: the same code (each distinct value folded once)
            folded: dict[str, int] = {}
            distinct = set(compress(self.columns[i], self.listed(i)))
            codes = {v: folded.setdefault(fold(v), len(folded)) for v in distinct}
            low, high = self._low_high(self.by_member(i, lambda values: map(codes.__getitem__, values)), present)
            return several & (low != high), np.zeros_like(several)
        first_seen: dict[Any, int] = {}
        try:  # equal values, equal numbers (the count at the first of them)
            equal = self.by_member(i, lambda values: map(first_seen.setdefault, values, count()))
            low, high = self._low_high(equal, present)
        except TypeError:  # unhashable values
            return np.zeros_like(several), several
        return np.zeros_like(several), several & (low != high)

    def _low_high(self, values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per cluster, the least and the greatest of its members' ``values`` where present."""
        limits = np.finfo(values.dtype) if values.dtype.kind == "f" else np.iinfo(values.dtype)
        low = np.minimum.reduceat(np.where(present, values, limits.max), self.first)
        high = np.maximum.reduceat(np.where(present, values, limits.min), self.first)
        return low, high



class _Builder:
    """The golden rows of clusters of two or more, from the ``Decisions`` on them."""

    def __init__(self, survivor: Survivor, records: Sequence[Record], members: np.ndarray, sizes: np.ndarray):
        self.survivor = survivor
        self.bounds = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        self.member_records = [records[i] for i in members.tolist()]
        self.keys = [r[_KEY] for r in self.member_records]
        self._columns: dict[int, tuple[list[Any], list[bool]]] = {}
        # what needs no decision is done now, while decisions may still be on their way: the values of
        # checked fields, and unions
        for _, i, _ in survivor._checked:
            self.column(i)
        self.unions = {step.i: self._union(step.i) for step in survivor._steps if _is_union(step)}

    def column(self, i: int) -> tuple[list[Any], list[bool]]:
        """The members' values of field ``i`` and whether each is present (``_present``)."""
        if i not in self._columns:
            values = list(map(itemgetter(i), self.member_records))
            sized = Record._fields[i] in SIZED_FIELDS
            self._columns[i] = values, list(map(bool, values)) if sized else list(map(is_not, values, repeat(None)))
        return self._columns[i]

    def rows(self, decisions: Decisions, golden_ids: Sequence[str], confidences: Sequence[float]
             ) -> Iterator[dict[str, Any]]:
        """The golden rows of these clusters, in order: a batch of clusters at a time, each field's values
        and provenance for the whole batch, then each row from them."""
        picks = decisions.picks
        sources = [decisions.source_names[s] for s in decisions.sources.tolist()]
        suspects: dict[int, list[tuple[str, int, float, bool]]] = {}  # per cluster: (field, i, tolerance, sure)
        for (name, i, tolerance), (clusters, sure) in zip(self.survivor._checked, decisions.conflicts):
            for k, surely in zip(clusters.tolist(), sure.tolist()):
                suspects.setdefault(k, []).append((name, i, tolerance, surely))
        steps = self.survivor._steps
        names = [step.name for step in steps]
        in_row_order = [names.index(name) for name in DEAL_FIELDS]
        not_null = [(DEAL_FIELDS.index(name), empty) for name, empty in _NOT_NULL]
        bounds = self.bounds.tolist()
        for start in range(0, len(golden_ids), _BATCH):
            end = min(start + _BATCH, len(golden_ids))
            spans = list(zip(bounds[start:end], bounds[start + 1:end + 1]))
            fields = [self._union_of(step.i, start, end) if _is_union(step) else self._won(picks, s, start, end)
                      for s, step in enumerate(steps)]
            values = [fields[s][0] for s in in_row_order]
            for s, empty in not_null:
                values[s] = [v if v else empty() for v in values[s]]
            provenance = [dict(filter(itemgetter(1), zip(names, hows))) for hows in zip(*(how for _, how in fields))]
            conflicts = [self._conflicts(suspects.get(k), a, b) for k, (a, b) in zip(range(start, end), spans)]
            members = [self.keys[a:b] for a, b in spans]
            for row in zip(*values, golden_ids[start:end], sources[start:end], members, confidences[start:end],
                           provenance, conflicts):
                yield dict(zip(ROW_FIELDS, row))

    def _conflicts(self, suspected: list[tuple[str, int, float, bool]] | None, a: int, b: int
                   ) -> list[dict[str, Any]]:
        """The conflicts of a cluster (members ``a:b``) on the ``suspected`` fields."""
        if not suspected:
            return []
        conflicts = []
        for name, i, tolerance, sure in suspected:
            if sure:
                values, present = self.column(i)
                members = zip(self.keys[a:b], values[a:b], present[a:b])
                conflicts.append({"field": name, "values": {key: _json_safe(v) for key, v, has in members if has}})
            elif conflict := _conflict(name, i, tolerance, self.member_records[a:b]):
                conflicts.append(conflict)
        return conflicts

    def _won(self, picks: np.ndarray, s: int, start: int, end: int
             ) -> tuple[list[Any], list[dict[str, Any] | None]]:
        """Step ``s``'s value and provenance in clusters ``start:end``."""
        step = self.survivor._steps[s]
        chosen = picks[start:end, s].tolist()
        # position -1 (no winner) is the blank record at the end: None
        values = list(map(itemgetter(step.i), map(self._member_or_blank, chosen)))
        keys = self.keys
        if step.leader is None:
            rule = step.rule
            return values, [{"deal_key": keys[p], "rule": rule} if p >= 0 else None for p in chosen]
        # a follower whose leader had no winner was picked by the default rule
        follows, default = f"follows {self.survivor._steps[step.leader].name}", self.survivor.rules.default
        rules = [follows if p >= 0 else default for p in picks[start:end, step.leader].tolist()]
        return values, [{"deal_key": keys[p], "rule": rule} if p >= 0 else None for p, rule in zip(chosen, rules)]

    @cached_property
    def _member_or_blank(self) -> Callable[[int], Sequence[Any]]:
        return [*self.member_records, (None,) * len(Record._fields)].__getitem__

    def _union(self, i: int) -> tuple[list[Any], list[dict[str, Any]]]:
        """The union of field ``i`` over the members of each cluster, and which members it came from."""
        column, listed = self.column(i)
        keys, bounds = self.keys, self.bounds.tolist()
        values, provenance = [], []
        for a, b in zip(bounds[:-1], bounds[1:]):
            if any(listed[a:b]):
                values.append(sorted(set().union(*compress(column[a:b], listed[a:b]))))
                provenance.append({"deal_keys": list(compress(keys[a:b], listed[a:b])), "rule": "union"})
            else:
                values.append([])
                provenance.append({"deal_keys": [], "rule": "union"})
        return values, provenance

    def _union_of(self, i: int, start: int, end: int) -> tuple[list[Any], list[dict[str, Any]]]:
        values, provenance = self.unions[i]
        return values[start:end], provenance[start:end]


def _is_union(step: _Step) -> bool:
    return step.rule == "union" and step.leader is None


def _conflict(name: str, i: int, tolerance: float, members: Sequence[Record]) -> dict[str, Any] | None:
    """The members' values of a field when they disagree beyond ``tolerance``."""
    present = sorted((r[_KEY], r[i]) for r in members if _present(r[i]))
    if len(present) < 2:
        return None
    values = [v for _, v in present]
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
    return {"field": name, "values": {k: _json_safe(v) for k, v in present}}

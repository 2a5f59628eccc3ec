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
cluster is known before the first golden deal is built.
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
        """The golden deal of one cluster (``goldens`` builds many at once, the same way)."""
        members = sorted(members, key=itemgetter(_KEY))
        everyone = np.arange(len(members))
        return next(self.goldens(members, everyone, np.array([0, len(members)]), [golden_id], [confidence]))

    def goldens(
        self, records: Sequence[Record], order: np.ndarray, starts: np.ndarray, golden_ids: Sequence[str],
        confidences: Sequence[float],
    ) -> Iterator[GoldenDeal]:
        """The golden deal of each cluster ``order[starts[c]:starts[c + 1]]`` of ``records``.

        ``records`` are sorted by key and each cluster's members ascending, as
        the engine holds them. Which member wins each field is decided for all
        clusters at once, column by column.
        """
        sizes = np.diff(starts)
        merged = sizes > 1
        winners = _Winners(self, records, order[np.repeat(merged, sizes)], sizes[merged])
        merged_at = np.flatnonzero(merged).tolist()
        merged_goldens = winners.goldens([golden_ids[c] for c in merged_at], [confidences[c] for c in merged_at])
        order_list = order.tolist()
        for first, golden_id, confidence, is_merged in zip(starts.tolist(), golden_ids, confidences, merged.tolist()):
            if is_merged:
                yield next(merged_goldens)
            else:  # most clusters: the record is its own golden deal
                only = records[order_list[first]]
                values = dict(zip(DEAL_FIELDS, only[_FIRST_FIELD:]))
                yield GoldenDeal(golden_id, only[_SOURCE], values, [only[_KEY]], confidence)


# Golden deals are built this many clusters at a time: column by column is
# fast, and a bounded batch keeps a million provenance dicts from piling up.
_BATCH = 512


class _Winners:
    """Each field's winning member in every cluster of two or more, decided column by column.

    Members are laid out as given, cluster after cluster; a rule ranks each
    cluster's members, most recently updated first where it does not decide
    (an unknown update time counts as oldest; ties to the smaller key), and the
    first with a value wins.
    """

    def __init__(self, survivor: Survivor, records: Sequence[Record], members: np.ndarray, sizes: np.ndarray):
        self.survivor = survivor
        self.bounds = np.r_[0, np.cumsum(sizes)].astype(np.int64)
        self.first = self.bounds[:-1]
        self.cluster = np.repeat(np.arange(len(sizes)), sizes)
        self.rows = [records[i] for i in members.tolist()]
        self.keys = [r[_KEY] for r in self.rows]
        # The members' values, field by field (``columns``), are read in record
        # order: records sit in memory about in that order, while cluster order
        # jumps between sources. ``in_column`` is each member's position there.
        ascending = np.argsort(members, kind="stable")
        self.in_column = np.empty_like(ascending)
        self.in_column[ascending] = np.arange(len(ascending))
        self.columns = list(zip(*[records[i] for i in members[ascending].tolist()])) or [()] * len(Record._fields)
        self._presence: dict[int, tuple[list[bool], np.ndarray]] = {}
        self._timestamps: dict[int, np.ndarray] = {}
        updated = self.timestamps(_UPDATED)
        newest_first = np.where(np.isnan(updated), np.inf, -updated)
        # records are sorted by key, so the record index breaks ties as the key would
        self.by_recency = np.lexsort((members, newest_first, self.cluster))
        self.picks = self._pick_all()  # (clusters, steps): a member position, -1 for no winner
        self.sources = self._winning_sources()
        self.suspects = self._suspected_conflicts()

    def presence(self, i: int) -> tuple[list[bool], np.ndarray]:
        """Whether each member has a value of field ``i`` (``_present``: text and lists may be empty), in
        column order and in the member layout."""
        if i not in self._presence:
            column = self.columns[i]
            sized = Record._fields[i] in SIZED_FIELDS
            in_column = list(map(bool, column)) if sized else list(map(is_not, column, repeat(None)))
            self._presence[i] = in_column, np.array(in_column, dtype=bool)[self.in_column]
        return self._presence[i]

    def present(self, i: int) -> np.ndarray:
        return self.presence(i)[1]

    def by_member(self, i: int, of_values: Callable[[Iterator[Any]], Iterator[Any]], dtype: Any = np.int64,
                  missing: Any = 0) -> np.ndarray:
        """``of_values`` (a map over the present values) of field ``i``, ``missing`` where absent; member layout."""
        present = self.presence(i)[0]
        out = np.full(len(present), missing, dtype=dtype)
        out[np.array(present, dtype=bool)] = np.fromiter(of_values(compress(self.columns[i], present)), dtype=dtype)
        return out[self.in_column]

    def _pick_all(self) -> np.ndarray:
        steps = self.survivor._steps
        picks = np.full((len(self.first), len(steps)), -1, dtype=np.int64)
        for s, step in enumerate(steps):
            if self._is_union(step):
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
        having = sorted(compress(range(len(column)), self.presence(i)[0]), key=column.__getitem__)
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

    def _winning_sources(self) -> list[str]:
        """Per cluster, the source of the member that won the most fields (ties: the higher priority)."""
        sources = self._sources
        if not sources:
            return []
        code, clusters = self._source_ranks, len(self.first)
        won = self.picks >= 0
        cluster = np.broadcast_to(np.arange(clusters)[:, None], self.picks.shape)[won]
        tally = np.bincount(cluster * len(sources) + code[self.picks[won]], minlength=clusters * len(sources))
        tally = tally.reshape(clusters, len(sources))
        # no field has a winner: the most recent member's source
        best = np.where(tally.max(axis=1) > 0, tally.argmax(axis=1), code[self.by_recency[self.first]])
        return [sources[s] for s in best.tolist()]

    def _suspected_conflicts(self) -> dict[int, list[tuple[str, int, float]]]:
        """Per cluster, the checked fields on which its members may disagree beyond the tolerance."""
        suspects: dict[int, list[tuple[str, int, float]]] = {}
        for check in self.survivor._checked:
            _, i, tolerance = check
            for k in np.flatnonzero(~self._agree(i, tolerance)).tolist():
                suspects.setdefault(k, []).append(check)
        return suspects

    def _agree(self, i: int, tolerance: float) -> np.ndarray:
        """Per cluster, whether its members surely agree on field ``i``: fewer than two values, numbers or
        dates clearly within ``tolerance`` (with a margin for floating point), or values all equal
        (a cheap test; ``_conflict`` decides the rest)."""
        present = self.present(i)
        agree = np.add.reduceat(present, self.first) < 2
        kinds = set(map(type, self.columns[i])) - {type(None)}
        if kinds and kinds <= {int, float, Decimal}:
            low, high = self._low_high(self.by_member(i, lambda values: map(float, values), float), present)
            scale = np.maximum(np.abs(low), np.abs(high))
            with np.errstate(invalid="ignore", over="ignore"):
                return agree | ((high - low) + 1e-9 * scale <= tolerance * scale)
        if kinds == {date}:
            low, high = self._low_high(self.by_member(i, lambda values: map(date.toordinal, values)), present)
            return agree | (high - low <= tolerance)
        codes: dict[Any, int] = {}
        try:  # equal values, equal numbers (the count at the first of them)
            equal = self.by_member(i, lambda values: map(codes.setdefault, values, count()))
            low, high = self._low_high(equal, present)
        except TypeError:  # unhashable values
            return agree
        return agree | (low == high)

    def _low_high(self, values: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per cluster, the least and the greatest of its members' ``values`` where present."""
        limits = np.finfo(values.dtype) if values.dtype.kind == "f" else np.iinfo(values.dtype)
        low = np.minimum.reduceat(np.where(present, values, limits.max), self.first)
        high = np.maximum.reduceat(np.where(present, values, limits.min), self.first)
        return low, high

    def goldens(self, golden_ids: Sequence[str], confidences: Sequence[float]) -> Iterator[GoldenDeal]:
        """The golden deals of these clusters, in order: a batch of clusters at a time, each field's values
        and provenance for the whole batch, then each golden deal from them."""
        names = [step.name for step in self.survivor._steps]
        bounds = self.bounds.tolist()
        for start in range(0, len(golden_ids), _BATCH):
            end = min(start + _BATCH, len(golden_ids))
            spans = list(zip(bounds[start:end], bounds[start + 1:end + 1]))
            fields = [self._union(step.i, start, spans) if self._is_union(step) else self._won(s, start, end)
                      for s, step in enumerate(self.survivor._steps)]
            values, provenance = zip(*(field for field, _ in fields)), zip(*(how for _, how in fields))
            for k, (a, b), row, hows in zip(range(start, end), spans, values, provenance):
                suspected = self.suspects.get(k)
                conflicts = [c for name, i, tolerance in suspected
                             if (c := _conflict(name, i, tolerance, self.rows[a:b]))] if suspected else []
                yield GoldenDeal(
                    golden_ids[k], self.sources[k], dict(zip(names, row)), self.keys[a:b], confidences[k],
                    dict(filter(itemgetter(1), zip(names, hows))), conflicts,  # the fields with a winner
                )

    @staticmethod
    def _is_union(step: _Step) -> bool:
        return step.rule == "union" and step.leader is None

    def _won(self, s: int, start: int, end: int) -> tuple[list[Any], list[dict[str, Any] | None]]:
        """Step ``s``'s value and provenance in clusters ``start:end``."""
        step = self.survivor._steps[s]
        column, keys = self.columns[step.i], self.keys
        values = [column[q] if q >= 0 else None for q in self._won_in_column[start:end, s].tolist()]
        chosen = self.picks[start:end, s].tolist()
        if step.leader is None:
            rules = [step.rule] * len(chosen)
        else:  # a follower whose leader had no winner was picked by the default rule
            follows, default = f"follows {self.survivor._steps[step.leader].name}", self.survivor.rules.default
            rules = [follows if p >= 0 else default for p in self.picks[start:end, step.leader].tolist()]
        return values, [{"deal_key": keys[p], "rule": rule} if p >= 0 else None for p, rule in zip(chosen, rules)]

    @cached_property
    def _won_in_column(self) -> np.ndarray:
        """``picks`` as positions in ``columns``."""
        return np.where(self.picks >= 0, self.in_column[self.picks], -1)

    def _union(self, i: int, start: int, spans: list[tuple[int, int]]) -> tuple[list[Any], list[dict[str, Any]]]:
        """The union of field ``i`` over the members of clusters ``start:`` (``spans``: their members), and
        which members it came from."""
        listed, any_listed = self._listed[i]
        rows, keys = self.rows, self.keys
        values, provenance = [], []
        for (a, b), some in zip(spans, any_listed[start:start + len(spans)]):
            values.append(sorted({v for r in rows[a:b] for v in (r[i] or [])}) if some else [])
            provenance.append({"deal_keys": list(compress(keys[a:b], listed[a:b])) if some else [], "rule": "union"})
        return values, provenance

    @cached_property
    def _listed(self) -> dict[int, tuple[list[bool], list[bool]]]:
        """Per union field: whether each member lists a value of it, and whether any member of each cluster does."""
        listed = {step.i: self.present(step.i) for step in self.survivor._steps if self._is_union(step)}
        return {i: (present.tolist(), np.maximum.reduceat(present, self.first).tolist() if len(present) else [])
                for i, present in listed.items()}


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

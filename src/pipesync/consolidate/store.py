"""Consolidation against the warehouse: read live deals, run the engine, write the result.

Reads only the columns the engine needs (SQLAlchemy Core, no ``raw``), takes
the previous ``deal_links`` as the golden id assignment to keep, and replaces
``golden_deals`` and ``deal_links`` in one transaction: a run killed half way
leaves the previous result in place, and re-running changes nothing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pipesync.config import Settings
from pipesync.consolidate.engine import Consolidation, consolidate, without_gc
from pipesync.consolidate.records import Record, pooled_records
from pipesync.consolidate.survivorship import ROW_FIELDS
from pipesync.consolidate.rules import MatchRules, load_rules
from pipesync.model import SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.warehouse import schema as t
from pipesync.warehouse.bulk import ColumnInsert, clear, read_raw
from pipesync.warehouse.store import Warehouse

BATCH = 5000
LINK_FIELDS = ("deal_key", "golden_id", "score", "rule", "linked_to")  # a DealLink's, the deal_links columns


@dataclass
class ConsolidationSummary:
    deals: int
    golden_deals: int
    merged_clusters: int  # golden deals with more than one member
    duplicates: int  # deals folded into another one's golden deal
    candidate_pairs: int
    hard_links: int
    conflicts: int
    seconds: dict[str, float] = field(default_factory=dict)
    # per comparison level: m and u estimated from this run's data, and the weight log2(m/u) (estimate.py)
    weights: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def rules_for(settings: Settings, path: str | Path | None = None) -> MatchRules:
    """The rules file given, else the one the config names (``consolidation:``), else the defaults."""
    if path is None and settings.consolidation:
        path = settings.path(settings.consolidation)
    return load_rules(path)


def read_records(warehouse: Warehouse, keys: list[str] | None = None) -> list[Record]:
    """Live deals as light records (all of them, or those with the given keys), repeating values pooled.

    The driver's rows are taken as they come and each column converted once per distinct value
    (``bulk.read_raw``): a million deals repeat a few thousand dates, amounts and contact lists.
    """
    columns = [t.deals.c[name] for name in Record._fields]
    query = select(*columns).where(t.deals.c.is_deleted.is_(False))
    with warehouse.begin() as conn, without_gc():
        if keys is None:
            rows, convert = read_raw(conn, query)
            return pooled_records(rows, convert)
        records: list[Record] = []
        for start in range(0, len(keys), BATCH):
            rows, convert = read_raw(conn, query.where(t.deals.c.key.in_(keys[start:start + BATCH])))
            records += pooled_records(rows, convert)
        return records


def read_previous_ids(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.begin() as conn, without_gc():
        rows, _ = read_raw(conn, select(t.deal_links.c.deal_key, t.deal_links.c.golden_id))  # text: nothing to convert
        return dict(rows)


def _column_batches(rows: Iterator[Any], fields: Sequence[str], get: Callable[[Any], tuple[Any, ...]]
                    ) -> Iterator[dict[str, list[Any]]]:
    """``rows`` as batches of columns (field → values), each row's ``fields`` read by ``get``."""
    while batch := list(map(get, islice(rows, BATCH))):
        yield dict(zip(fields, map(list, zip(*batch))))


def retired_ids(previous: dict[str, str], links: Callable[[], Iterator[tuple[str, str]]]) -> tuple[dict[str, str], set[str]]:
    """Golden ids of the last run that no cluster kept → the id that took most of their deals (ties
    to the smaller id), and the ids in use now. ``links`` yields (deal key, golden id) afresh on each
    call: two passes, so a million links are never held at once."""
    kept = {gid for _, gid in links()}
    retiring = set(previous.values()) - kept
    heirs: dict[str, Counter[str]] = {}
    if retiring:
        for key, gid in links():
            old = previous.get(key)
            if old in retiring:
                heirs.setdefault(old, Counter())[gid] += 1
    return {old: min(n, key=lambda gid: (-n[gid], gid)) for old, n in heirs.items()}, kept


def write_aliases(conn: Connection, retired: dict[str, str], kept: set[str]) -> None:
    """Records ``retired`` ids as aliases, re-points older aliases whose target retired now, and
    drops aliases of ids in use again (a plan's id then means that cluster)."""
    a = t.golden_aliases
    stamp = datetime.now(timezone.utc)
    for alias, target in list(conn.execute(select(a.c.alias_id, a.c.golden_id)).all()):
        if alias in kept:
            conn.execute(delete(a).where(a.c.alias_id == alias))
        elif target in retired:
            conn.execute(update(a).where(a.c.alias_id == alias).values(golden_id=retired[target], recorded_at=stamp))
    if retired:
        conn.execute(delete(a).where(a.c.alias_id.in_(sorted(retired))))
        conn.execute(insert(a), [{"alias_id": old, "golden_id": new, "recorded_at": stamp} for old, new in retired.items()])


def write_result(warehouse: Warehouse, result: Consolidation, previous: dict[str, str] | None = None) -> int:
    """Replaces golden_deals and deal_links with ``result`` (keeping ``previous`` golden ids that
    retire as aliases); returns the number of conflicts written."""
    conflicts = 0

    def goldens() -> Iterator[dict[str, Any]]:
        nonlocal conflicts
        for row in result.golden_rows():
            conflicts += len(row["conflicts"])
            yield row

    if previous:
        ids, records = result.golden_ids, result.records
        retired, kept = retired_ids(previous, lambda: zip((r.key for r in records),
                                                          (ids[c] for c in result.clusters.cluster_of.tolist())))
    with warehouse.begin() as conn, without_gc():
        clear(conn, t.golden_deals)
        clear(conn, t.deal_links)
        ColumnInsert(conn, t.golden_deals, ROW_FIELDS).write(
            conn, _column_batches(goldens(), ROW_FIELDS, itemgetter(*ROW_FIELDS)))
        ColumnInsert(conn, t.deal_links, LINK_FIELDS).write(
            conn, _column_batches(result.links(), LINK_FIELDS, attrgetter(*LINK_FIELDS)))
        if previous:
            write_aliases(conn, retired, kept)
    return conflicts


def run_consolidation(
    settings: Settings, rules_path: str | Path | None = None, pipeline: SharedPipeline | None = None
) -> ConsolidationSummary:
    """``pipesync consolidate``: warehouse deals → golden_deals and deal_links."""
    rules = rules_for(settings, rules_path)
    pipeline = pipeline or load_pipeline(settings.pipeline_path())
    warehouse = Warehouse(settings.warehouse_url())
    try:
        started = time.perf_counter()
        records = read_records(warehouse)
        previous = read_previous_ids(warehouse)
        read_seconds = time.perf_counter() - started
        result = consolidate(records, rules, pipeline, previous)
        started = time.perf_counter()
        conflicts = write_result(warehouse, result, previous)
        write_seconds = time.perf_counter() - started
    finally:
        warehouse.close()
    clusters = result.clusters
    return ConsolidationSummary(
        deals=len(result.records),
        golden_deals=len(clusters),
        merged_clusters=int((clusters.sizes() > 1).sum()),
        duplicates=len(result.records) - len(clusters),
        candidate_pairs=len(result.candidates),
        hard_links=result.hard_pairs,
        conflicts=conflicts,
        seconds={"read": read_seconds, **result.timings, "write": write_seconds},
        weights=result.estimate.as_dict() if result.estimate else {},
    )

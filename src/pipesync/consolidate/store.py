"""Consolidation against the warehouse: read live deals, run the engine, write the result.

Reads only the columns the engine needs (SQLAlchemy Core, no ``raw``), takes
the previous ``deal_links`` as the golden id assignment to keep, and replaces
``golden_deals`` and ``deal_links`` in one transaction: a run killed half way
leaves the previous result in place, and re-running changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

from sqlalchemy import delete, insert, select

from pipesync.config import Settings
from pipesync.consolidate.engine import Consolidation, consolidate, without_gc
from pipesync.consolidate.records import Record, pooled_records
from pipesync.consolidate.rules import MatchRules, load_rules
from pipesync.model import SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse

BATCH = 5000


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
    """Live deals as light records (all of them, or those with the given keys), repeating values pooled."""
    columns = [t.deals.c[name] for name in Record._fields]
    query = select(*columns).where(t.deals.c.is_deleted.is_(False))
    with warehouse.begin() as conn, without_gc():
        if keys is None:
            return pooled_records(conn.execute(query.execution_options(yield_per=50_000)))
        chunks = (keys[start:start + BATCH] for start in range(0, len(keys), BATCH))
        rows = chain.from_iterable(conn.execute(query.where(t.deals.c.key.in_(chunk))) for chunk in chunks)
        return pooled_records(rows)


def read_previous_ids(warehouse: Warehouse) -> dict[str, str]:
    with warehouse.begin() as conn:
        return {k: g for k, g in conn.execute(select(t.deal_links.c.deal_key, t.deal_links.c.golden_id))}


def _batches(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def write_result(warehouse: Warehouse, result: Consolidation) -> int:
    """Replaces golden_deals and deal_links with ``result``; returns the number of conflicts written."""
    conflicts = 0

    def goldens() -> Iterator[dict[str, Any]]:
        nonlocal conflicts
        for row in result.golden_rows():
            conflicts += len(row["conflicts"])
            yield row

    links = (
        {"deal_key": link.deal_key, "golden_id": link.golden_id, "score": link.score, "rule": link.rule,
         "linked_to": link.linked_to}
        for link in result.links()
    )
    with warehouse.begin() as conn, without_gc():
        conn.execute(delete(t.golden_deals))
        conn.execute(delete(t.deal_links))
        for batch in _batches(goldens()):
            conn.execute(insert(t.golden_deals), batch)
        for batch in _batches(links):
            conn.execute(insert(t.deal_links), batch)
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
        conflicts = write_result(warehouse, result)
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

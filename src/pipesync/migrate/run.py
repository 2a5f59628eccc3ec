"""``pipesync migrate --execute``: a migration's creates sent through the push-back engine.

The engine batches them (``write_batch_max``), journals each batch before it is sent and
records each outcome; here each created record's id joins ``id_map`` in the same
transaction as its outcome, so a re-run plans nothing for it. The one gap left — a create
the target made while the run was killed before recording it — is closed before sending:
the creates an earlier run journaled without an outcome are looked up in the target
(``Adapter.find_created``: by external id where the target upserts, else by the origin tag
every create carries) and recorded instead of sent again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import MappingError
from pipesync.migrate.plan import Migration
from pipesync.migrate.reconcile import Reconciliation, reconcile, run_prefix
from pipesync.model import ChangeKind, ChangeOutcome, ChangeResult
from pipesync.pushback import journal
from pipesync.pushback.apply import OnResults, Progress, RunSummary, run_changes
from pipesync.pushback.plan import PlannedChange
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse, now

# Clocks of pipesync's host and the CRM differ a little: look a bit before the journal's time.
CLOCK_SLACK = timedelta(minutes=5)


@dataclass
class MigrationRun:
    summary: RunSummary
    recovered: int
    reconciliation: Reconciliation

    @property
    def ok(self) -> bool:
        return self.summary.ok and self.reconciliation.ok

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "run": self.summary.as_dict(), "recovered": self.recovered,
                "reconciliation": self.reconciliation.as_dict()}


def remember(conn: Connection, target: str, created: dict[str, str]) -> None:
    """Records source key → target id in ``id_map`` (the last id stands)."""
    if not created:
        return
    m = t.id_map
    stamp = now()
    for key, target_id in created.items():
        conn.execute(m.delete().where(m.c.source_key == key, m.c.target == target))
        conn.execute(m.insert().values(source_key=key, target=target, target_id=target_id, created_at=stamp))


def recorder(target: str) -> OnResults:
    """The engine's hook that puts each created record's id in ``id_map``, with its outcome."""
    def record(conn: Connection, done: list[tuple[PlannedChange, ChangeResult]]) -> None:
        remember(conn, target, {c.deal_key: r.new_source_id for c, r in done
                                if r.outcome is ChangeOutcome.APPLIED and r.new_source_id})
    return record


def run_migration(settings: Settings, migration: Migration, *,
                  opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter,
                  progress: Progress | None = None) -> MigrationRun:
    """Executes ``migration``: creates nothing twice, however often it is run or killed."""
    if migration.blockers:
        raise MappingError("the migration cannot start: " + "; ".join(migration.blockers))
    target = migration.target
    prefix = run_prefix(migration.source, target)
    recovered = _recover(settings, prefix, target, opener)
    changes = [c for c in migration.changes if c.deal_key not in recovered]
    run_id = f"{prefix}:{migration.created_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    summary = run_changes(settings, run_id, migration.migration_id, "migrate", changes, opener=opener,
                          progress=progress, on_results=recorder(target))
    return MigrationRun(summary, len(recovered), reconcile(settings, migration.source, target, opener=opener))


def _recover(settings: Settings, prefix: str, target: str,
             opener: Callable[[SourceConfig, Settings], Adapter]) -> dict[str, str]:
    """Creates earlier runs journaled but never recorded: found in the target → recorded as applied
    (and in ``id_map``); not found → failed, to be sent by this run."""
    j = t.change_journal
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            rows = [r for r in conn.execute(select(j.c.run_id, j.c.seq, j.c.deal_key, j.c.journaled_at).where(
                j.c.run_id.like(prefix + ":%"), j.c.kind == ChangeKind.CREATE.value, j.c.outcome.is_(None)))
                if r.run_id.startswith(prefix + ":")]
        if not rows:
            return {}
        with opener(settings.source(target), settings) as adapter:
            found = adapter.find_created(sorted({r.deal_key for r in rows}), min(r.journaled_at for r in rows) - CLOCK_SLACK)
        outcomes: dict[str, list[tuple[int, ChangeResult]]] = defaultdict(list)
        for r in rows:
            if r.deal_key in found:
                result = ChangeResult(deal_key=r.deal_key, outcome=ChangeOutcome.APPLIED, new_source_id=found[r.deal_key],
                                      reason="found in the target after the run was interrupted")
            else:
                result = ChangeResult(deal_key=r.deal_key, outcome=ChangeOutcome.FAILED,
                                      reason="not created before the run was interrupted: sent by a later run")
            outcomes[r.run_id].append((r.seq, result))
        with warehouse.begin() as conn:
            remember(conn, target, found)
            for run_id, results in outcomes.items():
                journal.record_results(conn, run_id, results)
        return found
    finally:
        warehouse.close()

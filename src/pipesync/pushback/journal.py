"""The journal of every write run: each change is recorded before its batch is sent, then
given its outcome, so a run killed at any point resumes without sending anything twice
and every applied change can be undone from its before-image.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, and_, insert, select, update

from pipesync.config import Settings
from pipesync.errors import UsageError
from pipesync.model import ChangeKind, ChangeOutcome, ChangeResult, FieldChange
from pipesync.pushback.plan import PlannedChange
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse


class JournalEntry(BaseModel):
    seq: int
    source: str | None
    deal_key: str
    kind: ChangeKind
    before: dict[str, Any]
    after: dict[str, Any]
    rule: str | None
    reason: str | None
    merge_into: str | None = None
    batch: int | None = None
    outcome: ChangeOutcome | None = None
    result_reason: str | None = None
    new_source_id: str | None = None
    journaled_at: datetime
    finished_at: datetime | None = None

    def fields(self) -> list[FieldChange]:
        return [FieldChange(field=k, before=self.before.get(k), after=v) for k, v in self.after.items()]


class WriteRun(BaseModel):
    run_id: str
    plan_id: str
    kind: str
    undo_of: str | None = None
    started_at: datetime
    finished_at: datetime | None = None
    status: str
    counts: dict[str, int]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _plain(value: Any) -> Any:
    """JSON-safe: dates and decimals as text, as the plan file holds them."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def get_run(conn: Connection, run_id: str) -> WriteRun | None:
    row = conn.execute(select(t.write_runs).where(t.write_runs.c.run_id == run_id)).mappings().first()
    return None if row is None else WriteRun(**row)


def start_run(conn: Connection, run_id: str, plan_id: str, kind: str, undo_of: str | None = None) -> WriteRun:
    """The run ``run_id``, created, or as a killed or finished earlier attempt left it (marked running again)."""
    found = get_run(conn, run_id)
    if found is None:
        conn.execute(insert(t.write_runs).values(run_id=run_id, plan_id=plan_id, kind=kind, undo_of=undo_of,
                                                 started_at=_now(), status="running", counts={}))
    else:
        conn.execute(update(t.write_runs).where(t.write_runs.c.run_id == run_id).values(status="running", finished_at=None))
    return get_run(conn, run_id)  # type: ignore[return-value]


def finish_run(conn: Connection, run_id: str, status: str, counts: dict[str, int]) -> None:
    conn.execute(update(t.write_runs).where(t.write_runs.c.run_id == run_id)
                 .values(status=status, counts=counts, finished_at=_now()))


def entries(conn: Connection, run_id: str) -> list[JournalEntry]:
    j = t.change_journal
    rows = conn.execute(select(j).where(j.c.run_id == run_id).order_by(j.c.seq)).mappings()
    return [JournalEntry(**{k: v for k, v in row.items() if k not in ("id", "run_id")}) for row in rows]


def journal_batch(conn: Connection, run_id: str, batch: int, changes: Sequence[PlannedChange]) -> None:
    """Records a batch about to be sent; a change journaled by an earlier attempt keeps its row."""
    j = t.change_journal
    seqs = [c.seq for c in changes]
    known = set(conn.execute(select(j.c.seq).where(j.c.run_id == run_id, j.c.seq.in_(seqs))).scalars())
    rows = [{
        "run_id": run_id, "seq": c.seq, "source": c.source, "deal_key": c.deal_key, "kind": c.kind.value,
        "before": {f.field: _plain(f.before) for f in c.fields}, "after": {f.field: _plain(f.after) for f in c.fields},
        "rule": c.rule, "reason": c.reason, "merge_into": c.merge_into, "batch": batch, "journaled_at": _now(),
    } for c in changes]
    fresh = [r for r in rows if r["seq"] not in known]
    if fresh:
        conn.execute(insert(j), fresh)
    for r in rows:
        if r["seq"] in known:  # sent again: what it expects now (a forced undo expects what is there)
            conn.execute(update(j).where(j.c.run_id == run_id, j.c.seq == r["seq"]).values(
                before=r["before"], after=r["after"], batch=batch, journaled_at=r["journaled_at"]))


def record_results(conn: Connection, run_id: str, results: Iterable[tuple[int, ChangeResult]]) -> None:
    j = t.change_journal
    stamp = _now()
    for seq, r in results:
        conn.execute(update(j).where(and_(j.c.run_id == run_id, j.c.seq == seq)).values(
            outcome=r.outcome.value, result_reason=r.reason, new_source_id=r.new_source_id, finished_at=stamp))


def settled(conn: Connection, run_id: str, *, conflicts_final: bool = True) -> dict[int, ChangeOutcome]:
    """Changes of the run that have a final outcome: applied, and conflicts unless they are to be
    tried again (a forced undo); failures are always retried."""
    j = t.change_journal
    final = [ChangeOutcome.APPLIED.value] + ([ChangeOutcome.CONFLICT.value] if conflicts_final else [])
    rows = conn.execute(select(j.c.seq, j.c.outcome).where(j.c.run_id == run_id, j.c.outcome.in_(final)))
    return {seq: ChangeOutcome(outcome) for seq, outcome in rows}


def counts_of(conn: Connection, run_id: str) -> dict[str, int]:
    return dict(Counter(e.outcome.value if e.outcome else "pending" for e in entries(conn, run_id)))


def list_runs(conn: Connection, limit: int = 50) -> list[WriteRun]:
    rows = conn.execute(select(t.write_runs).order_by(t.write_runs.c.started_at.desc()).limit(limit)).mappings()
    return [WriteRun(**row) for row in rows]


def undone_by(conn: Connection, run_id: str) -> str | None:
    return conn.execute(select(t.write_runs.c.run_id).where(t.write_runs.c.undo_of == run_id)).scalar()


def created_tasks(conn: Connection) -> set[str]:
    """Deal keys that hold a task an apply created and no undo deleted: a new plan does not ask again."""
    j = t.change_journal
    applied = ChangeOutcome.APPLIED.value
    made = Counter(conn.execute(select(j.c.deal_key).where(j.c.kind == ChangeKind.CREATE_TASK.value, j.c.outcome == applied)).scalars())
    made.subtract(conn.execute(select(j.c.deal_key).where(j.c.kind == ChangeKind.DELETE_TASK.value, j.c.outcome == applied)).scalars())
    return {key for key, n in made.items() if n > 0}


def recent_runs(settings: Settings, limit: int = 50) -> list[WriteRun]:
    """``pipesync journal``: the latest write runs, newest first."""
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            return list_runs(conn, limit)
    finally:
        warehouse.close()


def describe_run(settings: Settings, run_id: str) -> tuple[WriteRun, list[JournalEntry]]:
    """``pipesync journal RUN``: one run and each of its changes, in plan order."""
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            run = get_run(conn, run_id)
            if run is None:
                raise UsageError(f"no write run {run_id!r} in the journal (`pipesync journal` lists them)")
            return run, entries(conn, run_id)
    finally:
        warehouse.close()

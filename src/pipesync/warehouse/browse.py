"""What happened, without SQL: recent sync runs, and what quarantine holds (``pipesync runs``, ``pipesync quarantine``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse

COUNTED = ("read", "inserted", "updated", "deleted", "quarantined")


def recent_runs(warehouse: Warehouse, limit: int = 20) -> list[dict[str, Any]]:
    """The latest sync runs, newest first: status, duration, and per source and in all the counts."""
    r = t.sync_runs.c
    with warehouse.begin() as conn:
        rows = conn.execute(select(t.sync_runs).order_by(r.id.desc()).limit(limit)).mappings().all()
    out = []
    for row in rows:
        counts = row["counts"] or {}
        finished = row["finished_at"]
        out.append({
            "run_id": row["id"], "status": row["status"], "started_at": row["started_at"], "finished_at": finished,
            "seconds": round((finished - row["started_at"]).total_seconds(), 1) if finished else None,
            "sources": row["sources"], "totals": {k: sum(c.get(k, 0) for c in counts.values()) for k in COUNTED},
            "counts": counts, "error": row["error"],
        })
    return out


def quarantine_entries(warehouse: Warehouse, source: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The records quarantine holds (of ``source``, or all): where each is, which field, and why."""
    q = t.quarantine.c
    query = select(q.source, q.record, q.locator, q.field, q.reason, q.first_seen, q.last_seen).order_by(q.source, q.record)
    if source is not None:
        query = query.where(q.source == source)
    with warehouse.begin() as conn:
        return [dict(r) for r in conn.execute(query.limit(limit)).mappings()]

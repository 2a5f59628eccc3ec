"""``metric_snapshots``: every run's headline figures, one row per view, segment and metric.

Trends are drawn from them: for each period, the latest snapshot taken of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import func, insert, select
from sqlalchemy.engine import Connection

from pipesync.metrics.definitions import ALL_SEGMENT, HEADLINE
from pipesync.metrics.results import Metrics
from pipesync.warehouse import schema

table = schema.metric_snapshots


def store(conn: Connection, metrics: Metrics, taken_at: datetime) -> int:
    """Writes the run's row set; returns how many rows."""
    rows = [
        {
            "taken_at": taken_at,
            "period_start": metrics.period.start,
            "period_end": metrics.period.end,
            "view": metrics.view,
            "segment": segment.segment,
            "metric": m.key,
            "value": segment.metrics[m.key].value,
        }
        for segment in metrics.segments
        for m in HEADLINE
    ]
    if rows:
        conn.execute(insert(table), rows)
    return len(rows)


@dataclass(frozen=True)
class TrendPoint:
    period_start: date
    period_end: date
    taken_at: datetime
    values: dict[str, float | None]


def trend(conn: Connection, metrics: list[str], *, limit: int = 8) -> list[TrendPoint]:
    """The whole deal set's figures per period (latest snapshot of each), oldest first, at most ``limit`` periods."""
    latest = (
        select(table.c.period_start, table.c.period_end, func.max(table.c.taken_at).label("taken_at"))
        .where(table.c.segment == ALL_SEGMENT)
        .group_by(table.c.period_start, table.c.period_end)
        .order_by(table.c.period_end.desc(), table.c.period_start.desc())
        .limit(limit)
        .subquery()
    )
    rows = conn.execute(
        select(table.c.period_start, table.c.period_end, table.c.taken_at, table.c.metric, table.c.value)
        .join(
            latest,
            (table.c.period_start == latest.c.period_start)
            & (table.c.period_end == latest.c.period_end)
            & (table.c.taken_at == latest.c.taken_at),
        )
        .where(table.c.segment == ALL_SEGMENT, table.c.metric.in_(metrics))
    ).all()
    points: dict[tuple[date, date], TrendPoint] = {}
    for start, end, taken, metric, value in rows:
        point = points.setdefault((start, end), TrendPoint(start, end, taken, {}))
        point.values[metric] = value
    return sorted(points.values(), key=lambda p: (p.period_end, p.period_start))

"""``metric_snapshots``: every run's headline figures, one row per view, segment and metric.

A record of what was reported, under the instant the figures were as of. The
report's trend is not read from here but computed from the deals (compute.trend),
so it is there from the first run and follows the same definitions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.engine import Connection

from pipesync.metrics.definitions import HEADLINE
from pipesync.metrics.results import Metrics
from pipesync.warehouse import schema

table = schema.metric_snapshots


def store(conn: Connection, metrics: Metrics, taken_at: datetime) -> int:
    """Writes the run's row set under ``taken_at`` (the as-of instant); returns how many rows."""
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

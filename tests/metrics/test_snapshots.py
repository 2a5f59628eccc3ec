"""Every run stores its headline figures; trends read the latest snapshot of each period."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import create_engine, func, select

from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from pipesync.metrics.definitions import HEADLINE
from pipesync.metrics.snapshots import trend
from pipesync.warehouse import schema
from tests.metrics.builders import NOW

Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))
Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))


def test_a_run_stores_one_row_per_segment_and_metric(quarter_settings):
    m = run_metrics(quarter_settings, Q4, view="owner", now=NOW)
    engine = create_engine(quarter_settings.warehouse_url())
    with engine.connect() as conn:
        rows = conn.execute(select(schema.metric_snapshots).where(schema.metric_snapshots.c.metric == "win_rate")).all()
        total = conn.scalar(select(func.count()).select_from(schema.metric_snapshots))
    engine.dispose()
    assert total == len(m.segments) * len(HEADLINE) == 3 * len(HEADLINE)  # all, ann, bob
    assert {(r.view, r.segment, r.value) for r in rows} == {
        ("owner", "all", 2 / 3), ("owner", "ann@example.com", 0.5), ("owner", "bob@example.com", 1.0)
    }
    assert all((r.period_start, r.period_end) == (Q4.start, Q4.end) for r in rows)


def test_the_trend_has_the_latest_snapshot_of_each_period_oldest_first(quarter_settings):
    run_metrics(quarter_settings, Q3, now=NOW - timedelta(days=60))
    run_metrics(quarter_settings, Q4, now=NOW - timedelta(days=1))
    run_metrics(quarter_settings, Q4, now=NOW)
    engine = create_engine(quarter_settings.warehouse_url())
    with engine.connect() as conn:
        points = trend(conn, ["win_rate", "won_count"])
    engine.dispose()
    assert [(p.period_start, p.period_end) for p in points] == [(Q3.start, Q3.end), (Q4.start, Q4.end)]
    assert points[0].values == {"win_rate": 0.5, "won_count": 1}
    assert points[1].values == {"win_rate": 2 / 3, "won_count": 2}
    assert points[1].taken_at.replace(tzinfo=None) == NOW.replace(tzinfo=None)

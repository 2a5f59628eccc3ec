"""Every run stores its headline figures: a record of what was reported."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import create_engine, func, select

from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from pipesync.metrics.definitions import HEADLINE
from pipesync.warehouse import schema
from tests.metrics.builders import NOW

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
        # each owner closed too few deals for a rate (MIN_CLOSED_FOR_RATE): withheld here too
        ("owner", "all", 2 / 3), ("owner", "Ann", None), ("owner", "Bob", None)
    }
    assert all((r.period_start, r.period_end) == (Q4.start, Q4.end) for r in rows)


def test_every_run_is_kept_under_the_instant_its_figures_are_as_of(quarter_settings):
    run_metrics(quarter_settings, Q4, now=NOW - timedelta(days=1))
    run_metrics(quarter_settings, Q4, now=NOW)
    engine = create_engine(quarter_settings.warehouse_url())
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.metric_snapshots.c.taken_at, schema.metric_snapshots.c.value)
            .where(schema.metric_snapshots.c.metric == "won_count")
            .order_by(schema.metric_snapshots.c.taken_at)
        ).all()
    engine.dispose()
    # D4 was won on 11-10, D3 on 10-31: both before either instant
    assert [(r.taken_at.replace(tzinfo=None), r.value) for r in rows] == [
        ((NOW - timedelta(days=1)).replace(tzinfo=None), 2), (NOW.replace(tzinfo=None), 2)
    ]

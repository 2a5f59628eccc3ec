"""The trend is computed from the deals, as of each period: a new warehouse has a full trend at once."""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.metrics.periods import Period, month_of
from pipesync.metrics.run import run_metrics, run_views
from tests.metrics.builders import NOW

Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))
Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))


def test_the_last_four_quarters_then_the_quarter_to_date(quarter_settings):
    run = run_views(quarter_settings, Q4, now=NOW, trend_metrics=("win_rate", "won_count", "open_pipeline_value"))
    periods = [(p.period.start, p.period.end, p.period.to_date) for p in run.trend]
    assert periods == [
        (date(2025, 10, 1), date(2025, 12, 31), False),
        (date(2026, 1, 1), date(2026, 3, 31), False),
        (date(2026, 4, 1), date(2026, 6, 30), False),
        (date(2026, 7, 1), date(2026, 9, 30), False),
        (date(2026, 10, 1), date(2026, 12, 31), True),
    ]
    assert [p.values["won_count"] for p in run.trend] == [0, 0, 0, 1, 2]  # D6 in Q3; D3, D4 in Q4
    assert [p.values["win_rate"] for p in run.trend] == [None, None, None, 0.5, pytest.approx(2 / 3)]
    # open at the end of Q2: D4 (created 06-01) and D6 (05-01)
    assert run.trend[2].values["open_pipeline_value"] == 75_000


def test_each_point_is_that_period_as_it_stood_at_its_end(quarter_settings):
    run = run_views(quarter_settings, Q4, now=NOW, trend_metrics=("weighted_pipeline", "velocity_per_month"))
    q3 = run_metrics(quarter_settings, Q3, now=NOW)
    assert run.trend[3].values == {k: q3.total(k).value for k in ("weighted_pipeline", "velocity_per_month")}
    assert run.trend[-1].values["weighted_pipeline"] == run.views["all"].total("weighted_pipeline").value


def test_a_month_has_the_twelve_months_before_it(quarter_settings):
    run = run_views(quarter_settings, month_of(NOW.date()), now=NOW, trend_metrics=("won_count",))
    assert len(run.trend) == 13
    assert (run.trend[0].period.start, run.trend[-1].period.start) == (date(2025, 11, 1), date(2026, 11, 1))
    assert [p.values["won_count"] for p in run.trend[-4:]] == [1, 0, 1, 1]  # D6 08-31; D3 10-31; D4 11-10

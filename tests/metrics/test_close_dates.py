"""Closed deals are measured on the day they closed: the actual close date, else the expected one.

Today is 2026-11-22 12:00 UTC. Every closed deal but W2 has an expected close date in the
other quarter than the day it really closed.
"""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.metrics.periods import Period, end_of_day
from pipesync.metrics.run import run_metrics
from tests.metrics.builders import NOW, DealRow, write_warehouse

Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))
Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))


def deals() -> list[DealRow]:
    return [
        # won 09-20 (Q3) though expected 12-15; created 08-01: a 50-day cycle
        DealRow("pipedrive:W1", "closed_won", "won", 10_000, "2026-08-01", close="2026-12-15", actual_close="2026-09-20"),
        # lost 10-05 (Q4) though expected 08-30
        DealRow("pipedrive:L1", "closed_lost", "lost", 40_000, "2026-07-01", close="2026-08-30", actual_close="2026-10-05",
                lead_source="Web"),
        # won, no actual close date known (a warehouse synced before it was kept): its expected 10-10 stands in
        DealRow("salesforce:W2", "closed_won", "won", 5_000, "2026-09-30", close="2026-10-10"),
    ]


@pytest.fixture
def settings(warehouse_url):
    return write_warehouse(warehouse_url, deals())


def figures(m, *keys):
    return tuple(m.total(k).value for k in keys)


def test_won_and_lost_counts_sizes_and_cycles_follow_the_actual_close_date(settings):
    q3, q4 = run_metrics(settings, Q3, now=NOW), run_metrics(settings, Q4, now=NOW)
    assert figures(q3, "won_count", "lost_count", "won_value", "avg_won_deal_size", "avg_sales_cycle_days") == (
        1, 0, 10_000, 10_000, 50)
    # W2 by its expected date (10 days after it was created); L1 lost on 10-05
    assert figures(q4, "won_count", "lost_count", "win_rate", "avg_sales_cycle_days") == (1, 1, 0.5, 10)
    assert [(r.reason, r.count) for r in q4.lost_reasons] == [("(no reason given)", 1)]


def test_as_of_a_past_day_a_deal_is_open_until_the_day_it_really_closed(settings):
    # as of 09-30: W1 (won 09-20) is closed although expected in December; L1 (lost 10-05) is still
    # open although expected in August; W2 (created 09-30, closes 10-10) is open
    m = run_metrics(settings, Q3, now=end_of_day(date(2026, 9, 30)))
    assert figures(m, "open_pipeline_count", "open_pipeline_value") == (2, 45_000)

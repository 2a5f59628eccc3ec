"""Every forecast figure on a small warehouse worked out by hand.

As of 2026-11-22 (the figures as they stood at the end of that day), Q4 2026 is the current
quarter and Q1 2027 the next. Default bands: commit from probability 0.7, best case from 0.4.

| deal | status | stage (probability) | amount (reporting USD) | expected close | note |
| --- | --- | --- | --- | --- | --- |
| A | won 2026-10-01 | | 30,000 (24,000 GBP) | | the first day of Q4: won so far |
| B | won 2026-09-30 | | 20,000 | | the last day of Q3: not Q4's |
| C | open | negotiation (0.75), since 11-10 | 40,000 | 2026-12-31 | the last day of Q4: commit |
| D | open | proposal (0.50), since 10-01 | 11,000 (10,000 EUR) | 2027-01-15 | pushed from Q4 into Q1: best case |
| E | open | qualification (0.20), since 08-01 | 50,000 | 2026-11-01 | stale and overdue: still Q4's, pipeline |
| F | open | prospecting (0.10) | 9,000 | 2027-06-30 | after the periods shown |
| H | lost 2026-11-05 | | 80,000 | | lost: never counts |

All were created on 2026-06-01, in prospecting.

Q4: won so far 30,000; stage-weighted 30,000 + 0.75 × 40,000 + 0.2 × 50,000 = 70,000; commit
30,000 + 40,000 = 70,000; best case 70,000; pipeline 70,000 + 50,000 = 120,000. Q1: stage-weighted
0.5 × 11,000 = 5,500; commit 0; best case and pipeline 11,000. History-weighted: no situation has the
30 observations a learned rate needs (the default ``min_sample``), so every deal takes its stage's
probability, and no deal was created after any learning instant: the same figures.

Backtest, Q3 2026 as of 07-01: every deal was in prospecting (0.1); only B was expected in Q3 and
it was won there: stage-weighted 2,000 against 20,000 (−90%), commit and best case 0 (−100%). The
other backtested quarters won nothing: no error to take. Stage-weighted and history-weighted tie at
90%, the stage-weighted comes first: the default. Target 100,000: gap 30,000, coverage 90,000 ÷
(100,000 − 30,000).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from pipesync.config import ForecastSettings, Settings, Target
from pipesync.forecast import forecast
from tests.metrics.builders import DealRow, write_warehouse


@dataclass
class ForeignDeal(DealRow):
    """A deal written in another currency; ``amount`` is the reporting currency's."""

    currency: str = "USD"
    original: float | None = None

    def row(self):  # type: ignore[no-untyped-def]
        return super().row() | {"currency": self.currency, "amount": self.original}


def deals() -> list[DealRow]:
    created = "2026-06-01"
    start = [("prospecting", created)]
    return [
        ForeignDeal("salesforce:A", "closed_won", "won", 30_000, created, close="2026-10-01", actual_close="2026-10-01",
                    currency="GBP", original=24_000, history=start + [("closed_won", "2026-10-01")]),
        DealRow("hubspot:B", "closed_won", "won", 20_000, created, close="2026-09-30", actual_close="2026-09-30",
                owner="bob@example.com", history=start + [("closed_won", "2026-09-30")]),
        DealRow("salesforce:C", "negotiation", "open", 40_000, created, close="2026-12-31", stage_entered="2026-11-10",
                last_activity="2026-11-20", history=start + [("negotiation", "2026-11-10")]),
        ForeignDeal("hubspot:D", "proposal", "open", 11_000, created, close="2027-01-15", stage_entered="2026-10-01",
                    last_activity="2026-11-21", owner="bob@example.com", currency="EUR", original=10_000,
                    history=start + [("proposal", "2026-10-01")]),
        DealRow("salesforce:E", "qualification", "open", 50_000, created, close="2026-11-01", stage_entered="2026-08-01",
                last_activity="2026-08-01", updated="2026-08-01", history=start + [("qualification", "2026-08-01")]),
        DealRow("salesforce:F", "prospecting", "open", 9_000, created, close="2027-06-30", last_activity="2026-11-20",
                history=start),
        DealRow("hubspot:H", "closed_lost", "lost", 80_000, created, close="2026-11-05", actual_close="2026-11-05",
                history=start + [("closed_lost", "2026-11-05")]),
    ]


@pytest.fixture
def settings(warehouse_url) -> Settings:
    written = write_warehouse(warehouse_url, deals())
    return Settings(warehouse=written.warehouse, forecast=ForecastSettings(targets=[Target(period="2026-Q4", amount=100_000)]))


def test_this_and_next_quarter_by_every_method(settings):
    f = forecast(settings, as_of=date(2026, 11, 22))
    q4, q1 = f.total(0), f.total(1)
    assert [(p.label, p.start, p.end, p.current) for p in f.periods] == [
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), True), ("2027-Q1", date(2027, 1, 1), date(2027, 3, 31), False),
    ]
    assert (q4.won_so_far, q4.open_deals, q4.open_value) == (30_000, 2, 90_000)
    assert (q4.stage_weighted, q4.history_weighted, q4.new_deals) == (70_000, 70_000, 0)
    assert q4.categories.model_dump() == {"commit": 70_000, "best_case": 70_000, "pipeline": 120_000}
    assert (q1.won_so_far, q1.open_deals, q1.open_value, q1.stage_weighted, q1.history_weighted) == (0, 1, 11_000, 5_500, 5_500)
    assert q1.categories.model_dump() == {"commit": 0, "best_case": 11_000, "pipeline": 11_000}
    assert f.history.deals_by_level["shared pipeline probability"] == 4  # every open deal: no group is big enough


def test_backtest_and_the_default_method(settings):
    f = forecast(settings, as_of=date(2026, 11, 22))
    assert [p.label for p in f.backtest.periods] == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3"]
    q3 = f.backtest.periods[-1]
    assert q3.actual == 20_000
    assert q3.forecasts == {"stage_weighted": 2_000, "history_weighted": 2_000, "commit": 0, "best_case": 0}
    assert q3.errors_pct == {"stage_weighted": -90, "history_weighted": -90, "commit": -100, "best_case": -100}
    assert all(e is None for p in f.backtest.periods[:-1] for e in p.errors_pct.values())
    scores = {m.method: (m.periods, m.bias_pct, m.mape_pct) for m in f.backtest.methods}
    assert scores == {"stage_weighted": (1, -90, 90), "history_weighted": (1, -90, 90), "commit": (1, -100, 100), "best_case": (1, -100, 100)}
    assert f.method == "stage_weighted" and "90.0%" in f.method_reason


def test_target_gap_and_coverage(settings):
    q4, q1 = forecast(settings, as_of=date(2026, 11, 22)).periods
    whole = q4.segments[0]
    assert (whole.forecast, whole.target, whole.gap_to_target) == (70_000, 100_000, 30_000)
    assert whole.coverage == pytest.approx(90_000 / 70_000)
    assert (q1.segments[0].target, q1.segments[0].gap_to_target, q1.segments[0].coverage) == (None, None, None)


def test_months_and_a_deal_won_on_the_last_day(settings):
    nov, dec = forecast(settings, period="month", as_of=date(2026, 11, 22)).periods
    # E is overdue: expected in the current month; C on 12-31 in December; D (January) after both
    assert (nov.label, nov.segments[0].won_so_far, nov.segments[0].stage_weighted) == ("2026-11", 0, 10_000)
    assert (dec.label, dec.segments[0].stage_weighted) == ("2026-12", 30_000)
    # as of the end of 09-30, B closed that day is Q3's won so far
    q3 = forecast(settings, as_of=date(2026, 9, 30), periods=1).total()
    assert q3.won_so_far == 20_000


def test_by_owner_splits_every_figure_and_the_whole_is_their_sum(settings):
    f = forecast(settings, as_of=date(2026, 11, 22), by="owner")
    q4 = {s.segment: s for s in f.periods[0].segments}
    assert [s.segment for s in f.periods[0].segments][0] == "all"
    assert (q4["Ann"].won_so_far, q4["Ann"].stage_weighted) == (30_000, 70_000)
    assert (q4["Bob"].won_so_far, q4["Bob"].stage_weighted) == (0, 0)
    assert {s.segment: s.stage_weighted for s in f.periods[1].segments} == {"all": 5_500, "Bob": 5_500, "Ann": 0}
    assert q4["all"].target == 100_000 and q4["Ann"].target is None

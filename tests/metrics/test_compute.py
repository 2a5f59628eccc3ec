"""Each metric pinned on the hand-counted deals of conftest.quarter_deals().

Today is 2026-11-22 12:00 UTC. ``q4`` is Q4 2026 so far, compared with Q3 2026 up to
the same point (Q3 through 2026-08-22 12:00, 52.5 days in); ``q3`` is Q3 2026, a finished
quarter, compared with the whole of Q2.
Stage probabilities (default pipeline): prospecting 0.10, qualification 0.20,
discovery 0.35, proposal 0.50, negotiation 0.75, on_hold 0.05 (parked).
"""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from pipesync.metrics.definitions import DAYS_PER_MONTH
from tests.metrics.builders import NOW

Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))
Q3 = Period(date(2026, 7, 1), date(2026, 9, 30))


@pytest.fixture
def q4(quarter_settings):
    return run_metrics(quarter_settings, Q4, now=NOW)


@pytest.fixture
def q3(quarter_settings):
    return run_metrics(quarter_settings, Q3, now=NOW)


def value(m, key):
    return m.total(key).value


def previous(m, key):
    return m.total(key).previous


def test_a_period_in_progress_is_compared_with_the_previous_one_up_to_the_same_point(q4, q3):
    assert (q4.period.start, q4.period.end, q4.period.to_date) == (Q4.start, Q4.end, True)
    # 52.5 days into Q4 (10-01 → 11-22 12:00) is 52.5 days into Q3: 08-22 12:00
    assert (q4.previous_period.start, q4.previous_period.end, q4.previous_period.to_date) == (Q3.start, date(2026, 8, 22), True)
    # a finished quarter is compared with the whole quarter before
    assert (q3.previous_period.start, q3.previous_period.end, q3.previous_period.to_date) == (date(2026, 4, 1), date(2026, 6, 30), False)
    assert not q3.period.to_date


def test_open_pipeline_is_what_is_open_at_the_end_of_the_period_or_now(q4, q3):
    # now: D1 10k + D2 20k + D8 100k (parked still counts as open pipeline); D9 is deleted
    assert value(q4, "open_pipeline_count") == 3
    assert value(q4, "open_pipeline_value") == 130_000
    # 2026-08-22 12:00: D1, D4, D5, D6, D7 (all closed later but D1) = 10k + 50k + 40k + 25k + 15k
    assert previous(q4, "open_pipeline_count") == 5
    assert previous(q4, "open_pipeline_value") == 140_000
    assert q4.total("open_pipeline_value").delta == -10_000
    assert q4.total("open_pipeline_value").delta_pct == pytest.approx(-100 * 10_000 / 140_000)
    # Q3's end, 2026-10-01: D1 (open), D3, D4, D5 (closed later) = 10k + 30k + 50k + 40k; Q2's: D4, D6
    assert (value(q3, "open_pipeline_count"), value(q3, "open_pipeline_value")) == (4, 130_000)
    assert (previous(q3, "open_pipeline_count"), previous(q3, "open_pipeline_value")) == (2, 75_000)


def test_weighted_pipeline_uses_the_stage_each_deal_was_in_then(q4, q3):
    # now: D1 proposal 10k×0.5 + D2 qualification 20k×0.2 + D8 on_hold 100k×0.05
    assert value(q4, "weighted_pipeline") == pytest.approx(5_000 + 4_000 + 5_000)
    # 2026-08-22 12:00: D1 prospecting 10k×0.1, D4 proposal 50k×0.5, D5 qualification 40k×0.2,
    # D6 prospecting 25k×0.1, D7 prospecting 15k×0.1
    assert previous(q4, "weighted_pipeline") == pytest.approx(1_000 + 25_000 + 8_000 + 2_500 + 1_500)
    # 2026-10-01: D1 qualification 10k×0.2, D3 prospecting 30k×0.1, D4 proposal 50k×0.5, D5 qualification 40k×0.2
    assert value(q3, "weighted_pipeline") == pytest.approx(2_000 + 3_000 + 25_000 + 8_000)


def test_new_pipeline_counts_deals_created_in_the_period(q4, q3):
    assert value(q4, "new_pipeline_count") == 2  # D2, D8
    assert value(q4, "new_pipeline_value") == 120_000
    assert previous(q4, "new_pipeline_count") == 3  # D1, D5, D7 (D3 was created 09-01, after the same point)
    assert previous(q4, "new_pipeline_value") == 65_000
    assert value(q3, "new_pipeline_count") == 4  # D1, D3, D5, D7
    assert value(q3, "new_pipeline_value") == 95_000


def test_win_rate_and_won_deals_among_deals_closed_in_the_period(q4, q3):
    assert value(q4, "won_count") == 2  # D3, D4
    assert value(q4, "lost_count") == 1  # D5
    assert value(q4, "won_value") == 80_000
    assert value(q4, "win_rate") == pytest.approx(2 / 3)
    assert value(q4, "avg_won_deal_size") == 40_000
    # nothing had closed in Q3 by 08-22 (D6 won 08-31, D7 lost 09-15)
    assert previous(q4, "won_count") == 0
    assert previous(q4, "win_rate") is None
    assert q4.total("win_rate").delta is None
    assert value(q3, "win_rate") == pytest.approx(1 / 2)  # D6 won, D7 lost
    assert value(q3, "avg_won_deal_size") == 25_000


def test_sales_cycle_is_created_to_close_of_won_deals(q4, q3):
    # D3: 09-01 → 10-31 = 60 days; D4: 06-01 → 11-10 = 162 days
    assert value(q4, "avg_sales_cycle_days") == pytest.approx((60 + 162) / 2)
    # D6: 05-01 → 08-31 = 122 days
    assert value(q3, "avg_sales_cycle_days") == pytest.approx(122)


def test_sales_velocity_leaves_parked_deals_out(q4, q3):
    # open non-parked now: D1, D2 → 2 × 40,000 × 2/3 ÷ 111 days
    assert value(q4, "velocity_open_deals") == 2
    per_day = 2 * 40_000 * (2 / 3) / 111
    assert value(q4, "velocity_per_day") == pytest.approx(per_day)
    assert value(q4, "velocity_per_month") == pytest.approx(per_day * DAYS_PER_MONTH)
    # 2026-10-01: D1, D3, D4, D5 open → 4 × 25,000 × 1/2 ÷ 122
    assert value(q3, "velocity_per_day") == pytest.approx(4 * 25_000 * 0.5 / 122)


def test_pipeline_by_stage_at_the_period_end(q4):
    by_stage = {s.stage: (s.count, s.value, s.weighted) for s in q4.pipeline_by_stage}
    assert by_stage["proposal"] == (1, 10_000, 5_000)
    assert by_stage["qualification"] == (1, 20_000, 4_000)
    assert by_stage["on_hold"] == (1, 100_000, pytest.approx(5_000))
    assert by_stage["prospecting"] == (0, 0, 0)
    assert "closed_won" not in by_stage


def test_cumulative_funnel_counts_deals_that_reached_each_stage_or_a_later_one(quarter_settings):
    q4 = run_metrics(quarter_settings, Q4, now=NOW, stage_conversion="cumulative")
    assert q4.stage_conversion == "cumulative"
    # Q4 cohort (entered a stage in Q4, not parked at the end): D1 proposal, D2 qualification,
    # D3 won, D4 won, D5 qualification (then lost). D8 is parked: left out.
    steps = {s.stage: s for s in q4.funnel}
    assert [s.stage for s in q4.funnel] == ["prospecting", "qualification", "discovery", "proposal", "negotiation", "closed_won"]
    assert [s.reached for s in q4.funnel] == [5, 5, 3, 3, 2, 2]
    assert [s.conversion for s in q4.funnel] == [pytest.approx(1.0), pytest.approx(0.6), pytest.approx(1.0), pytest.approx(2 / 3), pytest.approx(1.0), None]
    assert steps["discovery"].share_of_first == pytest.approx(0.6)
    assert steps["qualification"].went_on == 3
    assert steps["closed_won"].went_on is None
    # Q3 through 08-22 12:00: D1 prospecting, D4 proposal, D5 qualification, D7 prospecting
    assert [s.previous_reached for s in q4.funnel] == [4, 2, 1, 1, 0, 0]


def test_cohort_conversion_is_the_default(q4):
    # Entries in Q4 so far: D8 prospecting (then parked), D2 qualification, D1 proposal,
    # D3 negotiation then won, D4 won. D5's only Q4 entry is its loss: not a step.
    assert q4.stage_conversion == "cohort"
    assert [s.reached for s in q4.funnel] == [1, 1, 0, 1, 1, 2]
    assert [s.went_on for s in q4.funnel] == [0, 0, 0, 0, 1, None]
    assert [s.conversion for s in q4.funnel] == [0.0, 0.0, None, 0.0, 1.0, None]
    # Q3 through 08-22 12:00: D1, D5, D7 entered prospecting, and only D5 went on (qualification
    # 08-15; D1's move on 09-01 came after the same point); D5 qualification; D4 proposal.
    assert [s.previous_reached for s in q4.funnel] == [3, 1, 0, 1, 0, 0]
    assert q4.funnel[0].previous_conversion == pytest.approx(1 / 3)


def test_days_in_stage_over_visits_that_ended_in_the_period(q4, q3):
    days = {s.stage: s for s in q4.days_in_stage}
    # prospecting: D3 09-01→10-15 = 44, D8 10-10→10-20 = 10
    assert (days["prospecting"].visits, days["prospecting"].avg_days, days["prospecting"].median_days) == (2, 27, 27)
    # qualification: D1 09-01→11-01 = 61, D5 08-15→10-20 = 66
    assert days["qualification"].avg_days == pytest.approx(63.5)
    assert days["proposal"].avg_days == pytest.approx(132)  # D4 07-01→11-10
    assert days["negotiation"].avg_days == pytest.approx(16)  # D3 10-15→10-31
    assert days["discovery"].visits == 0 and days["discovery"].avg_days is None
    # Q3 prospecting visits that ended by 08-22 12:00: D4 30, D5 31
    assert days["prospecting"].previous_avg_days == pytest.approx((30 + 31) / 2)
    # and by Q3's end: D1 31, D4 30, D5 31, D6 122, D7 76
    assert next(s for s in q3.days_in_stage if s.stage == "prospecting").avg_days == pytest.approx((31 + 30 + 31 + 122 + 76) / 5)


def test_median_days_in_stage_is_the_middle_visit(quarter_settings):
    m = run_metrics(quarter_settings, Q3, now=NOW)
    prospecting = next(s for s in m.days_in_stage if s.stage == "prospecting")
    assert prospecting.median_days == 31  # of 30, 31, 31, 76, 122


def test_stuck_and_stale_deals_as_of_now(q4):
    assert value(q4, "stuck_deals") == 1
    assert previous(q4, "stuck_deals") is None  # a current-state figure: nothing to compare
    stuck = q4.stuck_deals.deals[0]
    assert stuck.id == "hubspot:D2"
    assert stuck.days == pytest.approx(48.5)  # 10-05 → 11-22 12:00, SLA 30
    assert stuck.name == "Deal hubspot:D2"
    assert [(r.source, r.source_id) for r in stuck.records] == [("hubspot", "D2")]
    # D1 is in proposal since 11-01 (from its history): 21.5 days, within the SLA
    assert value(q4, "stale_deals") == 1
    assert q4.stale_deals.deals[0].id == "hubspot:D2"
    assert q4.stale_deals.deals[0].days == pytest.approx(47.5)  # last touch 10-06


def test_lost_reasons_and_win_rate_by_lead_source(q4):
    assert [(r.reason, r.count, r.value) for r in q4.lost_reasons] == [("Price", 1, 40_000)]
    # two and one deals closed: too few for a rate (MIN_CLOSED_FOR_RATE), so the counts stand alone
    assert [(w.lead_source, w.won, w.lost, w.win_rate, w.few_closed) for w in q4.win_rate_by_lead_source] == [
        ("Inbound", 1, 1, None, True),
        ("Partner", 1, 0, None, True),
    ]


def test_no_amount_is_suspicious_in_groups_too_small_to_judge(q4):
    assert value(q4, "suspicious_amounts") == 0


def test_by_owner_view_splits_every_headline_figure_by_the_owner_s_name(quarter_settings):
    m = run_metrics(quarter_settings, Q4, view="owner", now=NOW)
    assert m.segments[0].segment == "all"
    segments = {s.segment: s.metrics for s in m.segments[1:]}
    assert set(segments) == {"Ann", "Bob"}
    # bob: D2 + D8 open; D4 won, nothing lost. ann: D1 open; D3 won, D5 lost
    assert segments["Bob"]["open_pipeline_value"].value == 120_000
    assert segments["Bob"]["won_count"].value == 1
    assert segments["Ann"]["open_pipeline_value"].value == 10_000
    assert (segments["Ann"]["won_count"].value, segments["Ann"]["lost_count"].value) == (1, 1)
    # one and two closed deals: each owner's win rate is withheld, and marked so; the whole set's is not
    assert [(s.few_closed, s.metrics["win_rate"].value) for s in m.segments[1:]] == [(True, None), (True, None)]
    assert (m.segments[0].few_closed, m.segments[0].metrics["win_rate"].value) == (False, pytest.approx(2 / 3))
    # on 08-22 12:00, ann had D1 10k, D5 40k and D6 25k open
    assert segments["Ann"]["open_pipeline_value"].previous == 75_000
    # largest open pipeline first
    assert [s.segment for s in m.segments[1:]] == ["Bob", "Ann"]


def test_unknown_view_is_a_usage_error(quarter_settings):
    from pipesync.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown view"):
        run_metrics(quarter_settings, Q4, view="colour", now=NOW)

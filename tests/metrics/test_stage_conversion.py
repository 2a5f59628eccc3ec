"""Stage conversion, both definitions, on deals worked out by hand (docs/metrics.md has the same example).

The period is Q4 2026, measured after it ended. Funnel steps: prospecting, qualification,
discovery, proposal, negotiation, won; on_hold is parked, closed_lost is no step.
"""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesync.metrics.dealset import History
from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from pipesync.metrics.stageflow import stage_cohorts
from pipesync.metrics.stages import StageTable
from pipesync.pipeline import load_pipeline
from tests.metrics.builders import DealRow, write_warehouse

Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))
LATER = datetime(2027, 1, 15, tzinfo=timezone.utc)


def deals() -> list[DealRow]:
    return [
        # skipped qualification, discovery and negotiation on its way to won
        DealRow("crm:S", "closed_won", "won", 1, "2026-10-01", close="2026-11-01",
                history=[("prospecting", "2026-10-01"), ("proposal", "2026-10-10"), ("closed_won", "2026-11-01")]),
        # entered prospecting and qualification twice each (went back once), still open in discovery
        DealRow("crm:R", "discovery", "open", 1, "2026-10-02",
                history=[("prospecting", "2026-10-02"), ("qualification", "2026-10-05"), ("prospecting", "2026-10-08"),
                         ("qualification", "2026-10-20"), ("discovery", "2026-11-05")]),
        # parked at the end
        DealRow("crm:P", "on_hold", "open", 1, "2026-10-03",
                history=[("prospecting", "2026-10-03"), ("qualification", "2026-10-06"), ("on_hold", "2026-10-15")]),
        # lost straight from prospecting
        DealRow("crm:L", "closed_lost", "lost", 1, "2026-10-04", close="2026-10-30",
                history=[("prospecting", "2026-10-04"), ("closed_lost", "2026-10-30")]),
        # entered qualification in Q3, discovery in Q4, then lost
        DealRow("crm:E", "closed_lost", "lost", 1, "2026-09-20", close="2026-12-01",
                history=[("qualification", "2026-09-20"), ("discovery", "2026-10-10"), ("closed_lost", "2026-12-01")]),
    ]


@pytest.fixture
def settings_(warehouse_url):
    return write_warehouse(warehouse_url, deals())


def test_cohort_follows_the_deals_that_entered_each_stage(settings_):
    m = run_metrics(settings_, Q4, now=LATER, stage_conversion="cohort")
    # prospecting: S, R, P, L entered; S (proposal), R and P (qualification) went on.
    # qualification: R (once, though twice), P; R went on to discovery, P was parked. E entered it in Q3.
    # discovery: R, E; neither went on. proposal: S, which won. negotiation: nobody (S skipped it).
    assert [s.reached for s in m.funnel] == [4, 2, 2, 1, 0, 1]
    assert [s.went_on for s in m.funnel] == [3, 1, 0, 1, 0, None]
    assert [s.conversion for s in m.funnel] == [0.75, 0.5, 0.0, 1.0, None, None]
    assert [s.share_of_first for s in m.funnel] == [1.0, 0.5, 0.5, 0.25, 0.0, 0.25]


def test_cumulative_counts_every_step_up_to_the_furthest_one(settings_):
    m = run_metrics(settings_, Q4, now=LATER, stage_conversion="cumulative")
    # the deals that moved in Q4, P aside (parked at the end): S won, R and E reached discovery,
    # L prospecting. S counts in qualification, discovery and negotiation, which it skipped.
    assert [s.reached for s in m.funnel] == [4, 3, 3, 1, 1, 1]
    assert [s.went_on for s in m.funnel] == [3, 3, 1, 1, 1, None]
    assert [s.conversion for s in m.funnel] == [0.75, 1.0, pytest.approx(1 / 3), 1.0, 1.0, None]


def test_a_move_after_the_as_of_instant_is_not_yet_progress(settings_):
    # As of the end of 2026-11-04, R had not reached discovery yet (11-05); S had won (11-01).
    m = run_metrics(settings_, Q4, now=datetime(2026, 11, 5, tzinfo=timezone.utc), stage_conversion="cohort")
    assert [s.reached for s in m.funnel] == [4, 2, 1, 1, 0, 1]
    assert [s.went_on for s in m.funnel] == [3, 0, 0, 1, 0, None]


STAGES = StageTable.of(load_pipeline())
# (deal, stage code or -1 for a stage the pipeline does not know, day)
rows = st.lists(st.tuples(st.integers(0, 5), st.integers(-1, len(STAGES.pipeline.stages) - 1), st.integers(0, 60)), max_size=60)


@settings(max_examples=80, deadline=None)
@given(rows, st.integers(0, 30), st.integers(20, 61))
def test_cohort_counts_match_a_deal_by_deal_count(entries, start, before):
    entries = sorted(entries, key=lambda r: (r[0], r[2]))  # history order: by deal, then time
    history = History(
        deal=np.array([r[0] for r in entries], dtype=np.int64),
        stage=np.array([r[1] for r in entries], dtype=np.int16),
        at=np.array([r[2] for r in entries], dtype=float),
    )
    entered, went_on = stage_cohorts(history, STAGES, start, before)
    n_steps = len(STAGES.funnel_stages)
    expected_entered, expected_went_on = [0] * n_steps, [0] * n_steps
    for deal in {r[0] for r in entries}:
        mine = [(int(STAGES.funnel_step[stage]), at) for d, stage, at in entries if d == deal and at < before]
        for k in range(n_steps):
            first = next((i for i, (step, at) in enumerate(mine) if step == k and at >= start), None)
            if first is not None:
                expected_entered[k] += 1
                expected_went_on[k] += any(step > k for step, _ in mine[first + 1 :])
    assert entered.tolist() == expected_entered
    assert went_on.tolist() == expected_went_on

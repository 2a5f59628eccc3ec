"""Per-group statistics agree with numpy's own, group by group."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesync.metrics.dealset import History
from pipesync.metrics.grouped import group_mean, group_median
from pipesync.metrics.stageflow import funnel_counts
from pipesync.metrics.stages import StageTable
from pipesync.pipeline import load_pipeline

groups_and_values = st.lists(st.tuples(st.integers(0, 4), st.floats(-1e6, 1e6)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(groups_and_values)
def test_group_median_and_mean_match_numpy(pairs):
    groups = np.array([g for g, _ in pairs])
    values = np.array([v for _, v in pairs])
    medians, means = group_median(values, groups, 6), group_mean(values, groups, 6)
    for g in range(6):
        mine = values[groups == g]
        if len(mine):
            assert np.isclose(medians[g], np.median(mine)) and np.isclose(means[g], mine.mean())
        else:
            assert np.isnan(medians[g]) and np.isnan(means[g])


STAGES = StageTable.of(load_pipeline())
entries = st.lists(st.tuples(st.integers(0, 9), st.integers(0, len(STAGES.pipeline.stages) - 1), st.integers(0, 100)), max_size=80)


@settings(max_examples=60, deadline=None)
@given(entries)
def test_funnel_never_widens_and_starts_with_every_deal_that_reached_a_step(rows):
    rows = sorted(rows, key=lambda r: (r[0], r[2]))
    history = History(
        deal=np.array([r[0] for r in rows], dtype=np.int64),
        stage=np.array([r[1] for r in rows], dtype=np.int16),
        at=np.array([r[2] for r in rows], dtype=float),
    )
    counts = funnel_counts(history, STAGES, 10, 0.0, 101.0, np.zeros(10, dtype=bool))
    assert all(a >= b for a, b in zip(counts, counts[1:]))
    reached_a_step = {r[0] for r in rows if STAGES.funnel_step[r[1]] >= 0}
    assert counts[0] == len(reached_a_step)

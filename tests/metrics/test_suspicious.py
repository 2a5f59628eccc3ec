"""Suspicious amounts: a misplaced zero stands out against the owner's typical sizes; nothing else does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipesync.metrics.suspicious import MIN_GROUP, suspicious_amounts


def flag(amounts, owners=None, stages=None, candidates=None):
    amounts = np.array(amounts, dtype=float)
    n = len(amounts)
    owners = np.zeros(n, dtype=np.int32) if owners is None else np.array(owners, dtype=np.int32)
    stages = np.zeros(n, dtype=np.int16) if stages is None else np.array(stages, dtype=np.int16)
    candidates = np.ones(n, dtype=bool) if candidates is None else np.array(candidates)
    return suspicious_amounts(amounts, owners, int(owners.max()) + 1, stages, 8, candidates)


def test_a_misplaced_zero_is_flagged_with_the_typical_size():
    v = flag([10_000, 12_000, 9_000, 11_000, 10_500, 100_000])
    assert v.flagged.tolist() == [False] * 5 + [True]
    # the median on the log scale: of six amounts, the geometric mean of the middle two
    assert v.typical[5] == pytest.approx((10_500 * 11_000) ** 0.5)


def test_a_missing_zero_is_flagged_too():
    assert flag([10_000, 12_000, 9_000, 11_000, 10_500, 1_050]).flagged.tolist() == [False] * 5 + [True]


def test_ordinary_spread_is_not_flagged():
    assert not flag([5_000, 8_000, 12_000, 20_000, 30_000, 15_000, 9_000]).flagged.any()


def test_identical_amounts_do_not_make_every_small_difference_suspicious():
    # MAD is 0 here: the minimum factor of 5 keeps 1.5× from being flagged
    assert not flag([10_000] * 6 + [15_000]).flagged.any()


def test_groups_too_small_give_no_verdict():
    assert MIN_GROUP == 5
    assert not flag([10_000, 11_000, 9_000, 100_000]).flagged.any()


def test_the_owners_own_sizes_are_the_yardstick():
    # bob sells 100k deals: his 100k is normal even though ann's are 10k
    owners = [0] * 6 + [1] * 6
    amounts = [10_000, 12_000, 9_000, 11_000, 10_500, 10_200] + [100_000, 95_000, 110_000, 105_000, 98_000, 102_000]
    assert not flag(amounts, owners).flagged.any()


def test_only_candidates_are_flagged_but_everyone_is_the_baseline():
    v = flag([10_000, 12_000, 9_000, 11_000, 10_500, 100_000], candidates=[True] * 5 + [False])
    assert not v.flagged.any()


def test_missing_and_zero_amounts_are_never_flagged():
    v = flag([10_000, 12_000, 9_000, 11_000, 10_500, 0, np.nan])
    assert not v.flagged.any()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=1_000, max_value=1_800), min_size=6, max_size=40))
def test_amounts_within_a_factor_of_two_are_never_flagged(amounts):
    assert not flag(amounts).flagged.any()

"""Amounts that look like data-entry errors (a misplaced zero, a missing digit), flagged and never changed.

A robust test on the log scale. An amount is compared with the typical size of
the same owner's deals in the same stage (or, when that cell holds fewer than
``MIN_GROUP`` priced deals, of all the owner's deals; with fewer than that, no
verdict). It is suspicious when it lies more than ``Z_LIMIT`` robust z-scores
from the group's median log10 amount (Iglewicz and Hoaglin's modified z-score,
from the median absolute deviation) and is at least ``MIN_FACTOR`` times bigger
or smaller than the typical size, so a group of near-identical amounts does not
flag every small difference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipesync.metrics.grouped import group_count, group_median

Z_LIMIT = 3.5
MIN_FACTOR = 5.0
MIN_GROUP = 5
# The MAD of a normal distribution is 0.6745 standard deviations.
MAD_TO_SIGMA = 0.6745


@dataclass
class Verdict:
    flagged: np.ndarray  # bool per deal
    typical: np.ndarray  # the typical amount it was compared with, per deal (NaN where not flagged)
    within_stage: np.ndarray  # compared with the owner's deals in the same stage (else all the owner's deals)


@dataclass
class _Test:
    far: np.ndarray
    enough: np.ndarray
    median: np.ndarray


def _test(logs: np.ndarray, groups: np.ndarray, n_groups: int, baseline: np.ndarray) -> _Test:
    g, x = groups[baseline], logs[baseline]
    median = group_median(x, g, n_groups)
    mad = group_median(np.abs(x - median[g]), g, n_groups)
    enough = (group_count(g, n_groups) >= MIN_GROUP)[groups]
    limit = np.maximum(Z_LIMIT * mad / MAD_TO_SIGMA, np.log10(MIN_FACTOR))[groups]
    with np.errstate(invalid="ignore"):
        far = enough & (np.abs(logs - median[groups]) > limit)
    return _Test(far, enough, median[groups])


def suspicious_amounts(
    amount: np.ndarray, owner: np.ndarray, n_owners: int, stage: np.ndarray, n_stages: int, candidates: np.ndarray
) -> Verdict:
    """Flags among ``candidates`` (bool per deal); every deal with a positive amount is in the baseline."""
    priced = amount > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        logs = np.where(priced, np.log10(np.where(priced, amount, 1.0)), np.nan)
    owner = owner.astype(np.int64)
    stage_group = np.where(stage < 0, n_stages, stage).astype(np.int64)
    by_owner = _test(logs, owner, n_owners, priced)
    by_cell = _test(logs, owner * (n_stages + 1) + stage_group, n_owners * (n_stages + 1), priced)
    far = np.where(by_cell.enough, by_cell.far, by_owner.far)
    median = np.where(by_cell.enough, by_cell.median, by_owner.median)
    flagged = candidates & priced & far
    return Verdict(flagged, np.where(flagged, 10**median, np.nan), by_cell.enough)

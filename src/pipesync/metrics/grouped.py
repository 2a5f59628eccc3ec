"""Per-group statistics over numpy arrays (groups are small integer codes)."""

from __future__ import annotations

import numpy as np


def group_count(groups: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(groups, minlength=n_groups)


def group_sum(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    return np.bincount(groups, weights=values, minlength=n_groups)


def group_mean(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean per group, NaN for an empty group."""
    counts = group_count(groups, n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, group_sum(values, groups, n_groups) / counts, np.nan)


def group_median(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Median per group (the mean of the two middle values for an even count), NaN for an empty group."""
    order = np.lexsort((values, groups))
    ordered = values[order]
    counts = group_count(groups, n_groups)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    medians = np.full(n_groups, np.nan)
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    medians[has] = (ordered[lo] + ordered[hi]) / 2
    return medians

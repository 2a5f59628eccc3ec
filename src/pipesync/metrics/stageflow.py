"""How deals move through the stages, from ``stage_history``: the funnel, conversion, days in stage.

Parked stages are not funnel steps: a deal parked at the period's end is left
out of the funnel, and entering a parked stage is not progress.
"""

from __future__ import annotations

import numpy as np

from pipesync.metrics.dealset import History
from pipesync.metrics.grouped import group_count, group_mean, group_median
from pipesync.metrics.stages import StageTable

NO_ENTRY = -2


def last_entries(history: History, n_deals: int, before: float) -> tuple[np.ndarray, np.ndarray]:
    """Each deal's last stage entry strictly before day ``before``: (stage code or NO_ENTRY, day or NaN)."""
    idx = np.flatnonzero(history.at < before)
    stage = np.full(n_deals, NO_ENTRY, dtype=np.int16)
    at = np.full(n_deals, np.nan)
    if len(idx):
        deal = history.deal[idx]
        last = np.ones(len(idx), dtype=bool)
        last[:-1] = deal[1:] != deal[:-1]  # sorted by deal then time: the last row of each run
        stage[deal[last]] = history.stage[idx[last]]
        at[deal[last]] = history.at[idx[last]]
    return stage, at


def furthest_steps(history: History, stages: StageTable, n_deals: int, before: float) -> np.ndarray:
    """Each deal's furthest funnel step reached strictly before day ``before`` (-1 when none)."""
    idx = np.flatnonzero(history.at < before)
    furthest = np.full(n_deals, -1, dtype=np.int16)
    if len(idx):
        np.maximum.at(furthest, history.deal[idx], stages.funnel_step[history.stage[idx]])
    return furthest


def funnel_counts(
    history: History, stages: StageTable, n_deals: int, start: float, before: float, parked_at_end: np.ndarray
) -> np.ndarray:
    """How many deals reached each funnel step, among deals that entered any stage in [start, before)."""
    in_period = (history.at >= start) & (history.at < before)
    cohort = np.zeros(n_deals, dtype=bool)
    cohort[history.deal[in_period]] = True
    cohort &= ~parked_at_end
    furthest = furthest_steps(history, stages, n_deals, before)[cohort]
    n_steps = len(stages.funnel_stages)
    # A deal that reached step k also passed every step before it, even one it skipped.
    at_least = np.bincount(furthest[furthest >= 0], minlength=n_steps)[::-1].cumsum()[::-1]
    return at_least


def stage_visits(history: History, start: float, before: float) -> tuple[np.ndarray, np.ndarray]:
    """Visits that ended in [start, before): (stage code, days spent) for each."""
    same_deal = history.deal[1:] == history.deal[:-1]
    left_at = history.at[1:]
    ended = same_deal & (left_at >= start) & (left_at < before)
    return history.stage[:-1][ended], (left_at - history.at[:-1])[ended]


def days_in_stage(history: History, n_stage_codes: int, start: float, before: float) -> tuple[np.ndarray, ...]:
    """Per stage code: (visits, mean days, median days) of visits that ended in the period."""
    stage, days = stage_visits(history, start, before)
    known = stage >= 0
    stage, days = stage[known].astype(np.int64), days[known]
    return (
        group_count(stage, n_stage_codes),
        group_mean(days, stage, n_stage_codes),
        group_median(days, stage, n_stage_codes),
    )

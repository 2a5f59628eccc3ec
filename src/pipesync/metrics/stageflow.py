"""How deals move through the stages, from ``stage_history``: the funnel, conversion, days in stage.

Parked stages are not funnel steps: entering a parked stage is not progress.
Stage conversion has two definitions (docs/metrics.md): ``cohort`` (of the deals
that entered a step in the period, those that went on to a later one) and
``cumulative`` (the deals that moved in the period, by the furthest step reached).
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
    """Cumulative: how many deals reached each funnel step, among deals that entered any stage in [start, before).

    A deal parked at the end is left out.
    """
    in_period = (history.at >= start) & (history.at < before)
    cohort = np.zeros(n_deals, dtype=bool)
    cohort[history.deal[in_period]] = True
    cohort &= ~parked_at_end
    furthest = furthest_steps(history, stages, n_deals, before)[cohort]
    n_steps = len(stages.funnel_stages)
    # A deal that reached step k also passed every step before it, even one it skipped.
    at_least = np.bincount(furthest[furthest >= 0], minlength=n_steps)[::-1].cumsum()[::-1]
    return at_least


def stage_cohorts(history: History, stages: StageTable, start: float, before: float) -> tuple[np.ndarray, np.ndarray]:
    """Cohort, per funnel step: (deals that entered it in [start, before), how many of them went on).

    A deal counts once per step, from its first entry into it in the period; it went
    on when it entered a later step after that entry and before ``before``.
    """
    n_steps = len(stages.funnel_stages)
    idx = np.flatnonzero(history.at < before)
    deal, at = history.deal[idx], history.at[idx]
    step = stages.funnel_step[history.stage[idx]].astype(np.int64)
    later = _furthest_later_step(deal, step, n_steps)
    rows = np.flatnonzero((step >= 0) & (at >= start))
    _, first = np.unique(deal[rows] * n_steps + step[rows], return_index=True)  # rows are in time order per deal
    rows = rows[first]
    went_on = rows[later[rows] > step[rows]]
    return np.bincount(step[rows], minlength=n_steps), np.bincount(step[went_on], minlength=n_steps)


def _furthest_later_step(deal: np.ndarray, step: np.ndarray, n_steps: int) -> np.ndarray:
    """Per row (sorted by deal then time): the furthest step among the same deal's later rows, -1 when none."""
    later = np.full(len(deal), -1, dtype=np.int64)
    if len(deal) < 2:
        return later
    # A running maximum over the rows in reverse, each deal's run lifted above every run before it,
    # is the maximum over the rest of the deal's own rows.
    rev_deal = deal[::-1]
    run = np.concatenate(([0], np.cumsum(rev_deal[1:] != rev_deal[:-1])))
    lift = run * (n_steps + 1)
    from_here = (np.maximum.accumulate(step[::-1] + 1 + lift) - lift - 1)[::-1]
    same = deal[1:] == deal[:-1]
    later[:-1] = np.where(same, from_here[1:], -1)
    return later


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

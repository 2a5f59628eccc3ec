"""Open deals that need a look now: stuck in a stage past its SLA, or stale (untouched for too long).

Both are measured against the current state, as of now, not against a period.
"""

from __future__ import annotations

import numpy as np

from pipesync.metrics.dealset import OPEN, DealSet, History
from pipesync.metrics.stageflow import last_entries
from pipesync.metrics.stages import StageTable


def days_in_current_stage(deals: DealSet, history: History, now: float) -> np.ndarray:
    """Days since the deal entered its current stage.

    The entry time is ``stage_entered_at``; without it, the last history entry into the
    current stage; without that, ``created_at``.
    """
    last_stage, last_at = last_entries(history, len(deals), np.inf)
    from_history = np.where(last_stage == deals.stage, last_at, np.nan)
    entered = np.where(np.isnan(deals.stage_entered), from_history, deals.stage_entered)
    entered = np.where(np.isnan(entered), deals.created, entered)
    return now - entered


def stuck(deals: DealSet, history: History, stages: StageTable, now: float) -> tuple[np.ndarray, np.ndarray]:
    """(mask of open deals whose days in the current stage exceed the stage's SLA, days in stage)."""
    days = days_in_current_stage(deals, history, now)
    sla = stages.sla_days[deals.stage]
    with np.errstate(invalid="ignore"):
        mask = (deals.status == OPEN) & ~np.isnan(sla) & (days > sla)
    return mask, days


def days_since_touch(deals: DealSet, now: float) -> np.ndarray:
    """Days since the later of the last activity and the last update (``created_at`` when neither is known)."""
    touched = np.fmax(deals.last_activity, deals.updated)
    touched = np.where(np.isnan(touched), deals.created, touched)
    return now - touched


def stale(deals: DealSet, stages: StageTable, now: float, stale_after_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of open deals untouched for more than ``stale_after_days``, days since the last touch).

    Parked deals are left out: nobody works a deal in the fridge, on purpose.
    """
    days = days_since_touch(deals, now)
    with np.errstate(invalid="ignore"):
        mask = (deals.status == OPEN) & ~stages.parked[deals.stage] & (days > stale_after_days)
    return mask, days

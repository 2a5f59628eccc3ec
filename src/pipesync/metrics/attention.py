"""Open deals that need a look: stuck in a stage past its SLA, or stale (untouched for too long).

Both are measured on the deals as they stood at the as-of instant (``asof.State``),
not against a period.
"""

from __future__ import annotations

import numpy as np

from pipesync.metrics.asof import State
from pipesync.metrics.stages import StageTable


def stuck(state: State, stages: StageTable) -> tuple[np.ndarray, np.ndarray]:
    """(mask of deals open then whose days in their stage then exceed its SLA, days in that stage)."""
    days = state.at - state.entered
    sla = stages.sla_days[state.stage]
    with np.errstate(invalid="ignore"):
        mask = state.open & ~np.isnan(sla) & (days > sla)
    return mask, days


def stale(state: State, stages: StageTable, stale_after_days: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of deals open then and untouched for more than ``stale_after_days`` before, days since the last touch).

    Parked deals are left out: nobody works a deal in the fridge, on purpose.
    """
    days = state.at - state.touched
    with np.errstate(invalid="ignore"):
        mask = state.open & ~stages.parked[state.stage] & (days > stale_after_days)
    return mask, days

"""The deal set as it stood at an instant, reconstructed from today's rows and the stage history.

The warehouse keeps each deal's current row and the history of its stages, not of
its other fields, so the past is rebuilt from what can be dated: a deal exists from
``created_at``, is closed from the day it closed (its actual close date, else its
expected one: ``DealSet.close_day``), is in the stage its history says,
and was last touched at the latest dated event known at or before the instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import reduce

import numpy as np

from pipesync.metrics.dealset import OPEN, DealSet, History
from pipesync.metrics.stageflow import last_entries
from pipesync.metrics.stages import StageTable


@dataclass
class State:
    """Per deal, at the instant ``at`` (a day number)."""

    at: float
    existed: np.ndarray  # created before it, or creation unknown
    open: np.ndarray
    stage: np.ndarray  # stage code then (meaningful for deals open then)
    entered: np.ndarray  # day it entered that stage (NaN when unknown)
    touched: np.ndarray  # the last dated touch before it (NaN when none is known)


def state_at(deals: DealSet, history: History, stages: StageTable, at: float) -> State:
    """Each deal as it stood at ``at``.

    * Open: created before ``at`` (or creation unknown), and open now or closed on a
      day not before ``at`` (a deal closed on day D is closed from the start of D).
    * Stage and entry into it: for a deal open now that entered its current stage
      before ``at`` (``stage_entered_at``) and has no later history entry into another
      stage before ``at``, its current stage since then; else its last history entry before ``at`` when that
      is an open stage; else its current stage if open now, otherwise the pipeline's
      first step, entered (as far as anything says) when the deal was created.
    * Last touch: the latest of ``last_activity_at``, ``updated_at``,
      ``stage_entered_at``, the last history entry and ``created_at``, among those
      before ``at``: a touch after it says nothing about the days before.
    """
    d = deals
    hist_stage, hist_at = last_entries(history, len(d), at)
    with np.errstate(invalid="ignore"):
        existed = np.isnan(d.created) | (d.created < at)
        open_ = existed & ((d.status == OPEN) | ((d.status != OPEN) & (d.close_day >= at)))
        # A later entry into the same stage is the same move seen late (a sync), not a new visit.
        moved_since = (hist_at > d.stage_entered) & (hist_stage != d.stage)
        in_current = (d.status == OPEN) & (d.stage_entered < at) & ~moved_since
        from_history = (hist_stage >= 0) & (stages.category[hist_stage] == OPEN)
        fallback = np.where(d.status == OPEN, d.stage, stages.funnel_stages[0])
        stage = np.where(in_current, d.stage, np.where(from_history, hist_stage, fallback)).astype(np.int64)
        entered = np.where(in_current, d.stage_entered, np.where(from_history, hist_at, d.created))
        known = [np.where(t < at, t, np.nan) for t in (d.last_activity, d.updated, d.stage_entered, hist_at, d.created)]
    return State(at=at, existed=existed, open=open_, stage=stage, entered=entered, touched=reduce(np.fmax, known))

"""The shared pipeline as arrays indexed by stage code, for vectorised lookups.

Each array has one extra slot at the end for stages the pipeline does not know
(code -1, so numpy's negative indexing lands on it): no probability, no SLA, no
funnel step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipesync.metrics.dealset import LOST, OPEN, WON
from pipesync.model import Category, SharedPipeline

CATEGORY_CODES = {Category.OPEN: OPEN, Category.WON: WON, Category.LOST: LOST}


@dataclass(frozen=True)
class StageTable:
    pipeline: SharedPipeline
    category: np.ndarray
    probability: np.ndarray
    sla_days: np.ndarray  # NaN where the stage has no SLA
    parked: np.ndarray
    # Funnel step of each stage: non-parked open stages in order, then one step for all won stages; -1 otherwise.
    funnel_step: np.ndarray
    funnel_stages: list[int]  # stage code shown for each funnel step

    @classmethod
    def of(cls, pipeline: SharedPipeline) -> StageTable:
        stages = pipeline.stages
        open_steps = [i for i, s in enumerate(stages) if s.category is Category.OPEN and not s.parked]
        won = [i for i, s in enumerate(stages) if s.category is Category.WON]
        step = np.full(len(stages) + 1, -1, dtype=np.int16)
        for n, i in enumerate(open_steps):
            step[i] = n
        step[won] = len(open_steps)
        return cls(
            pipeline=pipeline,
            category=np.array([CATEGORY_CODES[s.category] for s in stages] + [-1], dtype=np.int8),
            probability=np.array([s.probability for s in stages] + [0.0]),
            sla_days=np.array([np.nan if s.sla_days is None else s.sla_days for s in stages] + [np.nan]),
            parked=np.array([s.parked for s in stages] + [False]),
            funnel_step=step,
            funnel_stages=[*open_steps, won[0]],
        )

    def slots(self, codes: np.ndarray) -> np.ndarray:
        """Stage codes as indexes into this table's arrays: an unknown stage (-1) takes the last, extra slot."""
        return np.where(codes < 0, len(self.category) - 1, codes)

    def key(self, code: int) -> str:
        return self.pipeline.stages[code].key if code >= 0 else "(unknown stage)"

    def label(self, code: int) -> str:
        return self.pipeline.stages[code].label if code >= 0 else "(unknown stage)"

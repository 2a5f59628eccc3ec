"""The history-weighted method: each open deal's chance of being won in each forecast period, learned
from what deals in the same situation did before (docs/forecast.md, "History-weighted").

A *situation* is a deal's shared stage, how long it has been in it (``DAY_EDGES``), whether it was
stale, and its source and pipeline, all as the warehouse rebuilds them at a past instant
(``metrics.asof.state_at``). At each *learning instant* (the same point of each earlier period) the
open deals are observed, and so is whether each was won inside each later window. A deal to forecast
takes the rate of the finest group of its situation holding at least ``min_sample`` observations,
else a coarser one, else the stage's probability from the shared pipeline. Deals not created yet are
forecast as what such deals brought in those windows on average.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipesync.metrics.asof import state_at
from pipesync.metrics.compute import Truth
from pipesync.metrics.dealset import WON
from pipesync.metrics.grouped import group_count, group_sum

# Days in stage are grouped from these bounds on: [0, 15), [15, 30), [30, 60), [60, 90), [90, 180), [180, …).
DAY_EDGES = (0, 15, 30, 60, 90, 180)
# Finest first; the last falls back on the shared pipeline's probability.
LEVELS = (
    "stage × days in stage × stale × source and pipeline",
    "stage × days in stage × stale",
    "stage × days in stage",
    "stage",
    "shared pipeline probability",
)
# A learning instant counts for the won rates shown (``HistoryModel.rates``) only when this many days
# have passed since: most deals open then have closed.
SETTLED_DAYS = 180


@dataclass
class Situation:
    """The deals open at one instant and, per level, the code of each one's group."""

    at: float
    deals: np.ndarray  # indexes into the deal set
    stage: np.ndarray  # stage slot (StageTable.slots)
    days: np.ndarray  # days in that stage
    keys: list[np.ndarray]  # one code array per level, finest first (LEVELS but the last)
    existed: np.ndarray  # per deal of the whole set: created before the instant (or creation unknown)


@dataclass
class Situations:
    """Situations of the deal set at instants, each rebuilt once however many forecasts use it."""

    truth: Truth
    stale_after_days: int
    cache: dict[float, Situation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d, st = self.truth.deals, self.truth.stages
        # Source and pipeline as one code: two CRMs' "default" pipelines are different pipelines.
        source, pipeline = d.segments["source"], d.segments["pipeline"]
        self.place = source.codes.astype(np.int64) * len(pipeline.labels) + pipeline.codes
        self.n_places = len(source.labels) * len(pipeline.labels)
        # The first deal the warehouse knows of: an instant before it saw no deals at all, not a quiet period.
        self.first_created = float(np.nanmin(d.created)) if len(d) and not np.isnan(d.created).all() else np.inf
        self.n_stages = len(st.category)  # the unknown stage's slot included
        self.sizes = [self.n_stages * len(DAY_EDGES) * 2 * self.n_places, self.n_stages * len(DAY_EDGES) * 2,
                      self.n_stages * len(DAY_EDGES), self.n_stages]

    def at(self, t: float) -> Situation:
        if t not in self.cache:
            self.cache[t] = self._build(t)
        return self.cache[t]

    def _build(self, t: float) -> Situation:
        truth, st = self.truth, self.truth.stages
        state = state_at(truth.deals, truth.history, st, t)
        deals = np.flatnonzero(state.open)
        stage = st.slots(state.stage[deals]).astype(np.int64)
        days = np.nan_to_num(t - state.entered[deals], nan=0.0)  # entry unknown: as if it just arrived
        bucket = np.searchsorted(DAY_EDGES, days, side="right") - 1
        bucket = np.maximum(bucket, 0)
        with np.errstate(invalid="ignore"):
            stale = ~st.parked[stage] & (t - state.touched[deals] > self.stale_after_days)
        by_days = stage * len(DAY_EDGES) + bucket
        by_stale = by_days * 2 + stale
        keys = [by_stale * self.n_places + self.place[deals], by_stale, by_days, stage]
        return Situation(at=t, deals=deals, stage=stage, days=days, keys=keys, existed=state.existed)


@dataclass
class Window:
    start: float  # day numbers: [start, end)
    end: float


@dataclass
class Learned:
    """Won rates per group and horizon, and the won value new deals brought per horizon and segment."""

    # per horizon, per level: observations per group (a later window ends later, so each horizon has its own
    # instants), and those won inside the horizon's window
    counts: list[list[np.ndarray]]
    wins: list[list[np.ndarray]]
    new_value: list[np.ndarray]  # per horizon: mean won value per segment from deals created after the instant
    instants: int
    observations: int
    settled: tuple[np.ndarray, np.ndarray]  # stage × days level: observations and wins ever, settled instants only


def learn(
    situations: Situations, instants: list[tuple[float, list[Window]]], segments: np.ndarray, n_segments: int,
    known_by: float,
) -> Learned:
    """Learns from ``instants`` (each with its windows, one per horizon) whatever was known by ``known_by``.

    A horizon learns only from the instants whose window had ended by then; instants before the
    warehouse's first deal are skipped.
    """
    d = situations.truth.deals
    horizons = len(instants[0][1]) if instants else 0
    won = d.status == WON
    amount = np.nan_to_num(d.amount)
    counts = [[np.zeros(size) for size in situations.sizes] for _ in range(horizons)]
    wins = [[np.zeros(size) for size in situations.sizes] for _ in range(horizons)]
    new_sum = [np.zeros(n_segments) for _ in range(horizons)]
    new_n = [0] * horizons
    settled_n, settled_w = np.zeros(situations.sizes[2]), np.zeros(situations.sizes[2])
    used, observations = 0, 0
    for t, windows in instants:
        complete = [w.end <= known_by for w in windows]
        if t < situations.first_created or (not any(complete) and t + SETTLED_DAYS > known_by):
            continue
        s = situations.at(t)
        used += 1
        observations += len(s.deals)
        close = d.close_day[s.deals]
        with np.errstate(invalid="ignore"):
            won_ever = won[s.deals] & (close >= t) & (close < known_by)
        if t + SETTLED_DAYS <= known_by:
            settled_n += group_count(s.keys[2], situations.sizes[2])
            settled_w += group_count(s.keys[2][won_ever], situations.sizes[2])
        for k, w in enumerate(windows):
            if not complete[k]:
                continue
            with np.errstate(invalid="ignore"):
                hit = won[s.deals] & (close >= w.start) & (close < w.end)
                fresh = won & ~s.existed & (d.close_day >= w.start) & (d.close_day < w.end)
            for level, key in enumerate(s.keys):
                counts[k][level] += group_count(key, situations.sizes[level])
                wins[k][level] += group_count(key[hit], situations.sizes[level])
            new_sum[k] += group_sum(amount[fresh], segments[fresh], n_segments)
            new_n[k] += 1
    new_value = [new_sum[k] / new_n[k] if new_n[k] else np.zeros(n_segments) for k in range(horizons)]
    return Learned(counts=counts, wins=wins, new_value=new_value, instants=used, observations=observations,
                   settled=(settled_n, settled_w))


def chances(learned: Learned, s: Situation, horizon: int, min_sample: int) -> tuple[np.ndarray, np.ndarray]:
    """Each open deal's chance of being won in the horizon's window, and the level it came from
    (``len(LEVELS) - 1``: no group was big enough, the caller uses the stage probability)."""
    fallback = len(LEVELS) - 1
    p = np.zeros(len(s.deals))
    level = np.full(len(s.deals), fallback, dtype=np.int64)
    if horizon >= len(learned.wins):
        return p, level
    counts = learned.counts[horizon]
    for lv, key in enumerate(s.keys):
        n = counts[lv][key]
        take = (level == fallback) & (n >= min_sample)
        p[take] = learned.wins[horizon][lv][key[take]] / n[take]
        level[take] = lv
    return p, level

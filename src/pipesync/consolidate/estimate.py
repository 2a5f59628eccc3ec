"""Weights estimated from the data, as Splink does: u from random pairs, m by expectation-maximisation.

For each comparison level, ``u`` is how often two *random* deals fall on it
(mostly different deals), measured on a seeded sample of record pairs; ``m``
is how often two records of *one* deal do, estimated by EM over the
candidate pairs with ``u`` held fixed, starting from the rules' own weights.
The estimated weight of a level is log2(m / u). 50,000 random pairs: about a second at any size.

Every run estimates and reports them (``consolidate --json``: ``weights``);
they replace the rules' weights only with ``estimate_weights: true`` in the
rules. The comparisons are not independent (copies are found *because* their
dates and amounts are close), which makes EM overconfident: on the sandbox's
labelled worlds the hand-set weights score better, so they stay the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pipesync.consolidate.features import Features
from pipesync.consolidate.rules import MatchRules
from pipesync.consolidate.scoring import NO_LEVEL, score_pairs

RANDOM_PAIRS = 50_000
CANDIDATE_PAIRS = 200_000  # EM runs on a seeded sample of the candidate pairs beyond this many
ITERATIONS = 15
_SMOOTHING = 1.0  # a pseudo-count per level: a level never seen is rare, not impossible
MAX_WEIGHT = 15.0


@dataclass
class Estimate:
    match_share: float  # of the candidate pairs, the share EM takes for matches
    # comparison → level label → {"m", "u", "weight"}
    levels: dict[str, dict[str, dict[str, float]]]
    applied: bool  # whether these weights scored the run

    def as_dict(self) -> dict[str, Any]:
        return {"match_share": self.match_share, "applied": self.applied, "levels": self.levels}

    def rules(self, rules: MatchRules) -> MatchRules:
        """``rules`` with the estimated weights and prior."""
        comparisons = [
            c.model_copy(update={"levels": [
                level.model_copy(update={"weight": self.levels[c.name][level.label]["weight"]}) for level in c.levels
            ]})
            for c in rules.comparisons
        ]
        prior = float(np.log2(self.match_share / (1 - self.match_share)))
        return rules.model_copy(update={"comparisons": comparisons, "prior": prior})


def _shares(levels: np.ndarray, count: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Share of pairs on each level among those where the comparison could be made (weighted)."""
    known = levels != NO_LEVEL
    w = np.ones(len(levels)) if weights is None else weights
    totals = np.bincount(levels[known].astype(np.int64), weights=w[known], minlength=count) + _SMOOTHING
    return totals / totals.sum()


def estimate_weights(features: Features, rules: MatchRules, levels: np.ndarray, seed: int = 0) -> Estimate:
    """Estimated m, u and weight of every level; ``levels``: the candidate pairs' (``Scores.levels``)."""
    n = features.n
    rng = np.random.default_rng(seed)
    size = min(RANDOM_PAIRS, max(0, n * (n - 1) // 2))
    a, b = rng.integers(0, max(n, 1), size), rng.integers(0, max(n, 1), size)
    distinct = a != b
    a, b = np.minimum(a, b)[distinct], np.maximum(a, b)[distinct]
    random_levels = score_pairs(features, rules, a, b).levels
    if len(levels) > CANDIDATE_PAIRS:
        levels = levels[np.sort(rng.choice(len(levels), CANDIDATE_PAIRS, replace=False))]
    u = [_shares(random_levels[:, c], len(comp.levels)) for c, comp in enumerate(rules.comparisons)]
    m = []
    for c, comp in enumerate(rules.comparisons):  # start from the rules: m = u · 2^weight, normalised
        start = u[c] * np.exp2([level.weight for level in comp.levels])
        m.append(start / start.sum())
    share = float(1 / (1 + 2 ** -rules.prior))
    for _ in range(ITERATIONS if len(levels) else 0):
        log_odds = np.full(len(levels), np.log2(share / (1 - share)))
        for c in range(len(rules.comparisons)):
            column = levels[:, c]
            known = column != NO_LEVEL
            at = column[known].astype(np.int64)
            log_odds[known] += np.log2(m[c][at] / u[c][at])
        posterior = 1 / (1 + np.exp2(-np.clip(log_odds, -60, 60)))
        share = float(np.clip(posterior.mean(), 1e-6, 1 - 1e-6))
        m = [_shares(levels[:, c], len(comp.levels), posterior) for c, comp in enumerate(rules.comparisons)]
    estimated = {
        comp.name: {
            level.label: {"m": float(m[c][i]), "u": float(u[c][i]),
                          "weight": float(np.clip(np.log2(m[c][i] / u[c][i]), -MAX_WEIGHT, MAX_WEIGHT))}
            for i, level in enumerate(comp.levels)
        }
        for c, comp in enumerate(rules.comparisons)
    }
    return Estimate(share, estimated, rules.estimate_weights)

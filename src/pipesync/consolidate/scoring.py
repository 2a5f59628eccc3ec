"""Scores candidate pairs: every comparison's levels, vectorized over all pairs.

For each comparison the first level whose test holds gives its weight; when
no level holds but one could be tested, the else level does; when nothing
could be tested (a key missing on either side) the comparison's null weight.
The match probability is the logistic of prior + weights in base 2 (Splink's
match weight). Text similarity is rapidfuzz's ``cpdist``, element-wise in C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz import fuzz, process

from pipesync.consolidate.features import MISSING, Features
from pipesync.consolidate.parallel import PARALLEL_FROM, thread_map
from pipesync.consolidate.rules import DAY_KEYS, SET_KEYS, Comparison, Level, MatchRules

NO_LEVEL = -1
NO_VETO = -1
_SCORERS = {
    "ratio": fuzz.ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "partial_ratio": fuzz.partial_ratio,
    "WRatio": fuzz.WRatio,
    "QRatio": fuzz.QRatio,
}


# scorers whose result does not depend on which text comes first
_SYMMETRIC = frozenset({"ratio", "token_set_ratio", "token_sort_ratio", "QRatio"})


@dataclass(slots=True)
class Scores:
    weight: np.ndarray  # prior + the weights of every comparison
    probability: np.ndarray
    levels: np.ndarray  # (pairs, comparisons): the level that decided, NO_LEVEL when nothing could be tested
    vetoed: np.ndarray  # the veto (index into the rules' vetoes) that forbids the pair, NO_VETO if none
    # (pairs, comparisons): each comparison's weight, frequency adjustment included; kept on request
    weights: np.ndarray | None = None


def probability_of(weight: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp2(-np.asarray(weight, dtype=np.float64)))


def _set_overlap(values: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    a, b = values[left], values[right]
    hit = np.zeros(len(left), dtype=bool)
    for x in range(a.shape[1]):
        column = a[:, x]
        for y in range(b.shape[1]):
            hit |= (column == b[:, y]) & (column != MISSING)
    return hit


class _Similarities:
    """rapidfuzz similarities, each pair computed at most once per (key, scorer), and only when a level asks."""

    def __init__(self, features: Features, left: np.ndarray, right: np.ndarray):
        self.features, self.left, self.right = features, left, right
        self._cache: dict[tuple[str, str], np.ndarray] = {}

    def get(self, key: str, scorer: str, pairs: np.ndarray) -> np.ndarray:
        """Similarities of the pairs at positions ``pairs`` (0 where a side is missing)."""
        found = self._cache.get((key, scorer))
        if found is None:
            found = self._cache[key, scorer] = np.full(len(self.left), np.nan, dtype=np.float32)
        wanted = pairs[np.isnan(found[pairs])]
        if len(wanted):
            known = self.features.is_known(key)
            a, b = self.left[wanted], self.right[wanted]
            both = known[a] & known[b]
            found[wanted[~both]] = 0.0
            todo = wanted[both]
            if len(todo):
                found[todo] = self._similarity(key, scorer, self.left[todo], self.right[todo])
        return found[pairs]

    def _similarity(self, key: str, scorer: str, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """rapidfuzz on each distinct pair of texts once: deals of one account share a few
        names ("Renewal", "Expansion"), so pairs repeat the same two texts over and over."""
        codes = self.features.codes[key]
        a, b = codes[left], codes[right]
        if scorer in _SYMMETRIC:
            a, b = np.minimum(a, b), np.maximum(a, b)
        _, first, back = np.unique(a * (int(codes.max()) + 1) + b, return_index=True, return_inverse=True)
        text = self.features.text[key]
        similarity = process.cpdist(text[left[first]], text[right[first]], scorer=_SCORERS[scorer], workers=-1)
        return similarity[back.ravel()]


def _test(level: Level, features: Features, similarities: _Similarities, pairs: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """(known, hit) of one level for the pairs at positions ``pairs``."""
    key = level.key
    assert key is not None
    left, right = similarities.left[pairs], similarities.right[pairs]
    known = features.is_known(key)
    known = known[left] & known[right]
    if level.test in ("exact", "differ"):
        if key in SET_KEYS:
            hit = _set_overlap(features.sets[key], left, right)
        else:
            codes = features.codes[key]
            hit = codes[left] == codes[right]
        return known, (hit if level.test == "exact" else ~hit) & known
    if level.test == "within":
        values = features.numbers[key]
        a, b = values[left], values[right]
        with np.errstate(invalid="ignore", divide="ignore"):
            if key in DAY_KEYS:
                hit = np.abs(a - b) <= level.days
            else:
                hit = np.abs(a - b) <= level.relative * np.maximum(np.abs(a), np.abs(b))
        return known, hit & known
    similarity = similarities.get(key, level.scorer, pairs)
    return known, known & (similarity >= level.min_similarity)


# a common value lowers a level's weight by at most this much; a rare one never raises
# it (the level weights are already set for telling apart deals of one account)
MAX_FREQUENCY_ADJUSTMENT = 4.0


def _frequency_adjustment(features: Features, key: str, left: np.ndarray) -> np.ndarray:
    """log2(u / u of this value), never above 0: how much more common than average the agreed value is."""
    codes = features.block_column(key)
    known = codes[codes != MISSING]
    if len(known) == 0:
        return np.zeros(len(left))
    counts = np.bincount(known).astype(np.float64)
    share = counts / len(known)
    average = float((share**2).sum())  # chance two records agree on any value
    mine = share[np.maximum(codes[left], 0)]
    adjustment = np.log2(average / np.maximum(mine, 1e-12))
    return np.clip(adjustment, -MAX_FREQUENCY_ADJUSTMENT, 0.0)


def _compare(comparison: Comparison, features: Features, similarities: _Similarities
             ) -> tuple[np.ndarray, np.ndarray]:
    m = len(similarities.left)
    weight = np.full(m, comparison.null_weight, dtype=np.float64)
    decided = np.full(m, NO_LEVEL, dtype=np.int8)
    any_known = np.zeros(m, dtype=bool)
    open_ = np.arange(m)  # the pairs no level has decided yet, ascending
    for index, level in enumerate(comparison.levels):
        if len(open_) == 0:
            break
        if level.test == "else":
            chosen = open_[any_known[open_]]
        else:
            known, hit = _test(level, features, similarities, open_)
            any_known[open_[known]] = True
            chosen, open_ = open_[hit], open_[~hit]
        weight[chosen] = level.weight
        if level.frequency_adjusted and len(chosen):
            weight[chosen] += _frequency_adjustment(features, level.key, similarities.left[chosen])
        decided[chosen] = index
    return weight, decided


def vetoes_of(features: Features, rules: MatchRules, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """For each pair, the first veto whose token the two names contradict (NO_VETO if none): both name
    tokens of that kind and share none ("FY24" / "2025", "+50" / "+60 seats")."""
    vetoed = np.full(len(left), NO_VETO, dtype=np.int8)
    for index, veto in enumerate(rules.vetoes):
        values = features.tokens[veto.token]
        known = values[:, 0] != MISSING
        clash = known[left] & known[right] & (vetoed == NO_VETO)
        at = np.flatnonzero(clash)
        vetoed[at[~_set_overlap(values, left[at], right[at])]] = index
    return vetoed


def score_pairs(
    features: Features, rules: MatchRules, left: np.ndarray, right: np.ndarray, keep_weights: bool = False
) -> Scores:
    total = np.full(len(left), rules.prior, dtype=np.float64)
    levels = np.empty((len(left), len(rules.comparisons)), dtype=np.int8)
    weights = np.empty((len(left), len(rules.comparisons))) if keep_weights else None
    similarities = _Similarities(features, left, right)
    compared = thread_map(lambda comparison: _compare(comparison, features, similarities), rules.comparisons,
                          worth_it=len(left) >= PARALLEL_FROM)
    for c, (weight, decided) in enumerate(compared):  # summed in rule order, whichever finishes first
        total += weight
        levels[:, c] = decided
        if weights is not None:
            weights[:, c] = weight
    vetoed = vetoes_of(features, rules, left, right)
    probability = probability_of(total)
    probability[vetoed != NO_VETO] = 0.0  # however strong the rest: two deals
    return Scores(weight=total, probability=probability, levels=levels, vetoed=vetoed, weights=weights)

"""Clusters: hard links first, then the strongest scored links, with guards against chaining.

A plain connected-components pass lets one weak link chain unrelated deals
together (A≈B, B≈C, so A=C). Here links are taken strongest first and two
clusters merge only if:

- the merged cluster stays within ``max_cluster_size``;
- no pair across them was compared and found clearly different
  (probability below ``cannot_link_probability``);
- any two records of one source across them were linked *directly* at
  ``same_source_probability`` or more: a system rarely holds one deal twice,
  while one account holding several deals is the norm, so two records of one
  system meet only as a proven in-system duplicate.

Hard links (``external_refs``) join outright. Most groups of linked records
are small and clean (one deal in two or three systems); they are found with
vectorized connected components and only the groups where a guard could
matter go through the one-link-at-a-time merge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipesync.consolidate.rules import Clustering

HARD = -1  # link kind of an external_refs link; scored links carry their blocking pass index


@dataclass(slots=True)
class Clusters:
    # clusters in compressed form: cluster c holds order[starts[c]:starts[c + 1]] (ascending);
    # clusters are numbered by their first (smallest) record
    order: np.ndarray
    starts: np.ndarray
    cluster_of: np.ndarray
    # each record's strongest link inside its cluster: partner (-1: none), probability, kind
    partner: np.ndarray
    probability: np.ndarray
    kind: np.ndarray
    confidence: np.ndarray  # per cluster: the weakest member's strongest link (1.0 for one member)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def members(self, c: int) -> list[int]:
        return self.order[self.starts[c]:self.starts[c + 1]].tolist()

    def sizes(self) -> np.ndarray:
        return np.diff(self.starts)


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected components: each record labelled with the smallest record of its component."""
    label = np.arange(n, dtype=np.int64)
    while True:
        low = np.minimum(label[left], label[right])
        new = label.copy()
        np.minimum.at(new, left, low)
        np.minimum.at(new, right, low)
        while True:  # pointer jumping: follow labels to their own label
            jumped = new[new]
            if np.array_equal(jumped, new):
                break
            new = jumped
        if np.array_equal(new, label):
            return label
        label = new


def cluster(
    n: int,
    sources: np.ndarray,
    hard: tuple[np.ndarray, np.ndarray],
    left: np.ndarray,
    right: np.ndarray,
    probability: np.ndarray,
    found_by: np.ndarray,
    settings: Clustering,
) -> Clusters:
    match = probability >= settings.match_probability
    # hard links first, as certain as a link gets; then scored links
    e_left = np.concatenate([hard[0], left[match]])
    e_right = np.concatenate([hard[1], right[match]])
    e_prob = np.concatenate([np.ones(len(hard[0])), probability[match]])
    e_kind = np.concatenate([np.full(len(hard[0]), HARD, dtype=np.int64), found_by[match]])
    e_hard = np.arange(len(e_left)) < len(hard[0])

    comp = components(n, e_left, e_right)
    size = np.bincount(comp, minlength=n)
    # a group needs the guarded merge if it is too big, holds two records of one source,
    # or holds a pair compared and found clearly different
    guarded = size > settings.max_cluster_size
    in_groups = np.flatnonzero(size[comp] > 1)
    comp_source = np.unique(np.stack([comp[in_groups], sources[in_groups]], axis=1), axis=0)
    distinct_sources = np.bincount(comp_source[:, 0], minlength=n)
    guarded |= (size > 1) & (distinct_sources < size)
    apart = (probability < settings.cannot_link_probability) & (comp[left] == comp[right])
    guarded[comp[left[apart]]] = True

    label = comp.copy()
    hot = guarded[comp[e_left]]
    if hot.any():
        cannot_pairs = apart & guarded[comp[left]]
        cannot = set((left[cannot_pairs] * n + right[cannot_pairs]).tolist())
        _guarded_merge(
            label, sources, e_left[hot], e_right[hot], e_prob[hot], e_hard[hot], cannot, settings,
        )

    order = np.lexsort((np.arange(n), label))
    sorted_labels = label[order]
    if n:
        starts = np.r_[0, np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1, n].astype(np.int64)
    else:
        starts = np.zeros(1, dtype=np.int64)
    cluster_of = np.empty(n, dtype=np.int64)
    cluster_of[order] = np.repeat(np.arange(len(starts) - 1), np.diff(starts))

    partner, best, kind = _strongest_links(n, cluster_of, e_left, e_right, e_prob, e_kind)
    strength = np.where(partner >= 0, best, 1.0)[order]
    confidence = np.minimum.reduceat(strength, starts[:-1]) if n else np.empty(0)
    return Clusters(order, starts, cluster_of, partner, best, kind, confidence)


def _guarded_merge(
    label: np.ndarray, sources: np.ndarray, left: np.ndarray, right: np.ndarray, probability: np.ndarray,
    hard: np.ndarray, cannot: set[int], settings: Clustering,
) -> None:
    """Strongest link first, merging only what the guards allow; relabels ``label`` in place."""
    n = len(label)
    nodes = np.unique(np.concatenate([left, right]))
    parent = {int(x): int(x) for x in nodes}
    groups: dict[int, list[int]] = {}
    src = {int(x): int(sources[x]) for x in nodes}
    linked = dict(zip((left * n + right).tolist(), probability.tolist()))
    same_source, max_size = settings.same_source_probability, settings.max_cluster_size

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    # hard links first, then strongest first; ties in record order, never in input order
    order = np.lexsort((right, left, -probability, ~hard))
    for a, b, is_hard in zip(left[order].tolist(), right[order].tolist(), hard[order].tolist()):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        ga, gb = groups.get(ra, [ra]), groups.get(rb, [rb])
        if not is_hard and (len(ga) + len(gb) > max_size or not _compatible(ga, gb, n, src, cannot, linked, same_source)):
            continue
        if ra > rb:  # the smaller record stays the root: it is the label
            ra, rb, ga, gb = rb, ra, gb, ga
        parent[rb] = ra
        groups.pop(rb, None)
        groups[ra] = ga + gb
    for x in parent:
        label[x] = find(x)


def _compatible(
    ga: list[int], gb: list[int], n: int, src: dict[int, int], cannot: set[int], linked: dict[int, float],
    same_source: float,
) -> bool:
    for x in ga:
        for y in gb:
            pair = x * n + y if x < y else y * n + x
            if pair in cannot:
                return False
            if src[x] == src[y] and linked.get(pair, 0.0) < same_source:
                return False
    return True


def _strongest_links(
    n: int, cluster_of: np.ndarray, left: np.ndarray, right: np.ndarray, probability: np.ndarray, kind: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inside = cluster_of[left] == cluster_of[right]
    node = np.concatenate([left[inside], right[inside]])
    other = np.concatenate([right[inside], left[inside]])
    prob = np.concatenate([probability[inside], probability[inside]])
    kinds = np.concatenate([kind[inside], kind[inside]])
    partner = np.full(n, -1, dtype=np.int64)
    best = np.zeros(n, dtype=np.float64)
    best_kind = np.zeros(n, dtype=np.int64)
    if len(node):
        # per node: strongest first, then hard links, then the smaller partner
        order = np.lexsort((other, kinds, -prob, node))
        first = order[np.r_[True, node[order][1:] != node[order][:-1]]]
        partner[node[first]] = other[first]
        best[node[first]] = prob[first]
        best_kind[node[first]] = kinds[first]
    return partner, best, best_kind

"""Candidate pairs: sorted-neighbourhood passes over blocks, never all pairs.

Each pass groups deals by its block keys, sorts each block by its sort keys
and pairs every deal with its next ``window - 1`` neighbours, so the work is
linear in the number of deals whatever the size of a block (one customer with
thousands of deals costs no more per deal than one with two). Pairs found by
several passes are kept once; then no deal keeps more than
``max_pairs_per_deal`` pairs, nearest neighbours first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipesync.consolidate.features import MISSING, Features
from pipesync.consolidate.rules import SET_KEYS, Blocking, MatchRules


@dataclass(slots=True)
class Candidates:
    left: np.ndarray  # record index, always < right
    right: np.ndarray
    blocking: np.ndarray  # index of the pass that found the pair first

    def __len__(self) -> int:
        return len(self.left)


def _blocks(features: Features, on: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(record index, block id) for every record that has all the block keys; sets explode."""
    rows = np.arange(features.n, dtype=np.int32)
    columns: list[np.ndarray] = []
    for key in on:
        if key in SET_KEYS:
            values = features.sets[key]
            width = values.shape[1]
            picked = values[rows]
            rows = np.repeat(rows, width)
            columns = [np.repeat(c, width) for c in columns]
            columns.append(picked.ravel())
        else:
            columns.append(features.block_column(key)[rows])
    present = np.ones(len(rows), dtype=bool)
    for c in columns:
        present &= c != MISSING
    rows = rows[present]
    columns = [c[present] for c in columns]
    if len(columns) == 1:
        return rows, columns[0]
    _, block = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    return rows, block.ravel()


def _pass_pairs(features: Features, blocking: Blocking) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, block = _blocks(features, blocking.on)
    sort_columns = [features.sort_column(k)[rows] for k in reversed(blocking.sort)]
    # np.lexsort sorts by its last key first: block, then the sort keys, then record index
    order = np.lexsort((rows, *sort_columns, block))
    rows, block = rows[order], block[order]
    lefts, rights, offsets = [], [], []
    for d in range(1, blocking.window):
        same = block[:-d] == block[d:]
        a, b = rows[:-d][same], rows[d:][same]
        lefts.append(np.minimum(a, b))
        rights.append(np.maximum(a, b))
        offsets.append(np.full(len(a), d, dtype=np.int8))
    left, right, offset = np.concatenate(lefts), np.concatenate(rights), np.concatenate(offsets)
    distinct = left != right  # a deal with two domains in one block meets itself
    return left[distinct], right[distinct], offset[distinct]


def _rank_within(node: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """For each (node, pair) entry, how many pairs of the same node come before it."""
    order = np.lexsort((pair, node))
    sorted_nodes = node[order]
    starts = np.r_[0, np.flatnonzero(sorted_nodes[1:] != sorted_nodes[:-1]) + 1]
    first = np.repeat(starts, np.diff(np.r_[starts, len(sorted_nodes)]))
    rank = np.empty(len(node), dtype=np.int64)
    rank[order] = np.arange(len(node)) - first
    return rank


def candidate_pairs(features: Features, rules: MatchRules) -> Candidates:
    n = features.n
    passes = len(rules.blocking)
    # one int64 per pair: the pair, then its priority (nearest neighbours first, then
    # earlier passes) in the low bits, so one sort both dedupes and ranks
    priority_bits = int(max(1, (max(b.window for b in rules.blocking) * passes)).bit_length())
    encoded = []
    for k, blocking in enumerate(rules.blocking):
        left, right, offset = _pass_pairs(features, blocking)
        priority = offset.astype(np.int64) * passes + k
        encoded.append(((left.astype(np.int64) * n + right) << priority_bits) | priority)
    codes = np.sort(np.concatenate(encoded)) if encoded else np.empty(0, dtype=np.int64)
    del encoded
    pair = codes >> priority_bits
    first = np.r_[True, pair[1:] != pair[:-1]] if len(pair) else np.empty(0, dtype=bool)
    codes, pair = codes[first], pair[first]
    priority = codes & ((1 << priority_bits) - 1)
    order = np.lexsort((pair, priority))  # by priority, then record order: deterministic
    pair, priority = pair[order], priority[order]
    left, right, found_by = pair // n, pair % n, priority % passes
    cap = rules.max_pairs_per_deal
    degree = np.bincount(left, minlength=n) + np.bincount(right, minlength=n)
    if degree.max(initial=0) > cap:
        # both ends must still have room; pairs are already in priority order
        m = len(left)
        index = np.arange(m, dtype=np.int64)
        rank = _rank_within(np.concatenate([left, right]), np.concatenate([index, index]))
        keep = np.maximum(rank[:m], rank[m:]) < cap
        left, right, found_by = left[keep], right[keep], found_by[keep]
    return Candidates(left, right, found_by)


def hard_links(keys: list[str], external_refs: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joined outright: a deal naming another deal's key in its external_refs."""
    index = {k: i for i, k in enumerate(keys)}
    left: list[int] = []
    right: list[int] = []
    for i, refs in enumerate(external_refs):
        for ref in refs:
            j = index.get(ref)
            if j is not None and j != i:
                left.append(min(i, j))
                right.append(max(i, j))
    if not left:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    pairs = np.unique(np.array([left, right], dtype=np.int64).T, axis=0)
    return pairs[:, 0], pairs[:, 1]

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

from pipesync.adapters.values import salesforce_id18
from pipesync.consolidate.features import MISSING, Features
from pipesync.consolidate.parallel import PARALLEL_FROM, thread_map
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


def _dense_rank(values: np.ndarray) -> tuple[np.ndarray, int]:
    """(rank of each value among the distinct values, how many there are); NaN ranks last."""
    distinct, rank = np.unique(values, return_inverse=True)
    return rank.ravel(), len(distinct)


def _sort_order(block: np.ndarray, ranks: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """The order by block, then by each ranked sort key in turn, then by position.

    The block and ranks are packed into one integer and sorted once (stable, so
    ties stay in position order) when they fit: several times faster than
    ``np.lexsort``, which makes one pass per key. Otherwise lexsort.
    """
    low = int(block.min(initial=0))
    span = int(block.max(initial=0)) - low + 1
    for _, count in ranks:
        span *= count
    if span >= 2**62:
        return np.lexsort((*(rank for rank, _ in reversed(ranks)), block))
    packed = block.astype(np.int64) - low
    for rank, count in ranks:
        packed = packed * count + rank
    return np.argsort(packed, kind="stable")


def _pass_pairs(
    features: Features, blocking: Blocking, ranks: dict[str, tuple[np.ndarray, int]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, block = _blocks(features, blocking.on)
    # by block, then the sort keys, then record index (rows are in record order)
    order = _sort_order(block, [(ranks[k][0][rows], ranks[k][1]) for k in blocking.sort])
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


def _rank_within(left: np.ndarray, right: np.ndarray, busy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pair, how many earlier pairs its left end has, and how many its right end has.

    Counted only at ``busy`` nodes (those over the cap; elsewhere 0): few nodes are, so
    the sort stays small.
    """
    # ends interleaved (pair i at 2i, 2i + 1); node and position packed into one integer, so a
    # plain sort (several times faster than a stable argsort) orders by node, then pair order
    node = np.stack([left, right], axis=1).ravel()
    at = np.flatnonzero(busy[node])
    m = len(node)
    packed = np.sort(node[at] * m + at)
    sorted_nodes = packed // m
    new_node = np.r_[True, sorted_nodes[1:] != sorted_nodes[:-1]]
    first = np.maximum.accumulate(np.where(new_node, np.arange(len(at)), 0))
    rank = np.zeros(m, dtype=np.int64)
    rank[packed - sorted_nodes * m] = np.arange(len(at)) - first
    return rank[0::2], rank[1::2]


def candidate_pairs(features: Features, rules: MatchRules) -> Candidates:
    n = features.n
    passes = len(rules.blocking)
    # one int64 per pair: the pair, then its priority (nearest neighbours first, then
    # earlier passes) in the low bits, so one sort both dedupes and ranks
    priority_bits = int(max(1, (max(b.window for b in rules.blocking) * passes)).bit_length())
    sort_keys = dict.fromkeys(key for blocking in rules.blocking for key in blocking.sort)
    ranks = {key: _dense_rank(features.sort_column(key)) for key in sort_keys}  # once for all passes

    def encode(k: int) -> np.ndarray:
        left, right, offset = _pass_pairs(features, rules.blocking[k], ranks)
        priority = offset.astype(np.int64) * passes + k
        return ((left.astype(np.int64) * n + right) << priority_bits) | priority

    encoded = list(thread_map(encode, range(passes), worth_it=n >= PARALLEL_FROM))
    codes = np.sort(np.concatenate(encoded)) if encoded else np.empty(0, dtype=np.int64)
    del encoded
    pair = codes >> priority_bits
    first = np.r_[True, pair[1:] != pair[:-1]] if len(pair) else np.empty(0, dtype=bool)
    codes, pair = codes[first], pair[first]
    priority = codes & ((1 << priority_bits) - 1)
    # by priority, then record order (pairs are already sorted): deterministic; a stable sort of
    # 16-bit numbers is a radix sort, much faster than sorting by both keys
    order = np.argsort(priority.astype(np.uint16) if priority_bits <= 16 else priority, kind="stable")
    pair, priority = pair[order], priority[order]
    (left, right), found_by = np.divmod(pair, n), priority % passes
    cap = rules.max_pairs_per_deal
    degree = np.bincount(left, minlength=n) + np.bincount(right, minlength=n)
    if degree.max(initial=0) > cap:
        # both ends must still have room; pairs are already in priority order
        keep = np.maximum(*_rank_within(left, right, degree > cap)) < cap
        left, right, found_by = left[keep], right[keep], found_by[keep]
    return Candidates(left, right, found_by)


def link_key(key: str) -> str:
    """A deal key as references name it: a Salesforce id in its 18-character form.

    Reports export the 15-character form and integrations write the 18, so one
    opportunity is named both ways; the 18 adds a case-safe checksum. Ids of
    the other systems are numbers, never 15 letters and digits.
    """
    source, _, record_id = key.rpartition(":")
    if len(record_id) == 15 and not record_id.isdigit():
        return f"{source}:{salesforce_id18(record_id)}"
    return key


def hard_links(keys: list[str], external_refs: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Pairs joined outright: a deal naming another deal's key in its external_refs (Salesforce ids
    in either form, ``link_key``)."""
    referring = [i for i, refs in enumerate(external_refs) if refs]
    named = {link_key(ref) for i in referring for ref in external_refs[i]}
    index = {k: i for i, k in enumerate(map(link_key, keys)) if k in named}  # only the keys named: few are
    left: list[int] = []
    right: list[int] = []
    for i in referring:
        for ref in external_refs[i]:
            j = index.get(link_key(ref))
            if j is not None and j != i:
                left.append(min(i, j))
                right.append(max(i, j))
    if not left:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    pairs = np.unique(np.array([left, right], dtype=np.int64).T, axis=0)
    return pairs[:, 0], pairs[:, 1]

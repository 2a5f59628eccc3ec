"""The consolidation engine: light records in, clusters, links and golden deals out.

Pure: no database, no files. ``store.py`` feeds it from the warehouse and
writes its result back; tests and the benchmark call it directly. Records are
sorted by key first, and every later step breaks ties by record order, so the
result is the same whatever the order of the input.

A large input uses a second core (``parallel.py``): deal names are keyed
beside the other columns, and survivorship decides which member wins each
field while golden ids are assigned and the rows of single deals built.
"""

from __future__ import annotations

import ctypes
import gc
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import numpy as np

from pipesync.consolidate.blocking import Candidates, candidate_pairs, hard_links
from pipesync.consolidate.clustering import HARD, Clusters, cluster
from pipesync.consolidate.estimate import Estimate, estimate_weights
from pipesync.consolidate.features import compute_features
from pipesync.consolidate.identity import assign_golden_ids
from pipesync.consolidate.keys import load_lexicon
from pipesync.consolidate.records import Record
from pipesync.consolidate.parallel import PARALLEL_FROM, SideJob
from pipesync.consolidate.rules import MatchRules
from pipesync.consolidate.scoring import NO_VETO, score_pairs, vetoes_of
from pipesync.consolidate.survivorship import Decisions, GoldenDeal, Survivor
from pipesync.model import SharedPipeline

EXTERNAL_REF_RULE = "external_ref"
NO_MATCH_RULE = "no match"
CLUSTER_CHECK = "cluster check"  # the pass name of pairs scored only to check a cluster's coherence
# clusters re-checked after each clustering: a split can leave new pairs no one compared, seldom twice
COHERENCE_ROUNDS = 3


@dataclass(slots=True)
class DealLink:
    deal_key: str
    golden_id: str
    score: float | None  # the probability of the deal's strongest accepted link
    rule: str  # external_ref, match:<blocking pass>, or "no match"
    linked_to: str | None  # the member that link goes to


@dataclass
class Consolidation:
    records: list[Record]  # live deals, sorted by key
    candidates: Candidates
    probability: np.ndarray  # each candidate pair's match probability
    clusters: Clusters
    golden_ids: list[str]
    hard: tuple[np.ndarray, np.ndarray]  # the pairs joined by external_refs
    rules: MatchRules
    survivor: Survivor
    decided: SideJob[Decisions]  # survivorship's decisions (``Survivor.decide``), maybe on another core
    estimate: Estimate | None = None  # the weights the data suggest (estimate.py), applied or not
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def hard_pairs(self) -> int:
        return len(self.hard[0])

    def links(self) -> Iterator[DealLink]:
        c = self.clusters
        keys = [r.key for r in self.records]
        rules = {HARD: EXTERNAL_REF_RULE} | {kind: f"match:{b.name}" for kind, b in enumerate(self.rules.blocking)}
        rules[len(self.rules.blocking)] = f"match:{CLUSTER_CHECK}"
        for key, cluster, partner, probability, kind in zip(
            keys, c.cluster_of.tolist(), c.partner.tolist(), c.probability.tolist(), c.kind.tolist()
        ):
            if partner < 0:
                yield DealLink(key, self.golden_ids[cluster], None, NO_MATCH_RULE, None)
            else:
                yield DealLink(key, self.golden_ids[cluster], probability, rules[kind], keys[partner])

    def golden_rows(self) -> Iterator[dict[str, Any]]:
        """Each cluster's golden deal as the row the golden_deals table takes (``survivorship.ROW_FIELDS``):
        single deals first (``Survivor.rows``)."""
        c = self.clusters
        return self.survivor.rows(
            self.records, c.order, c.starts, self.golden_ids, c.confidence.tolist(), self.decided.result
        )

    def golden_deals(self) -> Iterator[GoldenDeal]:
        return map(GoldenDeal.of_row, self.golden_rows())


@contextmanager
def without_gc() -> Iterator[None]:
    """Pauses the cyclic garbage collector during bulk work.

    A run allocates millions of small objects and none in a reference cycle;
    the collector would only rescan the whole record set again and again.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def release_freed_memory() -> None:
    """Hands memory the process freed back to the system, where the C library keeps it (glibc).

    glibc raises its threshold for allocating large blocks apart as they are
    freed, so matching's big temporary arrays end up in the heap and stay
    there once freed: half a gigabyte at a million deals, held through
    survivorship (and counted again for a forked helper's copied pages).
    """
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError):  # not glibc
            pass


def consolidate(
    records: Iterable[Record],
    rules: MatchRules,
    pipeline: SharedPipeline,
    previous: Mapping[str, str] | None = None,
) -> Consolidation:
    """Matches, clusters and identifies ``records``; golden deals are built on demand.

    ``previous`` maps deal key → the golden id it had (the stored deal_links),
    so that ids do not churn between runs. Deleted deals take no part.
    """
    with without_gc():
        return _consolidate(records, rules, pipeline, previous)


def _consolidate(
    records: Iterable[Record], rules: MatchRules, pipeline: SharedPipeline, previous: Mapping[str, str] | None
) -> Consolidation:
    timings: dict[str, float] = {}
    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = now - t
        t = now

    live = sorted((r for r in records if not r.is_deleted), key=itemgetter(0))  # by key
    lexicon = load_lexicon(rules.lexicon)
    features = compute_features(live, lexicon)
    lap("keys")
    keys = [r.key for r in live]
    hard = hard_links(keys, [r.external_refs for r in live])
    candidates = candidate_pairs(features, rules)
    lap("blocking")
    scores = score_pairs(features, rules, candidates.left, candidates.right)
    estimate = estimate_weights(features, rules, scores.levels)
    if rules.estimate_weights:
        rules = estimate.rules(rules)
        scores = score_pairs(features, rules, candidates.left, candidates.right)
    probability = scores.probability
    del scores
    # a hard link whose names contradict a distinguishing token (a renewal cloned with last year's
    # reference) is no link, and its two deals are kept apart like any pair found different
    contradicted = vetoes_of(features, rules, *hard) != NO_VETO
    if contradicted.any():
        candidates = Candidates(np.concatenate([candidates.left, hard[0][contradicted]]),
                                np.concatenate([candidates.right, hard[1][contradicted]]),
                                np.concatenate([candidates.blocking, np.zeros(int(contradicted.sum()), np.int64)]))
        probability = np.concatenate([probability, np.zeros(int(contradicted.sum()))])
        hard = (hard[0][~contradicted], hard[1][~contradicted])
    lap("scoring")
    for _ in range(COHERENCE_ROUNDS):
        clusters = cluster(
            len(live), features.codes["source"], hard, candidates.left, candidates.right,
            probability, candidates.blocking, rules.clustering,
        )
        # a cluster is kept only if its members are coherent together, not merely connected: every pair
        # in it is scored, and one found different (below cannot_link_probability) splits it
        left, right = unchecked_pairs(clusters, candidates, hard)
        if not len(left):
            break
        candidates = Candidates(np.concatenate([candidates.left, left]), np.concatenate([candidates.right, right]),
                                np.concatenate([candidates.blocking, np.full(len(left), len(rules.blocking))]))
        probability = np.concatenate([probability, score_pairs(features, rules, left, right).probability])
    del features  # hundreds of megabytes no later step needs: returned to the system
    release_freed_memory()
    lap("clustering")
    survivor = Survivor(rules.survivorship, pipeline)
    # Which member wins each field of each cluster is decided on the other core, while golden ids are
    # assigned and the rows of single deals built (``Consolidation.golden_rows``). The child copies the
    # memory pages of the records it reads (reference counts are written): about the records once more.
    decided = SideJob(survivor.decide, live, clusters.order, clusters.starts, worth_it=len(live) >= PARALLEL_FROM)
    golden_ids = assign_golden_ids(_cluster_keys(keys, clusters), previous or {})
    lap("ids")
    return Consolidation(live, candidates, probability, clusters, golden_ids, hard, rules, survivor, decided, estimate,
                         timings)


def unchecked_pairs(clusters: Clusters, compared: Candidates, hard: tuple[np.ndarray, np.ndarray]
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of members of a cluster (of three or more) that were never compared nor hard-linked."""
    n = len(clusters.cluster_of)
    sizes = clusters.sizes()
    big = np.flatnonzero(sizes >= 3)
    if not len(big):
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    known = np.concatenate([compared.left * n + compared.right, hard[0] * n + hard[1]])
    lefts, rights = [], []
    for c in big.tolist():
        members = clusters.order[clusters.starts[c]:clusters.starts[c + 1]]  # ascending
        a, b = np.triu_indices(len(members), 1)
        lefts.append(members[a])
        rights.append(members[b])
    left, right = np.concatenate(lefts), np.concatenate(rights)
    new = ~np.isin(left * n + right, known)
    return left[new], right[new]


def _cluster_keys(keys: list[str], clusters: Clusters) -> list[list[str]]:
    ordered = [keys[i] for i in clusters.order.tolist()]
    bounds = clusters.starts.tolist()
    return [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

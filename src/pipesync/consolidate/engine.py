"""The consolidation engine: light records in, clusters, links and golden deals out.

Pure: no database, no files. ``store.py`` feeds it from the warehouse and
writes its result back; tests and the benchmark call it directly. Records are
sorted by key first, and every later step breaks ties by record order, so the
result is the same whatever the order of the input.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import itemgetter

from pipesync.consolidate.blocking import Candidates, candidate_pairs, hard_links
from pipesync.consolidate.clustering import HARD, Clusters, cluster
from pipesync.consolidate.features import Features, compute_features
from pipesync.consolidate.identity import assign_golden_ids
from pipesync.consolidate.keys import load_lexicon
from pipesync.consolidate.records import Record
from pipesync.consolidate.rules import MatchRules
from pipesync.consolidate.scoring import Scores, score_pairs
from pipesync.consolidate.survivorship import GoldenDeal, Survivor
from pipesync.model import SharedPipeline

EXTERNAL_REF_RULE = "external_ref"
NO_MATCH_RULE = "no match"


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
    features: Features
    candidates: Candidates
    scores: Scores
    clusters: Clusters
    golden_ids: list[str]
    hard_pairs: int  # pairs joined by external_refs
    rules: MatchRules
    survivor: Survivor
    timings: dict[str, float] = field(default_factory=dict)

    def links(self) -> Iterator[DealLink]:
        c = self.clusters
        keys = [r.key for r in self.records]
        rules = {HARD: EXTERNAL_REF_RULE} | {kind: f"match:{b.name}" for kind, b in enumerate(self.rules.blocking)}
        for key, cluster, partner, probability, kind in zip(
            keys, c.cluster_of.tolist(), c.partner.tolist(), c.probability.tolist(), c.kind.tolist()
        ):
            if partner < 0:
                yield DealLink(key, self.golden_ids[cluster], None, NO_MATCH_RULE, None)
            else:
                yield DealLink(key, self.golden_ids[cluster], probability, rules[kind], keys[partner])

    def golden(self, c: int) -> GoldenDeal:
        members = [self.records[i] for i in self.clusters.members(c)]
        return self.survivor.golden(self.golden_ids[c], members, float(self.clusters.confidence[c]))

    def golden_deals(self) -> Iterator[GoldenDeal]:
        c = self.clusters
        return self.survivor.goldens(self.records, c.order, c.starts, self.golden_ids, c.confidence.tolist())


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
    lap("scoring")
    clusters = cluster(
        len(live), features.codes["source"], hard, candidates.left, candidates.right,
        scores.probability, candidates.blocking, rules.clustering,
    )
    lap("clustering")
    golden_ids = assign_golden_ids(_cluster_keys(keys, clusters), previous or {})
    lap("ids")
    survivor = Survivor(rules.survivorship, pipeline)
    return Consolidation(
        live, features, candidates, scores, clusters, golden_ids, len(hard[0]), rules, survivor, timings
    )


def _cluster_keys(keys: list[str], clusters: Clusters) -> list[list[str]]:
    ordered = [keys[i] for i in clusters.order.tolist()]
    bounds = clusters.starts.tolist()
    return [ordered[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

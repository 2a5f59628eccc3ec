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

    def link(self, i: int) -> DealLink:
        c = self.clusters
        golden_id = self.golden_ids[int(c.cluster_of[i])]
        partner = int(c.partner[i])
        if partner < 0:
            return DealLink(self.records[i].key, golden_id, None, NO_MATCH_RULE, None)
        kind = int(c.kind[i])
        rule = EXTERNAL_REF_RULE if kind == HARD else f"match:{self.rules.blocking[kind].name}"
        return DealLink(self.records[i].key, golden_id, float(c.probability[i]), rule, self.records[partner].key)

    def links(self) -> Iterator[DealLink]:
        return (self.link(i) for i in range(len(self.records)))

    def golden(self, c: int) -> GoldenDeal:
        members = [self.records[i] for i in self.clusters.members(c)]
        return self.survivor.golden(self.golden_ids[c], members, float(self.clusters.confidence[c]))

    def golden_deals(self) -> Iterator[GoldenDeal]:
        # plain lists, not numpy scalars per cluster: most clusters are one deal and cost little else
        records, golden = self.records, self.survivor.golden
        order, bounds = self.clusters.order.tolist(), self.clusters.starts.tolist()
        confidence = self.clusters.confidence.tolist()
        for c, golden_id in enumerate(self.golden_ids):
            a, b = bounds[c], bounds[c + 1]
            members = [records[order[a]]] if b - a == 1 else [records[i] for i in order[a:b]]
            yield golden(golden_id, members, confidence[c])


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
    hard = hard_links([r.key for r in live], [r.external_refs for r in live])
    candidates = candidate_pairs(features, rules)
    lap("blocking")
    scores = score_pairs(features, rules, candidates.left, candidates.right)
    lap("scoring")
    clusters = cluster(
        len(live), features.codes["source"], hard, candidates.left, candidates.right,
        scores.probability, candidates.blocking, rules.clustering,
    )
    lap("clustering")
    golden_ids = assign_golden_ids(_cluster_keys(live, clusters), previous or {})
    lap("ids")
    survivor = Survivor(rules.survivorship, pipeline)
    return Consolidation(
        live, features, candidates, scores, clusters, golden_ids, len(hard[0]), rules, survivor, timings
    )


def _cluster_keys(records: list[Record], clusters: Clusters) -> list[list[str]]:
    keys = [records[i].key for i in clusters.order.tolist()]
    bounds = clusters.starts.tolist()
    return [keys[a:b] for a, b in zip(bounds[:-1], bounds[1:])]

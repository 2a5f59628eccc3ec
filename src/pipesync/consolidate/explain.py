"""Why a deal sits in its golden deal: the cluster, each pair's comparisons, each field's winner."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy import select

from pipesync.consolidate.blocking import candidate_pairs, hard_links
from pipesync.consolidate.features import MISSING, Features, compute_features
from pipesync.consolidate.keys import load_lexicon
from pipesync.consolidate.records import Record
from pipesync.consolidate.rules import SET_KEYS, Blocking, MatchRules
from pipesync.consolidate.scoring import NO_LEVEL, NO_VETO, score_pairs
from pipesync.consolidate.store import read_records
from pipesync.errors import PipesyncError
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse


@dataclass
class ComparisonResult:
    comparison: str
    level: str  # the level that decided, or "not comparable" when a key was missing
    weight: float


@dataclass
class PairExplanation:
    left: str
    right: str
    probability: float
    match: bool
    comparisons: list[ComparisonResult]
    weight: float = 0.0  # prior + every comparison's weight: the match weight
    threshold: float = 0.0  # the match probability a link needs (``clustering.match_probability``)
    vetoed: str | None = None  # the veto (a contradicting distinguishing token) that forbids the match


@dataclass
class PairVerdict:
    """Why two deals are, or are not, one golden deal (``--explain KEY --with OTHER``)."""

    left: str
    right: str
    joined: bool  # in one golden deal in the stored result
    verdict: str  # joined | hard link | vetoed | never compared | below threshold | split by cluster coherence
    reason: str  # the verdict in a sentence
    compared: bool  # a blocking pass made them a candidate pair
    blocking: list[str]  # the passes that put both in one block (they are compared only if near in its order)
    hard_link: bool  # one names the other in its external_refs
    pair: PairExplanation

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MemberLink:
    deal_key: str
    source: str
    name: str
    score: float | None
    rule: str | None
    linked_to: str | None


@dataclass
class Explanation:
    deal_key: str
    golden_id: str
    confidence: float | None
    members: list[MemberLink]
    pairs: list[PairExplanation]
    # field → {"value", "deal_key" or "deal_keys", "rule"}
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_pairs(records: list[Record], rules: MatchRules) -> list[PairExplanation]:
    """Every pair of ``records`` scored with ``rules``, level by level (for a handful of records)."""
    records = sorted(records, key=lambda r: r.key)
    features = compute_features(records, load_lexicon(rules.lexicon))
    pairs = list(combinations(range(len(records)), 2))
    if not pairs:
        return []
    left = np.array([a for a, _ in pairs], dtype=np.int64)
    right = np.array([b for _, b in pairs], dtype=np.int64)
    return _explained(features, rules, [r.key for r in records], left, right)


def _explained(features: Features, rules: MatchRules, keys: list[str], left: np.ndarray, right: np.ndarray
               ) -> list[PairExplanation]:
    scores = score_pairs(features, rules, left, right, keep_weights=True)
    assert scores.weights is not None
    explained = []
    for p, (a, b) in enumerate(zip(left.tolist(), right.tolist())):
        results = []
        for c, comparison in enumerate(rules.comparisons):
            level = int(scores.levels[p, c])
            label = "not comparable" if level == NO_LEVEL else comparison.levels[level].label
            results.append(ComparisonResult(comparison.name, label, float(scores.weights[p, c])))
        probability = float(scores.probability[p])
        veto = int(scores.vetoed[p])
        threshold = rules.clustering.match_probability
        explained.append(PairExplanation(
            keys[a], keys[b], probability, probability >= threshold, results, float(scores.weight[p]), threshold,
            None if veto == NO_VETO else rules.vetoes[veto].label,
        ))
    return explained


def _share_block(features: Features, blocking: Blocking, i: int, j: int) -> bool:
    for key in blocking.on:
        if key in SET_KEYS:
            a, b = features.sets[key][i], features.sets[key][j]
            if not (set(a[a != MISSING].tolist()) & set(b[b != MISSING].tolist())):
                return False
        else:
            column = features.block_column(key)
            if column[i] == MISSING or column[i] != column[j]:
                return False
    return True


def explain_pair(warehouse: Warehouse, deal_key: str, other_key: str, rules: MatchRules) -> PairVerdict:
    """Why ``deal_key`` and ``other_key`` are (not) one golden deal: never compared (and which blocking
    pass would have put them side by side), compared (each level and weight, the total against the
    threshold), or vetoed (the contradicting token). Keys and candidate pairs are worked out over the
    whole warehouse, as the run does."""
    records = sorted(read_records(warehouse), key=lambda r: r.key)
    index = {r.key: i for i, r in enumerate(records)}
    for key in (deal_key, other_key):
        if key not in index:
            raise PipesyncError(f"no live deal with key {key!r} in the warehouse (keys look like 'hubspot:123')")
    if deal_key == other_key:
        raise PipesyncError("--with names the deal itself: give another deal's key")
    with warehouse.begin() as conn:
        ids = dict(conn.execute(select(t.deal_links.c.deal_key, t.deal_links.c.golden_id)
                                .where(t.deal_links.c.deal_key.in_([deal_key, other_key]))).all())
    joined = len(ids) == 2 and ids[deal_key] == ids[other_key]
    i, j = sorted((index[deal_key], index[other_key]))
    features = compute_features(records, load_lexicon(rules.lexicon))
    candidates = candidate_pairs(features, rules)
    compared = bool(((candidates.left == i) & (candidates.right == j)).any())
    hard = len(hard_links([records[i].key, records[j].key], [records[i].external_refs, records[j].external_refs])[0]) > 0
    blocking = [b.name for b in rules.blocking if _share_block(features, b, i, j)]
    [pair] = _explained(features, rules, [r.key for r in records], np.array([i]), np.array([j]))
    total = f"match weight {pair.weight:+.2f}, probability {pair.probability:.4f} against {pair.threshold}"
    if pair.vetoed:
        verdict, reason = "vetoed", f"{pair.vetoed}: the names contradict a distinguishing token, which vetoes a match" + (
            " and overrides the external_refs link" if hard else "")
    elif hard:
        verdict, reason = "hard link", "one names the other in its external_refs: joined outright"
    elif not compared:
        verdict = "never compared"
        reason = (f"never compared: they share a block of {', '.join(blocking)}, but others sort between them "
                  f"(window) or either already has max_pairs_per_deal candidates; scored now: {total}"
                  if blocking else
                  f"never compared: no blocking pass puts them in one block (no shared domain, company, "
                  f"romanised company or close date); scored now: {total}")
    elif pair.match:
        verdict = "joined" if joined else "split by cluster coherence"
        reason = f"compared and matched ({total})" + (
            "" if joined else ", but another member of the cluster was found different from one of them")
    else:
        verdict, reason = "below threshold", f"compared: {total}"
    return PairVerdict(deal_key, other_key, joined, verdict, reason, compared, blocking, hard, pair)


def explain(warehouse: Warehouse, deal_key: str, rules: MatchRules) -> Explanation:
    """The stored golden deal of ``deal_key``, re-scored pair by pair with ``rules``."""
    with warehouse.begin() as conn:
        golden_id = conn.scalar(select(t.deal_links.c.golden_id).where(t.deal_links.c.deal_key == deal_key))
        if golden_id is None:
            exists = conn.scalar(select(t.deals.c.key).where(t.deals.c.key == deal_key))
            if exists is None:
                raise PipesyncError(f"no deal with key {deal_key!r} in the warehouse (keys look like 'hubspot:123')")
            raise PipesyncError(f"deal {deal_key!r} has not been consolidated yet: run `pipesync consolidate`")
        links = conn.execute(
            select(t.deal_links.c.deal_key, t.deal_links.c.score, t.deal_links.c.rule, t.deal_links.c.linked_to)
            .where(t.deal_links.c.golden_id == golden_id).order_by(t.deal_links.c.deal_key)
        ).all()
        golden = conn.execute(select(t.golden_deals).where(t.golden_deals.c.golden_id == golden_id)).mappings().first()
    records = {r.key: r for r in read_records(warehouse, [link.deal_key for link in links])}
    members = [
        MemberLink(link.deal_key, records[link.deal_key].source if link.deal_key in records else "?",
                   records[link.deal_key].name if link.deal_key in records else "", link.score, link.rule,
                   link.linked_to)
        for link in links
    ]
    fields: dict[str, dict[str, Any]] = {}
    conflicts: list[dict[str, Any]] = []
    confidence = None
    if golden is not None:
        confidence = golden["confidence"]
        conflicts = list(golden["conflicts"] or [])
        only = len(links) == 1
        for name, how in (golden["provenance"] or {}).items():
            fields[name] = {"value": golden[name], **how}
        if only:
            fields = {"*": {"deal_key": links[0].deal_key, "rule": "only member"}}
    return Explanation(
        deal_key, golden_id, confidence, members, explain_pairs(list(records.values()), rules), fields, conflicts
    )

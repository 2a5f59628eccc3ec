"""Why a deal sits in its golden deal: the cluster, each pair's comparisons, each field's winner."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
from sqlalchemy import select

from pipesync.consolidate.features import compute_features
from pipesync.consolidate.keys import load_lexicon
from pipesync.consolidate.records import Record
from pipesync.consolidate.rules import MatchRules
from pipesync.consolidate.scoring import NO_LEVEL, score_pairs
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
    scores = score_pairs(features, rules, left, right, keep_weights=True)
    explained = []
    for p, (a, b) in enumerate(pairs):
        results = []
        for c, comparison in enumerate(rules.comparisons):
            level = int(scores.levels[p, c])
            label = "not comparable" if level == NO_LEVEL else comparison.levels[level].label
            results.append(ComparisonResult(comparison.name, label, float(scores.weights[p, c])))
        probability = float(scores.probability[p])
        explained.append(PairExplanation(
            records[a].key, records[b].key, probability,
            probability >= rules.clustering.match_probability, results,
        ))
    return explained


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

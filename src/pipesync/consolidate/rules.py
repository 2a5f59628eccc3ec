"""Match and survivorship rules: the data the consolidation engine interprets.

The defaults (``default_rules.yaml``) work out of the box; a user points
``consolidation:`` in pipesync.yaml (or ``--rules``) at an edited copy.
Comparisons follow the Splink idea: each comparison has ordered levels, the
first level whose test holds gives its weight (a log2 Bayes factor), and the
weights plus the prior give the match probability of a pair.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipesync.yamlfile import load_model

DEFAULT_RULES_FILE = "default_rules.yaml"

# The keys computed once per deal (features.py) that rules can name.
KeyName = Literal[
    "company", "company_group", "account_domain", "name", "name_numbers", "name_tokens", "owner", "source", "outcome",
    "domains", "contacts", "amount", "close_date", "created_at", "deal_type", "subject", "company_latin",
]
SET_KEYS = frozenset({"domains", "contacts", "deal_type"})
TEXT_KEYS = frozenset({"company", "name", "subject", "company_latin"})
NUMBER_KEYS = frozenset({"amount"})
DAY_KEYS = frozenset({"close_date", "created_at"})
Scorer = Literal["ratio", "token_set_ratio", "token_sort_ratio", "partial_ratio", "WRatio", "QRatio"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Blocking(Strict):
    """One sorted-neighbourhood pass: records sharing ``on`` are sorted by ``sort``
    and each is compared with the next ``window - 1`` — never all pairs of a block."""

    name: str
    on: list[KeyName] = Field(min_length=1)
    sort: list[KeyName] = Field(default_factory=list)
    window: int = Field(default=3, ge=2, le=11)

    @model_validator(mode="after")
    def _keys(self) -> "Blocking":
        bad = [k for k in self.sort if k in SET_KEYS]
        if bad:
            raise ValueError(f"cannot sort by a set of values: {', '.join(bad)}")
        return self


class Level(Strict):
    """One level of a comparison: a test on one key, and the weight it gives when it holds."""

    label: str
    # differ: both known and unequal (two deals whose accounts name different websites)
    test: Literal["exact", "differ", "fuzzy", "within", "else"]
    key: KeyName | None = None
    # fuzzy: rapidfuzz scorer and the least similarity (0–100)
    scorer: Scorer = "token_set_ratio"
    min_similarity: float | None = Field(default=None, ge=0, le=100)
    # within: the largest difference, in days (dates) or relative to the larger amount
    days: float | None = Field(default=None, ge=0)
    relative: float | None = Field(default=None, ge=0)
    weight: float
    # Splink's term-frequency adjustment, one-sided: agreeing on a value more common
    # than average ("New Business", an amount of 10,000) weighs less, by log2 of how
    # much more common it is (at most 4)
    frequency_adjusted: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "Level":
        if self.test == "else":
            if self.key is not None:
                raise ValueError("an else level takes no key")
            return self
        if self.key is None:
            raise ValueError(f"a {self.test} level needs a key")
        if self.test == "fuzzy":
            if self.key not in TEXT_KEYS:
                raise ValueError(f"fuzzy compares text keys ({', '.join(sorted(TEXT_KEYS))}), not {self.key}")
            if self.min_similarity is None:
                raise ValueError("a fuzzy level needs min_similarity")
        if self.test == "within":
            if self.key in DAY_KEYS and self.days is None:
                raise ValueError(f"within on {self.key} needs days")
            if self.key in NUMBER_KEYS and self.relative is None:
                raise ValueError(f"within on {self.key} needs relative")
            if self.key not in DAY_KEYS | NUMBER_KEYS:
                raise ValueError(f"within compares dates or amounts, not {self.key}")
        if self.test in ("exact", "differ") and self.key in DAY_KEYS | NUMBER_KEYS:
            raise ValueError(f"use within with 0 for an exact {self.key}")
        if self.frequency_adjusted and (self.test in ("fuzzy", "differ") or self.key in SET_KEYS):
            raise ValueError("frequency_adjusted applies to exact and within levels on single values")
        return self


class Comparison(Strict):
    name: str
    levels: list[Level] = Field(min_length=1)
    # the weight when no level could be tested (the key is missing on either side)
    null_weight: float = 0.0

    @model_validator(mode="after")
    def _else_last(self) -> "Comparison":
        for level in self.levels[:-1]:
            if level.test == "else":
                raise ValueError("only the last level may be an else level")
        return self


class Veto(Strict):
    """A distinguishing token (tokens.py): two deals that each name one of this kind, and share none,
    are different deals, whatever else agrees — a hard link (external_refs) included."""

    label: str
    token: Literal["year", "seats", "phase", "region", "product"]


SurvivorRule = Literal[
    "source_priority", "most_recent", "most_complete", "most_advanced", "earliest", "latest", "union"
]


class FieldRule(Strict):
    """How one field of the golden record is chosen among the cluster's members."""

    rule: SurvivorRule | None = None
    # take the value from the member that won this other field (amount with its currency)
    follow: str | None = None
    # members disagreeing beyond the tolerance are recorded as a conflict
    conflicts: bool = False
    # numbers: relative difference; dates and instants: days; text: ignored (folded text must be equal)
    tolerance: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one_way(self) -> "FieldRule":
        if (self.rule is None) == (self.follow is None):
            raise ValueError("give exactly one of rule: or follow:")
        return self


class Survivorship(Strict):
    # earlier sources win under source_priority; unlisted sources come after, by name
    source_priority: list[str] = Field(default_factory=list)
    default: SurvivorRule = "most_recent"
    fields: dict[str, FieldRule] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_fields(self) -> "Survivorship":
        from pipesync.consolidate.records import DEAL_FIELDS

        for name, rule in self.fields.items():
            if name not in DEAL_FIELDS:
                raise ValueError(f"unknown deal field {name!r}")
            if rule.follow is not None:
                if rule.follow not in DEAL_FIELDS:
                    raise ValueError(f"{name}: follows unknown field {rule.follow!r}")
                leader = self.fields.get(rule.follow)
                if leader is not None and leader.follow is not None:
                    raise ValueError(f"{name}: follows {rule.follow}, which itself follows another field")
        return self


class Clustering(Strict):
    # a pair links when its match probability reaches this …
    match_probability: float = Field(default=0.9, gt=0, lt=1)
    # … and two records of one source (an in-system duplicate) need this much
    same_source_probability: float = Field(default=0.99, gt=0, lt=1)
    # a compared pair below this is evidence the two are different deals: their clusters never merge
    cannot_link_probability: float = Field(default=0.1, gt=0, lt=1)
    max_cluster_size: int = Field(default=12, ge=2)


class MatchRules(Strict):
    # a lexicon file of one's own (legal forms, free-mail domains); default: the shipped one
    lexicon: str | None = None
    blocking: list[Blocking] = Field(min_length=1)
    max_pairs_per_deal: int = Field(default=10, ge=1)
    # log2 prior odds that a candidate pair is the same deal
    prior: float
    comparisons: list[Comparison] = Field(min_length=1)
    vetoes: list[Veto] = Field(default_factory=list)
    # score with weights estimated from the run's own data (estimate.py) instead of the levels' weights;
    # either way the estimate is reported
    estimate_weights: bool = False
    clustering: Clustering = Field(default_factory=Clustering)
    survivorship: Survivorship = Field(default_factory=Survivorship)


def default_rules_path() -> Path:
    return Path(str(resources.files("pipesync.consolidate").joinpath(DEFAULT_RULES_FILE)))


def load_rules(path: str | Path | None = None) -> MatchRules:
    """The match rules at ``path``, or the defaults; every problem reported with its line."""
    path = Path(path) if path else default_rules_path()
    rules = load_model(path, MatchRules)
    if rules.lexicon and not Path(rules.lexicon).is_absolute():
        # like every path in a rules file, relative to the file itself
        rules = rules.model_copy(update={"lexicon": str(path.parent / rules.lexicon)})
    return rules

"""The headline metrics: stable keys, labels, units. docs/metrics.md defines each one.

The keys are part of the ``--json`` contract and of ``metric_snapshots``: never
rename one; add new keys instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Unit = Literal["money", "count", "ratio", "days", "money_per_day", "money_per_month"]


@dataclass(frozen=True)
class MetricDef:
    key: str
    label: str
    unit: Unit
    # Whether a figure from the previous period can be reconstructed (current-state lists cannot).
    compared: bool = True
    # Which way is good news (the report colours a change by it).
    higher_is_better: bool = True


HEADLINE: tuple[MetricDef, ...] = (
    MetricDef("open_pipeline_value", "Open pipeline", "money"),
    MetricDef("open_pipeline_count", "Open deals", "count"),
    MetricDef("weighted_pipeline", "Weighted pipeline", "money"),
    MetricDef("new_pipeline_count", "New deals", "count"),
    MetricDef("new_pipeline_value", "New pipeline", "money"),
    MetricDef("won_count", "Deals won", "count"),
    MetricDef("lost_count", "Deals lost", "count", higher_is_better=False),
    MetricDef("won_value", "Won value", "money"),
    MetricDef("win_rate", "Win rate", "ratio"),
    MetricDef("avg_won_deal_size", "Average won deal", "money"),
    MetricDef("avg_sales_cycle_days", "Average sales cycle", "days", higher_is_better=False),
    MetricDef("velocity_open_deals", "Open deals in velocity", "count"),
    MetricDef("velocity_per_day", "Sales velocity / day", "money_per_day"),
    MetricDef("velocity_per_month", "Sales velocity / month", "money_per_month"),
    MetricDef("stuck_deals", "Stuck deals", "count", compared=False, higher_is_better=False),
    MetricDef("stale_deals", "Stale deals", "count", compared=False, higher_is_better=False),
    MetricDef("suspicious_amounts", "Suspicious amounts", "count", compared=False, higher_is_better=False),
)

HEADLINE_BY_KEY = {m.key: m for m in HEADLINE}

# ``--by`` views: the deal column each one segments on. "all" is the whole deal set.
VIEWS: dict[str, str | None] = {
    "all": None,
    "owner": "owner",
    "source": "source",
    "pipeline": "pipeline",
    "lead_source": "lead_source",
}
ALL_SEGMENT = "all"

# How the funnel counts stage conversion (docs/metrics.md); the setting ``stage_conversion``.
StageConversion = Literal["cohort", "cumulative"]
STAGE_CONVERSIONS: tuple[str, ...] = get_args(StageConversion)
NO_VALUE_SEGMENT = "(none)"

# A win rate of a group (a lead source, an owner, a source…) with fewer deals closed in the period
# than this is withheld, and the group marked: 2 won of 2 is no 100% win rate. The whole deal set's
# rate is always shown.
MIN_CLOSED_FOR_RATE = 5

# An average month, for velocity per month: 365.25 / 12 days.
DAYS_PER_MONTH = 30.4375

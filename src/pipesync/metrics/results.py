"""What ``pipesync metrics`` produces: typed, and the shape of ``--json`` (stable keys, docs/metrics.md)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel


class Figure(BaseModel):
    """One figure for the period, the previous period's, and the change."""

    value: float | None
    previous: float | None = None
    delta: float | None = None
    delta_pct: float | None = None  # percent of the previous value; None when that is 0 or unknown


class SegmentMetrics(BaseModel):
    segment: str
    metrics: dict[str, Figure]
    # fewer deals closed in the period than MIN_CLOSED_FOR_RATE: its win rate is withheld (None)
    few_closed: bool = False


class PeriodInfo(BaseModel):
    start: date
    end: date  # for a previous period compared to date: the last day compared
    to_date: bool = False  # measured only up to the as-of instant (which falls inside the period)


class PeriodFigures(BaseModel):
    """One point of a trend: the whole deal set's headline figures for a period."""

    period: PeriodInfo
    values: dict[str, float | None]


class FunnelStep(BaseModel):
    stage: str
    label: str
    reached: int  # cohort: entered the step in the period; cumulative: reached it or a later one
    went_on: int | None  # cohort: of those, went on to a later step; cumulative: reached the next. None on won
    conversion: float | None  # went_on / reached
    share_of_first: float | None  # reached / reached at the first step
    previous_reached: int
    previous_conversion: float | None


class StageDays(BaseModel):
    stage: str
    label: str
    visits: int
    avg_days: float | None
    median_days: float | None
    previous_avg_days: float | None


class StagePipeline(BaseModel):
    stage: str
    label: str
    count: int
    value: float
    weighted: float


class LostReason(BaseModel):
    reason: str
    count: int
    value: float


class LeadSourceWinRate(BaseModel):
    lead_source: str
    won: int
    lost: int
    win_rate: float | None  # None when few_closed
    few_closed: bool = False  # won + lost below MIN_CLOSED_FOR_RATE: the rate is withheld


class RecordRef(BaseModel):
    """One CRM record behind a listed deal (a golden deal has one per member)."""

    key: str
    source: str
    source_id: str
    url: str | None = None


class FlaggedDeal(BaseModel):
    id: str
    name: str
    source: str
    stage: str
    owner: str
    amount: float | None
    reason: str  # why it is listed, in words
    days: float | None = None  # days in stage (stuck) or since the last touch (stale)
    typical_amount: float | None = None  # the owner's typical deal size (suspicious)
    records: list[RecordRef] = []


class DealList(BaseModel):
    count: int
    deals: list[FlaggedDeal]  # the largest by amount, at most the requested limit


class Metrics(BaseModel):
    period: PeriodInfo
    previous_period: PeriodInfo
    as_of: datetime
    view: str
    deal_set: str  # "golden" when consolidation has run, else "deals"
    reporting_currency: str
    stage_conversion: str  # how the funnel is counted: "cohort" or "cumulative"
    segments: list[SegmentMetrics]  # "all" first
    pipeline_by_stage: list[StagePipeline]
    funnel: list[FunnelStep]
    days_in_stage: list[StageDays]
    lost_reasons: list[LostReason]
    win_rate_by_lead_source: list[LeadSourceWinRate]
    stuck_deals: DealList
    stale_deals: DealList
    suspicious_amounts: DealList

    def total(self, key: str) -> Figure:
        return self.segments[0].metrics[key]

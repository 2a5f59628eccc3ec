"""The forecast as a typed result: ``--json`` is ``Forecast.model_dump(mode="json")``, with stable keys
(docs/forecast.md defines each one)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel

Method = Literal["stage_weighted", "history_weighted", "commit", "best_case"]
METHODS: tuple[Method, ...] = ("stage_weighted", "history_weighted", "commit", "best_case")
PeriodKind = Literal["quarter", "month"]


class Categories(BaseModel):
    """Won so far plus the open deals expected in the period, cumulated by category band."""

    commit: float
    best_case: float
    pipeline: float


class SegmentForecast(BaseModel):
    segment: str
    won_so_far: float
    open_deals: int  # open deals expected to close in the period (by their expected close date)
    open_value: float  # their amounts, unweighted
    stage_weighted: float
    history_weighted: float
    new_deals: float  # the part of history_weighted expected from deals not created yet
    categories: Categories
    forecast: float  # the chosen method's figure
    target: float | None
    gap_to_target: float | None  # target − forecast: what is still missing (negative: above target)
    coverage: float | None  # open_value ÷ (target − won so far)


class PeriodForecast(BaseModel):
    label: str  # "2026-Q4", "2026-11"
    start: date
    end: date
    current: bool  # the period the as-of day falls in
    segments: list[SegmentForecast]


class BacktestPeriod(BaseModel):
    label: str
    start: date
    end: date
    actual: float  # won value closed in the period, as the warehouse knows it today
    forecasts: dict[str, float]  # method → what it forecast as of the period's first day
    errors_pct: dict[str, float | None]  # method → 100 × (forecast − actual) ÷ actual; null when actual is 0


class MethodScore(BaseModel):
    method: str
    periods: int  # backtested periods with a won value to compare with
    bias_pct: float | None  # mean of errors_pct (signed: above 0 forecasts too high)
    mape_pct: float | None  # mean of |errors_pct|


class Backtest(BaseModel):
    periods: list[BacktestPeriod]
    methods: list[MethodScore]


class LearnedRate(BaseModel):
    """Of the deals in a stage for so many days at a learning instant, the share won since."""

    stage: str
    label: str
    days_from: int
    days_to: int | None  # None: and more
    observations: int
    won_rate: float | None
    stage_probability: float


class HistoryModel(BaseModel):
    min_sample: int
    instants: int  # learning instants used for the forecast
    observations: int  # open deals seen at those instants (a deal counts at each)
    # how many open deals were priced at each level for the current period, finest first
    deals_by_level: dict[str, int]
    rates: list[LearnedRate]


class Forecast(BaseModel):
    as_of: datetime
    period: PeriodKind
    view: str
    deal_set: Literal["golden", "deals"]
    reporting_currency: str
    method: Method  # the default method: the best backtest (lowest MAPE)
    method_reason: str
    periods: list[PeriodForecast]
    backtest: Backtest
    history: HistoryModel

    def total(self, index: int = 0) -> SegmentForecast:
        """The whole deal set's forecast of the ``index``-th period."""
        return self.periods[index].segments[0]

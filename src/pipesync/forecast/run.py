"""``pipesync forecast`` as a Python call: load the truth once, forecast, backtest, set against targets."""

from __future__ import annotations

from datetime import date, datetime, timezone

import numpy as np

from pipesync.config import Settings, Target
from pipesync.errors import ConfigError
from pipesync.forecast.compute import PERIODS_PER_YEAR, backtest, best_method, learning_instants, project
from pipesync.forecast.history import DAY_EDGES, LEVELS, Learned, Situations, learn
from pipesync.forecast.periods import following, label, period_of, preceding
from pipesync.forecast.results import (
    Categories, Forecast, HistoryModel, LearnedRate, PeriodForecast, PeriodKind, SegmentForecast,
)
from pipesync.metrics.compute import load_truth
from pipesync.metrics.definitions import ALL_SEGMENT, VIEWS
from pipesync.metrics.periods import day_of, end_of_day
from pipesync.model import Category
from pipesync.pipeline import load_pipeline
from pipesync.warehouse.store import Warehouse

BY = ("owner", "pipeline", "source")
BACKTEST_PERIODS = 4


def forecast(
    settings: Settings,
    periods: int = 2,
    period: PeriodKind = "quarter",
    by: str | None = None,
    as_of: date | datetime | None = None,
    backtest_periods: int = BACKTEST_PERIODS,
) -> Forecast:
    """The forecast of the period ``as_of`` falls in and the ``periods - 1`` after it, by ``by``.

    ``as_of``: a day (the figures as they stood at its end, UTC), an instant, or None for now. The
    ``backtest_periods`` periods before the first are backtested; the method with the lowest error is
    the ``forecast`` figure.
    """
    if periods < 1:
        raise ConfigError("--periods must be at least 1")
    if by is not None and by not in BY:
        raise ConfigError(f"unknown --by {by!r}: use one of {', '.join(BY)}")
    now = _instant(as_of)
    t = now.timestamp() / 86400.0
    cfg = settings.forecast
    current = period_of(day_of(now), period)
    shown = following(current, period, periods)
    earliest = preceding(current, period, backtest_periods + cfg.history_years * PERIODS_PER_YEAR[period])[-1]
    pipeline = load_pipeline(settings.pipeline_path())
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            truth = load_truth(conn, pipeline, earliest.start, owners=by == "owner")
    finally:
        warehouse.close()
    situations = Situations(truth, settings.stale_after_days)
    view = VIEWS[by] if by else None
    if view:
        labels = truth.deals.segments[view]
        codes, names = labels.codes.astype(np.int64), [ALL_SEGMENT, *labels.labels]
        codes = codes + 1  # segment 0 is the whole deal set, summed below
    else:
        codes, names = np.zeros(len(truth.deals), dtype=np.int64), [ALL_SEGMENT]
    learned = learn(situations, learning_instants(t, shown, period, cfg.history_years), codes, len(names), known_by=t)
    projection = project(situations, learned, t, shown, codes, len(names), cfg)
    bt = backtest(situations, current, period, backtest_periods, cfg)
    method, reason = best_method(bt)
    rows = []
    for k, p in enumerate(shown):
        figures = projection.figures[k]
        if view:
            for values in figures.values():
                values[0] = values[1:].sum()
        name = label(p, period)
        segments = [_segment(names[i], figures, i, method, _target(cfg.targets, name, by, names[i])) for i in range(len(names))]
        segments[1:] = sorted(segments[1:], key=lambda s: (-s.forecast, s.segment))
        rows.append(PeriodForecast(label=name, start=p.start, end=p.end, current=k == 0, segments=segments))
    return Forecast(
        as_of=now, period=period, view=by or "all", deal_set=truth.deals.kind, reporting_currency=settings.reporting_currency,
        method=method, method_reason=reason, periods=rows, backtest=bt,  # type: ignore[arg-type]
        history=_history_model(situations, learned, cfg.min_sample, projection.levels),
    )


def _instant(as_of: date | datetime | None) -> datetime:
    if as_of is None:
        return datetime.now(timezone.utc)
    if isinstance(as_of, datetime):
        return as_of if as_of.tzinfo else as_of.replace(tzinfo=timezone.utc)
    return end_of_day(as_of)


def _target(targets: list[Target], period: str, by: str | None, segment: str) -> float | None:
    """The target of the period for the segment: the whole deal set's has neither owner nor pipeline."""
    for target in targets:
        if target.period != period:
            continue
        scope = "owner" if target.owner is not None else "pipeline" if target.pipeline is not None else None
        name = target.owner if scope == "owner" else target.pipeline
        if (segment == ALL_SEGMENT and scope is None) or (
            segment != ALL_SEGMENT and scope == by and str(name).casefold() == segment.casefold()
        ):
            return float(target.amount)
    return None


def _segment(name: str, f: dict[str, np.ndarray], i: int, method: str, target: float | None) -> SegmentForecast:
    value = {key: float(values[i]) for key, values in f.items()}
    chosen = value[method]
    remaining = None if target is None else target - value["won_so_far"]
    return SegmentForecast(
        segment=name, won_so_far=value["won_so_far"], open_deals=int(value["open_deals"]), open_value=value["open_value"],
        stage_weighted=value["stage_weighted"], history_weighted=value["history_weighted"], new_deals=value["new_deals"],
        categories=Categories(commit=value["commit"], best_case=value["best_case"], pipeline=value["pipeline"]),
        forecast=chosen, target=target, gap_to_target=None if target is None else target - chosen,
        coverage=value["open_value"] / remaining if remaining and remaining > 0 else None,
    )


def _history_model(situations: Situations, learned: Learned, min_sample: int, levels: np.ndarray) -> HistoryModel:
    st = situations.truth.stages
    settled_n, settled_w = learned.settled
    rates = []
    for code, stage in enumerate(st.pipeline.stages):
        if stage.category is not Category.OPEN:
            continue
        for b, lo in enumerate(DAY_EDGES):
            key = code * len(DAY_EDGES) + b
            n = int(settled_n[key])
            rates.append(LearnedRate(
                stage=stage.key, label=stage.label, days_from=lo, days_to=DAY_EDGES[b + 1] if b + 1 < len(DAY_EDGES) else None,
                observations=n, won_rate=float(settled_w[key] / n) if n else None, stage_probability=stage.probability,
            ))
    return HistoryModel(
        min_sample=min_sample, instants=learned.instants, observations=learned.observations,
        deals_by_level={name: int(levels[i]) for i, name in enumerate(LEVELS)}, rates=rates,
    )

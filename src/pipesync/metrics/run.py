"""``pipesync metrics`` as a Python call: load the truth once, compute each view, store the snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pipesync.config import Settings
from pipesync.metrics import snapshots
from pipesync.metrics.compute import attach_records, load_truth, measure, trend
from pipesync.metrics.definitions import StageConversion
from pipesync.metrics.periods import Period, day_of, quarter_of, trend_periods
from pipesync.metrics.results import Metrics, PeriodFigures
from pipesync.pipeline import load_pipeline
from pipesync.warehouse.store import Warehouse


def link_records(settings: Settings, metrics: Metrics) -> None:
    """Sets the web page of every CRM record behind the listed deals: the source's adapter
    knows its system's record URLs (None where there is no page, or the source is gone)."""
    sources = {s.name: s for s in settings.sources}
    for listed in (metrics.stuck_deals, metrics.stale_deals, metrics.suspicious_amounts):
        for deal in listed.deals:
            for record in deal.records:
                source = sources.get(record.source)
                record.url = source.options.record_url(str(record.source_id)) if source and record.source_id else None


@dataclass
class MetricsRun:
    views: dict[str, Metrics]
    # The metrics asked for, of the whole deal set, over the trend periods then the period itself
    trend: list[PeriodFigures]


def run_views(
    settings: Settings,
    period: Period | None = None,
    views: Sequence[str] = ("all",),
    *,
    now: datetime | None = None,
    limit: int = 50,
    trend_metrics: Sequence[str] = (),
    stage_conversion: StageConversion | None = None,
) -> MetricsRun:
    """The metrics of ``period`` for each view as of ``now``, each stored as a snapshot.

    ``now`` is the as-of instant (default: the wall clock; ``periods.end_of_day(D)``
    for the figures as they stood at the end of day D); ``period`` defaults to the
    quarter it falls in. ``trend_metrics``: the figures to compute for the trend
    (the last 4 quarters, or 12 months, then ``period``); ``stage_conversion``
    overrides the setting of that name.
    """
    now = now or datetime.now(timezone.utc)
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    period = period or quarter_of(day_of(now))
    history = trend_periods(period) if trend_metrics else []
    pipeline = load_pipeline(settings.pipeline_path())
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            truth = load_truth(conn, pipeline, (history[0] if history else period.previous()).start)
            results = {}
            for view in views:
                metrics = measure(
                    truth, period, view=view, now=now, stale_after_days=settings.stale_after_days,
                    reporting_currency=settings.reporting_currency,
                    stage_conversion=stage_conversion or settings.stage_conversion, limit=limit,
                )
                attach_records(conn, metrics)
                link_records(settings, metrics)
                snapshots.store(conn, metrics, taken_at=now)
                results[view] = metrics
            points = trend(truth, [*history, period], now, trend_metrics) if trend_metrics else []
    finally:
        warehouse.close()
    return MetricsRun(results, points)


def run_metrics(
    settings: Settings,
    period: Period | None = None,
    *,
    view: str = "all",
    now: datetime | None = None,
    limit: int = 50,
    stage_conversion: StageConversion | None = None,
) -> Metrics:
    """The metrics for ``period`` and ``view`` as of ``now`` (see run_views); stores a snapshot."""
    return run_views(settings, period, (view,), now=now, limit=limit, stage_conversion=stage_conversion).views[view]

"""``pipesync metrics`` as a Python call: load the truth once, compute each view, store the snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from pipesync.config import Settings
from pipesync.metrics import snapshots
from pipesync.metrics.compute import attach_records, load_truth, measure
from pipesync.metrics.periods import Period, quarter_of
from pipesync.metrics.results import Metrics
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
    trend: list[snapshots.TrendPoint]  # of the metrics asked for, from the snapshots (this run's included)


def run_views(
    settings: Settings,
    period: Period | None = None,
    views: Sequence[str] = ("all",),
    *,
    now: datetime | None = None,
    limit: int = 50,
    trend_metrics: Sequence[str] = (),
) -> MetricsRun:
    """The metrics of ``period`` (default: the current quarter) for each view, each stored as a snapshot."""
    now = now or datetime.now(timezone.utc)
    period = period or quarter_of(now.date())
    pipeline = load_pipeline(settings.pipeline_path())
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            truth = load_truth(conn, pipeline, period)
            results = {}
            for view in views:
                metrics = measure(
                    truth, period, view=view, now=now, stale_after_days=settings.stale_after_days,
                    reporting_currency=settings.reporting_currency, limit=limit,
                )
                attach_records(conn, metrics)
                link_records(settings, metrics)
                snapshots.store(conn, metrics, taken_at=now)
                results[view] = metrics
            trend = snapshots.trend(conn, list(trend_metrics)) if trend_metrics else []
    finally:
        warehouse.close()
    return MetricsRun(results, trend)


def run_metrics(
    settings: Settings,
    period: Period | None = None,
    *,
    view: str = "all",
    now: datetime | None = None,
    limit: int = 50,
) -> Metrics:
    """The metrics for ``period`` (default: the current quarter) and ``view``; stores a snapshot."""
    return run_views(settings, period, (view,), now=now, limit=limit).views[view]

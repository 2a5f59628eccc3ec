"""``pipesync report``: one self-contained HTML file (CSS, JS and SVG charts inline; opens offline).

The page is rendered by Jinja2 with autoescaping on, so every value from the
warehouse (deal names, owners, reasons…) is escaped; a Content-Security-Policy
allows only this file's own script and style (by hash) and no network at all.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from pipesync.config import Settings
from pipesync.errors import PipesyncError
from pipesync.files import write_atomically
from pipesync.forecast.results import Forecast
from pipesync.forecast.run import forecast
from pipesync.metrics.definitions import HEADLINE_BY_KEY, MIN_CLOSED_FOR_RATE, MetricDef, StageConversion, Unit
from pipesync.metrics.formatting import format_delta, format_value
from pipesync.metrics.periods import Period, day_of, kind, month_of, quarter_of
from pipesync.metrics.results import DealList, Metrics, PeriodFigures, PeriodInfo, SegmentMetrics
from pipesync.metrics.run import run_views
from pipesync.report import charts

CARDS = ("open_pipeline_value", "weighted_pipeline", "new_pipeline_value", "win_rate", "avg_won_deal_size", "avg_sales_cycle_days", "velocity_per_month")
BREAKDOWN = ("open_pipeline_count", "open_pipeline_value", "weighted_pipeline", "won_count", "win_rate", "avg_won_deal_size", "velocity_per_month")
TREND = ("win_rate", "velocity_per_month")
BREAKDOWN_VIEWS = ("owner", "source")
BREAKDOWN_ROWS = 25


@dataclass
class ReportData:
    """Everything the page shows: the whole deal set, and the breakdowns by owner and by source."""

    overall: Metrics
    breakdowns: dict[str, Metrics]
    trend: list[PeriodFigures]  # the last 4 quarters (or 12 months), then the period
    forecast: Forecast  # this and the next quarter (months when the period is a month), and the backtest


def build_report(
    settings: Settings,
    out: str | Path = "report.html",
    period: Period | None = None,
    *,
    now: datetime | None = None,
    limit: int = 50,
    stage_conversion: StageConversion | None = None,
) -> Path:
    """Computes the metrics as of ``now`` (storing their snapshots) and writes the report; returns its path."""
    return write_report(report_data(settings, period, now=now, limit=limit, stage_conversion=stage_conversion), settings, out)


def report_data(
    settings: Settings,
    period: Period | None = None,
    *,
    now: datetime | None = None,
    limit: int = 50,
    stage_conversion: StageConversion | None = None,
) -> ReportData:
    """The metrics the report shows as of ``now``, computed once (and stored as snapshots); see run_views."""
    run = run_views(
        settings, period, ("all", *BREAKDOWN_VIEWS), now=now, limit=limit, trend_metrics=TREND, stage_conversion=stage_conversion
    )
    overall = run.views["all"]
    kind_ = "month" if kind(Period(overall.period.start, overall.period.end)) == "month" else "quarter"
    ahead = forecast(settings, periods=2, period=kind_, as_of=overall.as_of)
    return ReportData(overall, {v: run.views[v] for v in BREAKDOWN_VIEWS}, run.trend, ahead)


def write_report(data: ReportData, settings: Settings, out: str | Path = "report.html") -> Path:
    html = render(data, settings)
    try:
        return write_atomically(out, html)
    except OSError as e:
        raise PipesyncError(f"{out}: cannot write the report: {e.strerror}") from None


def _asset(name: str) -> str:
    return resources.files("pipesync.report").joinpath(name).read_text(encoding="utf-8")


def _csp_hash(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()


def render(data: ReportData, settings: Settings) -> str:
    """The report page as one HTML string."""
    env = Environment(loader=PackageLoader("pipesync.report", "."), autoescape=select_autoescape(default=True, default_for_string=True))
    css, js = _asset("report.css"), _asset("report.js")
    m = data.overall
    cur = m.reporting_currency
    return env.get_template("report.html").render(
        m=m,
        # Our own files, inlined verbatim: escaping them would break them (and their CSP hashes).
        css=Markup(css),
        js=Markup(js),
        csp=f"default-src 'none'; style-src '{_csp_hash(css)}'; script-src '{_csp_hash(js)}'; img-src data:; base-uri 'none'; form-action 'none'",
        generated=_instant(m.as_of),
        period_kind=kind(Period(m.period.start, m.period.end)),
        cards=[_card(HEADLINE_BY_KEY[k], m, cur) for k in CARDS],
        attention=[_card(HEADLINE_BY_KEY[k], m, cur) for k in ("stuck_deals", "stale_deals", "suspicious_amounts")],
        funnel_svg=charts.funnel(
            [
                charts.FunnelBar(
                    _short_label(s.label), s.reached,
                    "" if s.conversion is None else f"{format_value(s.conversion, 'ratio')} went on",
                )
                for s in m.funnel
            ],
            "Funnel: deals that entered each stage" if m.stage_conversion == "cohort" else "Funnel: deals that reached each stage",
        ),
        funnel=m.funnel,
        pipeline_svg=charts.bars(
            [charts.Bar(_short_label(s.label), s.value, f"{format_value(s.value, 'money', cur)} · {s.count:,}", s.weighted) for s in m.pipeline_by_stage],
            "Open pipeline by stage (inner bar: weighted)",
        ),
        trend_svgs=_trend_charts(data.trend, m),
        days_svg=charts.bars(
            [charts.Bar(_short_label(s.label), s.avg_days or 0, _days_text(s.avg_days, s.median_days), s.median_days) for s in m.days_in_stage],
            "Days in stage: average (inner bar: median)",
        ),
        days=m.days_in_stage,
        forecast=_forecast(data.forecast),
        breakdowns={view: _breakdown(b, cur) for view, b in data.breakdowns.items()},
        breakdown_columns=[HEADLINE_BY_KEY[k].label for k in BREAKDOWN],
        lost_reasons=m.lost_reasons,
        lead_sources=m.win_rate_by_lead_source,
        min_closed=MIN_CLOSED_FOR_RATE,
        lists=[
            ("stuck", "Stuck deals", "Open deals longer in their stage than its SLA", _deal_rows(m.stuck_deals, cur), m.stuck_deals.count),
            ("stale", "Stale deals", f"Open deals (parked ones aside) with no activity or update for over {settings.stale_after_days} days", _deal_rows(m.stale_deals, cur), m.stale_deals.count),
            ("suspicious", "Suspicious amounts", "Amounts far from the owner's typical deal size: a misplaced zero? Flagged only, never changed", _deal_rows(m.suspicious_amounts, cur), m.suspicious_amounts.count),
        ],
        fmt=format_value,
        cur=cur,
    )


def _short_label(label: str) -> str:
    """'Qualification (BANT: …)' → 'Qualification': the chart's axis has room for the name only."""
    return label.split(" (")[0]


def _days_text(avg: float | None, median: float | None) -> str:
    if avg is None:
        return "no visits ended"
    return f"avg {avg:.1f} d · median {median:.1f} d"


def _card(d: MetricDef, m: Metrics, cur: str) -> dict[str, Any]:
    f = m.total(d.key)
    # A card's label already says "/ month": the figure keeps to the amount, so it fits.
    shown: Unit = "money" if d.unit.startswith("money") else d.unit
    tone = "flat"
    if f.delta:
        tone = "good" if (f.delta > 0) == d.higher_is_better else "bad"
    return {
        "key": d.key,
        "label": d.label,
        "value": format_value(f.value, shown, cur),
        "delta": format_delta(f.delta, f.delta_pct, shown, cur),
        "previous": format_value(f.previous, shown, cur) if d.compared else "",
        "tone": tone,
    }


def _instant(as_of: datetime) -> str:
    """'end of 2026-11-22' for an as-of day, else the time."""
    utc = as_of.astimezone(timezone.utc)
    if utc.time() == datetime.min.time():
        return f"end of {day_of(utc)}"
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def _trend_charts(trend: list[PeriodFigures], m: Metrics) -> list[Any]:
    charts_out = []
    for key in TREND:
        d = HEADLINE_BY_KEY[key]
        points = [(_period_label(p.period), p.values.get(key)) for p in trend]
        charts_out.append((d.label, charts.line(points, f"{d.label} by period", lambda v, d=d: format_value(v, d.unit, m.reporting_currency).replace(" / month", ""))))
    return charts_out


def _period_label(info: PeriodInfo) -> str:
    start, end = info.start, info.end
    p = Period(start, end)
    if p == quarter_of(start):
        return f"Q{(start.month - 1) // 3 + 1} {start.year}" + (" QTD" if info.to_date else "")
    if p == month_of(start):
        return f"{start:%b %Y}" + (" MTD" if info.to_date else "")
    return f"{start:%d %b %y}–{end:%d %b %y}" + (" (to date)" if info.to_date else "")


METHOD_LABELS = {"stage_weighted": "Stage-weighted", "history_weighted": "History-weighted", "commit": "Commit", "best_case": "Best case"}


def _forecast(f: Forecast) -> dict[str, Any]:
    """This and the next period by category against target, and the backtest's forecast against actual."""
    money = lambda x: format_value(x, "money")  # noqa: E731 - the page's header names the currency
    rows, bars = [], []
    for p in f.periods:
        s = p.segments[0]
        rows.append({"label": p.label + (" (current)" if p.current else ""), "cells": [
            (money(v), v) for v in (s.won_so_far, s.categories.commit, s.categories.best_case, s.categories.pipeline, s.forecast, s.target, s.gap_to_target)
        ] + [("–" if s.coverage is None else f"{s.coverage:.2f}×", s.coverage)]})
        target = f" · target {money(s.target)}" if s.target is not None else ""
        bars += [
            charts.Bar(f"{p.label} commit", s.categories.commit, money(s.categories.commit), mark=s.target),
            charts.Bar(f"{p.label} best case", s.categories.best_case, money(s.categories.best_case), mark=s.target),
            charts.Bar(f"{p.label} pipeline", s.categories.pipeline, money(s.categories.pipeline), mark=s.target),
            charts.Bar(f"{p.label} forecast", s.forecast, money(s.forecast) + target, mark=s.target),
        ]
    chosen = f.method
    past = [
        charts.Bar(r.label, r.actual, f"won {money(r.actual)}, forecast {money(r.forecasts[chosen])}", r.forecasts[chosen])
        for r in f.backtest.periods
    ]
    backtest = [
        {"label": r.label, "actual": (money(r.actual), r.actual), "cells": [
            (f"{money(r.forecasts[m.method])} ({'–' if (e := r.errors_pct[m.method]) is None else f'{e:+.0f}%'})", r.forecasts[m.method])
            for m in f.backtest.methods
        ]}
        for r in f.backtest.periods
    ]
    return {
        "method": METHOD_LABELS[chosen], "reason": f.method_reason, "rows": rows,
        "columns": ["Won so far", "Commit", "Best case", "Pipeline", "Forecast", "Target", "Gap", "Coverage"],
        "svg": charts.bars(bars, "This and next period by category (tick: target)"),
        "past_svg": charts.bars(past, f"Won per past period (inner bar: {METHOD_LABELS[chosen].lower()} forecast as of its first day)"),
        "methods": [(METHOD_LABELS[m.method], m) for m in f.backtest.methods], "backtest": backtest,
    }


def _breakdown(b: Metrics, cur: str) -> dict[str, Any]:
    shown = b.segments[1 : 1 + BREAKDOWN_ROWS]
    return {"rows": [_segment_row(s, cur) for s in shown], "more": max(0, len(b.segments) - 1 - BREAKDOWN_ROWS),
            "withheld": any(s.few_closed for s in shown)}


def _segment_row(s: SegmentMetrics, cur: str) -> dict[str, Any]:
    return {
        "segment": s.segment,
        "cells": [(format_value(s.metrics[k].value, HEADLINE_BY_KEY[k].unit, cur), s.metrics[k].value) for k in BREAKDOWN],
    }


def _deal_rows(deals: DealList, cur: str) -> list[dict[str, Any]]:
    rows = []
    for d in deals.deals:
        links = [(r.source, r.url) for r in d.records if r.url]
        rows.append({
            "name": d.name or d.id,
            "owner": d.owner,
            "stage": d.stage,
            "amount": format_value(d.amount, "money", cur),
            "amount_sort": d.amount,
            "reason": d.reason,
            "links": links,
            "sources": sorted({r.source for r in d.records}) or [d.source],
        })
    return rows

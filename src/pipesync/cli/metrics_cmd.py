"""``pipesync metrics``."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from
from pipesync.metrics.definitions import HEADLINE, HEADLINE_BY_KEY, MIN_CLOSED_FOR_RATE, STAGE_CONVERSIONS, VIEWS  # no dependencies: cheap

if TYPE_CHECKING:  # loaded when metrics are computed or shown, not with every command
    from pipesync.metrics.periods import Period
    from pipesync.metrics.results import DealList, Metrics

_DATE = dict(formats=["%Y-%m-%d"], metavar="YYYY-MM-DD")
FromOption = typer.Option(None, "--from", help="First day of the period (default: start of the as-of day's quarter).", **_DATE)
ToOption = typer.Option(None, "--to", help="Last day of the period (default: end of the as-of day's quarter).", **_DATE)
AsOfOption = typer.Option(
    None, "--as-of", help="The figures as they stood at the end of this day (UTC), whatever today is (default: now).", **_DATE
)

StageConversionOption = typer.Option(
    None, "--stage-conversion", help=f"Funnel: {' or '.join(STAGE_CONVERSIONS)} (default: the setting stage_conversion, cohort)."
)
SEGMENT_COLUMNS = ("open_pipeline_value", "weighted_pipeline", "win_rate", "avg_won_deal_size", "avg_sales_cycle_days", "velocity_per_month")


@app.command()
@handles_errors
def metrics(
    config: Path = ConfigOption,
    start: datetime = FromOption,
    end: datetime = ToOption,
    as_of: datetime = AsOfOption,
    by: str = typer.Option("all", "--by", help=f"View: {', '.join(VIEWS)}."),
    stage_conversion: str = StageConversionOption,
    limit: int = typer.Option(50, "--limit", min=0, help="Most stuck, stale and suspicious deals listed (largest first)."),
    json_out: bool = JsonOption,
) -> None:
    """Pipeline metrics for a period against the previous one (to date: up to the same point); stores a snapshot."""
    from pipesync.metrics.run import run_metrics  # numpy and the warehouse: loaded only by the commands that need them

    settings = settings_from(config)
    instant = as_of_instant(as_of)
    result = run_metrics(
        settings, period_from(start, end, instant), view=by, now=instant, limit=limit,
        stage_conversion=stage_conversion,
    )
    if json_out:
        emit_json(result.model_dump(mode="json"))
    else:
        render(result)


def as_of_instant(day: datetime | None) -> datetime:
    """The end of the --as-of day (UTC), or now."""
    from pipesync.metrics.periods import end_of_day

    return end_of_day(day.date()) if day else datetime.now(timezone.utc)


def period_from(start: datetime | None, end: datetime | None, as_of: datetime) -> Period:
    """The period given by --from/--to; a bound left out comes from the as-of day's quarter (UTC)."""
    from pipesync.metrics.periods import day_of, resolve_period

    return resolve_period(start and start.date(), end and end.date(), day_of(as_of))


def render(m: Metrics) -> None:
    from rich.table import Table

    from pipesync.metrics.formatting import format_delta, format_value

    cur = m.reporting_currency
    title = f"{period_title(m)} · {m.deal_set}"
    table = Table("metric", "value", "previous", "change", title=title, title_justify="left")
    for d in HEADLINE:
        f = m.total(d.key)
        table.add_row(d.label, format_value(f.value, d.unit, cur), format_value(f.previous, d.unit, cur) if d.compared else "", format_delta(f.delta, f.delta_pct, d.unit, cur))
    console.print(table)
    if m.view != "all":
        seg = Table(m.view, *(HEADLINE_BY_KEY[k].label for k in SEGMENT_COLUMNS), title=f"by {m.view}", title_justify="left")
        for s in m.segments[1:]:
            seg.add_row(s.segment, *(format_value(s.metrics[k].value, HEADLINE_BY_KEY[k].unit, cur) for k in SEGMENT_COLUMNS))
        console.print(seg)
        _note_withheld(any(s.few_closed for s in m.segments[1:]))
    funnel = Table("stage", "reached" if m.stage_conversion == "cumulative" else "entered", "went on", "conversion", "previous", title=f"funnel ({m.stage_conversion})", title_justify="left")
    for step in m.funnel:
        funnel.add_row(step.label, f"{step.reached:,}", "" if step.went_on is None else f"{step.went_on:,}", format_value(step.conversion, "ratio"), format_value(step.previous_conversion, "ratio"))
    console.print(funnel)
    days = Table("stage", "visits", "average", "median", title="days in stage", title_justify="left")
    for s in m.days_in_stage:
        days.add_row(s.label, f"{s.visits:,}", format_value(s.avg_days, "days"), format_value(s.median_days, "days"))
    console.print(days)
    reasons = Table("lost reason", "deals", "value", title="lost reasons", title_justify="left")
    for r in m.lost_reasons:
        reasons.add_row(r.reason, f"{r.count:,}", format_value(r.value, "money", cur))
    console.print(reasons)
    leads = Table("lead source", "won", "lost", "win rate", title="win rate by lead source", title_justify="left")
    for w in m.win_rate_by_lead_source:
        leads.add_row(w.lead_source, f"{w.won:,}", f"{w.lost:,}", format_value(w.win_rate, "ratio"))
    console.print(leads)
    _note_withheld(any(w.few_closed for w in m.win_rate_by_lead_source))
    for name, deals in (("stuck deals", m.stuck_deals), ("stale deals", m.stale_deals), ("suspicious amounts", m.suspicious_amounts)):
        _render_list(name, deals, cur)


def _note_withheld(any_withheld: bool) -> None:
    if any_withheld:
        console.print(f"win rate –: fewer than {MIN_CLOSED_FOR_RATE} deals closed in the period, too few for a rate")


def period_title(m: Metrics) -> str:
    """'2026-10-01 to 2026-12-31, quarter to date (as of 2026-11-22; vs 2026-07-01 to 2026-08-22)'."""
    from pipesync.metrics.periods import Period, day_of, kind

    span = f"{m.period.start} to {m.period.end}"
    versus = f"vs {m.previous_period.start} to {m.previous_period.end}"
    if m.period.to_date:
        return f"{span}, {kind(Period(m.period.start, m.period.end))} to date (as of {day_of(m.as_of)}; {versus})"
    return f"{span} ({versus})"


def _render_list(name: str, deals: DealList, currency: str) -> None:
    from rich.table import Table

    from pipesync.metrics.formatting import format_value

    table = Table("deal", "owner", "amount", "why", title=f"{name}: {deals.count:,} (largest {min(10, len(deals.deals))})", title_justify="left")
    for d in deals.deals[:10]:
        table.add_row(d.name or d.id, d.owner, format_value(d.amount, "money", currency), d.reason)
    console.print(table)

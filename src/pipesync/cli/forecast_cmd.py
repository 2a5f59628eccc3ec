"""``pipesync forecast``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from
from pipesync.cli.metrics_cmd import AsOfOption

if TYPE_CHECKING:  # loaded when a forecast is made
    from pipesync.forecast.results import Forecast

METHOD_LABELS = {"stage_weighted": "stage-weighted", "history_weighted": "history-weighted", "commit": "commit", "best_case": "best case"}


@app.command()
@handles_errors
def forecast(
    config: Path = ConfigOption,
    periods: int = typer.Option(2, "--periods", min=1, help="Periods forecast: the as-of day's and the ones after it."),
    period: str = typer.Option("quarter", "--period", help="quarter or month."),
    by: str = typer.Option(None, "--by", help="Split by owner, pipeline or source."),
    as_of: datetime = AsOfOption,
    backtest: bool = typer.Option(False, "--backtest", help="Also show each method's forecast of the past periods against what closed."),
    json_out: bool = JsonOption,
) -> None:
    """Won value of this and the next periods: stage-weighted, history-weighted, by category, against targets."""
    from pipesync.forecast.run import forecast as make_forecast  # numpy and the warehouse: loaded only here

    result = make_forecast(settings_from(config), periods=periods, period=period, by=by, as_of=as_of and as_of.date())  # type: ignore[arg-type]
    if json_out:
        emit_json(result.model_dump(mode="json"))
    else:
        render(result, backtest)


def render(f: Forecast, backtest: bool) -> None:
    from rich.table import Table

    from pipesync.metrics.formatting import format_value

    cur = f.reporting_currency

    def money(x: float | None) -> str:
        return format_value(x, "money", cur)

    console.print(f"forecast as of {f.as_of:%Y-%m-%d %H:%M} UTC · {f.deal_set} · {cur}", highlight=False)
    console.print(f"method: {METHOD_LABELS[f.method]} ({f.method_reason})", highlight=False)
    rows = [
        ("won so far", lambda s: money(s.won_so_far)),
        ("open deals expected", lambda s: f"{s.open_deals:,} · {money(s.open_value)}"),
        ("stage-weighted", lambda s: money(s.stage_weighted)),
        ("history-weighted", lambda s: money(s.history_weighted)),
        ("  of which deals not created yet", lambda s: money(s.new_deals)),
        ("commit", lambda s: money(s.categories.commit)),
        ("best case", lambda s: money(s.categories.best_case)),
        ("pipeline", lambda s: money(s.categories.pipeline)),
        (f"forecast ({METHOD_LABELS[f.method]})", lambda s: money(s.forecast)),
        ("target", lambda s: money(s.target)),
        ("gap to target", lambda s: money(s.gap_to_target)),
        ("coverage", lambda s: "–" if s.coverage is None else f"{s.coverage:.2f}×"),
    ]
    whole = Table("", *(f"{p.label}{' (current)' if p.current else ''}" for p in f.periods), title="whole pipeline", title_justify="left")
    for name, show in rows:
        whole.add_row(name, *(show(p.segments[0]) for p in f.periods))
    console.print(whole)
    if f.view != "all":
        shown = ("won so far", f"forecast ({METHOD_LABELS[f.method]})", "commit", "best case", "target", "gap to target", "coverage")
        columns = [show for name, show in rows if name in shown]
        for p in f.periods:
            table = Table(f.view, *(name for name, _ in rows if name in shown), title=f"{p.label} by {f.view}", title_justify="left")
            for s in p.segments[1:]:
                table.add_row(s.segment, *(show(s) for show in columns))
            console.print(table)
    if not backtest:
        return
    bt = Table("period", "actual", *(METHOD_LABELS[m.method] for m in f.backtest.methods), title="backtest: forecast as of each period's first day (error)", title_justify="left")
    for row in f.backtest.periods:
        bt.add_row(row.label, money(row.actual), *(
            f"{money(row.forecasts[m.method])} ({'–' if (e := row.errors_pct[m.method]) is None else f'{e:+.0f}%'})" for m in f.backtest.methods
        ))
    console.print(bt)
    scores = Table("method", "periods", "bias", "MAPE", title="backtest error per method", title_justify="left")
    for m in f.backtest.methods:
        scores.add_row(
            METHOD_LABELS[m.method] + (" (default)" if m.method == f.method else ""), str(m.periods),
            "–" if m.bias_pct is None else f"{m.bias_pct:+.1f}%", "–" if m.mape_pct is None else f"{m.mape_pct:.1f}%",
        )
    console.print(scores)

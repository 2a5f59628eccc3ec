"""``pipesync report``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from
from pipesync.cli.metrics_cmd import AsOfOption, FromOption, StageConversionOption, ToOption, as_of_instant, period_from


@app.command()
@handles_errors
def report(
    config: Path = ConfigOption,
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="Where to write the HTML file."),
    start: datetime = FromOption,
    end: datetime = ToOption,
    as_of: datetime = AsOfOption,
    stage_conversion: str = StageConversionOption,
    json_out: bool = JsonOption,
) -> None:
    """Writes a self-contained HTML pipeline report (opens offline) and stores a metrics snapshot."""
    from pipesync.report.builder import build_report  # numpy, jinja2: loaded only when a report is built

    instant = as_of_instant(as_of)
    path = build_report(
        settings_from(config), out, period_from(start, end, instant), now=instant,
        stage_conversion=stage_conversion,
    )
    if json_out:
        emit_json({"report": str(path.resolve())})
    else:
        console.print(f"report written to [bold]{path}[/]", highlight=False)

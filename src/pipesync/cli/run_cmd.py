"""``pipesync run``: the scheduled job, step by step, with a summary per step."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from pipesync import logs
from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from

if TYPE_CHECKING:
    from pipesync.run import JobResult


@app.command("run")
@handles_errors
def run_command(
    config: Path = ConfigOption,
    only: list[str] = typer.Option(None, "--only", metavar="STEP", help="Run only this step (repeatable): "
                                   "sync, consolidate, metrics, plan, apply."),
    skip: list[str] = typer.Option(None, "--skip", metavar="STEP", help="Leave this step out (repeatable)."),
    full: bool = typer.Option(False, "--full", help="Sync: re-read everything, not just what changed since the last run."),
    wait: float = typer.Option(0, "--wait", metavar="SECONDS", min=0,
                               help="Wait this long for another run of a source to finish (default: stop at once)."),
    json_out: bool = JsonOption,
) -> None:
    """The scheduled job: sync → consolidate → metrics snapshot → push-back plan (→ apply, if `run.apply`).

    Exit 0 when every step succeeded, 1 when one failed (the others' results are stored), 2 on a configuration error.
    """
    from pipesync.run import run_job

    result = run_job(settings_from(config), only=only or (), skip=skip or (), full=full, wait=wait)
    if json_out:
        emit_json(result.as_dict())
    elif logs.current_format() == "text":  # JSON logs carry every step's summary already: nothing else is printed
        render(result)
    if result.exit_code:
        raise typer.Exit(result.exit_code)


def render(result: JobResult) -> None:
    from rich.table import Table

    table = Table(title=f"run {result.run_id}")
    for col in ("step", "status", "seconds", "summary"):
        table.add_column(col, justify="right" if col == "seconds" else "left")
    for s in result.steps:
        colour = {"ok": "green", "failed": "red"}.get(s.status, "dim")
        table.add_row(s.step, f"[{colour}]{s.status}[/]", f"{s.seconds:.1f}", escape(_brief(s.summary)))
    console.print(table)
    for s in result.steps:
        if s.error:
            console.print(f"[red]{s.step} failed:[/] {escape(s.error)}", highlight=False, soft_wrap=True)


def _brief(summary: dict) -> str:
    """The few figures that say what a step did."""
    if "sources" in summary:
        return ", ".join(f"{n}: {c['read']} read, {c['inserted']} new, {c['updated']} updated"
                         for n, c in summary["sources"].items())
    keys = ("deals", "golden_deals", "changes", "path", "deal_set", "counts")
    return ", ".join(f"{k} {summary[k]}" for k in keys if k in summary)

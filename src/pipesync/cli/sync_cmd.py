"""``pipesync sync``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from pipesync.logs import progress_lines
from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from

if TYPE_CHECKING:  # the sync engine (SQLAlchemy, the adapters) loads when the command runs, not with every command
    from pipesync.sync import SyncResult


@app.command()
@handles_errors
def sync(
    sources: list[str] = typer.Argument(None, help="Sources to sync (default: all in the config)."),
    config: Path = ConfigOption,
    full: bool = typer.Option(False, "--full", help="Re-read everything, not just what changed since the last run."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when any record was quarantined."),
    quarantine_unmapped: bool = typer.Option(
        False, "--quarantine-unmapped", help="Sync sources whose mapping misses live stages; quarantine those deals."
    ),
    workers: int = typer.Option(
        None, "--workers", min=1, help="Processes that read a large file source side by side (default: one per core)."
    ),
    allow_deletions: str = typer.Option(
        None, "--allow-deletions", metavar="N%",
        help="Let a snapshot (a file) mark up to N% of a source's live deals deleted; "
        "by default one that would delete more than 20% (and more than 5 deals) is held back.",
    ),
    wait: float = typer.Option(0, "--wait", metavar="SECONDS", min=0,
                               help="Wait this long for another run of a source to finish (default: stop at once)."),
    json_out: bool = JsonOption,
) -> None:
    """Incremental extract → normalize → warehouse for every configured source."""
    from pipesync.sync import DELETION_SHARE, run_sync

    settings = settings_from(config)
    options = {
        "full": full, "quarantine_unmapped": quarantine_unmapped, "workers": workers, "wait": wait,
        "allow_deletions": DELETION_SHARE if allow_deletions is None else _share(allow_deletions),
    }
    if json_out or not console.is_terminal:
        # no live bar where nobody watches (cron, a CI log): progress lines on stderr at a steady interval
        result = run_sync(settings, sources or (), progress=progress_lines(logging.getLogger("pipesync.sync"), "sync"),
                          **options)
    if json_out:
        out = result.as_dict()
        if result.exit_code:  # the error object every command's --json has on failure, beside the counts
            failed = "; ".join(f"{name}: {c.error}" for name, c in result.sources.items() if c.error)
            out["error"] = {"type": "SourceFailed", "message": failed, "exit_code": result.exit_code}
        emit_json(out)
    elif console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=console, transient=True,
        ) as bar:
            tasks: dict[str, int] = {}

            def advance(source: str, n: int) -> None:
                if source not in tasks:
                    tasks[source] = bar.add_task(f"syncing {source}", total=None)
                bar.advance(tasks[source], n)

            result = run_sync(settings, sources or (), progress=advance, **options)
    if not json_out:
        render(result)
    if result.exit_code or (strict and result.quarantined):
        raise typer.Exit(result.exit_code or 1)


def _share(text: str) -> float:
    """``--allow-deletions``: "30%" (or "30") → 0.3."""
    try:
        share = float(text.strip().removesuffix("%")) / 100
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise typer.BadParameter(f"{text!r} is not a percentage from 0% to 100%", param_hint="--allow-deletions")
    return share


def render(result: SyncResult) -> None:
    from rich.table import Table

    table = Table(title=f"sync run {result.run_id}: {result.status}")
    for col in ("source", "read", "inserted", "updated", "unchanged", "deleted", "quarantined"):
        table.add_column(col, justify="left" if col == "source" else "right", no_wrap=True)
    for name, c in result.sources.items():
        table.add_row(name, *(str(getattr(c, k)) for k in ("read", "inserted", "updated", "unchanged", "deleted", "quarantined")))
    console.print(table)
    for name, c in result.sources.items():
        if c.error:
            console.print(f"[red]{name} failed:[/] ", c.error, highlight=False, soft_wrap=True)  # a path stays whole
        if c.dropped:
            console.print(
                f"[yellow]warning:[/] {name}: {c.dropped} deal(s) kept without a value that could not be read "
                f"(first: {escape(c.first_dropped or '')}); the raw record keeps it.",
                highlight=False, soft_wrap=True,
            )
        for warning in c.warnings:
            console.print(f"[yellow]warning:[/] {escape(warning['message'])}", highlight=False, soft_wrap=True)
    if result.quarantined:
        console.print(
            f"{result.quarantined} record(s) quarantined: see the quarantine table "
            "(source, record, field, reason); fix the data or the mapping and sync again."
        )

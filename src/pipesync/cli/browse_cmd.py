"""``pipesync runs`` and ``pipesync quarantine``: what the runs did, and what they refused."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from


@app.command()
@handles_errors
def runs(
    config: Path = ConfigOption,
    limit: int = typer.Option(20, "--limit", min=1, help="How many of the latest runs."),
    json_out: bool = JsonOption,
) -> None:
    """Recent sync runs: status, duration, counts."""
    from rich.table import Table

    from pipesync.warehouse.browse import COUNTED, recent_runs
    from pipesync.warehouse.store import Warehouse

    warehouse = Warehouse(settings_from(config).warehouse_url())
    try:
        found = recent_runs(warehouse, limit)
    finally:
        warehouse.close()
    if json_out:
        emit_json({"runs": found})
        return
    table = Table(title="sync runs, newest first")
    for col in ("run", "started", "seconds", "status", "sources", *COUNTED):
        table.add_column(col, justify="left" if col in ("started", "status", "sources") else "right")
    for r in found:
        table.add_row(str(r["run_id"]), f"{r['started_at']:%Y-%m-%d %H:%M:%S}",
                      "" if r["seconds"] is None else f"{r['seconds']:.1f}", r["status"], escape(", ".join(r["sources"])),
                      *(str(r["totals"][k]) for k in COUNTED))
    console.print(table)
    for r in found:
        if r["error"]:
            console.print(f"[red]run {r['run_id']}:[/] {escape(r['error'])}", highlight=False, soft_wrap=True)


@app.command()
@handles_errors
def quarantine(
    source: str = typer.Argument(None, help="Only this source's records (default: all)."),
    config: Path = ConfigOption,
    limit: int = typer.Option(None, "--limit", min=1, help="At most this many records."),
    json_out: bool = JsonOption,
) -> None:
    """What sync refused: each record, where it is, which field, and why."""
    from rich.table import Table

    from pipesync.warehouse.browse import quarantine_entries
    from pipesync.warehouse.store import Warehouse

    settings = settings_from(config)
    if source is not None:
        settings.source(source)  # an unknown name is a usage error naming the sources
    warehouse = Warehouse(settings.warehouse_url())
    try:
        found = quarantine_entries(warehouse, source, limit)
    finally:
        warehouse.close()
    if json_out:
        emit_json({"quarantine": found})
        return
    table = Table(title=f"quarantine: {len(found)} record(s)")
    for col in ("source", "where", "field", "reason", "since"):
        table.add_column(col)
    for q in found:
        table.add_row(q["source"], escape(q["locator"]), q["field"], escape(q["reason"]), f"{q['first_seen']:%Y-%m-%d}")
    console.print(table)

"""``pipesync warehouse status | upgrade``: the warehouse's schema revision, and bringing it to this release's."""

from __future__ import annotations

from pathlib import Path

import typer

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from

warehouse_app = typer.Typer(help="The warehouse's schema: which revision it has, and upgrading it.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command("status")
@handles_errors
def status(config: Path = ConfigOption, json_out: bool = JsonOption) -> None:
    """Show the warehouse's schema revision and the one this pipesync needs."""
    from pipesync.warehouse.store import Warehouse
    from pipesync.warehouse.version import status as schema_status

    warehouse = Warehouse(settings_from(config).warehouse_url(), create=False)
    try:
        result = {"warehouse": warehouse.safe_url, **schema_status(warehouse.engine)}
    finally:
        warehouse.close()
    if json_out:
        emit_json(result)
        return
    revision = result["revision"] or "none (made before migrations, or empty)"
    console.print(f"{result['warehouse']}: schema revision {revision}; this pipesync needs {result['needed']}")


@warehouse_app.command("upgrade")
@handles_errors
def upgrade(config: Path = ConfigOption, json_out: bool = JsonOption) -> None:
    """Upgrade the warehouse's tables to this release's schema (back the database up first)."""
    from pipesync.warehouse.store import Warehouse
    from pipesync.warehouse.version import upgrade as upgrade_schema

    warehouse = Warehouse(settings_from(config).warehouse_url(), create=False)
    try:
        before, after = upgrade_schema(warehouse.engine)
        result = {"warehouse": warehouse.safe_url, "from": before, "to": after}
    finally:
        warehouse.close()
    if json_out:
        emit_json(result)
    elif before == after:
        console.print(f"{result['warehouse']}: already at schema revision {after}")
    else:
        console.print(f"{result['warehouse']}: upgraded from schema revision {before or 'none'} to {after}")

"""``pipesync config check``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, err_console, handles_errors

config_app = typer.Typer(help="Look at the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
@handles_errors
def check(config: Path = ConfigOption, json_out: bool = JsonOption) -> None:
    """Validate the config, every source's options and secrets, the mapping, pipeline and rules files,
    without running anything. Exit 0 when all is well, 2 listing every problem."""
    from pipesync.check import check_project  # loads the mapping, pipeline and rules models

    result = check_project(config)
    if json_out:
        emit_json({"config": str(config), "ok": result.ok, "problems": result.problems, "checked": result.checked})
    elif result.ok:
        console.print(f"{escape(str(config))}: ok ({len(result.checked)} checked)", highlight=False)
    else:
        err_console.print(f"[bold red]error:[/] {len(result.problems)} problem(s)", highlight=False)
        for problem in result.problems:
            err_console.print(f"  - {escape(problem)}", highlight=False)
    if not result.ok:
        raise typer.Exit(2)

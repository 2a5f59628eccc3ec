"""``pipesync init``."""

from __future__ import annotations

from pathlib import Path

import typer

from pipesync.cli.app import app, console, handles_errors


@app.command()
@handles_errors
def init(
    folder: Path = typer.Argument(Path("."), help="Where to write pipesync.yaml and mappings/."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
) -> None:
    """Write a commented pipesync.yaml and the default mappings/ to start from."""
    from pipesync.init import init_project

    for path in init_project(folder, force=force):
        console.print(f"wrote {path}")

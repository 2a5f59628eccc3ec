"""The ``pipesync`` command line: thin commands that parse, call a function, render.

Each command lives in its own module here and registers itself on :data:`app`;
the work is done by the function it calls, which is usable from Python as is.
"""

from pipesync.cli.app import app

# Importing a command module registers its command(s) on the app.
from pipesync.cli import (  # noqa: E402,F401
    consolidate_cmd,
    demo_cmd,
    init_cmd,
    map_cmd,
    metrics_cmd,
    report_cmd,
    sync_cmd,
)
from pipesync.cli.sandbox_cmd import sandbox_app  # noqa: E402

app.add_typer(sandbox_app, name="sandbox")

__all__ = ["app"]

"""``pipesync demo`` and ``pipesync sandbox``, added to the product's command line.

:func:`register` is this distribution's ``pipesync.commands`` entry point
(sandbox/pyproject.toml); the product calls it at start, so it imports only the
command functions, which import their work when they run.
"""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    from pipesync_sandbox.cli.demo_cmd import demo
    from pipesync_sandbox.cli.sandbox_cmd import sandbox_app

    app.command()(demo)
    app.add_typer(sandbox_app, name="sandbox")


# The command modules run on the product's app: whichever is imported first (a test, `python -c`), the app
# is set up before it, and registers them through the entry point above. Imported last, so `register` exists
# when the app, importing, asks for it.
import pipesync.cli  # noqa: E402,F401

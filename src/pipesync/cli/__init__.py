"""The ``pipesync`` command line: thin commands that parse, call a function, render.

Each command lives in its own module here and registers itself on :data:`app`;
the work is done by the function it calls, which is usable from Python as is.
"""

from pipesync.cli.app import app

# Importing a command module registers its command(s) on the app.
from pipesync.cli import init_cmd, map_cmd, sync_cmd  # noqa: E402,F401

__all__ = ["app"]

"""The ``pipesync`` command line: thin commands that parse, call a function, render.

Each command lives in its own module here and registers itself on :data:`app`;
the work is done by the function it calls, which is usable from Python as is.
"""

import atexit
import gc

from pipesync.cli.app import app

# Registered first, so it runs last: the interpreter's final collection walks every live object
# (pydantic's schemas, SQLAlchemy's caches, what a command still holds), a tenth of a second
# spent on memory the process hands back anyway. Objects still die and close as modules go.
atexit.register(gc.freeze)

# Importing a command module registers its command(s) on the app.
from pipesync.cli import (  # noqa: E402,F401
    browse_cmd,
    config_cmd,
    consolidate_cmd,
    forecast_cmd,
    init_cmd,
    map_cmd,
    metrics_cmd,
    migrate_cmd,
    pushback_cmd,
    report_cmd,
    run_cmd,
    sync_cmd,
    warehouse_cmd,
)
from pipesync.cli.plugins import load_plugins  # noqa: E402

# Then the commands other installed parts add (pipesync-sandbox: demo, sandbox).
load_plugins(app)

__all__ = ["app"]

"""``python -m pipesync`` is the ``pipesync`` command."""

from pipesync.cli import app

app()

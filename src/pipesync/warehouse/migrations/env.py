"""Alembic's entry point: runs the revisions on the connection pipesync hands it (never a URL of its own)."""

from __future__ import annotations

from alembic import context

from pipesync.warehouse.schema import metadata
from pipesync.warehouse.version import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters a table by copying it
with context.begin_transaction():
    context.run_migrations()

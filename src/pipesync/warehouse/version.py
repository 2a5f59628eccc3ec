"""Which schema a warehouse has, and bringing it to the one this release needs.

Every schema change ships an Alembic revision under ``migrations/versions``. A new,
empty warehouse is created from the current tables and stamped with the newest
revision (Alembic's create-then-stamp recipe: one transaction, not a replay of
history). An existing warehouse at another revision is refused with the command
that fixes it, so a release never writes into tables it does not know.
Checking costs one query and never imports Alembic; creating and upgrading do.
"""

from __future__ import annotations

from importlib import resources

from sqlalchemy import Connection, Engine, inspect, text

from pipesync.errors import WarehouseError
from pipesync.warehouse import schema as t

VERSION_TABLE = "pipesync_schema_version"
# The newest revision under migrations/versions (a test keeps the two equal).
HEAD = "0004"
FIRST = "0001"  # the schema of the release that had no migrations: its warehouses have no version row
UPGRADE_HINT = "run `pipesync warehouse upgrade` (back the warehouse up first)"


def revision_of(conn: Connection) -> str | None:
    """The warehouse's revision; None when it has no version table (new, or made before migrations)."""
    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608 - a constant


def ensure_current(engine: Engine, shown_url: str) -> None:
    """Creates a new warehouse at HEAD; refuses one at any other revision, saying how to fix it."""
    with engine.begin() as conn:
        revision = revision_of(conn)
        if revision == HEAD:
            return
        if revision is None and not inspect(conn).has_table(t.deals.name):
            # Two first runs at once: one creates, the other waits and finds it made.
            _lock_for_creating(conn)
            revision = revision_of(conn)
            if revision is None and not inspect(conn).has_table(t.deals.name):
                create(conn)
                return
            if revision == HEAD:
                return
    if revision is None:
        raise WarehouseError(f"the warehouse {shown_url} was made by a pipesync release before schema migrations: "
                             f"{UPGRADE_HINT}")
    if revision in _known_revisions():
        raise WarehouseError(f"the warehouse {shown_url} has schema revision {revision}; this pipesync needs {HEAD}: "
                             f"{UPGRADE_HINT}")
    raise WarehouseError(f"the warehouse {shown_url} has schema revision {revision}, newer than this pipesync knows "
                         f"(newest {HEAD}): upgrade pipesync, or point it at another warehouse")


def _lock_for_creating(conn: Connection) -> None:
    """Holds, until the transaction ends, a lock that any other process creating this warehouse takes too."""
    if conn.dialect.name == "sqlite":
        # The database's write lock, taken now: the driver runs CREATE TABLE outside any transaction
        # of its own, so without it another process could see half the tables.
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    elif conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('pipesync: create the warehouse'))"))


def create(conn: Connection) -> None:
    """Makes the current tables in an empty database and records them as HEAD."""
    t.metadata.create_all(conn)
    _stamp(conn, HEAD)


def drop(conn: Connection) -> None:
    """Removes every warehouse table and the version record (tests start each case empty)."""
    t.metadata.drop_all(conn)
    conn.execute(text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


def upgrade(engine: Engine) -> tuple[str | None, str]:
    """Brings the warehouse to HEAD; a warehouse from before migrations is first stamped as the first revision.

    Returns (revision before, revision after).
    """
    from alembic import command

    with engine.begin() as conn:
        before = revision_of(conn)
        if before is None and inspect(conn).has_table(t.deals.name):
            _stamp(conn, FIRST)
            before = FIRST
        config = _config(conn)
        command.upgrade(config, "head")
    return before, HEAD


def _stamp(conn: Connection, revision: str) -> None:
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    context.stamp(_scripts(), revision)


def _config(conn: Connection):  # noqa: ANN202 - alembic's Config, imported lazily
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("pipesync.warehouse").joinpath("migrations")))
    config.attributes["connection"] = conn
    return config


def _scripts():  # noqa: ANN202 - alembic's ScriptDirectory, imported lazily
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(resources.files("pipesync.warehouse").joinpath("migrations")))


def _known_revisions() -> set[str]:
    return {s.revision for s in _scripts().walk_revisions()}


def head_of_scripts() -> str:
    return _scripts().get_current_head()


def status(engine: Engine) -> dict[str, str | None]:
    """The warehouse's revision and the one this release needs."""
    with engine.connect() as conn:
        return {"revision": revision_of(conn), "needed": HEAD}

"""Bulk writes the way PostgreSQL wants them: COPY into a temporary staging table, then one statement.

Row-by-row INSERTs (even pipelined) cost PostgreSQL a parse-bind-execute round per row;
COPY streams the rows in one go, and a single ``INSERT … SELECT … ON CONFLICT`` (or
``UPDATE … FROM``) merges them with set-based work. Used where thousands of rows are
written at once (a sync's pages); SQLite keeps its executemany, which is faster there.

The staging table is a temporary copy of the target's columns, private to the session and
emptied at each commit, so concurrent writers never see each other's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy import Connection, Table

Merge = Literal["upsert", "update"]


def copy_merge(conn: Connection, table: Table, columns: Sequence[str], rows: Iterable[Sequence[Any]], how: Merge) -> None:
    """Writes ``rows`` (driver-ready values, in ``columns``' order) into ``table`` (PostgreSQL, psycopg 3).

    ``upsert``: INSERT, a row whose primary key is there already updating it (its other columns);
    ``update``: UPDATE the rows with those primary keys (a key not there is left out).
    Runs in ``conn``'s transaction.
    """
    stage = _staging_table(conn, table)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"TRUNCATE {stage}")  # an earlier merge of this transaction's rows
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        keys = [c.name for c in table.primary_key]
        others = [c for c in columns if c not in keys]
        if how == "upsert":
            sets = ", ".join(f'"{c}" = excluded."{c}"' for c in others)
            cursor.execute(
                f'INSERT INTO "{table.name}" ({names}) SELECT {names} FROM {stage} '
                f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
            )
        else:
            sets = ", ".join(f'"{c}" = s."{c}"' for c in others)
            match = " AND ".join(f't."{k}" = s."{k}"' for k in keys)
            cursor.execute(f'UPDATE "{table.name}" AS t SET {sets} FROM {stage} AS s WHERE {match}')
    finally:
        cursor.close()


def _staging_table(conn: Connection, table: Table) -> str:
    """The session's staging table for ``table`` (created in the transaction, so a rollback cannot
    leave the session believing it exists)."""
    name = f"pipesync_stage_{table.name}"
    conn.exec_driver_sql(
        f'CREATE TEMPORARY TABLE IF NOT EXISTS {name} (LIKE "{table.name}" INCLUDING DEFAULTS) ON COMMIT DELETE ROWS'
    )
    return name

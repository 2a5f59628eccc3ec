"""Whole-table reads and writes, column by column: a million rows without SQLAlchemy's per-row work.

Consolidation reads every live deal and rewrites ``golden_deals`` and
``deal_links`` on each run. Through SQLAlchemy's result rows and executemany,
the per-row handling (a parameter dict per row, a processor call per value)
cost several times the database's own work. Here the driver's rows come back
untouched with the columns' own result processors beside them, for the caller
to apply once per distinct value; and rows are written from whole columns,
each converted as a list by its bind processor — on PostgreSQL through COPY.

A sync's pages merge into ``deals`` rather than replace it: on PostgreSQL they are COPYed
into a temporary staging table (a copy of the target's columns, private to the session and
emptied at each commit) and merged by one ``INSERT … SELECT … ON CONFLICT`` or ``UPDATE …
FROM`` (:func:`copy_merge`); row-by-row INSERTs, even pipelined, cost a parse-bind-execute
round per row. SQLite keeps its executemany, which is faster there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, timezone
from functools import lru_cache
from typing import Any, Literal

import orjson
from sqlalchemy import JSON, Connection, Select, Table, insert

from pipesync.warehouse.schema import UTCDateTime

FETCH = 50_000
# SQLite page cache while a bulk write runs, KiB: the tables' indexes (a golden id per row, in no order)
# take random inserts, which with the default 2 MB cache re-read pages from disk for each row at a million
SQLITE_BULK_CACHE_KIB = 131_072


def json_text(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def column_converter(kind: Any, proc: Callable[[Any], Any]) -> Callable[[list[Any]], list[Any]]:
    """Applies a column's bind processor to a whole column of values."""
    if getattr(kind, "impl_instance", kind).python_type in (date, datetime):  # UTCDateTime: its impl's
        # Converting a date or instant costs microseconds (UTC, then text on SQLite) and exports
        # repeat them a lot (close dates, import timestamps): each distinct value once.
        proc = lru_cache(maxsize=16384)(proc)
    if proc(None) is None:
        # Most optional fields are empty: a processor that keeps None as None is not called for it.
        return lambda values: [None if v is None else proc(v) for v in values]
    if isinstance(kind, JSON):
        # JSON writes None as the text null; most deals' list columns (contacts, refs) are empty.
        empty = proc([])
        return lambda values: [empty if v == [] else proc(v) for v in values]
    return lambda values: [proc(v) for v in values]


def read_raw(conn: Connection, query: Select[Any]) -> tuple[Iterator[Sequence[Any]], dict[str, Callable[[Any], Any]]]:
    """The driver's rows of ``query``, streamed, and each column's result processor (by column label; only those
    that convert). ``processor(value)`` is the value SQLAlchemy would have returned for a non-NULL ``value``."""
    dialect = conn.dialect
    # parameters rendered in place (a list for IN), passed as they are: text and numbers, which need no converting
    compiled = query.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.params
    result = conn.exec_driver_sql(
        str(compiled), tuple(params[n] for n in compiled.positiontup) if compiled.positiontup else params
    )
    converters = {}
    for column, (name, coltype, *_) in zip(query.selected_columns, result.cursor.description):
        proc = column.type.dialect_impl(dialect).result_processor(dialect, coltype)
        if isinstance(column.type, UTCDateTime) and dialect.name == "sqlite":
            proc = _utc_from_sqlite  # the same value in one call, not three: a million deals have four each
        if proc is not None:
            converters[column.key] = proc
    return _stream(result.cursor), converters


def _utc_from_sqlite(text: str) -> datetime:
    """An instant as SQLite holds it (UTC, naive text ``YYYY-MM-DD HH:MM:SS.ffffff``), aware."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def _utc_to_sqlite(values: list[Any]) -> list[Any]:
    """Aware instants as SQLite holds them (``UTCDateTime``: UTC, naive, SQLAlchemy's text with microseconds)."""
    utc = timezone.utc
    out = []
    for v in values:
        if v is not None:
            if v.tzinfo is None:
                raise ValueError("naive datetime written to the warehouse")
            v = v.astimezone(utc).isoformat(" ", "microseconds")[:26]
        out.append(v)
    return out


def _stream(cursor: Any) -> Iterator[Sequence[Any]]:
    while rows := cursor.fetchmany(FETCH):
        yield from rows


def clear(conn: Connection, table: Table) -> None:
    """Empties ``table`` within the transaction (TRUNCATE on PostgreSQL: a DELETE there rewrites each row)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f'TRUNCATE TABLE "{table.name}"')
    else:
        conn.execute(table.delete())  # SQLite: an unconditional DELETE drops the pages at once


class ColumnInsert:
    """Rows for ``table`` given column by column (``{column: values}``), each column converted as a list
    by its own bind processor, then written by COPY (PostgreSQL) or the driver's executemany."""

    def __init__(self, conn: Connection, table: Table, columns: Sequence[str]):
        self.table, self.columns = table, list(columns)
        dialect = conn.dialect
        self._copy = dialect.name == "postgresql" and dialect.driver == "psycopg"
        self._convert: dict[str, Callable[[list[Any]], list[Any]]] = {}
        for name in self.columns:
            kind = table.c[name].type
            if self._copy and isinstance(kind, JSON):
                # COPY takes the JSON text itself (the bind processor wraps values for a parameter)
                self._convert[name] = lambda values: [None if v is None else json_text(v) for v in values]
                continue
            if isinstance(kind, UTCDateTime) and dialect.name == "sqlite":
                self._convert[name] = _utc_to_sqlite
                continue
            proc = kind.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self._convert[name] = column_converter(kind, proc)
        compiled = insert(table).compile(dialect=dialect, column_keys=self.columns)
        self._sql = str(compiled)
        self._order = list(compiled.positiontup or self.columns)
        self._named = not compiled.positiontup

    def write(self, conn: Connection, batches: Iterable[Mapping[str, list[Any]]]) -> int:
        """Writes each batch of columns; returns the rows written."""
        if conn.dialect.name != "sqlite":
            return self._write(conn, batches)
        cache = conn.exec_driver_sql("PRAGMA cache_size").scalar()
        conn.exec_driver_sql(f"PRAGMA cache_size=-{SQLITE_BULK_CACHE_KIB}")
        try:
            return self._write(conn, batches)
        finally:  # the connection goes back to the pool: its cache back to its size
            conn.exec_driver_sql(f"PRAGMA cache_size={int(cache)}")

    def _write(self, conn: Connection, batches: Iterable[Mapping[str, list[Any]]]) -> int:
        written = 0
        cursor = conn.connection.dbapi_connection.cursor() if self._copy else None  # type: ignore[union-attr]
        for batch in batches:
            columns = {name: self._convert[name](values) if name in self._convert else values
                       for name, values in batch.items()}
            if cursor is not None:
                names = ", ".join(f'"{c}"' for c in self.columns)
                with cursor.copy(f'COPY "{self.table.name}" ({names}) FROM STDIN') as copy:
                    for row in zip(*(columns[c] for c in self.columns)):
                        copy.write_row(row)
            else:
                rows = zip(*(columns[c] for c in self._order))
                params = [dict(zip(self._order, row)) for row in rows] if self._named else list(rows)
                if params:
                    conn.exec_driver_sql(self._sql, params)
            written += len(next(iter(columns.values()), []))
        return written


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

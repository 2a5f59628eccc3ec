"""Whole-table reads and writes, column by column: a million rows without SQLAlchemy's per-row work.

Consolidation reads every live deal and rewrites ``golden_deals`` and
``deal_links`` on each run. Through SQLAlchemy's result rows and executemany,
the per-row handling (a parameter dict per row, a processor call per value)
cost several times the database's own work. Here the driver's rows come back
untouched with the columns' own result processors beside them, for the caller
to apply once per distinct value; and rows are written from whole columns,
each converted as a list by its bind processor — on PostgreSQL through COPY.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, Connection, Select, Table, insert

from pipesync.warehouse.schema import UTCDateTime
from pipesync.warehouse.store import _column_converter, json_text

FETCH = 50_000
# SQLite page cache while a bulk write runs, KiB: the tables' indexes (a golden id per row, in no order)
# take random inserts, which with the default 2 MB cache re-read pages from disk for each row at a million
SQLITE_BULK_CACHE_KIB = 131_072


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
                self._convert[name] = _column_converter(kind, proc)
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

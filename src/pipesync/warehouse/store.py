"""The warehouse: one SQLAlchemy engine, tables created on first use, idempotent writes.

Everything a sync learns from one page of a source (deals, observed stage
changes, quarantine, deletions, aliases) is written with that source's cursor in
ONE transaction, so a run killed at any point and re-run leaves the same tables
as one clean run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    JSON, Column, Connection, Engine, String, Table, and_, bindparam, create_engine, event, false, func, make_url, select, update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError

from pipesync.errors import WarehouseError
from pipesync.redaction import safe_url, scrub, url_secrets
from pipesync.warehouse.bulk import column_converter, copy_merge, json_text
from pipesync.warehouse.version import ensure_current
from pipesync.model import Cursor, Deal, Discovery, StageChange
from pipesync.warehouse import schema as t


def now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(slots=True)
class DealRows:
    """Deals to write, column by column as a page is normalized: each Deal field's values, each deal's
    key and content hash (``deals.content_hash``)."""

    columns: Mapping[str, Sequence[Any]]
    keys: Sequence[str]
    hashes: Sequence[str]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def of(cls, deals: Sequence[tuple[Deal, str]]) -> DealRows:
        """From whole deals, each with its content hash."""
        return cls(
            {f: [getattr(d, f) for d, _ in deals] for f in Deal.model_fields}, [d.key for d, _ in deals], [h for _, h in deals]
        )


class DealStatement:
    """A `deals` INSERT or UPDATE compiled once and fed straight from :class:`DealRows`.

    At tens of thousands of rows per second, building a row dict per deal and
    SQLAlchemy's per-row parameter handling cost more than the database itself.
    This keeps the columns' own bind processors (JSON, UTC datetimes, numerics)
    and drops the rest: each column that needs converting is converted as a
    list, and the driver's rows are zipped together. ``params`` names each bind
    parameter's column.
    """

    def __init__(self, engine: Engine, stmt: Any, params: dict[str, Column[Any]]):
        dialect = engine.dialect
        compiled = stmt.compile(dialect=dialect, column_keys=list(params))
        self.sql = str(compiled)
        # positional drivers (SQLite) take tuples; named ones (psycopg) take dicts
        self._named = None if compiled.positiontup else list(params)
        names = compiled.positiontup or list(params)
        self._columns = [params[name].name for name in names]
        self._fields = [c for c in self._columns if c not in ("key", "content_hash", "synced_at")]
        self._convert: dict[str, Callable[[list[Any]], list[Any]]] = {}
        for name in names:
            column, kind = params[name].name, params[name].type
            proc = kind.dialect_impl(dialect).bind_processor(dialect)
            if dialect.name == "postgresql" and isinstance(kind, JSON):
                # PostgreSQL's deals go through COPY (bulk.copy_merge): JSON as its text, not a Json
                # wrapper that psycopg would serialize again row by row in Python
                proc = json_text
            if proc is not None and column in self._fields:
                self._convert[column] = column_converter(kind, proc)
        self._synced_at = t.deals.c.synced_at.type.dialect_impl(dialect).bind_processor(dialect)

    @property
    def columns(self) -> list[str]:
        """The columns each of :meth:`rows`' tuples holds, in order."""
        return self._columns

    def rows(self, deals: DealRows, synced_at: datetime) -> Iterator[tuple[Any, ...]]:
        """The driver's values for these deals, a tuple of :attr:`columns` each."""
        fields = {c: deals.columns[c] for c in self._fields}
        for column, convert in self._convert.items():
            fields[column] = convert(fields[column])
        fields["key"], fields["content_hash"] = deals.keys, deals.hashes
        fields["synced_at"] = [self._synced_at(synced_at)] * len(deals)
        return zip(*[fields[c] for c in self._columns])

    def parameters(self, deals: DealRows, synced_at: datetime) -> list[Any]:
        """The driver's parameters for these deals: one tuple (positional drivers) or dict (named) each."""
        rows = self.rows(deals, synced_at)
        if self._named is not None:
            named = self._named
            return [dict(zip(named, row)) for row in rows]
        return list(rows)


class Known(NamedTuple):
    """What the warehouse holds of a deal, enough to tell new / changed / unchanged (one per deal a sync
    reads: a tuple is the cheapest immutable record to build)."""

    content_hash: str
    stage: str
    is_deleted: bool


@dataclass
class QuarantineEntry:
    record: str
    locator: str
    field: str
    reason: str
    raw: dict[str, Any]


@dataclass
class PageWrite:
    """Everything one page changes, written atomically with the source's new cursor."""

    source: str
    # None: the page moves no cursor (a partition of a read: the cursor moves once all are in)
    cursor: Cursor | None
    inserts: DealRows | None = None
    updates: DealRows | None = None
    history: list[StageChange] = field(default_factory=list)
    # deals whose history the source itself keeps: their source_history rows are replaced by these
    source_history: dict[str, list[StageChange]] = field(default_factory=dict)
    quarantine: list[QuarantineEntry] = field(default_factory=list)
    # records that normalized this time: their old quarantine rows go
    released: list[str] = field(default_factory=list)
    deleted_keys: list[str] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)
    # set on the page that completes a snapshot: the source's quarantine rows last seen before this
    # instant (when the read began) are rows the snapshot no longer has (fixed, or gone)
    stale_quarantine_before: datetime | None = None


# deals' text columns with a length limit, and the text ones without one
_LIMITS = {c.name: c.type.length for c in t.deals.columns if isinstance(c.type, String) and c.type.length}
_TEXTS = [c.name for c in t.deals.columns if isinstance(c.type, String)]
_KEY_LIMIT = t.deals.c.key.type.length


def unstorable(source: str, columns: Mapping[str, Sequence[Any]]) -> dict[int, tuple[str, str]]:
    """The records of normalized ``columns`` that the ``deals`` table cannot hold as they are:
    position → (field, reason), the reason starting with ``value_too_long``, ``nul_character``
    or ``amount_out_of_range``.

    Checked before writing, on every dialect: PostgreSQL would refuse the whole page
    (and the source with it), SQLite would store a longer text or a rounded amount.
    """
    problems: dict[int, tuple[str, str]] = {}
    id_limit = min(_LIMITS["source_id"], _KEY_LIMIT - len(source) - 1)
    for name in _TEXTS:
        values = columns.get(name)
        if not values:
            continue
        present = list(filter(None, values))  # usually all short: checked at C speed first
        limit = id_limit if name == "source_id" else _LIMITS.get(name)
        too_long = limit is not None and max(map(len, present), default=0) > limit
        if too_long or "\0" in "".join(present):
            for i, v in enumerate(values):
                if v and "\0" in v:
                    problems.setdefault(i, (name, "nul_character: the value holds a NUL character (\\0), which the warehouse cannot store"))
                elif too_long and v and len(v) > limit:  # type: ignore[operator]
                    problems.setdefault(i, (name, f"value_too_long: {len(v)} characters where the warehouse holds at most {limit}"))
    for name in ("amount", "amount_reporting"):
        amounts = columns.get(name, ())
        try:
            if max(map(abs, filter(None, amounts)), default=0) < t.ExactAmount.LIMIT:
                continue
        except ArithmeticError:  # a NaN
            pass
        for i, v in enumerate(amounts):
            if v is not None and not (v.is_finite() and abs(v) < t.ExactAmount.LIMIT):
                problems.setdefault(i, (name, f"amount_out_of_range: {v} (the warehouse holds amounts below 10^16, 4 decimals)"))
    return problems


def _text_field(value: str, limit: int | None = None) -> str:
    """Text from a source (a quarantine row's, an error's) as the warehouse can hold it: NULs shown,
    not stored; cut to the column."""
    return value.replace("\0", "\\0")[:limit]


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (metrics, report) run while a sync writes; NORMAL is durable at each commit in WAL.
    cur = dbapi_conn.cursor()
    # Larger pages for a new database (an existing one keeps its own): rows of a dozen text fields
    # and a JSON payload fill 4 KB pages quickly, and a bulk write splits fewer of them (~10% faster).
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def schema_of(url: str) -> str | None:
    """The PostgreSQL schema a URL puts the tables in (``options=-csearch_path=NAME``), if any."""
    options = make_url(url).query.get("options", "")
    for option in options if isinstance(options, tuple) else (options,):
        if option.startswith("-csearch_path="):
            return option.split("=", 1)[1].split(",")[0].strip('"') or None
    return None


class Warehouse:
    def __init__(self, url: str, *, create: bool = True):
        self.url = url
        try:
            sqlite = make_url(url).get_backend_name() == "sqlite"
            self.engine: Engine = create_engine(
                url, json_serializer=json_text, json_deserializer=orjson.loads,
                # a sync's workers take turns at SQLite's one write lock: wait for it rather than fail
                **({"connect_args": {"timeout": 60}} if sqlite else {}),
            )
            if sqlite:
                event.listen(self.engine, "connect", _sqlite_pragmas)
            self.schema = schema_of(url)
            if self.schema and create:
                with self.engine.begin() as conn:
                    conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
            if create:
                ensure_current(self.engine, self.safe_url)
            columns = {c.name: c for c in t.deals.columns}
            # Two first syncs of a source at once both insert its deals: the row written last stands,
            # as with any update, and neither run fails on the other's primary key.
            self._insert_deals = DealStatement(self.engine, self._insert(t.deals, update_existing=True), columns)
            key = t.deals.c.key
            self._update_deals = DealStatement(
                self.engine,
                update(t.deals).where(key == bindparam("b_key")).values({c: bindparam(c) for c in columns if c != "key"}),
                {"b_key": key, **{n: c for n, c in columns.items() if n != "key"}},
            )
        except SQLAlchemyError as e:
            raise WarehouseError(f"cannot open the warehouse {self.safe_url}: {e.__class__.__name__}: "
                                 f"{scrub(str(getattr(e, 'orig', e)), url_secrets(self.url))}") from None

    @property
    def safe_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return safe_url(self.url)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as e:
            raise WarehouseError(f"warehouse {self.safe_url}: {e.__class__.__name__}: {scrub(str(getattr(e, 'orig', e)), url_secrets(self.url))}") from None

    def close(self) -> None:
        self.engine.dispose()

    @property
    def lock_namespace(self) -> str:
        """What tells this warehouse's run locks from another's in one database (its schema)."""
        return self.schema or ""

    @property
    def shared_across_processes(self) -> bool:
        """Whether another process opening this URL sees the same database (not an in-memory one)."""
        url = self.engine.url
        in_memory = (url.database or ":memory:") == ":memory:" or "mode=memory" in str(url)
        return url.get_backend_name() != "sqlite" or not in_memory

    def before_fork(self) -> None:
        """Closes the pooled connections, so that no process forked now inherits one (a child
        closing its copy of a server connection would end the parent's session)."""
        self.engine.dispose()

    # -- reads ------------------------------------------------------------------------------

    def known_deals(self, source: str) -> dict[str, Known]:
        d = t.deals.c
        where = d.source == source
        if self.engine.dialect.name == "sqlite":
            # a source's keys are "<source>:…": the primary key's range finds them without a scan
            # (SQLite compares text bytewise; a server's collation may not order ':' before ';')
            where &= (d.key >= f"{source}:") & (d.key < f"{source};")
        q = select(d.key, d.content_hash, d.stage, d.is_deleted).where(where)
        with self.begin() as conn:
            # streamed (a server-side cursor on PostgreSQL): a large source's rows are never all buffered
            # in the driver besides the dict they become
            rows = conn.execution_options(yield_per=20_000).execute(q)
            return {k: Known(h, s, bool(d)) for k, h, s, d in rows}

    def filled(self, source: str, fields: dict[str, tuple[str, ...]]) -> tuple[int, dict[str, int]]:
        """The source's live deals, and of them how many have each of ``fields`` (name → the columns any
        of which holds it)."""
        d = t.deals.c
        where = (d.source == source) & (d.is_deleted == false())
        counts = [func.count(d[columns[0]] if len(columns) == 1 else func.coalesce(*(d[c] for c in columns)))
                  for columns in fields.values()]
        with self.begin() as conn:
            live, *filled = conn.execute(select(func.count(), *counts).where(where)).one()
        return live, dict(zip(fields, filled))

    def quarantined(self, source: str) -> set[str]:
        with self.begin() as conn:
            return set(conn.scalars(select(t.quarantine.c.record).where(t.quarantine.c.source == source)))

    def cursor(self, source: str) -> Cursor | None:
        with self.begin() as conn:
            value = conn.scalar(select(t.sync_state.c.cursor).where(t.sync_state.c.source == source))
        return None if value is None else Cursor(value=value)

    def record_catalog(self, source: str, discovery: Discovery) -> int:
        """Stores the source's pipelines and stages as discovered; a new version only when they changed."""
        catalog = discovery.model_dump(mode="json")
        fingerprint = hashlib.sha256(orjson.dumps(catalog, option=orjson.OPT_SORT_KEYS)).hexdigest()
        c = t.stage_catalog
        with self.begin() as conn:
            latest = conn.execute(
                select(c.c.version, c.c.fingerprint).where(c.c.source == source).order_by(c.c.version.desc()).limit(1)
            ).first()
            if latest is not None and latest.fingerprint == fingerprint:
                return latest.version
            version = 1 if latest is None else latest.version + 1
            # a sync of the source running at once may record the same version first: it stands
            conn.execute(self._insert(c), {"source": source, "version": version, "discovered_at": now(), "fingerprint": fingerprint, "catalog": catalog})
            return version

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, sources: list[str]) -> int:
        with self.begin() as conn:
            # A run of these sources that was killed never finished: say so, rather than leave it "running"
            # forever. A run of other sources may well be running beside this one (each holds its own lock).
            running = conn.execute(select(t.sync_runs.c.id, t.sync_runs.c.sources).where(t.sync_runs.c.status == "running"))
            killed = [run_id for run_id, theirs in running if set(theirs) & set(sources)]
            if killed:
                conn.execute(update(t.sync_runs).where(t.sync_runs.c.id.in_(killed)).values(status="interrupted"))
            return conn.execute(
                t.sync_runs.insert().values(started_at=now(), status="running", sources=sources, counts={})
            ).inserted_primary_key[0]

    def finish_run(self, run_id: int, status: str, counts: dict[str, Any], error: str | None = None) -> None:
        with self.begin() as conn:
            conn.execute(
                update(t.sync_runs)
                .where(t.sync_runs.c.id == run_id)
                .values(finished_at=now(), status=status, counts=counts,
                        error=None if error is None else _text_field(scrub(error, url_secrets(self.url))))
            )

    # -- the atomic page write ----------------------------------------------------------------

    def write_page(self, page: PageWrite) -> None:
        stamp = now()
        # bound before the transaction: other processes of a parallel sync wait only while the database writes
        write_deals = self._deal_writes(page, stamp)
        with self.begin() as conn:
            if self.engine.dialect.name == "postgresql":
                # A page's commit need not wait for its WAL flush (as SQLite's synchronous=NORMAL): a
                # server crash may lose the last pages, never half of one, and their cursor goes with
                # them, so the next run reads them again. Push-back's journal keeps waiting.
                conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            write_deals(conn)
            if page.deleted_keys:
                # The hash is cleared so that a deal that comes back is written again, not seen as unchanged.
                conn.execute(
                    update(t.deals).where(t.deals.c.key == bindparam("b_key")),
                    [{"b_key": k, "is_deleted": True, "content_hash": "", "synced_at": stamp} for k in page.deleted_keys],
                )
            if page.history:
                conn.execute(self._insert(t.stage_history), [h.model_dump() for h in page.history])
            self._replace_source_history(conn, page.source_history)
            self._write_quarantine(conn, page, stamp)
            for alias, survivor in page.aliases.items():
                conn.execute(t.deal_aliases.delete().where(t.deal_aliases.c.alias_key == alias))
                conn.execute(t.deal_aliases.insert().values(alias_key=alias, survivor_key=survivor, recorded_at=stamp))
            if page.stale_quarantine_before is not None:
                q = t.quarantine.c
                conn.execute(t.quarantine.delete().where((q.source == page.source) & (q.last_seen < page.stale_quarantine_before)))
            if page.cursor is not None:
                self._save_cursor(conn, page.source, page.cursor, stamp)

    def _deal_writes(self, page: PageWrite, stamp: datetime) -> Callable[[Connection], None]:
        """Writes the page's new and changed deals in a transaction: COPY through a staging table on
        PostgreSQL (:func:`~pipesync.warehouse.bulk.copy_merge`), executemany elsewhere."""
        writes = [(statement, deals, how) for statement, deals, how in (
            (self._insert_deals, page.inserts, "upsert"), (self._update_deals, page.updates, "update")) if deals]
        if self.engine.dialect.name == "postgresql":
            rows = [(statement.columns, list(statement.rows(deals, stamp)), how) for statement, deals, how in writes]

            def copy(conn: Connection) -> None:
                for columns, values, how in rows:
                    copy_merge(conn, t.deals, columns, values, how)  # type: ignore[arg-type]
            return copy
        statements = [(statement.sql, statement.parameters(deals, stamp)) for statement, deals, _ in writes]

        def execute(conn: Connection) -> None:
            for sql, parameters in statements:
                conn.exec_driver_sql(sql, parameters)
        return execute

    def _insert(self, table: Table, *, update_existing: bool = False) -> Any:
        """INSERT … ON CONFLICT DO NOTHING (or DO UPDATE of the other columns): two syncs of a source
        at once write the same rows, and neither may fail on the other's nor add a second copy."""
        insert = (sqlite_insert if self.engine.dialect.name == "sqlite" else pg_insert)(table)
        if not update_existing:
            return insert.on_conflict_do_nothing()
        keys = [c.name for c in table.primary_key]
        kept = {*keys, "first_seen"}
        return insert.on_conflict_do_update(
            index_elements=keys, set_={c.name: insert.excluded[c.name] for c in table.columns if c.name not in kept}
        )

    def _replace_source_history(self, conn: Connection, histories: dict[str, list[StageChange]]) -> None:
        """The source's own history of these deals, as read now: replacing it keeps re-reads idempotent."""
        h = t.stage_history
        for chunk in _chunks(list(histories), 500):
            conn.execute(h.delete().where(and_(h.c.origin == "source_history", h.c.deal_key.in_(chunk))))
        rows = [c.model_dump() for changes in histories.values() for c in changes]
        if rows:
            conn.execute(self._insert(h), rows)

    def _write_quarantine(self, conn: Connection, page: PageWrite, stamp: datetime) -> None:
        q = t.quarantine
        gone = page.released + [e.record for e in page.quarantine]
        first_seen: dict[str, datetime] = {}
        if gone:
            for chunk in _chunks(gone, 500):
                cond = and_(q.c.source == page.source, q.c.record.in_(chunk))
                first_seen.update((r, f) for r, f in conn.execute(select(q.c.record, q.c.first_seen).where(cond)))
                conn.execute(q.delete().where(cond))
        if page.quarantine:
            rows = {}
            for e in page.quarantine:  # one row per record: the last reason wins within a page
                rows[e.record] = {
                    "source": page.source, "record": _text_field(e.record), "locator": _text_field(e.locator, q.c.locator.type.length),
                    "field": _text_field(e.field, q.c.field.type.length), "reason": _text_field(e.reason), "raw": e.raw,
                    "first_seen": first_seen.get(e.record, stamp), "last_seen": stamp,
                }
            conn.execute(self._insert(q, update_existing=True), list(rows.values()))

    def _save_cursor(self, conn: Connection, source: str, cursor: Cursor, stamp: datetime) -> None:
        conn.execute(self._insert(t.sync_state, update_existing=True), {"source": source, "cursor": cursor.value, "updated_at": stamp})


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]

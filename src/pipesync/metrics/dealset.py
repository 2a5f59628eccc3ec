"""The consolidated truth, loaded column-wise into numpy arrays for the metrics.

When consolidation has run, each real deal is one golden record and its members'
stage histories are merged onto it through ``deal_links``; otherwise the deal set
is the ``deals`` table. Only the columns the metrics need are read, instants
arrive as numbers of days since 1970-01-01 UTC (converted in SQL, so no Python
datetime is built per row), and only deals that can matter for the period are
read: open ones, and ones closed since the comparison period started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import numpy as np
from sqlalchemy import Float, Select, and_, case, cast, false, func, literal, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from pipesync.errors import WarehouseError
from pipesync.metrics.owners import NO_OWNER, people
from pipesync.model import Category, SharedPipeline
from pipesync.warehouse import schema

EPOCH = date(1970, 1, 1)
STATUS_CODES = {Category.OPEN.value: 0, Category.WON.value: 1, Category.LOST.value: 2}
OPEN, WON, LOST = 0, 1, 2
UNKNOWN = -1


class epoch_days(FunctionElement):  # noqa: N801 - reads as a SQL function
    """Days since 1970-01-01 UTC as a float, computed by the database."""

    type = Float()
    inherit_cache = True


@compiles(epoch_days, "sqlite")
def _epoch_days_sqlite(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(element.clauses, **kw)}) - 2440587.5)"


@compiles(epoch_days)
def _epoch_days_default(element: epoch_days, compiler: Any, **kw: Any) -> str:
    return f"(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) / 86400.0)"


def day_number(d: date) -> float:
    return float((d - EPOCH).days)


@dataclass
class Labels:
    """A text column factorized: ``codes[i]`` indexes ``labels``; missing values get their own label."""

    codes: np.ndarray
    labels: list[str]


@dataclass
class DealSet:
    kind: Literal["golden", "deals"]
    ids: list[str]
    stage: np.ndarray  # index into pipeline.stages, UNKNOWN when the key is not in the pipeline
    status: np.ndarray  # OPEN / WON / LOST
    amount: np.ndarray  # reporting currency, NaN when missing
    # day number of the day a closed deal closed: its actual close date, else (none known) its expected
    # one; NaN when neither is known (closed_on)
    close_day: np.ndarray
    expected_close: np.ndarray  # day number of the expected close date as stored today (NaN when none)
    created: np.ndarray
    stage_entered: np.ndarray
    updated: np.ndarray
    last_activity: np.ndarray
    segments: dict[str, Labels]  # owner, source, pipeline, lead_source
    lost_reason: Labels

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class History:
    """Stage entries sorted by deal then time; repeated entries into the same stage are collapsed."""

    deal: np.ndarray  # index into the DealSet
    stage: np.ndarray  # index into pipeline.stages, UNKNOWN when the key is not in the pipeline
    at: np.ndarray  # day number


def factorize(values: tuple[Any, ...], missing: str) -> Labels:
    """Codes for a text column; None and "" share the ``missing`` label."""
    table = dict.fromkeys(values)  # distinct values in first-seen order, in C
    labels: dict[str, int] = {}
    for value in table:
        label = missing if value is None or value == "" else str(value)
        table[value] = labels.setdefault(label, len(labels))
    codes = np.fromiter(map(table.__getitem__, values), dtype=np.int32, count=len(values))
    return Labels(codes, list(labels))


def has_golden_deals(conn: Connection) -> bool:
    return conn.execute(select(literal(1)).select_from(schema.golden_deals).limit(1)).first() is not None


def load(conn: Connection, pipeline: SharedPipeline, since: date, *, owners: bool = True) -> tuple[DealSet, History]:
    """The deal set and its stage history, for deals open now or closed on or after ``since`` (with the
    owner segment unless ``owners`` is False)."""
    try:
        golden = has_golden_deals(conn)
        table = schema.golden_deals if golden else schema.deals
        id_col = table.c.golden_id if golden else table.c.key
        closed_on = _closed_on(table)
        alive = and_(
            or_(table.c.is_deleted.is_(None), table.c.is_deleted == false()),
            or_(table.c.status == Category.OPEN.value, closed_on.is_(None), closed_on >= since),
        )
        deals = _load_deals(conn, table, id_col, alive, pipeline, "golden" if golden else "deals", owners)
        history = _load_history(conn, deals, id_col, alive, pipeline, golden)
    except (SQLAlchemyError, conn.dialect.loaded_dbapi.Error) as e:  # the driver's own, from the raw cursors
        raise WarehouseError(f"cannot read the warehouse: {e.__class__.__name__}: {getattr(e, 'orig', e)}") from None
    return deals, history


def _closed_on(table: Any) -> ColumnElement:
    """The day a closed deal closed: the actual close date, else the expected one (a source that keeps no
    actual date, a warehouse synced before it was kept)."""
    return func.coalesce(table.c.actual_close_date, table.c.close_date)


def _cursor(conn: Connection, stmt: Select) -> Any:
    """A DB-API cursor over the statement's result, bypassing SQLAlchemy's row objects.

    Those cost more than the query itself at a million rows. The only bound values
    are dates chosen by pipesync, so rendering them inline is safe.
    """
    sql = str(stmt.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(sql)
    return cursor


def _columns(conn: Connection, stmt: Select, n: int) -> list[tuple[Any, ...]]:
    """The statement's result as one tuple per column."""
    cursor = _cursor(conn, stmt)
    try:
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return list(zip(*rows)) if rows else [()] * n


def _records(conn: Connection, stmt: Select, dtype: list[tuple[str, str]]) -> np.ndarray:
    """The statement's result as a numpy record array, filled straight from the cursor (no NULLs allowed)."""
    cursor = _cursor(conn, stmt)
    try:
        return np.fromiter(cursor, dtype=dtype)
    finally:
        cursor.close()


def _stage_code(col: ColumnElement, pipeline: SharedPipeline) -> ColumnElement:
    return case({s.key: i for i, s in enumerate(pipeline.stages)}, value=col, else_=UNKNOWN)


def _load_deals(conn, table, id_col, alive, pipeline, kind, owners) -> DealSet:  # type: ignore[no-untyped-def]
    c = table.c
    stmt = select(
        id_col, _stage_code(c.stage, pipeline), case(STATUS_CODES, value=c.status, else_=OPEN),
        cast(c.amount_reporting, Float), epoch_days(_closed_on(table)), epoch_days(c.created_at),
        epoch_days(c.stage_entered_at), epoch_days(c.updated_at), epoch_days(c.last_activity_at),
        c.source, c.pipeline, c.lead_source, c.lost_reason, c.owner_email, c.owner_name, epoch_days(c.close_date),
    ).where(alive)
    cols = _columns(conn, stmt, 16)
    number = lambda i: np.array(cols[i], dtype=float)  # noqa: E731 - None becomes NaN
    return DealSet(
        kind=kind,
        ids=list(cols[0]),
        stage=np.array(cols[1], dtype=np.int16),
        status=np.array(cols[2], dtype=np.int8),
        amount=number(3),
        close_day=number(4),
        expected_close=number(15),
        created=number(5),
        stage_entered=number(6),
        updated=number(7),
        last_activity=number(8),
        segments={
            # one person per owner however each system spells them (metrics/owners.py), shown by name
            **({"owner": factorize(tuple(people(cols[13], cols[14])), NO_OWNER)} if owners else {}),
            "source": factorize(cols[9], "(no source)"),
            "pipeline": factorize(cols[10], "(no pipeline)"),
            "lead_source": factorize(cols[11], "(no lead source)"),
        },
        lost_reason=factorize(cols[12], "(no reason given)"),
    )


def _load_history(conn, deals: DealSet, id_col, alive, pipeline, golden: bool) -> History:  # type: ignore[no-untyped-def]
    h = schema.stage_history
    alive_ids = select(id_col).where(alive)
    if golden:
        links = schema.deal_links
        owner_col = links.c.golden_id
        joined = h.join(links, links.c.deal_key == h.c.deal_key)
    else:
        owner_col, joined = h.c.deal_key, h
    # Driven by the alive deals' keys through the history's (deal_key, changed_at) index.
    stmt = (
        select(owner_col, _stage_code(h.c.to_stage, pipeline), epoch_days(h.c.changed_at))
        .select_from(joined)
        .where(owner_col.in_(alive_ids))
    )
    rows = _records(conn, stmt, [("key", "O"), ("stage", "i2"), ("at", "f8")])
    keys = rows["key"]
    # Rows come grouped by deal (that is how the index is read): look up each run's deal once.
    starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else np.zeros(0, dtype=np.int64)
    index = dict(zip(deals.ids, range(len(deals.ids))))
    # -1: a deal that became alive between the two reads (a sync writing meanwhile)
    run_deal = np.fromiter((index.get(k, -1) for k in keys[starts]), dtype=np.int64, count=len(starts))
    deal = np.repeat(run_deal, np.diff(np.append(starts, len(keys))))
    known = deal >= 0
    deal, stage, at = deal[known], rows["stage"][known], rows["at"][known]
    order = np.lexsort((at, deal))
    deal, stage, at = deal[order], stage[order], at[order]
    # Two members of one golden deal often record the same move; an entry into the stage
    # a deal is already in is not a new visit.
    repeat = np.zeros(len(deal), dtype=bool)
    repeat[1:] = (deal[1:] == deal[:-1]) & (stage[1:] == stage[:-1])
    return History(deal[~repeat], stage[~repeat], at[~repeat])

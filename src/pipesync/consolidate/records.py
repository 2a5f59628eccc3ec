"""The light record consolidation works on: one deal's columns as a plain tuple.

A million pydantic ``Deal`` objects cost seconds to build and gigabytes to
hold; the engine only needs the columns, so the warehouse is read straight
into these tuples (``store.py``, through ``pooled_records``) and tests build
them from Deals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from types import UnionType
from typing import Any, NamedTuple, get_args, get_origin, get_type_hints

from pipesync.model import Deal, Status


class Record(NamedTuple):
    key: str
    source: str
    source_id: str
    name: str
    pipeline: str | None
    source_stage: str | None
    stage: str
    status: str
    amount: Decimal | None
    currency: str | None
    amount_reporting: Decimal | None
    probability: float | None
    close_date: date | None
    actual_close_date: date | None
    created_at: datetime | None
    updated_at: datetime | None
    stage_entered_at: datetime | None
    last_activity_at: datetime | None
    owner_email: str | None
    owner_name: str | None
    account_name: str | None
    account_domain: str | None
    contact_emails: list[str]
    lead_source: str | None
    lost_reason: str | None
    next_step: str | None
    external_refs: list[str]
    is_deleted: bool


# The deal fields a golden record carries (everything but the identity columns).
DEAL_FIELDS: tuple[str, ...] = Record._fields[3:]
FIELD_INDEX = {f: i for i, f in enumerate(Record._fields)}
_TYPES = get_type_hints(Record)
TEXT_FIELDS = frozenset(
    name for name, kind in _TYPES.items() if kind is str or (get_origin(kind) is UnionType and str in get_args(kind))
)
# Text and list fields: their value can be empty ("", []) as well as missing (None).
SIZED_FIELDS = TEXT_FIELDS | {name for name, kind in _TYPES.items() if get_origin(kind) is list}


def record_from_deal(deal: Deal) -> Record:
    return Record(
        deal.key, deal.source, deal.source_id, deal.name, deal.pipeline, deal.source_stage, deal.stage,
        Status(deal.status).value, deal.amount, deal.currency, deal.amount_reporting, deal.probability, deal.close_date,
        deal.actual_close_date, deal.created_at, deal.updated_at, deal.stage_entered_at, deal.last_activity_at, deal.owner_email,
        deal.owner_name, deal.account_name, deal.account_domain, list(deal.contact_emails), deal.lead_source,
        deal.lost_reason, deal.next_step, list(deal.external_refs), deal.is_deleted,
    )


def records_from_deals(deals: Iterable[Deal]) -> Iterator[Record]:
    return (record_from_deal(d) for d in deals)


# The fields whose values repeat across deals (a handful of stages and
# currencies, an account's name, domain and contacts on each of its deals, round
# amounts), with what tells two values apart: the value itself, or a key where
# equal is not the same (Decimal("1.0") and Decimal("1.00"); 0.0 and -0.0;
# lists, unhashable). Keys, ids and instants are nearly all distinct.
_POOLED: dict[str, Any] = {
    "source": None, "name": None, "pipeline": None, "source_stage": None, "stage": None, "status": None,
    "amount": str, "currency": None, "amount_reporting": str, "probability": repr, "close_date": None, "actual_close_date": None,
    "owner_email": None, "owner_name": None, "account_name": None, "account_domain": None,
    "contact_emails": tuple, "lead_source": None, "lost_reason": None, "next_step": None, "external_refs": tuple,
}
_BATCH = 50_000


def pooled_records(
    rows: Iterable[Sequence[Any]], convert: Mapping[str, Callable[[Any], Any]] | None = None
) -> list[Record]:
    """Rows of Record columns as Records whose repeating values are each held once.

    A million deals hold a few hundred distinct stages, owners and currencies
    and far fewer accounts, amounts and contact lists than deals: sharing them
    takes the records from gigabytes to well under one. Records are read-only;
    deals with equal contact lists share one list.

    ``convert`` (field → function) turns a column's raw values into the Record's (a database
    driver's text, say, into dates or lists): a repeating field's once per distinct value.
    """
    convert = convert or {}
    pools = {FIELD_INDEX[name]: (key, {}, convert.get(name)) for name, key in _POOLED.items()}
    direct = [(FIELD_INDEX[name], fn) for name, fn in convert.items() if name not in _POOLED]
    records: list[Record] = []
    rows = iter(rows)
    while batch := list(islice(rows, _BATCH)):
        columns = list(zip(*batch))  # column by column: one pool lookup per value, no per-row work
        for i, (key, pool, fn) in pools.items():
            column = columns[i]
            if fn is not None:
                # pooled by the raw value: text is its own key; what a driver already typed keeps the field's
                raw_key = None if isinstance(next((v for v in column if v is not None), ""), str) else key
                columns[i] = _pooled_column(column, pool, raw_key, fn)
            else:
                columns[i] = _pooled_column(column, pool, key, None)
        for i, fn in direct:
            columns[i] = [None if v is None else fn(v) for v in columns[i]]
        records.extend(map(Record._make, zip(*columns)))
    return records


def _pooled_column(values: Sequence[Any], pool: dict[Any, Any], key: Callable[[Any], Any] | None,
                   fn: Callable[[Any], Any] | None) -> list[Any]:
    """``values`` with each one the pool's (``fn`` applied once per distinct ``key``)."""
    if fn is None:
        add = pool.setdefault
        if key is None:
            return [add(v, v) if v is not None else None for v in values]
        return [add(key(v), v) if v is not None else None for v in values]
    get = pool.get
    out = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        k = v if key is None else key(v)
        value = get(k, pool)
        if value is pool:  # not seen yet (the pool itself marks a miss: no value is the pool)
            value = pool[k] = fn(v)
        out.append(value)
    return out

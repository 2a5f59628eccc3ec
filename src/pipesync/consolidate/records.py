"""The light record consolidation works on: one deal's columns as a plain tuple.

A million pydantic ``Deal`` objects cost seconds to build and gigabytes to
hold; the engine only needs the columns, so the warehouse is read straight
into these tuples (``store.py``) and tests build them from Deals.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

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


def record_from_deal(deal: Deal) -> Record:
    return Record(
        deal.key, deal.source, deal.source_id, deal.name, deal.pipeline, deal.source_stage, deal.stage,
        Status(deal.status).value, deal.amount, deal.currency, deal.amount_reporting, deal.probability, deal.close_date,
        deal.created_at, deal.updated_at, deal.stage_entered_at, deal.last_activity_at, deal.owner_email,
        deal.owner_name, deal.account_name, deal.account_domain, list(deal.contact_emails), deal.lead_source,
        deal.lost_reason, deal.next_step, list(deal.external_refs), deal.is_deleted,
    )


def records_from_deals(deals: Iterable[Deal]) -> Iterator[Record]:
    return (record_from_deal(d) for d in deals)

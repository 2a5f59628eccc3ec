"""A small, fully known Pipedrive company for the Pipedrive sandbox tests (not collected by pytest)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from pipesync_sandbox.world import (Account, Contact, Owner, PipelineDef, SeedDeal, StageDef, StageVisit,
                                    SystemData)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # the company's clock in every test
START = datetime(2025, 1, 1, tzinfo=UTC)
LEAD_SOURCES = ("Webinar", "Referral", "Trade fair")


def _stage(stage_id: str, label: str, order: int, probability: float, rot_days: int | None = None) -> StageDef:
    return StageDef(stage_id, label, order, probability, False, False, shared=label.lower(), rot_days=rot_days)


PIPELINES = [
    PipelineDef("1", "Sales", "en", [
        _stage("1", "Qualified", 1, 0.2), _stage("2", "Proposal", 2, 0.5, rot_days=30),
        _stage("3", "Negotiation", 3, 0.75),
    ]),
    PipelineDef("2", "Vertrieb DACH", "de", [_stage("4", "Erstkontakt", 1, 0.1), _stage("5", "Angebot", 2, 0.6)]),
]
OWNERS = [Owner("7", "Ana Silva", "ana@example.com"), Owner("8", "Bo Chen", "bo@example.com")]
ACCOUNTS = [Account(str(11 + n), f"T{n}", f"Acme {n} GmbH", f"https://acme{n}.example", "DE") for n in range(10)]
CONTACTS = [Contact(str(21 + n), ACCOUNTS[n].id, "Kim", f"Lee{n}", f"kim{n}@acme{n}.example") for n in range(10)]


def updated_at(n: int) -> datetime:
    """Deal ``n``'s last update: one per minute, in id order, so orderings are predictable."""
    return START + timedelta(days=1, minutes=n)


def pipedrive_data(deal_count: int, *, deleted_days_ago: dict[int, int] | None = None) -> SystemData:
    """``deal_count`` deals (ids 1…n); statuses cycle open/won/lost; ``deleted_days_ago`` maps deal id → days."""
    deleted = deleted_days_ago or {}
    deals = []
    for n in range(deal_count):
        deal_id = n + 1
        pipeline = PIPELINES[n % 2]
        created = START + timedelta(minutes=n)
        stages = pipeline.stages[: 1 + n % len(pipeline.stages)]
        history = [StageVisit(s.id, created + timedelta(hours=i)) for i, s in enumerate(stages)]
        status = ("open", "won", "lost")[n % 3]
        deals.append(SeedDeal(
            id=str(deal_id), system="pipedrive", truth_id=f"T{n}", pipeline_id=pipeline.id,
            stage_id=stages[-1].id, status=status, name=f"Deal {deal_id}", amount=Decimal(1000 + n),
            currency="EUR", close_date=date(2025, 3, 31), created_at=created, updated_at=updated_at(n),
            last_activity_at=None, owner_id=OWNERS[n % 2].id, account_id=ACCOUNTS[n % 10].id,
            contact_ids=[CONTACTS[n % 10].id] if n % 4 else [], lead_source=LEAD_SOURCES[n % 3],
            lost_reason="Too expensive" if status == "lost" else None, next_step=None, history=history,
            external_ref=f"salesforce:006{n:012d}" if n % 5 == 0 else None,
            is_deleted=deal_id in deleted,
            deleted_at=NOW - timedelta(days=deleted[deal_id]) if deal_id in deleted else None,
        ))
    return SystemData("pipedrive", PIPELINES, OWNERS, ACCOUNTS, CONTACTS, deals)

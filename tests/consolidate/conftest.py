"""Hand-made deals for the consolidation specifications."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from pipesync.consolidate.engine import Consolidation, consolidate
from pipesync.consolidate.records import Record, record_from_deal
from pipesync.consolidate.rules import MatchRules, load_rules
from pipesync.model import Deal, SharedPipeline
from pipesync.pipeline import load_pipeline

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


def make_deal(source: str, source_id: str, **fields: Any) -> Deal:
    """A deal with plausible defaults; ``days`` shifts created/updated, ``amount`` is in USD."""
    days = fields.pop("days", 0)
    amount = fields.pop("amount", 50_000)
    values: dict[str, Any] = {
        "name": "Acme - Renewal 2025",
        "stage": "proposal",
        "status": "open",
        "amount": None if amount is None else Decimal(str(amount)),
        "currency": "USD",
        "amount_reporting": None if amount is None else Decimal(str(amount)),
        "close_date": date(2025, 6, 30),
        "created_at": T0 + timedelta(days=days),
        "updated_at": T0 + timedelta(days=days + 10),
        "owner_email": "jo@seller.example",
        "account_name": "Acme Inc.",
        "account_domain": "acme.com",
        "contact_emails": ["pat@acme.com"],
    }
    values.update(fields)
    return Deal(source=source, source_id=source_id, **values)


def records(*deals: Deal) -> list[Record]:
    return [record_from_deal(d) for d in deals]


def clusters_of(result: Consolidation) -> set[frozenset[str]]:
    return {frozenset(result.records[i].key for i in result.clusters.members(c)) for c in range(len(result.clusters))}


@pytest.fixture(scope="session")
def rules() -> MatchRules:
    return load_rules()


@pytest.fixture(scope="session")
def pipeline() -> SharedPipeline:
    return load_pipeline()


@pytest.fixture
def run(rules: MatchRules, pipeline: SharedPipeline):
    def _run(*deals: Deal, previous: dict[str, str] | None = None, with_rules: MatchRules | None = None) -> Consolidation:
        return consolidate(records(*deals), with_rules or rules, pipeline, previous)

    return _run

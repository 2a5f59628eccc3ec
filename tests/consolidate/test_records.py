"""Records read for consolidation hold each repeating value once, and exactly as stored."""

from __future__ import annotations

from decimal import Decimal

from pipesync.consolidate.records import pooled_records, record_from_deal
from tests.consolidate.conftest import make_deal


def test_pooled_records_equal_their_rows_and_share_what_repeats():
    deals = [make_deal("salesforce", str(i), stage="proposal", contact_emails=["pat@acme.com"]) for i in range(3)]
    rows = [tuple(record_from_deal(d)) for d in deals]
    records = pooled_records(iter(rows))
    assert [tuple(r) for r in records] == rows
    first, *others = records
    assert all(r.stage is first.stage and r.contact_emails is first.contact_emails for r in others)
    assert all(r.key is not first.key for r in others)


def test_values_that_are_equal_but_written_differently_are_not_pooled_together():
    a = make_deal("salesforce", "1", amount=None, amount_reporting=Decimal("50000"), probability=0.0)
    b = make_deal("hubspot", "2", amount=None, amount_reporting=Decimal("50000.00"), probability=-0.0)
    pooled = pooled_records(tuple(record_from_deal(d)) for d in (a, b))
    assert [str(r.amount_reporting) for r in pooled] == ["50000", "50000.00"]
    assert [str(r.probability) for r in pooled] == ["0.0", "-0.0"]

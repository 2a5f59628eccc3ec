"""With golden records, each real deal counts once and its members' histories merge onto it."""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.metrics.periods import Period
from pipesync.metrics.run import run_metrics
from tests.metrics.builders import NOW, DealRow, at, write_warehouse

Q4 = Period(date(2026, 10, 1), date(2026, 12, 31))


@pytest.fixture
def consolidated(warehouse_url):
    members = [
        # The same opportunity in Salesforce and in HubSpot; HubSpot saw the first move a day later.
        DealRow("salesforce:006A", "qualification", "open", 12_000, "2026-10-01",
                history=[("prospecting", "2026-10-01"), ("qualification", "2026-10-10")]),
        DealRow("hubspot:901", "qualification", "open", 12_500, "2026-10-02",
                history=[("prospecting", "2026-10-02"), ("qualification", "2026-10-10")]),
        DealRow("pipedrive:77", "closed_won", "won", 8_000, "2026-09-01", close="2026-10-11",
                history=[("prospecting", "2026-09-01"), ("closed_won", "2026-10-11")]),
    ]
    golden = [
        {"golden_id": "g-1", "source": "salesforce", "name": "Acme renewal", "stage": "qualification", "status": "open",
         "amount_reporting": 12_000, "created_at": at("2026-10-01"), "stage_entered_at": at("2026-10-10"),
         "owner_email": "ann@example.com", "contact_emails": [], "external_refs": [], "is_deleted": False,
         "members": ["salesforce:006A", "hubspot:901"]},
        {"golden_id": "g-2", "source": "pipedrive", "name": "Globex", "stage": "closed_won", "status": "won",
         "amount_reporting": 8_000, "created_at": at("2026-09-01"), "close_date": date(2026, 10, 11),
         "owner_email": "bob@example.com", "contact_emails": [], "external_refs": [], "is_deleted": False,
         "members": ["pipedrive:77"]},
    ]
    return write_warehouse(warehouse_url, members, golden)


def test_metrics_count_each_golden_deal_once(consolidated):
    m = run_metrics(consolidated, Q4, now=NOW)
    assert m.deal_set == "golden"
    assert m.total("open_pipeline_count").value == 1
    assert m.total("open_pipeline_value").value == 12_000  # the golden amount, not 12,000 + 12,500
    assert m.total("won_count").value == 1


def test_member_histories_merge_without_double_visits(consolidated):
    m = run_metrics(consolidated, Q4, now=NOW)
    prospecting = next(s for s in m.days_in_stage if s.stage == "prospecting")
    # g-1: salesforce entered prospecting 10-01 (hubspot's 10-02 entry is the same visit) and
    # qualification 10-10: one visit of 9 days. g-2: prospecting 09-01 → won 10-11: 40 days.
    assert (prospecting.visits, prospecting.avg_days) == (2, (9 + 40) / 2)
    # Entries in Q4: g-1 prospecting (once, though both members recorded it) then qualification;
    # g-2 won (its prospecting entry was in Q3).
    assert [s.reached for s in m.funnel] == [1, 1, 0, 0, 0, 1]
    assert [s.went_on for s in m.funnel] == [1, 0, 0, 0, 0, None]


def test_listed_golden_deals_link_to_every_member_record(consolidated):
    m = run_metrics(consolidated, Q4, now=NOW)
    stale = next(d for d in m.stale_deals.deals if d.id == "g-1")  # never touched since 10-01
    assert stale.name == "Acme renewal"
    assert sorted((r.source, r.source_id) for r in stale.records) == [("hubspot", "901"), ("salesforce", "006A")]

"""Survivorship: each field's winner, by its rule, with provenance and conflicts."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import numpy as np

from pipesync.consolidate.rules import FieldRule, Survivorship
from pipesync.consolidate.survivorship import GoldenDeal, Survivor
from tests.consolidate.conftest import make_deal, records


def golden(pipeline, rules, *deals):
    return Survivor(rules, pipeline).golden("gd_test", records(*deals), 0.99)


def at(day: int) -> datetime:
    return datetime(2025, 5, day, tzinfo=timezone.utc)


def test_each_field_survives_by_its_rule_and_keeps_its_provenance(pipeline, rules):
    sf = make_deal("salesforce", "1", name="Acme renewal", stage="proposal", owner_email="sf.owner@seller.example",
                   updated_at=at(1), amount=50_000, contact_emails=["a@acme.com"])
    hs = make_deal("hubspot", "2", name="Acme - Renewal 2025 (3 years)", stage="negotiation",
                   owner_email="hs.owner@seller.example", updated_at=at(20), amount=51_000,
                   contact_emails=["b@acme.com", "a@acme.com"])
    g = golden(pipeline, rules.survivorship, sf, hs)
    assert g.members == [hs.key, sf.key]
    assert g.values["name"] == hs.name and g.provenance["name"] == {"deal_key": hs.key, "rule": "most_complete"}
    assert g.values["stage"] == "negotiation" and g.provenance["stage"]["rule"] == "most_advanced"
    assert g.values["owner_email"] == "sf.owner@seller.example"  # salesforce first in source_priority
    assert g.provenance["owner_email"] == {"deal_key": sf.key, "rule": "source_priority"}
    assert g.values["amount_reporting"] == Decimal(51_000)  # the most recently updated
    assert g.values["updated_at"] == at(20)
    assert g.values["contact_emails"] == ["a@acme.com", "b@acme.com"]
    assert g.provenance["contact_emails"] == {"deal_keys": [hs.key, sf.key], "rule": "union"}


def test_followers_come_from_the_member_that_won_their_leader(pipeline, rules):
    eur = make_deal("salesforce", "1", amount=46_000, currency="EUR", updated_at=at(25))
    usd = make_deal("hubspot", "2", amount=50_000, updated_at=at(2))
    g = golden(pipeline, rules.survivorship, eur, usd)
    assert (g.values["amount"], g.values["currency"]) == (Decimal(46_000), "EUR")
    assert g.provenance["currency"] == {"deal_key": eur.key, "rule": "follows amount_reporting"}


def test_a_closed_stage_is_more_advanced_than_any_open_one_and_parked_is_least(pipeline, rules):
    won = make_deal("pipedrive", "1", stage="closed_won", status="won", updated_at=at(1))
    negotiating = make_deal("salesforce", "2", stage="negotiation", updated_at=at(20))
    parked = make_deal("hubspot", "3", stage="on_hold", updated_at=at(25))
    g = golden(pipeline, rules.survivorship, won, negotiating, parked)
    assert (g.values["stage"], g.values["status"]) == ("closed_won", "won")
    g = golden(pipeline, rules.survivorship, negotiating, parked)
    assert g.values["stage"] == "negotiation"


def test_the_most_recent_stage_rule_takes_the_latest_update(pipeline):
    rules = Survivorship(fields={"stage": FieldRule(rule="most_recent")})
    older = make_deal("salesforce", "1", stage="negotiation", updated_at=at(1))
    newer = make_deal("hubspot", "2", stage="discovery", updated_at=at(9))
    assert golden(pipeline, rules, older, newer).values["stage"] == "discovery"


def test_empty_values_never_win(pipeline, rules):
    complete = make_deal("hubspot", "1", lead_source="Webinar", updated_at=at(1))
    sparse = make_deal("salesforce", "2", lead_source=None, updated_at=at(9))
    g = golden(pipeline, rules.survivorship, complete, sparse)
    assert g.values["lead_source"] == "Webinar" and g.provenance["lead_source"]["deal_key"] == complete.key


def test_disagreements_beyond_tolerance_are_conflicts_and_within_it_are_not(pipeline, rules):
    a = make_deal("salesforce", "1", amount=50_000, close_date=date(2025, 6, 30), stage="proposal")
    b = make_deal("hubspot", "2", amount=50_500, close_date=date(2025, 7, 5), stage="proposal")  # 1%, 5 days
    assert golden(pipeline, rules.survivorship, a, b).conflicts == []
    c = make_deal("hubspot", "3", amount=60_000, close_date=date(2025, 9, 30), stage="closed_lost", status="lost")
    conflicts = {x["field"]: x["values"] for x in golden(pipeline, rules.survivorship, a, c).conflicts}
    assert conflicts["amount_reporting"] == {a.key: "50000", c.key: "60000"}
    assert conflicts["close_date"] == {a.key: "2025-06-30", c.key: "2025-09-30"}
    assert conflicts["stage"] == {a.key: "proposal", c.key: "closed_lost"}


def test_a_single_member_is_its_own_golden_deal(pipeline, rules):
    only = make_deal("pipedrive", "5")
    g = golden(pipeline, rules.survivorship, only)
    assert g.members == [only.key] and g.source == "pipedrive"
    assert g.values["name"] == only.name and g.conflicts == []


def test_many_clusters_at_once_survive_as_each_would_alone(pipeline, rules):
    # each rule ranks the members of every cluster at once: no cluster may sway another
    deals = [
        make_deal("salesforce", "1", stage="negotiation", updated_at=at(3), amount=50_000, lead_source=None),
        make_deal("hubspot", "2", stage="proposal", updated_at=at(9), amount=61_000, lead_source="Web"),
        make_deal("pipedrive", "3", name="Globex", account_name="Globex", updated_at=at(5)),
        make_deal("hubspot", "4", name="Globex - Pilot", stage="closed_won", status="won", updated_at=at(1),
                  contact_emails=[], close_date=date(2025, 8, 1)),
        make_deal("salesforce", "5", name="Globex pilot", updated_at=None, created_at=at(2), amount=None),
        make_deal("pipedrive", "6", name="Initech", account_name="Initech", updated_at=at(9)),
    ]
    members = sorted(records(*deals), key=lambda r: r.key)
    at_key = {r.key: i for i, r in enumerate(members)}
    clusters = [sorted(at_key[d.key] for d in group) for group in (deals[:2], deals[2:3], deals[3:5], deals[5:])]
    clusters.sort()
    ids = [f"gd_{c}" for c in range(len(clusters))]
    survivor = Survivor(rules.survivorship, pipeline)
    order = np.array([i for cluster in clusters for i in cluster])
    starts = np.cumsum([0] + [len(cluster) for cluster in clusters])
    together = {row["golden_id"]: GoldenDeal.of_row(row)
                for row in survivor.rows(members, order, starts, ids, [0.9] * len(clusters))}
    alone = {ids[c]: survivor.golden(ids[c], [members[i] for i in cluster], 0.9) for c, cluster in enumerate(clusters)}
    assert together == alone
    assert [len(together[ids[c]].members) for c in range(len(clusters))] == [len(cluster) for cluster in clusters]


def test_a_golden_deal_never_leaves_its_name_or_lists_missing(pipeline, rules):
    # no member has a name: no winner, yet the golden_deals columns take no NULL
    unnamed = [make_deal("salesforce", "1", name="", contact_emails=[]), make_deal("hubspot", "2", name="")]
    g = golden(pipeline, rules.survivorship, *unnamed)
    assert (g.values["name"], g.values["external_refs"]) == ("", []) and "name" not in g.provenance


def test_the_actual_close_date_comes_with_the_status_it_dates(pipeline, rules):
    # Pipedrive knows the deal was won on 06-12; the HubSpot copy, updated later, is still open
    pd = make_deal("pipedrive", "7", stage="closed_won", status="won", close_date=date(2025, 6, 30),
                   actual_close_date=date(2025, 6, 12), updated_at=at(1))
    hs = make_deal("hubspot", "2", stage="negotiation", close_date=date(2025, 7, 31), updated_at=at(20))
    g = golden(pipeline, rules.survivorship, pd, hs)
    assert (g.values["status"], g.values["actual_close_date"]) == ("won", date(2025, 6, 12))
    assert g.provenance["actual_close_date"]["deal_key"] == pd.key
    assert g.values["close_date"] == date(2025, 7, 31)  # the expected date keeps its own rule (most recent)

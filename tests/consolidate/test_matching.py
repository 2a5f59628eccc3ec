"""Which deals are one deal: specifications of the default rules on hand-made deals."""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.consolidate.explain import explain_pairs
from tests.consolidate.conftest import clusters_of, make_deal, records


def test_one_deal_in_three_systems_with_drifting_spellings_is_one_golden_deal(run):
    sf = make_deal("salesforce", "006A", name="Acme - Renewal 2025", account_name="Acme Inc.")
    hs = make_deal("hubspot", "11", name="ACME renewal 2025", account_name="ACME, INC", account_domain=None,
                   close_date=date(2025, 7, 2), days=2)
    pd = make_deal("pipedrive", "7", name="Renewal 2025", account_name="Acme", account_domain="https://www.acme.com",
                   amount=50_100, days=1)
    result = run(sf, hs, pd)
    assert clusters_of(result) == {frozenset({sf.key, hs.key, pd.key})}


def test_different_deals_of_one_account_stay_apart(run):
    renewal = make_deal("salesforce", "006A", name="Acme - Renewal 2025")
    next_year = make_deal("salesforce", "006B", name="Acme - Renewal 2026", amount=52_000,
                          close_date=date(2026, 6, 30), days=330)
    expansion = make_deal("salesforce", "006C", name="Acme - Expansion 500 seats", amount=120_000,
                          close_date=date(2025, 9, 30), days=40)
    # the same three deals as HubSpot holds them
    hs_renewal = make_deal("hubspot", "1", name="Acme renewal", days=3)
    hs_expansion = make_deal("hubspot", "2", name="Acme upsell", amount=120_000, close_date=date(2025, 9, 30), days=42)
    result = run(renewal, next_year, expansion, hs_renewal, hs_expansion)
    assert clusters_of(result) == {
        frozenset({renewal.key, hs_renewal.key}),
        frozenset({expansion.key, hs_expansion.key}),
        frozenset({next_year.key}),
    }


def test_a_shared_free_mail_domain_does_not_make_two_companies_one(run, rules):
    a = make_deal("salesforce", "1", account_name="Blue Fox GmbH", account_domain=None,
                  contact_emails=["anna@gmail.com"], name="Blue Fox - Pilot")
    b = make_deal("hubspot", "2", account_name="Red Owl Ltd", account_domain=None,
                  contact_emails=["ben@gmail.com"], name="Red Owl - Pilot", amount=20_000, days=5)
    [pair] = explain_pairs(records(a, b), rules)
    assert {c.comparison: c.level for c in pair.comparisons}["account"] == "different account"
    assert clusters_of(run(a, b)) == {frozenset({a.key}), frozenset({b.key})}


def test_two_companies_of_one_name_with_different_websites_stay_apart(run, rules):
    a = make_deal("salesforce", "1", account_name="Greenline Freight plc", account_domain="greenline-freight.co.uk",
                  contact_emails=[], name="Greenline - New Business")
    b = make_deal("hubspot", "2", account_name="Greenline GmbH", account_domain="greenline.de",
                  contact_emails=[], name="Greenline - New Business", days=1)
    [pair] = explain_pairs(records(a, b), rules)
    assert {c.comparison: c.level for c in pair.comparisons}["account"] == "different website"
    assert clusters_of(run(a, b)) == {frozenset({a.key}), frozenset({b.key})}


def test_a_company_email_domain_links_accounts_spelled_in_different_scripts(run):
    latin = make_deal("salesforce", "1", account_name="Toyota Motor Corporation", account_domain=None,
                      contact_emails=["k.sato@toyota.co.jp"], name="Fleet analytics")
    kanji = make_deal("hubspot", "2", account_name="トヨタ自動車株式会社", account_domain="toyota.co.jp",
                      contact_emails=[], name="フリート分析", days=1)
    result = run(latin, kanji)
    assert clusters_of(result) == {frozenset({latin.key, kanji.key})}


def test_an_external_ref_joins_deals_outright(run):
    sf = make_deal("salesforce", "006X", name="Globex platform", account_name="Globex", account_domain="globex.com")
    hs = make_deal("hubspot", "9", name="Something else entirely", account_name="Initech", account_domain="initech.com",
                   amount=1, close_date=date(2030, 1, 1), external_refs=["salesforce:006X"])
    result = run(sf, hs)
    assert clusters_of(result) == {frozenset({sf.key, hs.key})}
    link = next(l for l in result.links() if l.deal_key == hs.key)
    assert (link.rule, link.linked_to, link.score) == ("external_ref", sf.key, 1.0)


def test_deleted_deals_take_no_part(run):
    live = make_deal("salesforce", "1")
    gone = make_deal("hubspot", "2", is_deleted=True)
    result = run(live, gone)
    assert [r.key for r in result.records] == [live.key]
    assert clusters_of(result) == {frozenset({live.key})}


def test_a_system_holding_one_deal_twice_needs_the_evidence_a_copy_in_another_system_needs(run):
    # no stricter bar inside one system: a second rep re-entering a deal is as provable as a copy
    original = make_deal("hubspot", "1", name="Acme - Renewal 2025")
    entered_twice = make_deal("hubspot", "2", name="Acme - Renewal 2025")
    other = make_deal("hubspot", "3", name="Acme - Renewal 2025", amount=30_000, close_date=date(2025, 9, 12), days=45)
    result = run(original, entered_twice, other)
    assert clusters_of(result) == {frozenset({original.key, entered_twice.key}), frozenset({other.key})}


def test_links_carry_their_score_rule_and_partner(run):
    sf = make_deal("salesforce", "1")
    hs = make_deal("hubspot", "2", days=1)
    result = run(sf, hs)
    links = {l.deal_key: l for l in result.links()}
    assert links[sf.key].linked_to == hs.key and links[hs.key].linked_to == sf.key
    assert links[sf.key].rule.startswith("match:")
    assert 0.95 <= links[sf.key].score <= 1.0
    assert links[sf.key].golden_id == links[hs.key].golden_id


def test_no_deal_gets_more_candidate_pairs_than_the_rules_allow(run, rules):
    # 40 deals of one account, all closing the same day: every pass puts them in one block
    deals = [make_deal("salesforce", str(i), name=f"Acme order {i}", amount=1000 + i) for i in range(40)]
    result = run(*deals)
    degree = {}
    for a, b in zip(result.candidates.left.tolist(), result.candidates.right.tolist()):
        degree[a] = degree.get(a, 0) + 1
        degree[b] = degree.get(b, 0) + 1
    assert max(degree.values()) <= rules.max_pairs_per_deal
    assert len(result.candidates) < 40 * 39 // 2  # never all pairs


def test_agreeing_on_a_common_subject_weighs_less_than_on_a_rare_one(rules):
    common = [make_deal("salesforce", str(i), name="Acme - Team Plan", amount=1000 * (i + 1),
                        close_date=date(2025, 1 + i, 1)) for i in range(6)]
    rare = [make_deal("hubspot", f"r{i}", name="Acme - Fleet telematics pilot", amount=777_000 + i)
            for i in range(2)]
    pairs = {(p.left, p.right): p for p in explain_pairs(records(*common, *rare), rules)}

    def subject(a, b):
        pair = pairs[tuple(sorted((a.key, b.key)))]
        return next(c for c in pair.comparisons if c.comparison == "subject")

    same_common, same_rare = subject(common[0], common[1]), subject(rare[0], rare[1])
    assert same_common.level == same_rare.level == "same subject"
    assert same_common.weight < same_rare.weight


# One account's deals entered the same week, in two systems, with the usual drift
# (amount re-typed, close date moved): only what the names say tells them apart.
@pytest.mark.parametrize(
    ("salesforce_name", "hubspot_name", "one_deal"),
    [
        pytest.param("Acme - Renewal FY25", "ACME Vertragsverlängerung", True, id="renamed copy, same kind"),
        pytest.param("Acme - Renewal FY25", "Acme proof of concept", False, id="a renewal is not a pilot"),
        pytest.param("Acme – Team Plan (25 seats)", "ACME Team Plan deal", True, id="renamed copy, same product"),
        pytest.param("Acme – Team Plan (25 seats)", "Acme Analytics Suite", False, id="another product"),
    ],
)
def test_what_a_name_says_joins_renamed_copies_and_keeps_an_accounts_other_deals_apart(
    run, salesforce_name, hubspot_name, one_deal
):
    sf = make_deal("salesforce", "1", name=salesforce_name, amount=50_000, close_date=date(2025, 6, 30))
    hs = make_deal("hubspot", "2", name=hubspot_name, amount=54_000, close_date=date(2025, 7, 28), days=3)
    expected = {frozenset({sf.key, hs.key})} if one_deal else {frozenset({sf.key}), frozenset({hs.key})}
    assert clusters_of(run(sf, hs)) == expected


def test_nothing_to_consolidate_and_deals_without_keys_are_fine(run):
    assert len(run().clusters) == 0
    bare = {"account_name": None, "account_domain": None, "contact_emails": [], "name": "", "amount": None,
            "close_date": None, "created_at": None}
    a, b = make_deal("salesforce", "1", **bare), make_deal("hubspot", "2", **bare)
    assert clusters_of(run(a, b)) == {frozenset({a.key}), frozenset({b.key})}

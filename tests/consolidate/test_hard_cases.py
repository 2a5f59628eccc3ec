"""What broke an outside evaluation: sibling deals of one account, stale and 15-character references,
chains, customers held in two scripts, duplicates inside one system."""

from __future__ import annotations

from datetime import date

import pytest

from pipesync.consolidate.blocking import link_key
from pipesync.consolidate.keys import load_lexicon
from pipesync.consolidate.romanize import company_skeleton
from pipesync.consolidate.tokens import TokenReader
from tests.consolidate.conftest import clusters_of, make_deal


@pytest.mark.parametrize(("a", "b"), [
    ("Acme renewal FY25", "ACME – Renewal 2025"), ("Acme renewal '25", "Acme FY2025"), ("Acme FY 25", "Acme 2025年续约"),
    ("Acme +50 seats", "Acme upsell (50 users)"), ("Acme Phase 2", "Acme phase II"), ("Acme 2期", "Acme Ph. 2"),
    ("Acme EMEA roll-out", "Acme rollout Europe Middle East Africa"),
])
def test_a_token_reads_alike_in_every_written_form(a, b):
    reader = TokenReader(load_lexicon())
    assert reader.read(a) == reader.read(b) != {}


@pytest.mark.parametrize(("a", "b", "kind"), [
    ("Acme renewal FY24", "Acme renewal 2025", "year"), ("Acme +50 seats", "Acme +60 seats", "seats"),
    ("Acme Phase 1", "Acme Phase II", "phase"), ("Acme EMEA rollout", "Acme ANZ rollout", "region"),
])
def test_siblings_differ_in_their_token(a, b, kind):
    reader = TokenReader(load_lexicon())
    assert reader.read(a)[kind] != reader.read(b)[kind]


def test_a_seat_count_is_no_year():
    assert TokenReader(load_lexicon()).read("Acme +2025 seats") == {"seats": frozenset({"2025"})}


def test_one_accounts_renewals_of_two_years_stay_apart_however_alike(run):
    last = make_deal("salesforce", "006A", name="Acme - Renewal FY24")
    this = make_deal("hubspot", "1", name="Acme renewal 2025", days=1)
    assert clusters_of(run(last, this)) == {frozenset({last.key}), frozenset({this.key})}


def test_a_stale_reference_does_not_override_a_contradicting_token(run):
    last = make_deal("salesforce", "006A", name="Acme - Renewal FY24")
    cloned = make_deal("hubspot", "1", name="Acme renewal 2025", days=1, external_refs=["salesforce:006A"])
    result = run(last, cloned)
    assert clusters_of(result) == {frozenset({last.key}), frozenset({cloned.key})}
    assert result.hard_pairs == 0


def test_salesforce_ids_in_15_and_18_characters_link():
    assert link_key("salesforce:0065g0000004Aln") == link_key("salesforce:0065g0000004AlnAAE") != link_key("hubspot:1")
    assert link_key("hubspot:123456789012345") == "hubspot:123456789012345"  # numbers are never Salesforce ids


def test_a_15_character_reference_joins_its_18_character_deal(run):
    sf = make_deal("salesforce", "0065g0000004AlnAAE", name="Globex platform", account_name="Globex",
                   account_domain="globex.com")
    hs = make_deal("hubspot", "9", name="Initech", account_name="Initech", account_domain="initech.com",
                   amount=1, close_date=date(2030, 1, 1), external_refs=["salesforce:0065g0000004Aln"])
    assert clusters_of(run(sf, hs)) == {frozenset({sf.key, hs.key})}


def test_a_cluster_is_kept_only_if_its_members_are_coherent(run):
    # b is near a and near c, but a and c name different years: no chain through b
    a = make_deal("salesforce", "1", name="Acme renewal 2024", amount=50_000)
    b = make_deal("hubspot", "2", name="Acme renewal", amount=50_000, days=1)
    c = make_deal("pipedrive", "3", name="Acme renewal 2025", amount=50_000, days=2)
    clusters = clusters_of(run(a, b, c))
    assert frozenset({a.key, b.key, c.key}) not in clusters
    assert not any({a.key, c.key} <= cluster for cluster in clusters)


@pytest.mark.parametrize(("native", "latin"), [
    ("(주)한빛", "Hanpit Co., Ltd."), ("株式会社ジワ", "Ziwa K.K."), ("ООО «ЖуВол»", "OOO Juwol"),
    ("中信有限公司", "Chunghsin Limited"), ('שחרטל בע"מ', "Shahartal Ltd"), ("Αθηνι Α.Ε.", "Atheni S.A."),
    ("株式会社チノ", "Tino K.K."), ("株式会社ツワ", "Tuwa K.K."), ("株式会社フジ", "Huzi K.K."),  # Kunrei
])
def test_company_names_romanised_by_any_scheme_meet(native, latin):
    lexicon = load_lexicon()
    assert company_skeleton(" ".join(lexicon.company_tokens(native)), lexicon) == \
        company_skeleton(" ".join(lexicon.company_tokens(latin)), lexicon)


def test_a_customer_held_in_its_own_script_matches_its_latin_copy_without_a_shared_domain(run):
    native = make_deal("salesforce", "1", account_name="(주)한빛", account_domain=None, contact_emails=[],
                       name="한빛 갱신 2025", amount=30_000)
    latin = make_deal("hubspot", "2", account_name="Hanbit Corp.", account_domain=None, contact_emails=[],
                      name="Hanbit - Renewal 2025", amount=30_100, days=2)
    assert clusters_of(run(native, latin)) == {frozenset({native.key, latin.key})}


def test_a_deal_re_entered_by_a_second_rep_is_found(run):
    first = make_deal("salesforce", "1", name="Acme - Team Plan renewal 2025")
    again = make_deal("salesforce", "2", name="ACME Team Plan Renewal FY25", owner_email="sam@seller.example",
                      amount=50_400, close_date=date(2025, 7, 2), days=3)
    assert clusters_of(run(first, again)) == {frozenset({first.key, again.key})}


def test_weights_estimated_from_the_data_are_reported_and_applied_on_request(run, rules):
    deals = [make_deal("salesforce", str(i), name=f"Acme order {i}", amount=1000 + 50 * i, days=i) for i in range(30)]
    deals += [make_deal("hubspot", f"h{i}", name=f"Acme order {i}", amount=1000 + 50 * i, days=i) for i in range(30)]
    estimate = run(*deals).estimate
    assert not estimate.applied and 0 < estimate.match_share < 1
    account = estimate.levels["account"]
    assert account["same website"]["weight"] == pytest.approx(
        __import__("math").log2(account["same website"]["m"] / account["same website"]["u"]))
    applied = run(*deals, with_rules=rules.model_copy(update={"estimate_weights": True})).estimate
    assert applied.applied

"""The seeded world: deterministic, exactly sized, realistic, and honestly labelled."""

from __future__ import annotations

import csv
import hashlib
import statistics
from collections import Counter, defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipesync.adapters.values import salesforce_suffix as adapters_salesforce_suffix
from pipesync.errors import FileErrors
from pipesync.model import Category
from pipesync.parsing import domain_of
from pipesync.yamlfile import load_model
from pipesync_sandbox import ids
from pipesync_sandbox.generator import FX_TO_USD, LABEL_COLUMNS, canonical_deals, generate, write_labels
from pipesync_sandbox.lexicon import DATA_DIR, SHARED_KEYS, SHARED_OPEN, Catalog
from pipesync_sandbox.world import SYSTEMS, World


def _all_deals(world: World):
    return [d for data in world.systems.values() for d in data.deals]


def _fingerprint(world: World) -> str:
    h = hashlib.sha256()
    for d in _all_deals(world):
        h.update(repr((d.id, d.truth_id, d.name, d.amount, d.currency, d.close_date, d.created_at, d.stage_id,
                       d.status, d.owner_id, d.account_id, [(v.stage_id, v.entered_at) for v in d.history],
                       d.external_ref, d.merged_into, d.is_deleted)).encode())
    for data in world.systems.values():
        h.update(repr([(a.id, a.name, a.website) for a in data.accounts]).encode())
        h.update(repr([(o.id, o.name, o.email) for o in data.owners]).encode())
    return h.hexdigest()


def _labels(world: World, tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "labels.csv"
    assert write_labels(world, path) == sum(len(d.deals) for d in world.systems.values())
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ determinism and size


def test_the_same_seed_and_size_give_the_same_world_and_another_seed_does_not(small_world):
    assert _fingerprint(generate(11, 10_000)) == _fingerprint(small_world)
    assert _fingerprint(generate(12, 10_000)) != _fingerprint(small_world)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31), size=st.integers(1, 400))
def test_any_size_gives_exactly_that_many_records_each_with_valid_references(seed, size):
    world = generate(seed, size)
    assert sum(len(d.deals) for d in world.systems.values()) == size
    for system, data in world.systems.items():
        stage_ids = {(p.id, s.id) for p in data.pipelines for s in p.stages}
        owners, accounts = {o.id for o in data.owners}, {a.id for a in data.accounts}
        contacts = {c.id for c in data.contacts}
        deal_ids = [d.id for d in data.deals]
        assert len(set(deal_ids)) == len(deal_ids)
        for d in data.deals:
            assert d.system == system
            assert (d.pipeline_id, d.stage_id) in stage_ids
            assert d.owner_id in owners and d.account_id in accounts and set(d.contact_ids) <= contacts
            assert all((d.pipeline_id, v.stage_id) in stage_ids for v in d.history)


def test_sizes_below_one_are_refused():
    with pytest.raises(ValueError, match="size"):
        generate(1, 0)


# ------------------------------------------------------------------------------ vendor shapes


def test_ids_look_like_each_vendors_ids(small_world):
    sf, hs, pd = (small_world.systems[s] for s in SYSTEMS)
    for prefix, records in (("006", sf.deals), ("001", sf.accounts), ("005", sf.owners), ("003", sf.contacts)):
        for r in records:
            assert len(r.id) == 18 and r.id.startswith(prefix) and r.id.isalnum()
            assert r.id[15:] == adapters_salesforce_suffix(r.id[:15])
    for records in (hs.deals, hs.accounts, hs.contacts, hs.owners, pd.deals, pd.accounts, pd.contacts, pd.owners):
        assert all(r.id.isdigit() and not r.id.startswith("0") for r in records)
    assert "default" in {p.id for p in hs.pipelines}


def test_the_sandbox_computes_salesforce_checksums_on_its_own_and_agrees_with_salesforce():
    assert ids.salesforce_suffix("001D000000IqhSL") == "IAZ"  # Salesforce's documented example
    assert ids.salesforce_suffix("006000000000000") == "AAA" and ids.salesforce_suffix("ABCDEABCDEABCDE") == "555"
    # its one-by-one and vectorized forms agree
    assert ids.salesforce_id("006", 123_456_789) == ids.salesforce_ids("006", np.array([123_456_789]))[0]


@given(st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", min_size=15, max_size=15))
def test_the_sandbox_and_the_adapter_agree_on_every_salesforce_checksum(id15):
    assert ids.salesforce_suffix(id15) == adapters_salesforce_suffix(id15)


def test_ids_increase_with_creation_time_like_the_vendors_sequences(small_world):
    for system in ("hubspot", "pipedrive"):
        deals = small_world.systems[system].deals
        assert [int(d.id) for d in deals] == sorted(int(d.id) for d in deals)
        assert [d.created_at for d in deals] == sorted(d.created_at for d in deals)


def test_pipedrive_keeps_won_and_lost_as_a_status_and_the_stage_open(small_world):
    pd = small_world.systems["pipedrive"]
    assert not any(s.is_closed for p in pd.pipelines for s in p.stages)
    statuses = Counter(d.status for d in pd.deals)
    assert statuses["won"] and statuses["lost"] and statuses["open"]
    for d in pd.deals:
        if d.status != "open":
            assert d.closed_at is not None and d.closed_at >= d.history[-1].entered_at


def test_salesforce_and_hubspot_close_deals_in_their_won_and_lost_stages(small_world):
    for system in ("salesforce", "hubspot"):
        data = small_world.systems[system]
        stage = {(p.id, s.id): s for p in data.pipelines for s in p.stages}
        for d in data.deals:
            s = stage[(d.pipeline_id, d.stage_id)]
            assert s.is_closed == (d.status != "open")
            assert s.is_won == (d.status == "won")


def test_stage_labels_come_in_the_languages_real_teams_use(small_world):
    languages = {p.language for data in small_world.systems.values() for p in data.pipelines}
    assert {"en", "zh", "ko", "ar", "de", "es"} <= languages
    sf_stages = {s.label for p in small_world.systems["salesforce"].pipelines for s in p.stages}
    assert {"Prospecting", "Qualification", "Needs Analysis", "Value Proposition", "Id. Decision Makers",
            "Perception Analysis", "Proposal/Price Quote", "Negotiation/Review", "Closed Won",
            "Closed Lost"} <= sf_stages
    hs_default = next(p for p in small_world.systems["hubspot"].pipelines if p.id == "default")
    assert [s.id for s in hs_default.stages] == ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
                                                 "decisionmakerboughtin", "contractsent", "closedwon", "closedlost"]
    pd_stages = {s.label for p in small_world.systems["pipedrive"].pipelines for s in p.stages}
    assert {"Lead In", "Contact Made", "Proposal Made"} <= pd_stages
    for data in small_world.systems.values():
        for p in data.pipelines:
            assert all(s.shared in SHARED_KEYS for s in p.stages)
            # ground truth respects the pipeline's order: no stage means an earlier shared stage than its predecessor
            ranks = [SHARED_OPEN.index(s.shared) for s in p.stages if s.shared in SHARED_OPEN]
            assert ranks == sorted(ranks)


def test_every_system_uses_several_pipelines_and_currencies(small_world):
    for data in small_world.systems.values():
        used = Counter(d.pipeline_id for d in data.deals)
        assert len(used) >= 3
    assert len({d.currency for d in _all_deals(small_world)}) >= 6


# ------------------------------------------------------------------------------ realistic shapes


def test_open_deals_form_a_funnel_over_the_shared_stages(small_world):
    open_by_stage = Counter(d.stage for d in canonical_deals(small_world) if d.status is Category.OPEN)
    counts = [open_by_stage[s] for s in SHARED_OPEN]
    assert counts == sorted(counts, reverse=True) and counts[-1] > 0
    assert open_by_stage["on_hold"] > 0


def test_fewer_deals_ever_reach_each_later_stage(small_world):
    reached = Counter()
    for data in small_world.systems.values():
        shared = {(p.id, s.id): s.shared for p in data.pipelines for s in p.stages}
        for d in data.deals:
            for key in {shared[(d.pipeline_id, v.stage_id)] for v in d.history}:
                reached[key] += 1
    counts = [reached[s] for s in SHARED_OPEN]
    assert counts[0] > counts[-1] and reached["closed_lost"] > reached["closed_won"] > 0


def test_stage_histories_agree_with_the_deals_dates(small_world):
    for d in _all_deals(small_world):
        times = [v.entered_at for v in d.history]
        assert times == sorted(times)
        assert times[0] == d.created_at and d.history[-1].stage_id == d.stage_id
        assert times[-1] <= d.updated_at <= small_world.as_of
        if d.status != "open":
            assert d.created_at <= d.closed_at <= small_world.as_of
        if d.deleted_at:
            assert d.is_deleted and d.deleted_at <= small_world.as_of


def test_amounts_are_log_normal_with_a_long_tail_in_several_currencies(small_world):
    usd = [float(d.amount * FX_TO_USD[d.currency]) for d in _all_deals(small_world) if d.amount is not None]
    median, mean = statistics.median(usd), statistics.fmean(usd)
    assert 5_000 < median < 50_000
    assert mean > 1.3 * median and max(usd) > 20 * median
    assert sum(1 for d in _all_deals(small_world) if d.amount is None) > 0


def test_some_open_deals_have_had_no_activity_for_months(small_world):
    quiet_since = small_world.as_of - timedelta(days=90)
    stale = [d for d in _all_deals(small_world)
             if d.status == "open" and d.last_activity_at and d.last_activity_at < quiet_since]
    assert len(stale) > 50
    assert all("stale" in d.anomalies for d in stale if d.role == "primary")


def test_misplaced_zeros_are_ten_times_off_from_the_same_deal_elsewhere(small_world):
    by_truth = defaultdict(list)
    for d in _all_deals(small_world):
        by_truth[d.truth_id].append(d)
    ratios = []
    for d in _all_deals(small_world):
        if "misplaced_zero" in d.anomalies:
            for other in by_truth[d.truth_id]:
                if other is not d and other.amount and other.currency == d.currency and "misplaced_zero" not in other.anomalies:
                    ratios.append(float(d.amount / other.amount))
    assert ratios, "expected misplaced zeros on deals that also live elsewhere"
    assert all(r > 7 or r < 1 / 7 for r in ratios)


# ------------------------------------------------------------------------------ duplicates and drift


def test_the_labels_put_every_record_in_exactly_one_cluster(small_world, tmp_path):
    rows = _labels(small_world, tmp_path)
    assert tuple(rows[0]) == LABEL_COLUMNS
    keys = [r["deal_key"] for r in rows]
    assert len(keys) == len(set(keys)) == sum(len(d.deals) for d in small_world.systems.values())
    expected = {f"{d.system}:{d.id}": d.truth_id for d in _all_deals(small_world)}
    assert {r["deal_key"]: r["truth_id"] for r in rows} == expected
    assert {r["role"] for r in rows} == {"primary", "copy", "duplicate"}


def test_cross_system_and_in_system_duplicates_occur_at_realistic_rates(small_world):
    systems_of = defaultdict(list)
    for d in _all_deals(small_world):
        systems_of[d.truth_id].append(d.system)
    clusters = len(systems_of)
    spanning = sum(1 for s in systems_of.values() if len(set(s)) >= 2)
    in_system = sum(1 for s in systems_of.values() if len(s) > len(set(s)))
    assert 0.15 < spanning / clusters < 0.45
    assert 0.01 < in_system / clusters < 0.08
    assert any(len(set(s)) == 3 for s in systems_of.values())


def test_an_account_has_many_different_deals_that_stay_apart(small_world):
    deals_of_company = defaultdict(set)
    for data in small_world.systems.values():
        company = {a.id: a.truth_id for a in data.accounts}
        for d in data.deals:
            deals_of_company[company[d.account_id]].add(d.truth_id)
    sizes = sorted((len(v) for v in deals_of_company.values()), reverse=True)
    assert sizes[0] >= 20 and statistics.median(sizes) >= 2


def test_copies_of_one_deal_drift_in_name_amount_close_date_and_account_spelling(small_world):
    by_truth = defaultdict(list)
    for d in _all_deals(small_world):
        by_truth[d.truth_id].append(d)
    account_name = {a.id: a.name for data in small_world.systems.values() for a in data.accounts}
    pairs = [(a, b) for group in by_truth.values() if len(group) > 1 for a, b in zip(group, group[1:])]
    assert pairs
    share = lambda pred: sum(1 for a, b in pairs if pred(a, b)) / len(pairs)  # noqa: E731
    assert 0.2 < share(lambda a, b: a.name != b.name) < 0.95
    assert 0.05 < share(lambda a, b: a.close_date != b.close_date) < 0.8
    assert 0.05 < share(lambda a, b: a.amount != b.amount) < 0.9
    assert share(lambda a, b: account_name[a.account_id] != account_name[b.account_id]) > 0.1
    legal_suffixes = ("Inc.", "GmbH", "有限公司", "株式会社", "Ltd", "LLC", "S.A.", "주식회사")
    names = {account_name[d.account_id] for d in _all_deals(small_world)}
    assert all(any(s in n for n in names) for s in legal_suffixes)


def test_hubspot_external_refs_point_at_the_same_deal_in_salesforce(small_world):
    sf = {d.id: d for d in small_world.systems["salesforce"].deals}
    refs = [d for d in small_world.systems["hubspot"].deals if d.external_ref]
    assert refs
    for d in refs:
        system, _, opp_id = d.external_ref.partition(":")
        assert system == "salesforce" and sf[opp_id].truth_id == d.truth_id


def test_merged_away_records_are_deleted_and_point_at_a_survivor_of_the_same_deal(small_world):
    merged = 0
    for data in small_world.systems.values():
        by_id = {d.id: d for d in data.deals}
        for d in data.deals:
            if d.merged_into:
                merged += 1
                survivor = by_id[d.merged_into]
                assert d.is_deleted and d.deleted_at and survivor.truth_id == d.truth_id
                assert survivor.merged_into is None
    assert merged > 0
    assert any(d.is_deleted and not d.merged_into for d in _all_deals(small_world))


# ------------------------------------------------------------------------------ canonical deals


def test_canonical_deals_follow_the_ground_truth_and_the_fixed_rates(small_world):
    deals = list(canonical_deals(small_world, reporting_currency="EUR"))
    assert len(deals) == sum(len(d.deals) for d in small_world.systems.values())
    seeds = {(d.system, d.id): d for d in _all_deals(small_world)}
    for deal in deals:
        seed = seeds[(deal.source, deal.source_id)]
        assert deal.key == f"{seed.system}:{seed.id}"
        assert deal.status.value == seed.status
        if seed.status == "won":
            assert deal.stage == "closed_won" and deal.probability == 1.0
        if deal.amount is not None:
            expected = deal.amount * FX_TO_USD[deal.currency] / FX_TO_USD["EUR"]
            assert abs(deal.amount_reporting - expected) <= Decimal("0.005")
    assert {d.stage for d in deals} == set(SHARED_KEYS)


def test_canonical_deals_refuse_a_currency_without_a_fixed_rate(small_world):
    with pytest.raises(ValueError, match="XYZ"):
        next(canonical_deals(small_world, reporting_currency="XYZ"))


@pytest.mark.parametrize(("website", "domain"), [("https://www.acme.com", "acme.com"), ("www.acme.co.uk", "acme.co.uk"),
                                                 ("http://acme.de/", "acme.de"), ("acme.io", "acme.io"), (None, None)])
def test_account_domains_come_from_however_the_website_was_typed(website, domain):
    assert domain_of(website) == domain


def test_a_bad_edit_to_the_pipeline_catalog_is_reported_with_file_and_line(tmp_path):
    source = (DATA_DIR / "pipelines.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "pipelines.yaml"
    broken.write_text(source.replace("shared: proposal}", "shared: proposals}", 1), encoding="utf-8")
    with pytest.raises(FileErrors) as error:
        load_model(broken, Catalog)
    assert str(broken) in str(error.value) and "line " in str(error.value) and "shared" in str(error.value)


def test_a_salesforce_picklist_value_cannot_mean_two_things(tmp_path):
    source = (DATA_DIR / "pipelines.yaml").read_text(encoding="utf-8")
    renewals = source.index("label: Renewals")
    broken = tmp_path / "pipelines.yaml"
    broken.write_text(source[:renewals] + source[renewals:].replace(
        "{label: Negotiation/Review, probability: 0.90", "{label: Negotiation/Review, probability: 0.80", 1),
        encoding="utf-8")
    with pytest.raises(FileErrors, match="Negotiation/Review"):
        load_model(broken, Catalog)

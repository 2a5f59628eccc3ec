"""Golden records do not depend on input order; golden ids do not churn."""

from __future__ import annotations

from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipesync.consolidate.identity import assign_golden_ids, derived_id
from tests.consolidate.conftest import make_deal

DEALS = [
    make_deal("salesforce", "006A", name="Acme - Renewal 2025"),
    make_deal("hubspot", "1", name="ACME renewal 2025", account_name="ACME, Inc", days=2),
    make_deal("pipedrive", "9", name="Renewal 2025", account_name="Acme", days=1),
    make_deal("salesforce", "006B", name="Acme - Expansion", amount=120_000, close_date=date(2025, 9, 30), days=40),
    make_deal("hubspot", "2", name="Acme upsell", amount=120_000, close_date=date(2025, 9, 30), days=41),
    make_deal("salesforce", "006C", name="Widgets - Pilot", account_name="Widgets GmbH", account_domain="widgets.de",
              amount=8_000, contact_emails=["max@widgets.de"]),
    make_deal("hubspot", "3", name="Widgets pilot", account_name="WIDGETS", account_domain=None,
              contact_emails=["max@widgets.de"], amount=8_000, days=3, external_refs=["salesforce:006C"]),
    make_deal("pipedrive", "4", name="Globex - New Business", account_name="Globex", account_domain="globex.com",
              amount=15_000),
]


def snapshot(result):
    goldens = sorted(
        ((g.golden_id, tuple(g.members), tuple(sorted((k, str(v)) for k, v in g.values.items())),
          str(sorted(g.provenance.items())), str(g.conflicts), g.confidence) for g in result.golden_deals()),
    )
    links = sorted((l.deal_key, l.golden_id, l.score, l.rule, l.linked_to) for l in result.links())
    return goldens, links


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(DEALS))))
def test_golden_records_are_the_same_whatever_the_input_order(run, order):
    assert snapshot(run(*[DEALS[i] for i in order])) == snapshot(run(*DEALS))


def test_rerunning_without_changes_keeps_every_golden_id(run):
    first = run(*DEALS)
    previous = {l.deal_key: l.golden_id for l in first.links()}
    second = run(*DEALS, previous=previous)
    assert {l.deal_key: l.golden_id for l in second.links()} == previous


def test_adding_one_duplicate_changes_only_its_cluster(run):
    first = run(*DEALS)
    before = {l.deal_key: l.golden_id for l in first.links()}
    duplicate = make_deal("pipedrive", "77", name="Acme expansion", amount=120_000, close_date=date(2025, 9, 30),
                          days=41)
    second = run(*DEALS, duplicate, previous=before)
    after = {l.deal_key: l.golden_id for l in second.links()}
    joined = after[duplicate.key]
    assert joined == before["salesforce:006B"]  # it joined the expansion and that golden deal kept its id
    assert {k: v for k, v in after.items() if k != duplicate.key} == before
    changed = {g.golden_id for g in second.golden_deals()} ^ {g.golden_id for g in first.golden_deals()}
    assert changed == set()
    old = {g.golden_id: g.members for g in first.golden_deals()}
    new = {g.golden_id: g.members for g in second.golden_deals()}
    assert {gid for gid in new if new[gid] != old[gid]} == {joined}


def test_new_clusters_take_an_id_derived_from_their_smallest_member():
    ids = assign_golden_ids([["a:1", "b:2"], ["c:3"]], {})
    assert ids == [derived_id("a:1"), derived_id("c:3")]


def test_a_split_cluster_keeps_its_id_on_the_larger_part():
    previous = {"a:1": "gd_old", "b:2": "gd_old", "c:3": "gd_old"}
    ids = assign_golden_ids([["a:1"], ["b:2", "c:3"]], previous)
    assert ids[1] == "gd_old" and ids[0] == derived_id("a:1")


def test_merged_clusters_keep_the_id_most_members_had_and_ids_stay_unique():
    previous = {"a:1": "gd_x", "b:2": "gd_y", "c:3": "gd_y"}
    assert assign_golden_ids([["a:1", "b:2", "c:3"]], previous) == ["gd_y"]
    # a derived id already held by another cluster is never issued twice
    taken = {"z:9": derived_id("a:1")}
    ids = assign_golden_ids([["a:1"], ["z:9"]], taken)
    assert ids[1] == derived_id("a:1") and ids[0] != ids[1]


def test_a_golden_id_no_cluster_keeps_becomes_an_alias_of_the_cluster_that_took_most_of_its_deals():
    from pipesync.consolidate.store import retired_ids

    previous = {"a": "g1", "b": "g1", "c": "g2", "d": "g3", "e": "g4"}
    now = {"a": "g9", "b": "g9", "c": "g1", "d": "g3"}  # g1 went to a new cluster, g2's deal joined g1's id, e is gone
    retired, kept = retired_ids(previous, lambda: iter(now.items()))
    assert retired == {"g2": "g1"} and kept == {"g9", "g1", "g3"}
    # g1 is in use again (by c): no alias for it; g4's only deal is gone: it retires without an heir


def test_aliases_follow_later_renames_and_drop_when_an_id_is_reused(tmp_path):
    from datetime import datetime, timezone

    from sqlalchemy import create_engine, insert, select

    from pipesync.consolidate.store import write_aliases
    from pipesync.warehouse import schema, version

    engine = create_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        version.create(conn)
        conn.execute(insert(schema.golden_aliases).values(alias_id="g0", golden_id="g1", recorded_at=datetime.now(timezone.utc)))
        write_aliases(conn, {"g1": "g2"}, kept={"g2"})
        assert dict(conn.execute(select(schema.golden_aliases.c.alias_id, schema.golden_aliases.c.golden_id)).all()) == {
            "g0": "g2", "g1": "g2"}
        write_aliases(conn, {}, kept={"g2", "g0"})
        assert dict(conn.execute(select(schema.golden_aliases.c.alias_id, schema.golden_aliases.c.golden_id)).all()) == {
            "g1": "g2"}
    engine.dispose()

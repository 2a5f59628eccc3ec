"""The HubSpot sandbox, driven by the real ``hubspot-api-client`` over real HTTP, behaves as HubSpot does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hubspot import HubSpot
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.deals import (ApiException, BatchInputSimplePublicObjectBatchInput,
                               BatchInputSimplePublicObjectBatchInputForCreate,
                               BatchInputSimplePublicObjectBatchInputUpsert, BatchReadInputSimplePublicObjectId,
                               PublicMergeInput, PublicObjectSearchRequest, SimplePublicObjectInput)
from starlette.testclient import TestClient

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.hubspot.app import create_app
from pipesync_sandbox.hubspot.search import parse_search, run_search
from pipesync_sandbox.hubspot.store import HubSpotStore
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import (Account, Contact, Owner, PipelineDef, SeedDeal, StageDef, StageVisit,
                                    SystemData)

START = datetime(2025, 1, 1, tzinfo=UTC)


def _stage(stage_id: str, label: str, order: int, probability: float, closed: bool = False, won: bool = False) -> StageDef:
    return StageDef(stage_id, label, order, probability, closed, won, shared=label.lower())


PIPELINES = [
    PipelineDef("default", "Sales Pipeline", "en", [
        _stage("appointmentscheduled", "Appointment Scheduled", 0, 0.2),
        _stage("qualifiedtobuy", "Qualified To Buy", 1, 0.4),
        _stage("closedwon", "Closed Won", 2, 1.0, closed=True, won=True),
        _stage("closedlost", "Closed Lost", 3, 0.0, closed=True),
    ]),
    PipelineDef("77001", "Vertrieb DACH", "de", [
        _stage("77101", "Erstkontakt", 0, 0.1),
        _stage("77102", "Gewonnen", 1, 1.0, closed=True, won=True),
    ]),
]


def hubspot_data(deal_count: int, *, archived_every: int = 0) -> SystemData:
    """A portal of ``deal_count`` open deals, one modified per minute; every ``archived_every``-th is archived."""
    deals = []
    for n in range(deal_count):
        created = START + timedelta(minutes=n)
        deals.append(SeedDeal(
            id=str(1000 + n), system="hubspot", truth_id=f"T{n}", pipeline_id="default", stage_id="qualifiedtobuy",
            status="open", name=f"Deal {n}", amount=Decimal("1500.00") + n, currency="USD",
            close_date=date(2025, 6, 30), created_at=created, updated_at=created + timedelta(days=1),
            last_activity_at=None, owner_id="501" if n % 2 else "502", account_id="9001" if n % 3 else "",
            contact_ids=["8001", "8002"] if n % 2 else [], lead_source="ORGANIC_SEARCH", lost_reason=None,
            next_step=None, history=[StageVisit("appointmentscheduled", created),
                                     StageVisit("qualifiedtobuy", created + timedelta(hours=1))],
            external_ref=f"salesforce:006{n:012d}" if n % 4 == 0 else None,
            is_deleted=bool(archived_every) and n % archived_every == archived_every - 1,
            deleted_at=created + timedelta(days=2) if archived_every and n % archived_every == archived_every - 1 else None,
        ))
    return SystemData(
        "hubspot", PIPELINES,
        [Owner("501", "Ada Lovelace", "ada@example.com"), Owner("502", "Grace Hopper", "grace@example.com"),
         Owner("503", "Lin Wei", "lin@example.cn")],
        [Account("9001", "acme", "Acme Inc.", "https://www.acme.com/", "US"), Account("9002", "beta", "Beta GmbH", None, "DE")],
        [Contact("8001", "9001", "Ann", "Lee", "ann@acme.com"), Contact("8002", "9001", "Bo", "Berg", "bo@acme.com")],
        deals,
    )


class FakeClock:
    def __init__(self, start: datetime):
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def portal() -> Iterator[tuple[HubSpot, HubSpotStore]]:
    app, store = create_app(hubspot_data(30, archived_every=10))
    with serve(app) as served:
        yield HubSpot(access_token=store.auth.access_token, host=served.base_url), store


@pytest.fixture(scope="module")
def big_portal() -> Iterator[tuple[HubSpot, HubSpotStore]]:
    """10,050 deals, read-only: the paging and search-cap tests share it."""
    app, store = create_app(hubspot_data(10_050), tier="api_limit_increase", faults=Faults(time_scale=1000.0))
    with serve(app) as served:
        yield HubSpot(access_token=store.auth.access_token, host=served.base_url), store


def _error(exc: pytest.ExceptionInfo[ApiException]) -> dict:
    return json.loads(exc.value.body)


# ----- listing -------------------------------------------------------------------------------


def test_get_all_pages_through_ten_thousand_deals_once_each(big_portal):
    client, store = big_portal
    deals = client.crm.deals.get_all(properties=["dealname", "amount"])
    assert len(deals) == 10_050
    assert len({d.id for d in deals}) == 10_050
    assert {d.id for d in deals} == set(store.deals)


def test_get_page_follows_after_until_paging_is_absent(big_portal):
    client, _ = big_portal
    after, pages, seen = None, 0, []
    while True:
        # Raw bodies: get_all above already proves the pages deserialize, and the SDK's
        # dateutil parsing would triple this test's time.
        page = json.loads(client.crm.deals.basic_api.get_page(limit=100, after=after, _preload_content=False).data)
        pages += 1
        seen += [d["id"] for d in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert pages == 101 and len(seen) == 10_050
    assert seen == sorted(seen, key=int)  # id order: a new record never shifts earlier pages
    assert len(page["results"]) == 50


def test_list_limits_default_to_ten_and_cap_at_100_or_50_with_history(portal):
    client, _ = portal
    assert len(client.crm.deals.basic_api.get_page().results) == 10
    with pytest.raises(ApiException) as too_many:
        client.crm.deals.basic_api.get_page(limit=101)
    assert too_many.value.status == 400 and _error(too_many)["category"] == "VALIDATION_ERROR"
    with pytest.raises(ApiException):
        client.crm.deals.basic_api.get_page(limit=51, properties_with_history=["dealstage"])
    assert len(client.crm.deals.basic_api.get_page(limit=50, properties_with_history=["dealstage"]).results) == 27


def test_properties_are_strings_unknown_ones_omitted_empty_ones_null(portal):
    client, _ = portal
    deal = client.crm.deals.basic_api.get_page(
        limit=1, properties=["dealname", "amount", "no_such_property", "hs_next_step", "salesforce_opportunity_id"]).results[0]
    assert deal.properties == {
        "dealname": "Deal 0", "amount": "1500.00", "hs_next_step": None, "salesforce_opportunity_id": "006000000000000",
        "createdate": "2025-01-01T00:00:00.000Z", "hs_lastmodifieddate": "2025-01-02T00:00:00.000Z",
        "hs_object_id": "1000"}
    assert deal.created_at == datetime(2025, 1, 1, tzinfo=UTC)


def test_default_properties_without_a_properties_parameter(portal):
    client, _ = portal
    deal = client.crm.deals.basic_api.get_by_id("1001")
    assert set(deal.properties) == {"amount", "closedate", "createdate", "dealname", "dealstage",
                                    "hs_lastmodifieddate", "hs_object_id", "pipeline"}
    assert deal.properties["closedate"] == "2025-06-30T00:00:00.000Z"


def test_stage_history_newest_first_and_stage_dates(portal):
    client, _ = portal
    deal = client.crm.deals.basic_api.get_by_id(
        "1001", properties=["hs_v2_date_entered_qualifiedtobuy", "hs_v2_date_exited_appointmentscheduled", "hs_is_closed"],
        properties_with_history=["dealstage"])
    history = deal.properties_with_history["dealstage"]
    assert [h.value for h in history] == ["qualifiedtobuy", "appointmentscheduled"]
    assert history[0].timestamp == datetime(2025, 1, 1, 1, 1, tzinfo=UTC)
    assert deal.properties["hs_v2_date_entered_qualifiedtobuy"] == "2025-01-01T01:01:00.000Z"
    assert deal.properties["hs_v2_date_exited_appointmentscheduled"] == "2025-01-01T01:01:00.000Z"
    assert deal.properties["hs_is_closed"] == "false"


def test_associations_on_the_deal_and_in_bulk(portal):
    client, _ = portal
    deal = client.crm.deals.basic_api.get_by_id("1001", associations=["companies", "contacts"])
    assert [(a.id, a.type) for a in deal.associations["companies"].results] == [
        ("9001", "deal_to_company"), ("9001", "deal_to_company_unlabeled")]
    assert [a.id for a in deal.associations["contacts"].results] == ["8001", "8002"]

    batch = client.crm.associations.v4.batch_api.get_page(
        "deals", "companies", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": "1001"}, {"id": "1000"}]))
    assert [(r._from.id, [t.to_object_id for t in r.to]) for r in batch.results] == [("1001", ["9001"])]
    assert [t.type_id for t in batch.results[0].to[0].association_types] == [5, 341]
    assert batch.num_errors == 1 and batch.errors[0].context == {"fromObjectId": ["1000"]}  # 1000 has no company

    companies = client.crm.companies.batch_api.read({"inputs": [{"id": "9001"}], "properties": ["name", "domain"]})
    assert companies.results[0].properties["domain"] == "acme.com"
    contacts = client.crm.contacts.batch_api.read({"inputs": [{"id": "8002"}], "properties": ["email"]})
    assert contacts.results[0].properties["email"] == "bo@acme.com"


def test_archived_true_lists_only_archived_deals(portal):
    client, store = portal
    archived = client.crm.deals.get_all(archived=True)
    assert [d.id for d in archived] == ["1009", "1019", "1029"]
    assert all(d.archived and d.archived_at == datetime(2025, 1, 3, 0, 9, tzinfo=UTC) for d in archived[:1])
    live = client.crm.deals.get_all()
    assert len(live) == 27 and not any(d.archived for d in live)


@settings(max_examples=15, deadline=None)
@given(limit=st.integers(1, 100), archived=st.sets(st.integers(0, 59), max_size=20))
def test_list_paging_yields_every_live_deal_once_in_id_order(limit, archived):
    app, store = create_app(hubspot_data(60))
    for n in archived:
        store.archive(store.deals[str(1000 + n)])
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    seen, after = [], None
    while True:
        page = client.get("/crm/v3/objects/deals", params={"limit": limit, **({"after": after} if after else {})}).json()
        assert 0 < len(page["results"]) <= limit
        seen += [d["id"] for d in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert seen == [str(1000 + n) for n in range(60) if n not in archived]


@settings(max_examples=15, deadline=None)
@given(limit=st.integers(1, 200), low=st.integers(1500, 1560), descending=st.booleans())
def test_search_paging_yields_every_match_once_in_sort_order(limit, low, descending):
    app, store = create_app(hubspot_data(60), Faults(time_scale=1e6))  # search's 5/s would stop small pages
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    request = {"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GTE", "value": str(low)}]}],
               "sorts": [{"propertyName": "amount", "direction": "DESCENDING" if descending else "ASCENDING"}],
               "limit": limit, "properties": ["amount"]}
    amounts, after = [], None
    while True:
        page = client.post("/crm/v3/objects/deals/search", json={**request, **({"after": after} if after else {})}).json()
        assert page["total"] == 60 - (low - 1500)
        amounts += [Decimal(d["properties"]["amount"]) for d in page["results"]]
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
    assert amounts == sorted((Decimal(1500 + n) for n in range(low - 1500, 60)), reverse=descending)


@settings(max_examples=40, deadline=None)
@given(filters=st.lists(st.tuples(st.sampled_from(["EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"]),
                                  st.integers(0, 70), st.integers(0, 20)), min_size=1, max_size=3),
       touched=st.sets(st.integers(0, 59), max_size=10))
def test_the_lastmodified_index_never_changes_what_search_finds(filters, touched):
    """Searches on hs_lastmodifieddate read a sorted index; they must find exactly what a full scan finds."""
    clock = FakeClock(START + timedelta(days=1, minutes=30))
    store = create_app(hubspot_data(60), clock=clock)[1]
    for n in sorted(touched):  # re-sorts these deals within the index, a second apart
        clock.advance(1)
        store.update(store.deals[str(1000 + n)], {"hs_next_step": "x"})
    base = int((START + timedelta(days=1)).timestamp() * 1000)
    body = {"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": op, "value": str(base + minute * 60_000),
         "highValue": str(base + (minute + width) * 60_000)} for op, minute, width in filters]}], "limit": 200}
    request = parse_search(body, store)
    assert request.modified_range is not None
    full_scan = replace(request, modified_range=None)
    assert run_search(request, store.searchable(request.modified_range)) == run_search(full_scan, store.searchable())


# ----- writes ----------------------------------------------------------------------------------


def test_archive_does_not_bump_lastmodified_and_hides_the_deal_from_search(portal):
    client, store = portal
    before = client.crm.deals.basic_api.get_by_id("1003").properties["hs_lastmodifieddate"]
    client.crm.deals.basic_api.archive("1003")
    archived = client.crm.deals.basic_api.get_by_id("1003", archived=True)
    assert archived.archived and archived.properties["hs_lastmodifieddate"] == before
    with pytest.raises(ApiException) as gone:
        client.crm.deals.basic_api.get_by_id("1003")
    assert gone.value.status == 404
    found = client.crm.deals.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_object_id", "operator": "EQ", "value": "1003"}]}]))
    assert found.total == 0


def test_update_records_stage_history_and_bumps_lastmodified(portal):
    client, store = portal
    store.clock = FakeClock(datetime(2025, 3, 1, tzinfo=UTC))
    updated = client.crm.deals.basic_api.update(
        "1002", SimplePublicObjectInput(properties={"dealstage": "closedwon", "pipesync_origin": "run-1"}))
    assert updated.properties["dealstage"] == "closedwon"
    assert updated.updated_at == datetime(2025, 3, 1, tzinfo=UTC)
    deal = client.crm.deals.basic_api.get_by_id("1002", properties=["hs_is_closed_won", "hs_v2_date_entered_closedwon"],
                                                properties_with_history=["dealstage", "pipesync_origin"])
    assert [h.value for h in deal.properties_with_history["dealstage"]] == ["closedwon", "qualifiedtobuy", "appointmentscheduled"]
    assert deal.properties_with_history["dealstage"][0].source_type == "INTEGRATION"
    assert [h.value for h in deal.properties_with_history["pipesync_origin"]] == ["run-1"]
    assert deal.properties["hs_is_closed_won"] == "true"
    assert deal.properties["hs_v2_date_entered_closedwon"] == "2025-03-01T00:00:00.000Z"


def test_invalid_writes_are_refused_with_per_property_errors(portal):
    client, _ = portal
    with pytest.raises(ApiException) as refused:
        client.crm.deals.basic_api.update("1002", SimplePublicObjectInput(
            properties={"no_such": "x", "hs_object_id": "5", "dealstage": "77101", "amount": "lots"}))
    body = _error(refused)
    assert refused.value.status == 400 and body["category"] == "VALIDATION_ERROR"
    assert {(e["context"]["propertyName"][0], e["code"]) for e in body["errors"]} == {
        ("no_such", "PROPERTY_DOESNT_EXIST"), ("hs_object_id", "READ_ONLY_VALUE"),
        ("dealstage", "INVALID_OPTION"), ("amount", "INVALID_DECIMAL")}


def test_batch_read_reports_missing_ids_as_207(portal):
    client, _ = portal
    response = client.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": "1001"}, {"id": "404404"}], properties=["dealname"], properties_with_history=[]))
    assert [d.id for d in response.results] == ["1001"]
    assert response.num_errors == 1 and response.errors[0].category == "OBJECT_NOT_FOUND"
    assert response.errors[0].context == {"ids": ["404404"]}


def test_batch_over_100_inputs_is_a_validation_error(portal):
    client, _ = portal
    with pytest.raises(ApiException) as refused:
        client.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
            inputs=[{"id": str(i)} for i in range(101)], properties=[], properties_with_history=[]))
    assert refused.value.status == 400 and _error(refused)["category"] == "VALIDATION_ERROR"


def test_partial_batch_failure_fault_answers_207_with_the_failed_items():
    faults = Faults(partial_batch_failure_rate=0.5, seed=3)
    app, store = create_app(hubspot_data(20), faults)
    with serve(app) as served:
        client = HubSpot(access_token=store.auth.access_token, host=served.base_url)
        response = client.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": str(1000 + n), "properties": {"hs_next_step": "call"}} for n in range(20)]))
    failed = [i for e in response.errors for i in e.context["ids"]]
    assert response.num_errors == len(failed) > 0 and len(response.results) == 20 - len(failed)
    assert {d.id for d in response.results}.isdisjoint(failed)
    assert all(store.deals[i].props.get("hs_next_step") is None for i in failed)
    assert all(store.deals[d.id].props["hs_next_step"] == "call" for d in response.results)


def test_batch_create_and_upsert_by_unique_property(portal):
    client, store = portal
    created = client.crm.deals.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[{
        "properties": {"dealname": "New", "amount": "10", "dealstage": "77101", "pipeline": "77001"},
        "associations": [{"to": {"id": "9002"}, "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}],
    }]))
    new_id = created.results[0].id
    assert store.deals[new_id].company_ids == ["9002"]
    upserted = client.crm.deals.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        {"id": "006000000000004", "idProperty": "salesforce_opportunity_id", "properties": {"dealname": "Twin"}},
        {"id": "006999", "idProperty": "salesforce_opportunity_id", "properties": {"dealname": "Fresh"}},
    ]))
    assert [(r.id, r.new) for r in upserted.results][0] == ("1004", False)
    assert upserted.results[1].new and store.deals[upserted.results[1].id].props["dealname"] == "Fresh"


def test_merge_creates_a_new_survivor_listing_the_merged_ids(portal):
    client, store = portal
    survivor = client.crm.deals.basic_api.merge(PublicMergeInput(primary_object_id="1001", object_id_to_merge="1002"))
    assert survivor.id not in ("1001", "1002")
    merged = client.crm.deals.basic_api.get_by_id(survivor.id, properties=["hs_merged_object_ids", "dealname"])
    assert merged.properties["hs_merged_object_ids"] == "1001;1002"
    assert merged.properties["dealname"] == "Deal 1"  # the primary's values win
    assert client.crm.deals.basic_api.get_by_id("1002").id == survivor.id  # old ids resolve to the survivor
    listed = {d.id for d in client.crm.deals.get_all()}
    assert survivor.id in listed and not {"1001", "1002"} & listed


def test_archive_fraction_archives_without_touching_lastmodified(portal):
    client, store = portal
    before = {d.id: d.properties["hs_lastmodifieddate"] for d in client.crm.deals.get_all()}
    archived = store.archive_fraction(0.5, seed=2)
    listed = client.crm.deals.get_all(archived=True)
    assert set(archived) <= {d.id for d in listed} and len(archived) == 14  # half of the 27 live deals, rounded
    assert all(d.properties["hs_lastmodifieddate"] == before[d.id] for d in listed if d.id in archived)


def test_touch_deals_bumps_lastmodified_of_exactly_those_deals(portal):
    client, store = portal
    store.clock = FakeClock(datetime(2025, 5, 1, tzinfo=UTC))
    touched = store.touch_deals(0.25, seed=1)
    assert len(touched) == 7  # a quarter of the 27 live deals
    found = client.crm.deals.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "2025-05-01T00:00:00Z"}]}],
        limit=200))
    assert sorted(d.id for d in found.results) == sorted(touched)


# ----- search ----------------------------------------------------------------------------------


def _modified_since(ms: int | str, *, limit: int = 200, after: str | None = None) -> PublicObjectSearchRequest:
    return PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(ms)}]}],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], limit=limit, after=after,
        properties=["dealname", "hs_lastmodifieddate"])


def test_search_filters_on_lastmodified_as_epoch_ms_or_iso_and_sorts(big_portal):
    client, _ = big_portal
    since = datetime(2025, 1, 8, tzinfo=UTC)  # deal n was modified at START + 1 day + n minutes
    by_ms = client.crm.deals.search_api.do_search(_modified_since(int(since.timestamp() * 1000)))
    by_iso = client.crm.deals.search_api.do_search(_modified_since(since.isoformat()))
    assert by_ms.total == by_iso.total == 10_050 - 6 * 24 * 60
    assert [d.id for d in by_ms.results] == [d.id for d in by_iso.results] == [str(1000 + 8640 + n) for n in range(200)]
    assert by_ms.paging.next.after == "200"


def test_search_paging_past_ten_thousand_is_a_400(big_portal):
    client, _ = big_portal
    last_allowed = client.crm.deals.search_api.do_search(_modified_since(0, after="9800"))
    assert last_allowed.total == 10_050 and len(last_allowed.results) == 200
    assert last_allowed.paging.next.after == "10000"  # HubSpot still offers the next page ...
    with pytest.raises(ApiException) as refused:  # ... and refuses it
        client.crm.deals.search_api.do_search(_modified_since(0, after=last_allowed.paging.next.after))
    assert refused.value.status == 400 and _error(refused)["category"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(("filters", "expected"), [
    ([{"propertyName": "amount", "operator": "BETWEEN", "value": "1501", "highValue": "1503"}], ["1001", "1002", "1003"]),
    ([{"propertyName": "hs_object_id", "operator": "IN", "values": ["1004", "1007"]}], ["1004", "1007"]),
    ([{"propertyName": "hs_object_id", "operator": "LT", "value": "1003"},
      {"propertyName": "hubspot_owner_id", "operator": "NEQ", "value": "501"}], ["1000", "1002"]),
    ([{"propertyName": "salesforce_opportunity_id", "operator": "HAS_PROPERTY"},
      {"propertyName": "hs_object_id", "operator": "LTE", "value": "1008"}], ["1000", "1004", "1008"]),
    ([{"propertyName": "dealname", "operator": "EQ", "value": "deal 5"}], ["1005"]),
])
def test_search_operators(portal, filters, expected):
    client, _ = portal
    found = client.crm.deals.search_api.do_search(PublicObjectSearchRequest(filter_groups=[{"filters": filters}], limit=200))
    assert [d.id for d in found.results] == expected


@pytest.mark.parametrize(("request_body", "why"), [
    ({"filterGroups": [{"filters": []}] * 6}, "six filter groups"),
    ({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 7}]}, "seven filters in a group"),
    ({"filterGroups": [{"filters": [{"propertyName": "amount", "operator": "HAS_PROPERTY"}] * 5}] * 4}, "twenty filters"),
    ({"limit": 201}, "a page over 200"),
    ({"sorts": [{"propertyName": "amount"}, {"propertyName": "dealname"}]}, "two sorts"),
])
def test_search_limits_are_validation_errors(portal, request_body, why):
    client, _ = portal
    with pytest.raises(ApiException) as refused:
        client.crm.deals.search_api.do_search(request_body)
    assert refused.value.status == 400, why
    assert _error(refused)["category"] == "VALIDATION_ERROR"


def test_search_sees_a_write_only_after_the_index_lag():
    clock = FakeClock(datetime(2025, 4, 1, tzinfo=UTC))
    app, store = create_app(hubspot_data(5), search_lag_s=3.0, clock=clock)
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    renamed = {"filterGroups": [{"filters": [{"propertyName": "dealname", "operator": "EQ", "value": "Renamed"}]}]}
    assert client.patch("/crm/v3/objects/deals/1001", json={"properties": {"dealname": "Renamed"}}).status_code == 200
    assert client.post("/crm/v3/objects/deals/search", json=renamed).json()["total"] == 0
    clock.advance(2.9)
    assert client.post("/crm/v3/objects/deals/search", json=renamed).json()["total"] == 0
    clock.advance(0.2)
    assert [d["id"] for d in client.post("/crm/v3/objects/deals/search", json=renamed).json()["results"]] == ["1001"]
    assert client.get("/crm/v3/objects/deals/1001").json()["properties"]["dealname"] == "Renamed"  # reads are immediate


# ----- pipelines and owners ---------------------------------------------------------------------


def test_pipelines_with_string_stage_metadata(portal):
    client, _ = portal
    pipelines = client.crm.pipelines.pipelines_api.get_all("deals").results
    assert [(p.id, p.display_order) for p in pipelines] == [("default", 0), ("77001", 1)]
    assert pipelines[0].created_at == datetime(1970, 1, 1, tzinfo=UTC)  # HubSpot's default pipeline
    won = pipelines[0].stages[2]
    assert (won.id, won.metadata) == ("closedwon", {"probability": "1.0", "isClosed": "true"})
    stages = client.crm.pipelines.pipeline_stages_api.get_all("deals", "77001").results
    assert [(s.label, s.metadata["probability"]) for s in stages] == [("Erstkontakt", "0.1"), ("Gewonnen", "1.0")]
    assert client.crm.pipelines.pipelines_api.get_by_id("0-3", "77001").label == "Vertrieb DACH"


def test_owners_are_paged(portal):
    client, _ = portal
    first = client.crm.owners.owners_api.get_page(limit=2)
    assert [o.email for o in first.results] == ["ada@example.com", "grace@example.com"]
    rest = client.crm.owners.owners_api.get_page(limit=2, after=first.paging.next.after)
    assert [(o.first_name, o.last_name) for o in rest.results] == [("Lin", "Wei")] and rest.paging is None


# ----- auth and rate limits ----------------------------------------------------------------------


def test_an_unknown_token_is_invalid_authentication(portal):
    client, store = portal
    stranger = HubSpot(access_token="pat-na1-not-a-real-token", host=client.config["host"])
    with pytest.raises(ApiException) as refused:
        stranger.crm.deals.basic_api.get_page()
    assert refused.value.status == 401
    assert _error(refused)["category"] == "INVALID_AUTHENTICATION"
    assert _error(refused)["message"].startswith("Authentication credentials not found.")


def test_expired_oauth_token_is_401_until_refreshed_and_refresh_tokens_rotate():
    app, store = create_app(hubspot_data(3), Faults(expire_token_after=2))
    with serve(app) as served:
        auth = HubSpot(host=served.base_url).oauth.tokens_api
        first = auth.create(grant_type="refresh_token", client_id=store.auth.client_id,
                            client_secret=store.auth.client_secret, refresh_token=store.auth.refresh_token)
        assert first.expires_in == 1800 and first.token_type == "bearer"
        client = HubSpot(access_token=first.access_token, host=served.base_url)
        _, _, headers = client.crm.deals.basic_api.get_page_with_http_info()
        assert "X-HubSpot-RateLimit-Max" in headers
        assert "X-HubSpot-RateLimit-Daily" not in headers  # the account's daily figures are not shown to OAuth apps
        client.crm.deals.basic_api.get_page()
        with pytest.raises(ApiException) as expired:
            client.crm.deals.basic_api.get_page()
        assert expired.value.status == 401 and _error(expired)["category"] == "EXPIRED_AUTHENTICATION"
        assert "expire time" in _error(expired)["context"]

        second = auth.create(grant_type="refresh_token", client_id=store.auth.client_id,
                             client_secret=store.auth.client_secret, refresh_token=first.refresh_token)
        assert second.refresh_token != first.refresh_token
        assert len(HubSpot(access_token=second.access_token, host=served.base_url).crm.deals.basic_api.get_page().results) == 3
        from hubspot.oauth import ApiException as OAuthApiException

        with pytest.raises(OAuthApiException) as stale:  # the used refresh token was retired
            auth.create(grant_type="refresh_token", client_id=store.auth.client_id,
                        client_secret=store.auth.client_secret, refresh_token=first.refresh_token)
        assert json.loads(stale.value.body)["status"] == "BAD_REFRESH_TOKEN"


def test_ten_second_window_answers_429_with_hubspot_body_and_headers():
    app, store = create_app(hubspot_data(3), Faults(time_scale=2.0), tier="starter")
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    responses = [client.get("/crm/v3/objects/deals") for _ in range(101)]
    ok, limited = responses[99], responses[100]
    assert ok.status_code == 200
    assert ok.headers["X-HubSpot-RateLimit-Max"] == "100" and ok.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    assert ok.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "5000"  # 10 s at time scale 2
    assert ok.headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert ok.headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(250_000 - 100)
    assert limited.status_code == 429
    body = limited.json()
    assert (body["errorType"], body["policyName"], body["status"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING", "error")
    assert body["correlationId"] and limited.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_an_exhausted_daily_budget_answers_429_daily():
    app, store = create_app(hubspot_data(3), daily_limit=3)
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    answered = [client.get("/crm/v3/objects/deals") for _ in range(4)]
    assert [r.status_code for r in answered] == [200, 200, 200, 429]
    assert [r.headers["X-HubSpot-RateLimit-Daily-Remaining"] for r in answered] == ["2", "1", "0", "0"]
    assert answered[3].json()["policyName"] == "DAILY"
    assert answered[3].json()["message"] == "You have reached your daily limit."


def test_search_has_its_own_per_second_limit():
    app, store = create_app(hubspot_data(3), Faults(time_scale=0.01))  # a 100-second "second": no refill mid-test
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    statuses = [client.post("/crm/v3/objects/deals/search", json={}).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = client.post("/crm/v3/objects/deals/search", json={})
    assert limited.json()["policyName"] == "SECONDLY"
    assert client.get("/crm/v3/objects/deals").status_code == 200  # the ten-second window is separate


def test_injected_429_burst_and_5xx_look_like_hubspot():
    faults = Faults(burst_429_every=1, burst_429_len=1)
    app, store = create_app(hubspot_data(3), faults)
    client = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    assert client.get("/crm/v3/objects/deals").status_code == 200
    burst = client.get("/crm/v3/objects/deals")
    assert burst.status_code == 429 and burst.json()["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "X-HubSpot-RateLimit-Max" in burst.headers
    faults.update(burst_429_every=0, burst_429_len=0, error_rate=1.0)
    failed = client.get("/crm/v3/objects/deals")
    assert failed.status_code == 500 and failed.json()["category"] == "INTERNAL_ERROR"


def test_the_0_3_path_is_the_deals_path():
    app, store = create_app(hubspot_data(3))
    http = TestClient(app, headers={"Authorization": f"Bearer {store.auth.access_token}"})
    assert http.get("/crm/v3/objects/0-3").json() == http.get("/crm/v3/objects/deals").json()

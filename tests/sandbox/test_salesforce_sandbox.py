"""The Salesforce sandbox, specified through what the real simple-salesforce client sees over HTTPS."""

from __future__ import annotations

import csv
import io
import random
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import jwt
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.ids import salesforce_id as sf_id
from pipesync_sandbox.salesforce.app import create_app
from pipesync_sandbox.salesforce.auth import SalesforceCredentials
from pipesync_sandbox.salesforce.soql import compile_query, date_literal_range, execute, format_datetime, parse
from pipesync_sandbox.salesforce.store import SalesforceStore
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import Account, Contact, Owner, PipelineDef, SeedDeal, StageDef, StageVisit, SystemData

CREDS = SalesforceCredentials()
NOW = datetime.now(UTC).replace(microsecond=0)

_PIPELINES = (
    ("Enterprise", "en", ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]),
    ("Mittelstand", "de", ["Erstkontakt", "Angebot", "Verhandlung", "Gewonnen", "Verloren"]),
    ("中国区", "zh", ["初步接洽", "需求分析", "Proposal", "赢单", "输单"]),
)


def build_org(deal_count: int, *, seed: int = 7) -> SystemData:
    """A small deterministic Salesforce org: three pipelines (one sharing a stage label), deletions, a merge."""
    rng = random.Random(seed)
    pipelines = []
    for p_index, (label, language, stage_labels) in enumerate(_PIPELINES):
        stages = []
        for order, stage_label in enumerate(stage_labels):
            won = order == len(stage_labels) - 2
            lost = order == len(stage_labels) - 1
            probability = 1.0 if won else 0.0 if lost else round((order + 1) / len(stage_labels), 2)
            stages.append(StageDef(f"st-{p_index}-{order}", stage_label, order, probability, won or lost, won,
                                   shared="closed_won" if won else "closed_lost" if lost else "proposal"))
        pipelines.append(PipelineDef(f"pl-{p_index}", label, language, stages))
    owners = [Owner(sf_id("005", i + 1), f"Owner{i} Smith", f"owner{i}@example.com") for i in range(5)]
    accounts = [Account(sf_id("001", i + 1), f"a{i}", f"Account {i} GmbH", f"https://acct{i}.example.com", "DE")
                for i in range(50)]
    contacts = [Contact(sf_id("003", i + 1), accounts[i % 50].id, f"Ann{i}", f"Lee{i}", f"ann{i}@acct{i % 50}.example")
                for i in range(100)]
    deals = []
    for i in range(deal_count):
        pipeline = pipelines[i % 3]
        position = rng.randrange(len(pipeline.stages))
        stage = pipeline.stages[position]
        created = NOW - timedelta(days=200) + timedelta(minutes=i)
        visits = [StageVisit(s.id, created + timedelta(days=k)) for k, s in enumerate(pipeline.stages[: position + 1])
                  if not s.is_closed or s is stage]
        deals.append(SeedDeal(
            id=sf_id("006", i + 1), system="salesforce", truth_id=f"t{i}", pipeline_id=pipeline.id, stage_id=stage.id,
            status="won" if stage.is_won else "lost" if stage.is_closed else "open", name=f"Deal {i}",
            amount=Decimal(rng.randrange(1000, 90000)), currency=("EUR", "USD")[i % 2],
            close_date=date(2026, 1, 1) + timedelta(days=i % 300), created_at=created,
            updated_at=created + timedelta(days=30), last_activity_at=created + timedelta(days=10),
            owner_id=owners[i % 5].id, account_id=accounts[i % 50].id, contact_ids=[contacts[i % 100].id],
            lead_source="Web", lost_reason="Price" if stage.is_closed and not stage.is_won else None,
            next_step=None, history=visits,
            external_ref=f"hubspot:{9000 + i}" if i % 10 == 0 else None))
    deals[1].is_deleted, deals[1].deleted_at = True, NOW - timedelta(days=2)
    deals[2].is_deleted, deals[2].deleted_at, deals[2].merged_into = True, NOW - timedelta(days=1), deals[3].id
    return SystemData("salesforce", pipelines, owners, accounts, contacts, deals)


_SESSIONS: list[requests.Session] = []


def close_sessions() -> None:
    """Close the clients' keep-alive connections so the server shuts down at once."""
    while _SESSIONS:
        _SESSIONS.pop().close()


def client_for(served, token: str) -> Salesforce:
    session = requests.Session()
    _SESSIONS.append(session)
    session.verify = served.ca_bundle
    # REQUESTS_CA_BUNDLE in the environment would override session.verify (a requests quirk).
    session.trust_env = False
    return Salesforce(instance_url=served.base_url, session_id=token, version="62.0", session=session)


def refusal(call, *args, **kwargs) -> tuple[type, int, list]:
    """(exception class, HTTP status, error body) of a call the org refuses.

    Only the values leave: a kept traceback would hold the client's connection
    open and make the server wait for it at shutdown.
    """
    try:
        call(*args, **kwargs)
    except SalesforceError as error:
        return type(error), error.status, error.content
    raise AssertionError("the call was not refused")


def token_from(served, **form) -> requests.Response:
    return requests.post(f"{served.base_url}/services/oauth2/token", data=form, verify=served.ca_bundle)


def login(served) -> Salesforce:
    response = token_from(served, grant_type="password", client_id=CREDS.client_id,
                          client_secret=CREDS.client_secret, username=CREDS.username,
                          password=CREDS.password + CREDS.security_token)
    assert response.status_code == 200, response.text
    return client_for(served, response.json()["access_token"])


@pytest.fixture(scope="module")
def big_org():
    """10,000 seeded opportunities, read-only for the tests that use it."""
    app, store = create_app(build_org(10_000))
    with serve(app, tls=True) as served:
        yield served, store
        close_sessions()


@pytest.fixture()
def org():
    """A small org of its own for a test that writes."""
    app, store = create_app(build_org(60))
    with serve(app, tls=True) as served:
        yield served, store
        close_sessions()


@contextmanager
def faulty_org(faults: Faults, **options):
    app, store = create_app(build_org(60), faults, **options)
    with serve(app, tls=True) as served:
        yield served, store
        close_sessions()


ADAPTER_FIELDS = ("Id, Name, AccountId, Account.Name, Account.Website, Owner.Email, Owner.Name, Amount, "
                  "CurrencyIsoCode, CloseDate, StageName, Probability, IsClosed, IsWon, ForecastCategoryName, "
                  "LeadSource, NextStep, Loss_Reason__c, OwnerId, RecordTypeId, CreatedDate, LastModifiedDate, "
                  "SystemModstamp, LastActivityDate, IsDeleted, Type, External_Id__c, HubSpot_Deal_Id__c")


# ---------------------------------------------------------------- reading with the real client


def test_the_real_client_pages_through_ten_thousand_deals(big_org):
    served, store = big_org
    sf = login(served)
    first = sf.query(f"SELECT {ADAPTER_FIELDS} FROM Opportunity ORDER BY SystemModstamp, Id")
    assert first["totalSize"] == 9_998  # two of the 10,000 are in the recycle bin
    assert len(first["records"]) == 2000 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v62.0/query/")

    records = list(sf.query_all_iter(f"SELECT {ADAPTER_FIELDS} FROM Opportunity ORDER BY SystemModstamp, Id"))

    assert len(records) == 9_998 and len({r["Id"] for r in records}) == 9_998
    stamps = [r["SystemModstamp"] for r in records]
    assert stamps == sorted(stamps)
    sample = records[0]
    assert sample["attributes"] == {"type": "Opportunity",
                                    "url": f"/services/data/v62.0/sobjects/Opportunity/{sample['Id']}"}
    assert sample["Account"]["Name"].startswith("Account ") and sample["Owner"]["Email"].endswith("@example.com")
    assert sample["Account"]["attributes"]["type"] == "Account"
    assert len(sample["SystemModstamp"]) == 28 and sample["SystemModstamp"].endswith(".000+0000")
    assert date.fromisoformat(sample["CloseDate"])


def test_batch_size_header_sets_the_page_size_within_salesforce_bounds(big_org):
    served, _ = big_org
    sf = login(served)
    assert len(sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=500"})["records"]) == 500
    assert len(sf.query("SELECT Id FROM Opportunity", headers={"Sforce-Query-Options": "batchSize=5"})["records"]) == 200
    page = sf.query("SELECT Id FROM Opportunity LIMIT 300")
    assert page["totalSize"] == 300 and page["done"] is True and "nextRecordsUrl" not in page


def test_incremental_query_on_system_modstamp_returns_only_later_changes(big_org):
    served, store = big_org
    sf = login(served)
    rows = store.rows("Opportunity", include_deleted=False)
    cut = sorted(r["SystemModstamp"] for r in rows)[-100]
    since = datetime.strptime(cut, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=UTC)
    query = format_soql("SELECT Id, SystemModstamp FROM Opportunity WHERE SystemModstamp >= {} "
                        "ORDER BY SystemModstamp", since)
    got = sf.query_all(query)["records"]
    assert {r["Id"] for r in got} == {r["Id"] for r in rows if r["SystemModstamp"] >= cut}
    # The same instant written with an offset selects the same rows.
    in_berlin = since.astimezone(ZoneInfo("Europe/Berlin"))
    assert sf.query(f"SELECT COUNT() FROM Opportunity WHERE SystemModstamp >= {in_berlin.isoformat()}")[
        "totalSize"] == len(got)
    # Any number of fraction digits, as tap-salesforce sends them (six); Salesforce keeps milliseconds.
    micro = since.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    assert sf.query(f"SELECT COUNT() FROM Opportunity WHERE SystemModstamp >= {micro}")["totalSize"] == len(got)
    for field in ("LastModifiedDate", "CreatedDate"):
        cut = sorted(r[field] for r in rows)[-300]
        literal = cut.replace(".000+0000", "Z")
        found = sf.query_all(f"SELECT Id FROM Opportunity WHERE {field} > {literal} AND IsDeleted = false")["records"]
        assert {r["Id"] for r in found} == {r["Id"] for r in rows if r[field] > cut}


def test_query_all_shows_deleted_and_merged_records_that_query_hides(big_org):
    served, store = big_org
    sf = login(served)
    soql_text = "SELECT Id, IsDeleted, MasterRecordId FROM Opportunity WHERE IsDeleted = true ORDER BY Id"
    assert sf.query(soql_text)["totalSize"] == 0
    deleted = sf.query_all(soql_text, include_deleted=True)["records"]
    assert [(r["Id"], r["MasterRecordId"]) for r in deleted] == [(sf_id("006", 2), None),
                                                                  (sf_id("006", 3), sf_id("006", 4))]
    assert sf.query("SELECT COUNT() FROM Opportunity", include_deleted=True)["totalSize"] == 10_000


def test_bulk2_query_returns_every_row_as_csv(big_org):
    served, store = big_org
    sf = login(served)
    chunks = list(sf.bulk2.Opportunity.query("SELECT Id, Name, Account.Name, Amount, IsWon, SystemModstamp "
                                             "FROM Opportunity", max_records=4000, wait=0))
    assert len(chunks) == 3  # 4,000 + 4,000 + 1,998, paged by Sforce-Locator
    rows = [row for chunk in chunks for row in csv.DictReader(io.StringIO(chunk))]
    assert len(rows) == 9_998 and len({r["Id"] for r in rows}) == 9_998
    assert list(rows[0]) == ["Id", "Name", "Account.Name", "Amount", "IsWon", "SystemModstamp"]
    assert rows[0]["IsWon"] in ("true", "false") and rows[0]["SystemModstamp"].endswith(".000Z")
    everything = [row for chunk in sf.bulk2.Opportunity.query_all("SELECT Id, IsDeleted, MasterRecordId "
                                                                   "FROM Opportunity WHERE IsDeleted = true", wait=0)
                  for row in csv.DictReader(io.StringIO(chunk))]
    assert [(r["Id"], r["MasterRecordId"]) for r in everything] == [(sf_id("006", 2), ""),
                                                                     (sf_id("006", 3), sf_id("006", 4))]


# ---------------------------------------------------------------- SOQL: values never change the query

HOSTILE_NAMES = (
    "O'Brien \\ \"Big\" Deal' OR Name != '",
    "50%_off\\' LIMIT 1 --",
    "line one\nline two\tand a tab\\n",
    "SELECT Id FROM Opportunity WHERE Name = 'x' ORDER BY Id",
)


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_a_name_with_quotes_backslashes_and_keywords_round_trips_and_matches_only_itself(org, hostile):
    served, store = org
    target = sf_id("006", 10)
    store.update_record("Opportunity", target, {"Name": hostile})
    sf = login(served)

    exact = sf.query(format_soql("SELECT Id, Name FROM Opportunity WHERE Name = {}", hostile))["records"]
    liked = sf.query(format_soql("SELECT Id, Name FROM Opportunity WHERE Name LIKE '%{:like}%'", hostile))["records"]
    listed = sf.query(format_soql("SELECT Id FROM Opportunity WHERE Name IN {} AND Id != {}",
                                  [hostile, "Deal 11"], target))["records"]

    assert [(r["Id"], r["Name"]) for r in exact] == [(target, hostile)]
    assert [(r["Id"], r["Name"]) for r in liked] == [(target, hostile)]
    assert [r["Id"] for r in listed] == [sf_id("006", 12)]  # "Deal 11" only: the hostile value never widened it


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_string_literal_quoted_by_format_soql_parses_back_to_itself(value):
    query = parse(format_soql("SELECT Id FROM Opportunity WHERE Name = {}", value))
    assert query.where.values[0].value == value and query.where.op == "="


@settings(max_examples=60, deadline=None)
@given(low=st.integers(0, 100_000), high=st.integers(0, 100_000), stage=st.sampled_from(("Proposal", "Angebot", "x")),
       negate=st.booleans())
def test_where_clauses_select_exactly_the_rows_salesforce_semantics_say(low, high, stage, negate):
    data = build_org(60)
    store = SalesforceStore(data)
    query = parse(f"SELECT Id FROM Opportunity WHERE {'NOT ' if negate else ''}(Amount >= {low} AND Amount < {high} "
                  f"OR StageName != '{stage.upper()}') ORDER BY Amount DESC, Id")
    got = [r["Id"] for r in execute(compile_query(query, store.schema, store.tables),
                                    store.rows("Opportunity", include_deleted=False))]

    def matches(row):
        hit = (low <= row["Amount"] < high) or row["StageName"].casefold() != stage.casefold()
        return hit != negate

    expected = sorted((r for r in store.rows("Opportunity", include_deleted=False) if matches(r)), key=lambda r: r["Id"])
    expected.sort(key=lambda r: r["Amount"], reverse=True)
    assert got == [r["Id"] for r in expected]


def test_text_comparisons_ignore_case_as_in_salesforce(org):
    served, _ = org
    sf = login(served)
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE Name = 'deal 11'")["totalSize"] == 1
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE Name LIKE 'DEAL 1_'")["totalSize"] == 10


def test_where_and_or_parentheses_in_and_order_by_several_keys(org):
    served, store = org
    sf = login(served)
    got = sf.query("SELECT Id, StageName, Amount FROM Opportunity WHERE (StageName = 'Proposal' OR "
                   "StageName IN ('Angebot', '赢单')) AND Amount >= 1000 AND NOT IsWon = true "
                   "ORDER BY StageName DESC, Amount ASC NULLS LAST")["records"]
    expected = sorted((r for r in store.rows("Opportunity", include_deleted=False)
                       if r["StageName"] in ("Proposal", "Angebot", "赢单") and r["Amount"] >= 1000
                       and not r["IsWon"]),
                      key=lambda r: r["Amount"])
    expected.sort(key=lambda r: r["StageName"].casefold(), reverse=True)
    assert [r["Id"] for r in got] == [r["Id"] for r in expected] and got


@pytest.mark.parametrize(("query", "code", "text"), [
    ("SELECT Idd FROM Opportunity", "INVALID_FIELD", "No such column 'Idd' on entity 'Opportunity'"),
    ("SELECT Id, Acount.Name FROM Opportunity", "INVALID_FIELD", "Didn't understand relationship 'Acount'"),
    ("SELECT Id FROM Opportunityy", "INVALID_TYPE", "sObject type 'Opportunityy' is not supported"),
    ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Opportunity WHERE Name = 'x", "MALFORMED_QUERY", "ERROR at Row:1:Column:41"),
    ("SELECT Id FROM Opportunity WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("SELECT Id FROM Opportunity WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: nope"),
])
def test_bad_queries_get_salesforce_error_codes_and_located_messages(big_org, query, code, text):
    served, _ = big_org
    sf = login(served)
    kind, status, [error] = refusal(sf.query, query)
    assert (kind, status) == (SalesforceMalformedRequest, 400)
    assert error["errorCode"] == code and text in error["message"]
    assert error["message"].startswith(f"\n{query}\n")


def test_related_objects_query_with_their_own_relationships(big_org):
    served, store = big_org
    sf = login(served)
    opportunity = sf_id("006", 5)
    roles = sf.query(format_soql("SELECT OpportunityId, Contact.Email, IsPrimary, Role FROM OpportunityContactRole "
                                 "WHERE OpportunityId = {}", opportunity))["records"]
    assert roles == [{"attributes": roles[0]["attributes"], "OpportunityId": opportunity,
                      "Contact": {"attributes": roles[0]["Contact"]["attributes"], "Email": "ann4@acct4.example"},
                      "IsPrimary": True, "Role": "Decision Maker"}]
    history = sf.query_all(format_soql("SELECT StageName, CreatedDate FROM OpportunityHistory "
                                       "WHERE OpportunityId = {} ORDER BY CreatedDate", opportunity))["records"]
    deal = store.get("Opportunity", opportunity)
    assert history and history[-1]["StageName"] == deal["StageName"]
    users = sf.query("SELECT Id, Name, Email FROM User WHERE IsActive = true")["records"]
    assert {u["Email"] for u in users} >= {f"owner{i}@example.com" for i in range(5)}


# ---------------------------------------------------------------- writing


def collection(sf: Salesforce, method: str, records: list[dict], *, all_or_none: bool = False, path: str = ""):
    return sf.restful(f"composite/sobjects{path}", method=method,
                      json={"allOrNone": all_or_none, "records": records})


def opp(record_id: str | None = None, **values) -> dict:
    record = {"attributes": {"type": "Opportunity"}, **values}
    if record_id:
        record["id"] = record_id
    return record


def test_collections_update_answers_per_record_in_input_order_and_applies_the_valid_ones(org):
    served, store = org
    sf = login(served)
    before = store.get("Opportunity", sf_id("006", 6))
    results = collection(sf, "PATCH", [
        opp(sf_id("006", 5), NextStep="Call CFO", Pipesync_Origin__c="pipesync"),
        opp(sf_id("006", 6), StageName="No Such Stage"),
        opp(sf_id("006", 7), StageName="Angebot"),  # a German-pipeline stage on an Enterprise deal
        opp(sf_id("006", 2), NextStep="deleted already"),
        opp(sf_id("006", 8), IsWon=True),
    ])
    assert results[0] == {"id": sf_id("006", 5), "success": True, "errors": []}
    assert [r["success"] for r in results] == [True, False, False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results[1:]] == [
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "ENTITY_IS_DELETED",
        "INVALID_FIELD_FOR_INSERT_UPDATE"]
    assert results[2]["errors"][0]["fields"] == ["StageName"]
    changed = store.get("Opportunity", sf_id("006", 5))
    assert changed["NextStep"] == "Call CFO" and changed["SystemModstamp"] > before["SystemModstamp"]
    assert store.get("Opportunity", sf_id("006", 6)) == before


def test_a_collection_holds_at_most_200_records(org):
    served, _ = org
    sf = login(served)
    kind, status, body = refusal(collection, sf, "PATCH", [opp(sf_id("006", 5), NextStep="x")] * 201)
    assert (kind, status, body[0]["errorCode"]) == (SalesforceMalformedRequest, 400, "EXCEEDED_ID_LIMIT")


def test_all_or_none_rolls_back_every_record_when_one_fails(org):
    served, store = org
    sf = login(served)
    untouched = store.get("Opportunity", sf_id("006", 5))
    results = collection(sf, "PATCH", [opp(sf_id("006", 5), NextStep="x"), opp(sf_id("006", 6), StageName="Nope")],
                         all_or_none=True)
    assert results[0] == {"success": False, "errors": [{
        "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "message": "Record rolled back because not all records were valid and the request was using AllOrNone "
                   "header", "fields": []}]}
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert store.get("Opportunity", sf_id("006", 5)) is untouched


def test_partial_batch_failures_are_reported_per_record_as_row_lock_errors():
    faults = Faults(partial_batch_failure_rate=0.5, seed=3)
    with faulty_org(faults) as (served, store):
        sf = login(served)
        ids = [sf_id("006", n) for n in range(10, 30)]
        results = collection(sf, "PATCH", [opp(i, NextStep="batch") for i in ids])
    failed = [i for i, r in zip(ids, results) if not r["success"]]
    assert 0 < len(failed) < len(ids)
    for record_id, result in zip(ids, results):
        if result["success"]:
            assert store.get("Opportunity", record_id)["NextStep"] == "batch"
        else:
            assert result["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
            assert store.get("Opportunity", record_id)["NextStep"] != "batch"


def test_collections_create_and_upsert_by_external_id_report_created_flags(org):
    served, store = org
    sf = login(served)
    created = collection(sf, "POST", [opp(Name="New", StageName="Prospecting", CloseDate="2026-12-31", Amount=5000),
                                      opp(Name="No close date", StageName="Prospecting")])
    assert created[0]["success"] and created[0]["id"].startswith("006")
    assert created[1]["errors"][0] == {"statusCode": "REQUIRED_FIELD_MISSING",
                                       "message": "Required fields are missing: [CloseDate]", "fields": ["CloseDate"]}
    new = store.get("Opportunity", created[0]["id"])
    assert (new["IsClosed"], new["Probability"], new["CurrencyIsoCode"]) == (False, 17.0, "EUR")

    upserted = collection(sf, "PATCH", [
        opp(HubSpot_Deal_Id__c="9000", NextStep="matched"),  # deal 0 carries hubspot:9000
        opp(HubSpot_Deal_Id__c="hs-new", Name="From HubSpot", StageName="Prospecting", CloseDate="2026-11-30"),
    ], path="/Opportunity/HubSpot_Deal_Id__c")
    assert [(r["success"], r["created"]) for r in upserted] == [(True, False), (True, True)]
    assert upserted[0]["id"] == sf_id("006", 1)
    assert store.get("Opportunity", upserted[1]["id"])["HubSpot_Deal_Id__c"] == "hs-new"


def test_single_record_update_answers_204_and_records_stage_history(org):
    served, store = org
    sf = login(served)
    deal_id = sf_id("006", 4)
    stages = store.processes[store.get("Opportunity", deal_id)["RecordTypeId"]].stages
    assert sf.Opportunity.update(deal_id, {"StageName": stages[-2], "Amount": 1234.5}) == 204
    deal = store.get("Opportunity", deal_id)
    assert (deal["IsClosed"], deal["IsWon"], deal["Probability"]) == (True, True, 100.0)
    history = sf.query(format_soql("SELECT StageName, Amount, PrevAmount FROM OpportunityHistory "
                                   "WHERE OpportunityId = {} ORDER BY CreatedDate DESC, Id DESC LIMIT 1",
                                   deal_id))["records"][0]
    assert (history["StageName"], history["Amount"]) == (stages[-2], 1234.5)
    assert sf.Opportunity.upsert(f"HubSpot_Deal_Id__c/{'9000'}", {"NextStep": "upserted"}) == 200
    kind, _, content = refusal(sf.Opportunity.update, deal_id, {"Bogus__c": 1})
    assert kind is SalesforceMalformedRequest and content[0]["errorCode"] == "INVALID_FIELD"


class SteppingClock:
    """The org's clock, moved on by the test."""

    def __init__(self, start: datetime):
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def test_store_helpers_edit_delete_and_merge_as_salesforce_would():
    clock = SteppingClock(NOW + timedelta(minutes=1))
    app, store = create_app(build_org(60), clock=clock)
    open_before = len([r for r in store.rows("Opportunity", include_deleted=False) if not r["IsClosed"]])
    start = clock.now
    clock.now += timedelta(minutes=1)
    edited = store.touch_deals(0.25, seed=1)
    store.delete_deal(sf_id("006", 20))
    assert store.merge_deals(sf_id("006", 21), sf_id("006", 22)) == sf_id("006", 21)
    clock.now += timedelta(minutes=1)
    end = clock.now

    with serve(app, tls=True) as served:
        sf = login(served)
        changed = sf.query_all(format_soql("SELECT Id FROM Opportunity WHERE SystemModstamp > {}", start))["records"]
        updated = sf.Opportunity.updated(start, end)
        deleted = sf.Opportunity.deleted(start, end)
        merged = sf.query(format_soql("SELECT MasterRecordId FROM Opportunity WHERE Id = {}", sf_id("006", 22)),
                          include_deleted=True)["records"][0]
        too_old = refusal(sf.Opportunity.deleted, start - timedelta(days=40), end)
        close_sessions()

    assert len(edited) == round(open_before * 0.25)
    assert {r["Id"] for r in changed} == set(edited) | {sf_id("006", 21)}
    assert set(updated["ids"]) == set(edited) | {sf_id("006", 21)}
    assert {d["id"] for d in deleted["deletedRecords"]} == {sf_id("006", 20), sf_id("006", 22)}
    assert deleted["latestDateCovered"] == end.strftime("%Y-%m-%dT%H:%M:00.000+0000")
    assert merged["MasterRecordId"] == sf_id("006", 21)
    assert too_old[:2] == (SalesforceMalformedRequest, 400)
    assert too_old[2][0]["errorCode"] == "INVALID_REPLICATION_DATE"
    histories = [r for r in store.rows("OpportunityHistory", include_deleted=False) if r["OpportunityId"] in edited
                 and r["CreatedDate"] > format_datetime(start)]
    assert len(histories) == len(edited)


# ---------------------------------------------------------------- auth, limits, faults


def test_an_expired_session_gets_401_invalid_session_id_and_a_refresh_token_gets_a_new_one():
    with faulty_org(Faults(expire_token_after=3)) as (served, store):
        refresh_token = store.auth.issue_refresh_token()
        grant = {"grant_type": "refresh_token", "client_id": CREDS.client_id, "refresh_token": refresh_token}
        first = token_from(served, **grant).json()
        assert "refresh_token" not in first and first["instance_url"] == served.base_url
        sf = client_for(served, first["access_token"])
        for _ in range(3):
            sf.query("SELECT Id FROM Opportunity LIMIT 1")
        assert refusal(sf.query, "SELECT Id FROM Opportunity LIMIT 1") == (
            SalesforceExpiredSession, 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])

        second = token_from(served, **grant).json()
        assert second["access_token"] != first["access_token"]
        assert client_for(served, second["access_token"]).query("SELECT COUNT() FROM Opportunity")["totalSize"] == 58


@pytest.mark.parametrize(("form", "error"), [
    ({"password": "wrong"}, {"error": "invalid_grant", "error_description": "authentication failure"}),
    ({"password": CREDS.password}, {"error": "invalid_grant", "error_description": "authentication failure"}),
    ({"client_id": "someone-else"}, {"error": "invalid_client_id", "error_description": "client identifier invalid"}),
    ({"client_secret": "wrong"}, {"error": "invalid_client", "error_description": "invalid client credentials"}),
    ({"grant_type": "magic"}, {"error": "unsupported_grant_type", "error_description": "grant type not supported"}),
])
def test_refused_token_requests_get_oauth_error_bodies(big_org, form, error):
    served, _ = big_org
    request = {"grant_type": "password", "client_id": CREDS.client_id, "client_secret": CREDS.client_secret,
               "username": CREDS.username, "password": CREDS.password + CREDS.security_token, **form}
    response = token_from(served, **request)
    assert (response.status_code, response.json()) == (400, error)


def test_jwt_bearer_accepts_a_well_formed_assertion_for_the_api_user(big_org):
    served, _ = big_org
    claims = {"iss": CREDS.client_id, "sub": CREDS.username, "aud": "https://login.salesforce.com",
              "exp": int(datetime.now(UTC).timestamp()) + 300}
    key = "the sandbox does not verify the signature"  # it holds no certificate
    assertion = jwt.encode(claims, key, algorithm="HS256")
    response = token_from(served, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=assertion)
    assert response.status_code == 200 and "refresh_token" not in response.json()
    other = jwt.encode({**claims, "sub": "someone@else.example"}, key, algorithm="HS256")
    refused = token_from(served, grant_type="urn:ietf:params:oauth:grant-type:jwt-bearer", assertion=other)
    assert refused.json() == {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}


def test_every_rest_response_carries_the_limit_header_and_the_daily_allocation_is_enforced():
    with faulty_org(Faults(), daily_limit=5) as (served, _):
        sf = login(served)
        sf.query("SELECT Id FROM Opportunity LIMIT 1")
        assert sf.api_usage["api-usage"] == (1, 5)
        assert sf.limits()["DailyApiRequests"] == {"Max": 5, "Remaining": 3}
        assert sf.api_usage["api-usage"] == (2, 5)
        for _ in range(3):
            sf.query("SELECT Id FROM Opportunity LIMIT 1")
        exhausted = refusal(sf.query, "SELECT Id FROM Opportunity LIMIT 1")
        response = requests.get(f"{served.base_url}/services/data/v62.0/limits", verify=served.ca_bundle,
                                headers={"Authorization": "Bearer nope", "Connection": "close"})
    assert exhausted == (SalesforceRefusedRequest, 403,
                         [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    assert (response.status_code, response.headers["Sforce-Limit-Info"]) == (401, "api-usage=5/5")


def test_the_burst_switch_answers_salesforce_concurrency_403_and_errors_answer_500():
    faults = Faults(burst_429_every=2, burst_429_len=1)
    with faulty_org(faults) as (served, _):
        sf = login(served)  # the token request is request 1
        sf.query("SELECT Id FROM Opportunity LIMIT 1")
        burst = refusal(sf.query, "SELECT Id FROM Opportunity LIMIT 1")
        faults.update(burst_429_every=0, burst_429_len=0, error_rate=1.0)
        error = refusal(sf.query, "SELECT Id FROM Opportunity LIMIT 1")
    assert burst == (SalesforceRefusedRequest, 403, [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.",
                                                      "errorCode": "REQUEST_LIMIT_EXCEEDED"}])
    assert error[:2] == (SalesforceGeneralError, 500) and error[2][0]["errorCode"] == "UNKNOWN_EXCEPTION"


# ---------------------------------------------------------------- metadata: one stage picklist, record types


def test_stages_are_one_org_picklist_and_each_record_type_uses_a_subset(big_org):
    served, store = big_org
    sf = login(served)
    stages = sf.query("SELECT ApiName, MasterLabel, IsClosed, IsWon, DefaultProbability, SortOrder "
                      "FROM OpportunityStage ORDER BY SortOrder")["records"]
    names = [s["ApiName"] for s in stages]
    assert names.count("Proposal") == 1 and len(names) == 15  # "Proposal" is shared by two pipelines
    for _, _, pipeline_stages in _PIPELINES:  # the merged picklist keeps every pipeline's own order
        assert [name for name in names if name in pipeline_stages] == pipeline_stages
    won = {s["ApiName"] for s in stages if s["IsClosed"] and s["IsWon"]}
    assert won == {"Closed Won", "Gewonnen", "赢单"}

    describe = sf.Opportunity.describe()
    stage_field = next(f for f in describe["fields"] if f["name"] == "StageName")
    assert [v["value"] for v in stage_field["picklistValues"]] == names
    assert {c["relationshipName"] for c in describe["childRelationships"]} >= {"OpportunityContactRoles",
                                                                              "OpportunityHistories"}
    record_types = {rt["name"]: rt["recordTypeId"] for rt in describe["recordTypeInfos"] if not rt["master"]}
    assert set(record_types) == {"Enterprise", "Mittelstand", "中国区"}

    china = sf.restful(f"ui-api/object-info/Opportunity/picklist-values/{record_types['中国区']}/StageName")
    assert [v["value"] for v in china["values"]] == ["初步接洽", "需求分析", "Proposal", "赢单", "输单"]
    rows = sf.query("SELECT Id, Name, DeveloperName, BusinessProcessId FROM RecordType "
                    "WHERE SobjectType = 'Opportunity' ORDER BY Name")["records"]
    assert [r["DeveloperName"] for r in rows] == ["Enterprise", "Mittelstand", "Pipeline_3"]


# ---------------------------------------------------------------- a generated world


def test_a_generated_world_is_served_as_its_salesforce_org():
    world = generate(5, 900)
    data = world.systems["salesforce"]
    app, store = create_app(data, as_of=world.as_of)
    window = (world.as_of - timedelta(days=14), world.as_of)
    with serve(app, tls=True) as served:
        sf = login(served)
        live = sf.query_all("SELECT Id, StageName, IsClosed, IsWon, RecordType.Name FROM Opportunity")["records"]
        gone = sf.query_all("SELECT Id, MasterRecordId FROM Opportunity WHERE IsDeleted = true",
                            include_deleted=True)["records"]
        deleted = sf.Opportunity.deleted(*window)["deletedRecords"]
        close_sessions()

    deals = {d.id: d for d in data.deals}
    assert {r["Id"] for r in live} == {d.id for d in data.deals if not d.is_deleted}
    assert {(r["Id"], r["MasterRecordId"]) for r in gone} == {(d.id, d.merged_into) for d in data.deals if d.is_deleted}
    for record in live:
        deal = deals[record["Id"]]
        assert (record["IsClosed"], record["IsWon"]) == (deal.status != "open", deal.status == "won")
        assert record["StageName"] == deal.stage_id  # the generator's Salesforce stage ids are the picklist values
        assert record["RecordType"]["Name"] == next(p.label for p in data.pipelines if p.id == deal.pipeline_id)
    assert {d["id"] for d in deleted} == {d.id for d in data.deals if d.is_deleted and window[0] <= d.deleted_at}


@pytest.mark.parametrize(("literal", "first", "after"), [
    ("TODAY", date(2026, 11, 22), date(2026, 11, 23)),
    ("YESTERDAY", date(2026, 11, 21), date(2026, 11, 22)),
    ("THIS_WEEK", date(2026, 11, 22), date(2026, 11, 29)),  # weeks start on Sunday
    ("LAST_MONTH", date(2026, 10, 1), date(2026, 11, 1)),
    ("NEXT_QUARTER", date(2027, 1, 1), date(2027, 4, 1)),
    ("LAST_YEAR", date(2025, 1, 1), date(2026, 1, 1)),
    ("LAST_N_DAYS:7", date(2026, 11, 15), date(2026, 11, 23)),  # today counts in
    ("NEXT_N_DAYS:7", date(2026, 11, 23), date(2026, 11, 30)),
    ("N_DAYS_AGO:3", date(2026, 11, 19), date(2026, 11, 20)),
])
def test_relative_date_literals_cover_the_days_salesforce_documents(literal, first, after):
    name, _, n = literal.partition(":")
    assert date_literal_range(name, int(n or 0), date(2026, 11, 22)) == (first, after)


def test_relative_date_literals_filter_date_and_datetime_fields(big_org):
    served, store = big_org
    sf = login(served)
    today = datetime.now(UTC).date()
    rows = store.rows("Opportunity", include_deleted=False)
    closing = sf.query_all("SELECT Id FROM Opportunity WHERE CloseDate = NEXT_N_DAYS:90")["records"]
    assert {r["Id"] for r in closing} == {
        r["Id"] for r in rows if today < date.fromisoformat(r["CloseDate"]) <= today + timedelta(days=90)}
    created = sf.query("SELECT COUNT() FROM Opportunity WHERE CreatedDate < LAST_N_DAYS:150")["totalSize"]
    cut = format_datetime(datetime.combine(today - timedelta(days=150), datetime.min.time(), UTC))
    assert created == len([r for r in rows if r["CreatedDate"] < cut]) > 0


def test_single_record_create_read_and_delete_as_the_client_calls_them(org):
    served, store = org
    sf = login(served)
    created = sf.Opportunity.create({"Name": "Single", "StageName": "Erstkontakt", "CloseDate": "2027-01-31",
                                     "RecordTypeId": store.process_of_pipeline["pl-1"].record_type_id})
    assert created["success"] and created["errors"] == []
    record = sf.Opportunity.get(created["id"])
    assert (record["Name"], record["IsClosed"], record["attributes"]["type"]) == ("Single", False, "Opportunity")
    assert sf.Opportunity.delete(created["id"]) == 204
    assert refusal(sf.Opportunity.get, created["id"])[:2] == (SalesforceResourceNotFound, 404)
    gone = sf.query(format_soql("SELECT IsDeleted FROM Opportunity WHERE Id = {}", created["id"]),
                    include_deleted=True)["records"]
    assert gone[0]["IsDeleted"] is True


def test_a_dropped_connection_reaches_the_client_as_a_connection_error():
    faults = Faults()
    with faulty_org(faults) as (served, _):
        sf = login(served)
        faults.update(drop_rate=1.0)
        with pytest.raises(requests.ConnectionError):
            sf.query("SELECT Id FROM Opportunity LIMIT 1")
        faults.update(drop_rate=0.0)
        assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 58


def test_parent_child_subqueries_nest_each_parents_children_or_null(big_org):
    served, store = big_org
    sf = login(served)
    records = sf.query(format_soql(
        "SELECT Id, (SELECT Contact.Email, IsPrimary FROM OpportunityContactRoles WHERE IsPrimary = true), "
        "(SELECT StageName FROM OpportunityHistories ORDER BY CreatedDate DESC LIMIT 1), Name "
        "FROM Opportunity WHERE Id IN {} ORDER BY Id", [sf_id("006", 5), sf_id("006", 6)]))["records"]
    first = records[0]
    assert first["Name"] == "Deal 4"
    assert first["OpportunityContactRoles"]["totalSize"] == 1 and first["OpportunityContactRoles"]["done"] is True
    assert first["OpportunityContactRoles"]["records"][0]["Contact"]["Email"] == "ann4@acct4.example"
    assert first["OpportunityHistories"]["records"][0]["StageName"] == store.get("Opportunity", sf_id("006", 5))[
        "StageName"]
    account = sf.query(format_soql("SELECT Name, (SELECT Id FROM Opportunities WHERE Amount < 0) FROM Account "
                                   "WHERE Id = {}", sf_id("001", 1)))["records"][0]
    assert account["Opportunities"] is None
    kind, _, body = refusal(sf.query, "SELECT Id, (SELECT Id FROM Histories) FROM Opportunity")
    assert kind is SalesforceMalformedRequest and body[0]["errorCode"] == "INVALID_TYPE"


def test_describe_names_each_fields_compound_field_as_salesforce_does(org):
    served, _ = org
    sf = login(served)
    contact = {f["name"]: f for f in sf.Contact.describe()["fields"]}
    opportunity = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    assert contact["FirstName"]["compoundFieldName"] == "Name" and contact["Email"]["compoundFieldName"] is None
    assert all("compoundFieldName" in f for f in opportunity.values())
    assert opportunity["Amount"]["compoundFieldName"] is None and opportunity["Name"]["nameField"]

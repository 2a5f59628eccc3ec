"""The Pipedrive sandbox, driven by httpx over real HTTP, behaves as Pipedrive's API v2 and remaining v1 do."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from pipedrive_world import LEAD_SOURCES, NOW, PIPELINES, pipedrive_data, updated_at

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.pipedrive import PipedriveStore, create_app
from pipesync_sandbox.pipedrive.limits import TokenLimits
from pipesync_sandbox.pipedrive.store import field_key
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import SystemData

UNAUTHORIZED = {"success": False, "error": "unauthorized access", "errorCode": 401,
                "error_info": "Please check developers.pipedrive.com"}


class Clock:
    """The company's "now", moved by the tests."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Switchboard:
    """One loopback server for the whole module; each test plugs in its own sandbox app (servers are slow to start)."""

    def __init__(self) -> None:
        self.app = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":  # nothing to start or stop
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switchboard, str]]:
    board = Switchboard()
    with serve(board) as served:
        yield board, served.base_url


@pytest.fixture(scope="module")
def anonymous(server) -> Iterator[httpx.Client]:
    """A client of the module's server that sends no credentials unless told to."""
    with httpx.Client(base_url=server[1]) as client:
        yield client


@pytest.fixture
def running(server) -> Callable[..., Iterator[tuple[httpx.Client, PipedriveStore]]]:
    """``with running(deal_count, faults=…, …) as (client, store)``: a fresh sandbox behind the module's server."""
    board, base_url = server

    @contextmanager
    def start(deal_count: int = 30, *, faults: Faults | None = None, deleted_days_ago: dict[int, int] | None = None,
              data: SystemData | None = None, **options: Any) -> Iterator[tuple[httpx.Client, PipedriveStore]]:
        if "as_of" not in options:
            options.setdefault("clock", Clock())
        board.app, store = create_app(data or pipedrive_data(deal_count, deleted_days_ago=deleted_days_ago),
                                      faults, **options)
        with httpx.Client(base_url=base_url, headers={"x-api-token": store.credentials.api_token}) as client:
            yield client, store

    return start


@pytest.fixture
def sandbox(running) -> Iterator[tuple[httpx.Client, PipedriveStore]]:
    with running() as pair:
        yield pair


def all_deals(client: httpx.Client, path: str = "/api/v2/deals", **params: object) -> list[dict]:
    deals, cursor = [], None
    while True:
        body = client.get(path, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        assert body["success"] is True
        deals += body["data"]
        cursor = body["additional_data"]["next_cursor"]
        if cursor is None:
            return deals


# -- paging and incremental reads ---------------------------------------------------------------


def test_an_httpx_client_pages_through_10000_deals_by_cursor_and_next_cursor_is_null_at_the_end(running):
    with running(10_000) as (client, _):
        ids, cursor, pages = [], None, 0
        while True:
            body = client.get("/api/v2/deals", params={"limit": 500, **({"cursor": cursor} if cursor else {})}).json()
            pages += 1
            ids += [d["id"] for d in body["data"]]
            cursor = body["additional_data"]["next_cursor"]
            if cursor is None:
                break
    assert ids == list(range(1, 10_001))
    assert pages == 20


def test_limit_defaults_to_100_and_more_than_500_is_refused(running):
    with running(150) as (client, _):
        assert len(client.get("/api/v2/deals").json()["data"]) == 100
        response = client.get("/api/v2/deals", params={"limit": 501})
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "Validation failed: limit: must be less than or equal to 500",
                               "code": "ERR_SCHEMA_VALIDATION_FAILED",
                               "error_info": "Please check developers.pipedrive.com", "data": None,
                               "additional_data": None}


def test_updated_since_returns_exactly_the_deals_changed_since_then_oldest_first(running):
    clock = Clock()
    with running(200, clock=clock) as (client, store):
        clock.now = NOW + timedelta(hours=1)
        touched = [int(i) for i in store.touch_deals(0.1, seed=3)]
        deals = all_deals(client, updated_since="2026-11-01T13:00:00Z", sort_by="update_time", limit=7)
    assert sorted(d["id"] for d in deals) == touched and len(touched) == 20
    assert all(d["update_time"] == "2026-11-01T13:00:00Z" for d in deals)


def test_updated_since_is_inclusive_and_updated_until_exclusive(sandbox):
    client, _ = sandbox
    since, until = updated_at(4).strftime("%Y-%m-%dT%H:%M:%SZ"), updated_at(7).strftime("%Y-%m-%dT%H:%M:%SZ")
    deals = all_deals(client, updated_since=since, updated_until=until)
    assert [d["id"] for d in deals] == [5, 6, 7]


def test_fractional_seconds_in_updated_since_are_refused_like_pipedrive_does(sandbox):
    client, _ = sandbox
    response = client.get("/api/v2/deals", params={"updated_since": "2025-01-02T00:00:00.123Z"})
    assert response.status_code == 400
    assert response.json()["code"] == "ERR_SCHEMA_VALIDATION_FAILED"
    assert "updated_since" in response.json()["error"]


def test_descending_update_time_pages_never_repeat_or_skip_a_deal(sandbox):
    client, _ = sandbox
    deals = all_deals(client, sort_by="update_time", sort_direction="desc", limit=4)
    assert [d["id"] for d in deals] == list(range(30, 0, -1))


@pytest.mark.parametrize("sort_by", ["id", "update_time", "add_time"])
@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_cursor_pages_add_up_to_the_whole_sorted_listing(running, sort_by, direction):
    with running(30, faults=Faults(time_scale=1000)) as (client, store):
        store.touch_deals(0.3, seed=1)  # ties on update_time: the order falls back to id
        paged = all_deals(client, sort_by=sort_by, sort_direction=direction, limit=4)
        whole = client.get("/api/v2/deals", params={"sort_by": sort_by, "sort_direction": direction}).json()["data"]
    assert [d["id"] for d in paged] == [d["id"] for d in whole]
    keys = [(d[sort_by], d["id"]) for d in whole]
    assert keys == sorted(keys, reverse=direction == "desc") and len(keys) == 30


def test_update_time_order_follows_writes_made_after_a_first_listing(running):
    clock = Clock()
    with running(10, clock=clock) as (client, _):
        assert [d["id"] for d in all_deals(client, sort_by="update_time")] == list(range(1, 11))
        for minutes, write in enumerate((lambda: client.patch("/api/v2/deals/5", json={"value": 1}),
                                         lambda: client.post("/api/v2/deals", json={"title": "New"}),
                                         lambda: client.patch("/api/v2/deals/2", json={"value": 2}))):
            clock.now = NOW + timedelta(minutes=minutes)
            assert write().status_code == 200
        by_update = [d["id"] for d in all_deals(client, sort_by="update_time", limit=3)]
        newest_first = [d["id"] for d in all_deals(client, sort_by="update_time", sort_direction="desc", limit=3)]
    assert by_update == [1, 3, 4, 6, 7, 8, 9, 10, 5, 11, 2]
    assert newest_first == list(reversed(by_update))


def test_a_cursor_is_bound_to_the_sort_it_was_issued_for(sandbox):
    client, _ = sandbox
    cursor = client.get("/api/v2/deals", params={"limit": 2}).json()["additional_data"]["next_cursor"]
    response = client.get("/api/v2/deals", params={"cursor": cursor, "sort_by": "update_time"})
    assert response.status_code == 400 and "cursor" in response.json()["error"]


def test_filters_by_pipeline_stage_owner_and_organization(sandbox):
    client, _ = sandbox
    deals = all_deals(client)
    for name in ("pipeline_id", "stage_id", "owner_id", "org_id"):
        value = deals[3][name]
        filtered = all_deals(client, **{name: value})
        assert filtered and [d["id"] for d in filtered] == [d["id"] for d in deals if d[name] == value]


def test_ids_fetches_just_those_deals_in_sort_order(sandbox):
    client, _ = sandbox
    assert [d["id"] for d in all_deals(client, ids="9,2,5,999")] == [2, 5, 9]


# -- status, deletion, archive ---------------------------------------------------------------------


def test_won_and_lost_are_statuses_and_a_won_deal_keeps_its_last_stage(sandbox):
    client, _ = sandbox
    won = all_deals(client, status="won")
    assert won and {d["status"] for d in won} == {"won"}
    deal = next(d for d in won if d["pipeline_id"] == 2)  # Vertrieb DACH: won from its last stage reached
    assert deal["stage_id"] == 5 and deal["won_time"] is not None and deal["lost_time"] is None
    lost_or_won = all_deals(client, status="won,lost")
    assert {d["status"] for d in lost_or_won} == {"won", "lost"}
    assert all(d["lost_reason"] == "Too expensive" for d in lost_or_won if d["status"] == "lost")


def test_status_deleted_lists_deals_deleted_in_the_last_30_days_only(running):
    with running(10, deleted_days_ago={3: 5, 4: 40}) as (client, _):
        listed = [d["id"] for d in all_deals(client)]
        deleted = all_deals(client, status="deleted")
        assert 3 not in listed and 4 not in listed
        assert [d["id"] for d in deleted] == [3] and deleted[0]["is_deleted"] is True
        assert client.get("/api/v2/deals/3").json()["data"]["is_deleted"] is True
        assert client.get("/api/v2/deals/4").status_code == 404


def test_a_deal_deleted_through_the_api_is_listed_as_deleted_until_purged_after_30_days(running):
    clock = Clock()
    with running(5, clock=clock) as (client, _):
        assert client.delete("/api/v2/deals/2").json() == {"success": True, "data": {"id": 2}}
        assert [d["id"] for d in all_deals(client, status="deleted")] == [2]
        assert 2 not in [d["id"] for d in all_deals(client)]
        clock.now = NOW + timedelta(days=31)
        assert all_deals(client, status="deleted") == []
        assert client.delete("/api/v2/deals/2").status_code == 404


def test_archived_deals_leave_the_deal_list_and_are_served_by_the_archived_endpoint(sandbox):
    client, store = sandbox
    store.archive([4, 6])
    assert [4, 6] == [d["id"] for d in all_deals(client, "/api/v2/deals/archived")]
    assert not {4, 6} & {d["id"] for d in all_deals(client)}
    archived = all_deals(client, "/api/v2/deals/archived", status="open")
    assert [d["id"] for d in archived] == [4] and archived[0]["is_archived"] is True


def test_merge_keeps_the_target_deal_and_deletes_the_merged_one(sandbox):
    client, _ = sandbox
    response = client.put("/v1/deals/4/merge", json={"merge_with_id": 7})
    body = response.json()
    assert response.status_code == 200 and body["data"]["id"] == 7 and body["data"]["merge_what_id"] == 4
    assert [d["id"] for d in all_deals(client, status="deleted")] == [4]
    assert client.put("/v1/deals/7/merge", json={"merge_with_id": 7}).status_code == 400


# -- deal shape and custom fields ----------------------------------------------------------------------


def test_deals_carry_rfc3339_utc_times_and_hash_keyed_custom_fields_with_option_ids(sandbox):
    client, _ = sandbox
    deal = client.get("/api/v2/deals/6").json()["data"]
    assert deal["add_time"] == "2025-01-01T00:05:00Z" and deal["expected_close_date"] == "2025-03-31"
    fields = {f["field_name"]: f for f in all_deals(client, "/api/v2/dealFields")}
    lead_source = fields["Lead source"]
    assert len(lead_source["field_code"]) == 40 and lead_source["is_custom_field"] is True
    labels = {o["id"]: o["label"] for o in lead_source["options"]}
    assert labels[deal["custom_fields"][lead_source["field_code"]]] == LEAD_SOURCES[5 % 3]
    assert client.get("/api/v2/deals/1").json()["data"]["custom_fields"][fields["Salesforce ID"]["field_code"]] \
        == "006000000000000"


def test_custom_fields_and_include_fields_shape_the_response(sandbox):
    client, _ = sandbox
    key = field_key("Lead source")
    deal = client.get("/api/v2/deals", params={"custom_fields": key, "include_fields": "first_won_time",
                                               "include_option_labels": "true", "ids": "2"}).json()["data"][0]
    assert list(deal["custom_fields"]) == [key] and deal["custom_fields"][key]["label"] == LEAD_SOURCES[1]
    assert deal["first_won_time"] == deal["won_time"]
    too_many = ",".join(field_key(str(n)) for n in range(16))
    assert client.get("/api/v2/deals", params={"custom_fields": too_many}).status_code == 400


def test_pipelines_and_stages_carry_order_probability_and_rot_settings(sandbox):
    client, _ = sandbox
    pipelines = client.get("/api/v2/pipelines").json()["data"]
    assert [(p["name"], p["order_nr"]) for p in pipelines] == [("Sales", 1), ("Vertrieb DACH", 2)]
    stages = client.get("/api/v2/stages", params={"pipeline_id": 1, "sort_by": "order_nr"}).json()["data"]
    assert [(s["name"], s["deal_probability"], s["is_deal_rot_enabled"], s["days_to_rotten"]) for s in stages] == [
        ("Qualified", 20, False, None), ("Proposal", 50, True, 30), ("Negotiation", 75, False, None)]
    assert len(client.get("/api/v2/stages").json()["data"]) == sum(len(p.stages) for p in PIPELINES)


def test_persons_and_organizations_resolve_in_bulk_by_ids(sandbox):
    client, _ = sandbox
    orgs = client.get("/api/v2/organizations", params={"ids": "12,11"}).json()["data"]
    assert [(o["id"], o["name"]) for o in orgs] == [(11, "Acme 0 GmbH"), (12, "Acme 1 GmbH")]
    persons = client.get("/api/v2/persons", params={"ids": "22"}).json()["data"]
    assert persons[0]["emails"] == [{"value": "kim1@acme1.example", "primary": True, "label": "work"}]
    assert persons[0]["org_id"] == 12


def test_users_come_from_v1_with_the_token_owner_marked(sandbox):
    client, _ = sandbox
    users = client.get("/api/v1/users").json()["data"]
    assert [(u["id"], u["email"], u["is_you"]) for u in users] == [(7, "ana@example.com", True),
                                                                  (8, "bo@example.com", False)]


# -- writes -------------------------------------------------------------------------------------------


def test_patch_is_strict_about_json_types_and_names_the_field(sandbox):
    client, _ = sandbox
    response = client.patch("/api/v2/deals/1", json={"value": "2500"})
    assert response.status_code == 400
    assert response.json()["error"] == "Validation failed: value: must be number, got string"
    assert client.patch("/api/v2/deals/1", json={"owner_id": True}).status_code == 400
    assert client.patch("/api/v2/deals/1", json={"colour": "red"}).status_code == 400


def test_lost_reason_is_accepted_only_for_a_lost_deal(sandbox):
    client, _ = sandbox
    assert client.patch("/api/v2/deals/1", json={"lost_reason": "No budget"}).status_code == 400
    deal = client.patch("/api/v2/deals/1", json={"status": "lost", "lost_reason": "No budget"}).json()["data"]
    assert (deal["status"], deal["lost_reason"]) == ("lost", "No budget")
    assert deal["lost_time"] == deal["close_time"] == deal["update_time"] == "2026-11-01T12:00:00Z"


def test_a_stage_move_is_logged_in_flow_and_changelog_with_v1_times(sandbox):
    client, _ = sandbox
    client.patch("/api/v2/deals/1", json={"stage_id": 3})
    flow = client.get("/api/v1/deals/1/flow", params={"items": "dealChange"}).json()
    newest = flow["data"][0]
    assert newest["object"] == "dealChange" and newest["timestamp"] == "2026-11-01 12:00:00"
    assert (newest["data"]["field_key"], newest["data"]["old_value"], newest["data"]["new_value"]) == \
        ("stage_id", "1", "3")
    assert newest["data"]["additional_data"] == {"old_value_formatted": "Qualified",
                                                "new_value_formatted": "Negotiation"}
    changelog = client.get("/v1/deals/1/changelog").json()["data"]
    assert changelog[0]["field_key"] == "stage_id" and changelog[0]["time"] == "2026-11-01 12:00:00"


def test_seeded_stage_history_is_served_by_flow_oldest_visit_last(sandbox):
    client, _ = sandbox
    changes = [i["data"] for i in client.get("/v1/deals/3/flow").json()["data"] if i["data"]["field_key"] == "stage_id"]
    assert [(c["old_value"], c["new_value"], c["log_time"]) for c in changes] == [
        ("2", "3", "2025-01-01 02:02:00"), ("1", "2", "2025-01-01 01:02:00")]


def test_changelog_pages_by_cursor(sandbox):
    client, _ = sandbox
    for value in (1.0, 2.0, 3.0):
        client.patch("/api/v2/deals/2", json={"value": value})
    first = client.get("/v1/deals/2/changelog", params={"limit": 2}).json()
    second = client.get("/v1/deals/2/changelog",
                        params={"limit": 2, "cursor": first["additional_data"]["next_cursor"]}).json()
    assert [c["new_value"] for c in first["data"]] == ["3", "2"]
    assert second["data"][0]["new_value"] == "1"


def test_post_creates_an_open_deal_and_requires_a_title(sandbox):
    client, _ = sandbox
    assert client.post("/api/v2/deals", json={"value": 10}).status_code == 400
    created = client.post("/api/v2/deals", json={"title": "New", "value": 10, "stage_id": 4}).json()["data"]
    assert (created["id"], created["status"], created["pipeline_id"], created["stage_id"]) == (31, "open", 2, 4)
    assert client.post("/api/v2/deals", json={"title": "x", "pipeline_id": 1, "stage_id": 4}).status_code == 400


def test_an_admin_created_text_field_can_be_written_and_read_back(sandbox):
    client, _ = sandbox
    field = client.post("/api/v2/dealFields", json={"field_name": "pipesync_origin", "field_type": "varchar"}).json()
    key = field["data"]["field_code"]
    client.patch("/api/v2/deals/3", json={"custom_fields": {key: "run-1"}})
    assert client.get("/api/v2/deals/3").json()["data"]["custom_fields"][key] == "run-1"
    assert client.patch("/api/v2/deals/3", json={"custom_fields": {key: 5}}).status_code == 400


def test_recents_lists_deals_changed_since_a_v1_timestamp_with_start_and_limit(sandbox):
    client, store = sandbox
    store.delete([30])
    since = updated_at(25).strftime("%Y-%m-%d %H:%M:%S")
    first = client.get("/v1/recents", params={"since_timestamp": since, "items": "deal", "limit": 3}).json()
    pagination = first["additional_data"]["pagination"]
    assert [i["id"] for i in first["data"]] == [26, 27, 28]
    assert pagination == {"start": 0, "limit": 3, "more_items_in_collection": True, "next_start": 3}
    rest = client.get("/v1/recents", params={"since_timestamp": since, "start": 3}).json()["data"]
    assert [(i["id"], i["data"]["deleted"]) for i in rest] == [(29, False), (30, True)]
    assert client.get("/v1/recents", params={"since_timestamp": "2025-01-01T00:00:00Z"}).status_code == 400


# -- auth -----------------------------------------------------------------------------------------------


def test_the_api_token_works_in_the_header_and_the_query_and_a_wrong_one_gets_pipedrives_401(sandbox, anonymous):
    _, store = sandbox
    assert anonymous.get("/api/v2/deals", params={"api_token": store.credentials.api_token}).status_code == 200
    assert anonymous.get("/api/v2/deals", headers={"x-api-token": store.credentials.api_token}).status_code == 200
    for refused in (anonymous.get("/api/v2/deals", params={"api_token": "wrong"}), anonymous.get("/api/v2/deals")):
        assert refused.status_code == 401 and refused.json() == UNAUTHORIZED


def _refresh(anonymous: httpx.Client, store: PipedriveStore, refresh_token: str) -> httpx.Response:
    basic = base64.b64encode(f"{store.credentials.client_id}:{store.credentials.client_secret}".encode()).decode()
    return anonymous.post("/oauth/token", headers={"Authorization": f"Basic {basic}"},
                          data={"grant_type": "refresh_token", "refresh_token": refresh_token})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_oauth_refresh_issues_a_bearer_token_and_rotates_the_refresh_token(sandbox, anonymous):
    _, store = sandbox
    first_refresh = store.credentials.refresh_token
    tokens = _refresh(anonymous, store, first_refresh).json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["api_domain"] == str(anonymous.base_url).rstrip("/") and tokens["refresh_token"] != first_refresh
    assert anonymous.get("/api/v2/deals", headers=_bearer(tokens["access_token"])).status_code == 200
    reused = _refresh(anonymous, store, first_refresh)
    assert reused.status_code == 400 and reused.json()["message"] == "Invalid grant: refresh_token is invalid"
    wrong_client = anonymous.post("/oauth/token", auth=("nobody", "nothing"),
                                  data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]})
    assert wrong_client.status_code == 401


def test_an_access_token_expires_after_the_faults_request_count_until_refreshed(running, anonymous):
    with running(faults=Faults(expire_token_after=2)) as (_, store):
        token = _refresh(anonymous, store, store.credentials.refresh_token).json()["access_token"]
        responses = [anonymous.get("/api/v2/pipelines", headers=_bearer(token)) for _ in range(3)]
        assert [r.status_code for r in responses] == [200, 200, 401]
        assert responses[-1].json()["errorCode"] == 401
        fresh = _refresh(anonymous, store, store.credentials.refresh_token).json()["access_token"]
        assert anonymous.get("/api/v2/pipelines", headers=_bearer(fresh)).status_code == 200


# -- rate limits and faults --------------------------------------------------------------------------------


def test_every_response_reports_the_burst_window_and_the_daily_tokens_left_charged_at_the_vendors_cost(sandbox):
    client, _ = sandbox
    first = client.get("/api/v2/deals")
    assert first.headers["x-ratelimit-limit"] == "40"  # Growth plan, API token
    assert first.headers["x-ratelimit-remaining"] == "39"
    assert int(first.headers["x-ratelimit-reset"]) <= 2
    left = int(first.headers["x-daily-requests-left"])
    assert left == 30_000 * 2 - 10  # GET /api/v2/deals costs 10 tokens (token_costs.yaml, from the vendor's spec)
    after_get_one = int(client.get("/api/v2/deals/1").headers["x-daily-requests-left"])
    after_flow = int(client.get("/v1/deals/1/flow").headers["x-daily-requests-left"])
    assert (left - after_get_one, after_get_one - after_flow) == (1, 40)


def test_exceeding_the_2_second_burst_gets_429_with_a_retry_hint_and_time_scale_shortens_the_window(running):
    faults = Faults()
    with running(plan="lite", faults=faults) as (client, _):
        statuses = [client.get("/api/v2/pipelines").status_code for _ in range(21)]
        assert statuses == [200] * 20 + [429]
        refused = client.get("/api/v2/pipelines")
        assert refused.json() == {"success": False, "error": "Request over limit",
                                  "error_info": "Please check developers.pipedrive.com", "data": None,
                                  "additional_data": None}
        assert refused.headers["x-ratelimit-remaining"] == "0" and float(refused.headers["retry-after"]) <= 2
        faults.update(time_scale=1000)  # the 2 s window now lasts 2 ms
        time.sleep(0.01)
        assert client.get("/api/v2/pipelines").status_code == 200


def test_the_daily_token_budget_runs_out_with_a_429_and_no_tokens_left():
    limits = TokenLimits("lite", seats=1)
    verdicts = [limits.charge("api_token", 3_000) for _ in range(11)]
    assert [v.allowed for v in verdicts] == [True] * 10 + [False]
    assert verdicts[-1].headers["x-daily-requests-left"] == "0"
    assert TokenLimits("premium", seats=3).daily.limit == 30_000 * 5 * 3


def test_oauth_traffic_has_four_times_the_burst_and_no_daily_header():
    limits = TokenLimits("growth")
    verdict = limits.charge("oauth", 10)
    assert verdict.headers["x-ratelimit-limit"] == "160" and "x-daily-requests-left" not in verdict.headers


@pytest.mark.parametrize("setting, status, error", [({"error_rate": 1.0}, 500, "Internal server error"),
                                                     ({"burst_429_every": 1, "burst_429_len": 5}, 429,
                                                      "Request over limit")])
def test_injected_faults_look_like_pipedrives_own_errors(running, setting: dict, status: int, error: str):
    faults = Faults()
    with running(faults=faults) as (client, _):
        assert client.get("/api/v2/deals").status_code == 200
        faults.update(**setting)
        response = [client.get("/api/v2/deals") for _ in range(2)][-1]  # a burst starts after one passing request
    assert response.status_code == status and response.json()["error"] == error
    assert response.json()["success"] is False and response.json()["data"] is None



# -- a generated world ---------------------------------------------------------------------------------------


def test_a_generated_world_is_served_as_of_its_own_date(running):
    world = generate(5, 1500)
    data = world.systems["pipedrive"]
    recently_deleted = sorted(int(d.id) for d in data.deals
                              if d.is_deleted and d.deleted_at and world.as_of - d.deleted_at < timedelta(days=30))
    with running(data=data, as_of=world.as_of) as (client, _):
        deleted = all_deals(client, status="deleted")
        live = all_deals(client, limit=500)
    assert [d["id"] for d in deleted] == recently_deleted
    assert len(live) == sum(not d.is_deleted and not d.merged_into for d in data.deals)


@pytest.mark.parametrize("kind", ["deal", "person", "organization", "note", "activity", "product", "lead"])
def test_v1_field_catalogues_list_keys_names_and_types_paged_by_start(sandbox, kind):
    client, store = sandbox
    body = client.get(f"/v1/{kind}Fields", params={"start": 0, "limit": 5}).json()
    assert body["success"] and len(body["data"]) <= 5
    assert all({"id", "key", "name", "field_type", "active_flag", "edit_flag", "mandatory_flag"} <= f.keys()
               for f in body["data"])
    more = body["additional_data"]
    assert more["pagination"]["more_items_in_collection"] == more["more_items_in_collection"]
    everything = client.get(f"/api/v1/{kind}Fields", params={"limit": 500}).json()["data"]
    if kind == "deal":  # the same catalogue v2 serves, custom fields (hash keys) included
        v2 = client.get("/api/v2/dealFields", params={"limit": 500}).json()["data"]
        assert [f["key"] for f in everything] == [f["field_code"] for f in v2]

"""Pipedrive adapter against respx-mocked HTTP: paging, watermarks, custom fields, auth, writes."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import httpx
import pytest
import respx

from pipesync.adapters.pipedrive import PipedriveAdapter
from pipesync.adapters.watermark import digest
from pipesync.config import Settings, SourceConfig
from pipesync.errors import AuthError
from pipesync.model import Change, ChangeKind, ChangeOutcome, Cursor, FieldChange

BASE = "https://pd.example"
ORIGIN_CODE = "a" * 40
SOURCE_CODE = "b" * 40


def deal(i: int, t: str = "2026-01-01T00:00:00Z", **kw) -> dict:
    return {"id": i, "title": f"Deal {i}", "value": 1500.5, "currency": "EUR", "status": "open", "pipeline_id": 1,
            "stage_id": 3, "owner_id": 7, "org_id": 11, "person_id": 21, "expected_close_date": "2026-03-31",
            "add_time": "2025-12-01T10:00:00Z", "update_time": t, "probability": 40,
            "custom_fields": {SOURCE_CODE: 5}, **kw}


def ok(data, next_cursor=None, **headers):
    return httpx.Response(200, json={"success": True, "data": data, "additional_data": {"next_cursor": next_cursor}},
                          headers={"x-ratelimit-limit": "40", "x-ratelimit-remaining": "39", "x-ratelimit-reset": "2", **headers})


@pytest.fixture
def adapter(monkeypatch):
    monkeypatch.setenv("PD_TOKEN", "secret-token-123")
    src = SourceConfig(name="pd", type="pipedrive",
                       options={"base_url": BASE, "lead_source_field": "Lead source", "page_size": 2},
                       secrets={"api_token": {"env": "PD_TOKEN"}})
    a = PipedriveAdapter(src, Settings())
    a.api.policy.sleep = lambda s: None
    a.api.pacer.sleep = lambda s: None
    yield a
    a.close()


def mock_related(router: respx.Router) -> None:
    router.get(f"{BASE}/api/v2/dealFields").mock(return_value=ok([
        {"field_code": ORIGIN_CODE, "field_name": "pipesync_origin", "field_type": "varchar", "is_custom_field": True},
        {"field_code": SOURCE_CODE, "field_name": "Lead source", "field_type": "enum", "is_custom_field": True,
         "options": [{"id": 5, "label": "Webinar"}]},
    ]))
    router.get(f"{BASE}/api/v1/users").mock(return_value=ok([{"id": 7, "name": "Ana", "email": "ana@x.io"}]))
    router.get(f"{BASE}/api/v2/organizations").mock(return_value=ok([{"id": 11, "name": "Acme", "website": "https://www.acme.com/"}]))
    router.get(f"{BASE}/api/v2/persons").mock(return_value=ok([{"id": 21, "emails": [
        {"value": "b@acme.com", "primary": False}, {"value": "a@acme.com", "primary": True}]}]))


@respx.mock
def test_full_read_pages_all_passes_resolves_related_records_and_completes_the_snapshot(adapter):
    mock_related(respx)
    live = respx.get(f"{BASE}/api/v2/deals", params={"status": "deleted"}).mock(
        return_value=ok([{"id": 9, "update_time": "2026-01-03T00:00:00Z", "is_deleted": True}]))
    pages = iter([ok([deal(1), deal(2, "2026-01-02T00:00:00Z")], next_cursor="c2"), ok([deal(3, "2026-01-02T00:00:00Z")])])
    respx.get(f"{BASE}/api/v2/deals").mock(side_effect=lambda req: next(pages))
    respx.get(f"{BASE}/api/v2/deals/archived").mock(return_value=ok([deal(4, is_archived=True, status="won")]))

    result = list(adapter.read_deals(None))

    deals = [d for p in result for d in p.deals]
    assert [d.source_id for d in deals] == ["1", "2", "3", "4"]
    first = deals[0].values
    assert first["amount"] == Decimal("1500.5") and first["close_date"] == date(2026, 3, 31)
    assert first["status"] == "open" and first["source_stage"] == "3" and first["pipeline"] == "1"
    assert first["owner_email"] == "ana@x.io" and first["account_domain"] == "acme.com"
    assert first["contact_emails"] == ["a@acme.com", "b@acme.com"]
    assert first["lead_source"] == "Webinar" and first["probability"] == 0.4
    assert deals[3].raw["is_archived"] is True
    assert [i for p in result for i in p.deleted_ids] == ["9"]
    assert result[-1].snapshot_complete
    cursor = result[-1].cursor.value
    assert cursor["live"]["stamp"] == "2026-01-02T00:00:00Z" and set(cursor["live"]["seen"]) == {"2", "3"}
    assert live.called


@respx.mock
def test_incremental_read_resumes_at_the_watermark_and_skips_only_unchanged_deals_seen_there(adapter):
    mock_related(respx)
    respx.get(f"{BASE}/api/v2/organizations").mock(return_value=ok([{"id": 11, "name": "Acme"}]))
    respx.get(f"{BASE}/api/v2/persons").mock(return_value=ok([]))
    seen_params = []

    def deals(req):
        seen_params.append(dict(req.url.params))
        if req.url.params.get("status") == "deleted":
            return ok([])
        # Deal 3 was edited again within the watermark's second: same stamp, new content.
        return ok([deal(2, "2026-01-02T00:00:00Z"), deal(3, "2026-01-02T00:00:00Z", title="Edited"),
                   deal(5, "2026-01-02T00:00:00Z"), deal(6, "2026-01-05T00:00:00Z")])

    respx.get(f"{BASE}/api/v2/deals").mock(side_effect=deals)
    respx.get(f"{BASE}/api/v2/deals/archived").mock(return_value=ok([]))
    since = Cursor(value={"live": {"stamp": "2026-01-02T00:00:00Z",
                                   "seen": {"2": digest(deal(2, "2026-01-02T00:00:00Z")),
                                            "3": digest(deal(3, "2026-01-02T00:00:00Z"))}}})

    pages = list(adapter.read_deals(since))

    assert [d.source_id for p in pages for d in p.deals] == ["3", "5", "6"]
    assert seen_params[0]["updated_since"] == "2026-01-02T00:00:00Z"
    assert seen_params[0]["sort_by"] == "update_time"
    assert not pages[-1].snapshot_complete
    # Only the ids the changed deals mention were fetched, not the whole organization list.
    org_call = [c for c in respx.calls if c.request.url.path == "/api/v2/organizations"][0]
    assert org_call.request.url.params["ids"] == "11"


@respx.mock
def test_retries_5xx_and_429_and_never_shows_the_token(adapter):
    mock_related(respx)
    answers = iter([httpx.Response(503), httpx.Response(429, headers={"Retry-After": "0"}), ok([deal(1)])])
    respx.get(f"{BASE}/api/v2/deals").mock(side_effect=lambda req: next(answers) if "status" not in req.url.params else ok([]))
    respx.get(f"{BASE}/api/v2/deals/archived").mock(return_value=ok([]))
    deals = [d for p in adapter.read_deals(Cursor(value={"x": 1})) for d in p.deals]
    assert [d.source_id for d in deals] == ["1"]
    assert all(c.request.headers["x-api-token"] == "secret-token-123" for c in respx.calls)


@respx.mock
def test_a_refused_api_token_is_an_auth_error_without_the_token(adapter):
    respx.get(f"{BASE}/api/v2/dealFields").mock(return_value=httpx.Response(
        401, json={"success": False, "error": "unauthorized access", "errorCode": 401}))
    respx.get(f"{BASE}/api/v2/deals").mock(return_value=httpx.Response(401))
    with pytest.raises(AuthError) as e:
        list(adapter.read_deals(Cursor(value={"x": 1})))
    assert "secret-token-123" not in str(e.value)


@respx.mock
def test_writes_patch_one_deal_per_call_tagged_with_origin_and_refuse_stale_plans(adapter):
    mock_related(respx)
    respx.get(f"{BASE}/api/v2/deals").mock(return_value=ok([deal(1), deal(2)]))
    patch1 = respx.patch(f"{BASE}/api/v2/deals/1").mock(return_value=ok({"id": 1}))
    changes = [
        Change(deal_key="pd:1", kind=ChangeKind.SET_FIELDS, rule="r", reason="x",
               fields=[FieldChange(field="amount", before=Decimal("1500.50"), after=Decimal("99.95")),
                       FieldChange(field="close_date", before=date(2026, 3, 31), after=date(2026, 4, 30))]),
        Change(deal_key="pd:2", kind=ChangeKind.SET_FIELDS, rule="r", reason="x",
               fields=[FieldChange(field="name", before="Something else", after="New")]),
        Change(deal_key="pd:3", kind=ChangeKind.CLOSE_LOST, rule="r", reason="x"),
    ]
    results = adapter.write(changes)
    assert [r.outcome for r in results] == [ChangeOutcome.APPLIED, ChangeOutcome.CONFLICT, ChangeOutcome.CONFLICT]
    body = json.loads(patch1.calls[0].request.content)
    assert body["value"] == 99.95 and body["expected_close_date"] == "2026-04-30"
    assert body["custom_fields"][ORIGIN_CODE].startswith("pipesync ")


@respx.mock
def test_a_create_whose_response_was_lost_is_found_by_its_origin_tag_not_duplicated(adapter):
    mock_related(respx)
    posted = []

    def create(req):
        posted.append(json.loads(req.content))
        return httpx.Response(502)

    respx.post(f"{BASE}/api/v2/deals").mock(side_effect=create)
    respx.get(f"{BASE}/api/v2/deals").mock(side_effect=lambda req: ok([
        {**deal(77), "custom_fields": {ORIGIN_CODE: posted[0]["custom_fields"][ORIGIN_CODE]}}]))
    [result] = adapter.write([Change(deal_key="csv:x", kind=ChangeKind.CREATE, rule="migrate", reason="x",
                                     fields=[FieldChange(field="name", after="O'Brien \\ Co")])])
    assert result.outcome is ChangeOutcome.APPLIED and result.new_source_id == "77"
    assert len(posted) == 1

"""Every response the Pipedrive sandbox sends validates against Pipedrive's own OpenAPI documents.

Successful responses are validated by openapi-core against the operation they
answer (``pipedrive/v2.yaml`` and ``v1.yaml`` in ``$PIPESYNC_VENDOR_SPECS``; the
tests skip, saying how to enable them, without it). Error responses,
which those operations do not document, are checked against the error schemas
the same documents give elsewhere, and must carry every field those declare.

One deliberate loosening, listed in ``SENT_AS_NULL``: the documents mark no
optional deal field nullable, yet Pipedrive sends ``null`` for values that are
not set (an open deal's ``won_time``, a deal without a person's ``person_id``,
the last page's ``next_cursor`` — whose own description says it is null at the
end). Those properties, and only those, accept null; every other schema error fails.

The token costs the sandbox charges (its own ``token_costs.yaml``) are checked against the
``x-token-cost`` the documents declare.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_schema_validator import OAS30Validator
from pipedrive_world import NOW, pipedrive_data
from vendor_specs import pipedrive_spec, requires_pipedrive_specs
from werkzeug.datastructures import Headers, ImmutableMultiDict

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.pipedrive import PipedriveStore, create_app
from pipesync_sandbox.pipedrive.limits import token_costs
from pipesync_sandbox.server import serve

pytestmark = requires_pipedrive_specs

VENDOR_API = "https://api.pipedrive.com"
VENDOR_OAUTH = "https://oauth.pipedrive.com"

SENT_AS_NULL = {
    "v2": {"person_id", "org_id", "stage_change_time", "won_time", "lost_time", "expected_close_date",
           "archive_time", "next_cursor", "first_won_time",
           # an activity's unset fields
           "deal_id", "lead_id", "project_id", "due_date", "due_time", "duration", "marked_as_done_time", "location",
           "conference_meeting_client", "conference_meeting_url", "conference_meeting_id", "public_description",
           "priority", "note"},
    "v1": {"person_id", "org_id", "stage_change_time", "won_time", "first_won_time", "lost_time",
           "expected_close_date", "next_activity_date", "next_activity_time", "label", "person_name", "stage_order_nr",
           "org_name", "owner_name", "next_cursor"},
}

# Error statuses -> the vendor's own schema for that error: (document, method, path, status).
ERROR_SCHEMAS = {
    400: ("v1", "post", "/callLogs", "400"),
    401: ("v1", "get", "/users/me", "401"),
    404: ("v2", "post", "/deals/{id}/convert/lead", "404"),
    # Pipedrive documents no 429 body: it must be the generic error envelope (same fields as the 400's).
    429: ("v1", "post", "/callLogs", "400"),
    500: ("v1", "post", "/callLogs", "500"),
}


def _allow_nulls(schema: Any, names: set[str]) -> None:
    """Mark the ``names`` properties nullable throughout a (copied) document."""
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name in names and isinstance(prop, dict):
                assert "$ref" not in prop, f"{name} is a $ref; mark its target instead"
                prop["nullable"] = True
        for value in schema.values():
            _allow_nulls(value, names)
    elif isinstance(schema, list):
        for value in schema:
            _allow_nulls(value, names)


@pytest.fixture(scope="session")
def documents() -> dict[str, dict[str, Any]]:
    """The vendor's documents as published."""
    return {version: pipedrive_spec(version) for version in ("v1", "v2")}


@pytest.fixture(scope="session")
def openapi(documents) -> dict[str, OpenAPI]:
    validators = {}
    for version, document in documents.items():
        loosened = copy.deepcopy(document)
        _allow_nulls(loosened, SENT_AS_NULL[version])
        validators[version] = OpenAPI(SchemaPath.from_dict(loosened), config=Config(spec_validator_cls=None))
    return validators


class OpenAPIRequest:
    """An httpx request as openapi-core sees it, addressed to the vendor's own servers."""

    def __init__(self, request: httpx.Request):
        path = request.url.path
        self.host_url = VENDOR_OAUTH if path.startswith("/oauth/") else VENDOR_API
        self.path = path.removeprefix("/api") if path.startswith("/api/v1/") else path
        self.method = request.method.lower()
        self.body = request.content or None
        self.content_type = request.headers.get("content-type", "application/json")
        self.parameters = RequestParameters(query=ImmutableMultiDict(parse_qs(request.url.query.decode())),
                                            header=Headers(dict(request.headers)), cookie=ImmutableMultiDict())


class OpenAPIResponse:
    def __init__(self, response: httpx.Response):
        self.data = response.content
        self.status_code = response.status_code
        self.content_type = response.headers.get("content-type", "")
        self.headers = Headers(dict(response.headers))


def document_of(response: httpx.Response) -> str:
    return "v2" if response.request.url.path.startswith("/api/v2/") else "v1"


def assert_conforms(openapi: dict[str, OpenAPI], documents: dict[str, dict[str, Any]],
                    response: httpx.Response) -> None:
    if response.status_code < 400:
        openapi[document_of(response)].validate_response(OpenAPIRequest(response.request), OpenAPIResponse(response))
        return
    version, method, path, status = ERROR_SCHEMAS[response.status_code]
    schema = documents[version]["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
    body = response.json()
    OAS30Validator(schema).validate(body)
    assert set(schema["properties"]) <= set(body), f"{response.status_code} body lacks documented fields"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[httpx.Client, PipedriveStore, Faults]]:
    faults = Faults()
    app, store = create_app(pipedrive_data(40, deleted_days_ago={3: 5}), faults, clock=lambda: NOW)
    store.archive([8])
    with serve(app) as served, httpx.Client(base_url=served.base_url,
                                            headers={"x-api-token": store.credentials.api_token}) as client:
        yield client, store, faults


Call = Callable[[httpx.Client, PipedriveStore], httpx.Response]


def _oauth(client: httpx.Client, store: PipedriveStore) -> httpx.Response:
    return client.post("/oauth/token", auth=(store.credentials.client_id, store.credentials.client_secret),
                       data={"grant_type": "refresh_token", "refresh_token": store.credentials.refresh_token})


def _field_key(client: httpx.Client, name: str) -> str:
    fields = client.get("/api/v2/dealFields").json()["data"]
    return next(f["field_code"] for f in fields if f["field_name"] == name)


SUCCESSES: dict[str, Call] = {
    "v2 deals, first page": lambda c, s: c.get("/api/v2/deals", params={"limit": 5}),
    "v2 deals, last page": lambda c, s: c.get("/api/v2/deals", params={"ids": "1,2"}),
    "v2 deals, every option": lambda c, s: c.get("/api/v2/deals", params={
        "status": "won,lost", "sort_by": "update_time", "sort_direction": "desc", "pipeline_id": 1,
        "updated_since": "2025-01-01T00:00:00Z", "include_fields": "first_won_time,activities_count",
        "custom_fields": _field_key(c, "Lead source"), "include_option_labels": "true"}),
    "v2 deals, deleted": lambda c, s: c.get("/api/v2/deals", params={"status": "deleted"}),
    "v2 archived deals": lambda c, s: c.get("/api/v2/deals/archived"),
    "v2 one deal": lambda c, s: c.get("/api/v2/deals/2"),
    "v2 create deal": lambda c, s: c.post("/api/v2/deals", json={"title": "New deal", "value": 5, "currency": "USD"}),
    "v2 update deal": lambda c, s: c.patch("/api/v2/deals/4", json={"status": "lost", "lost_reason": "Timing",
                                                                   "expected_close_date": "2026-12-31"}),
    "v2 delete deal": lambda c, s: c.delete("/api/v2/deals/5"),
    "v2 pipelines": lambda c, s: c.get("/api/v2/pipelines"),
    "v2 stages": lambda c, s: c.get("/api/v2/stages", params={"pipeline_id": 2, "sort_by": "order_nr"}),
    "v2 organizations": lambda c, s: c.get("/api/v2/organizations", params={"ids": "11,12", "limit": 1}),
    "v2 persons": lambda c, s: c.get("/api/v2/persons", params={"org_id": 12}),
    "v2 deal fields": lambda c, s: c.get("/api/v2/dealFields"),
    "v2 create deal field": lambda c, s: c.post("/api/v2/dealFields", json={
        "field_name": "Segment", "field_type": "enum", "options": [{"label": "SMB"}, {"label": "Enterprise"}]}),
    "v2 create activity": lambda c, s: c.post("/api/v2/activities", json={
        "subject": "Check the amount", "type": "task", "deal_id": 2, "owner_id": s.admin_id, "due_date": "2027-01-15",
        "note": "pipesync"}),
    "v2 activities of a deal": lambda c, s: c.get("/api/v2/activities", params={"deal_id": 2, "limit": 5}),
    "v2 delete activity": lambda c, s: c.delete(f"/api/v2/activities/{s.create_activity({'subject': 'x'}).id}"),
    "v1 users": lambda c, s: c.get("/v1/users"),
    "v1 deal fields": lambda c, s: c.get("/v1/dealFields", params={"limit": 10}),
    "v1 note fields": lambda c, s: c.get("/v1/noteFields"),
    "v1 person fields": lambda c, s: c.get("/api/v1/personFields"),
    "v1 organization fields": lambda c, s: c.get("/v1/organizationFields"),
    "v1 activity fields": lambda c, s: c.get("/v1/activityFields"),
    "v1 deal flow": lambda c, s: c.get("/api/v1/deals/6/flow", params={"limit": 1}),
    "v1 deal changelog": lambda c, s: c.get("/v1/deals/6/changelog", params={"limit": 1}),
    "v1 merge deals": lambda c, s: c.put("/v1/deals/9/merge", json={"merge_with_id": 10}),
    "v1 recents": lambda c, s: c.get("/v1/recents", params={"since_timestamp": "2025-01-01 00:00:00",
                                                            "items": "deal", "limit": 3}),
    "oauth refresh": _oauth,
}

ERRORS: dict[str, tuple[int, Call]] = {
    "bad api token": (401, lambda c, s: c.get("/api/v2/deals", params={"api_token": "nope"})),
    "no credentials on v1": (401, lambda c, s: c.get("/v1/users", headers={"x-api-token": ""})),
    "limit over 500": (400, lambda c, s: c.get("/api/v2/deals", params={"limit": 501})),
    "string for a number": (400, lambda c, s: c.patch("/api/v2/deals/1", json={"value": "10"})),
    "bad since_timestamp": (400, lambda c, s: c.get("/v1/recents", params={"since_timestamp": "yesterday"})),
    "unknown deal": (404, lambda c, s: c.get("/api/v2/deals/999")),
    "unknown activity": (404, lambda c, s: c.delete("/api/v2/activities/999")),
    "flow of an unknown deal": (404, lambda c, s: c.get("/v1/deals/999/flow")),
}


@pytest.mark.parametrize("name", SUCCESSES)
def test_successful_responses_validate_against_the_vendor_documents(name, sandbox, openapi, documents):
    client, store, _ = sandbox
    response = SUCCESSES[name](client, store)
    assert response.status_code == 200, response.text
    assert_conforms(openapi, documents, response)


@pytest.mark.parametrize("name", ERRORS)
def test_error_responses_carry_the_vendor_error_envelope(name, sandbox, openapi, documents):
    client, store, _ = sandbox
    status, call = ERRORS[name]
    response = call(client, store)
    assert response.status_code == status
    assert_conforms(openapi, documents, response)


@pytest.mark.parametrize("setting, status", [({"burst_429_every": 1, "burst_429_len": 1}, 429),
                                             ({"error_rate": 1.0}, 500)])
def test_fault_responses_carry_the_vendor_error_envelope(setting, status, sandbox, openapi, documents):
    client, _, faults = sandbox
    faults.update(**setting)
    try:
        response = [client.get("/api/v2/pipelines") for _ in range(2)][-1]  # a 429 burst starts after one pass
    finally:
        faults.update(burst_429_every=0, burst_429_len=0, error_rate=0.0)
    assert response.status_code == status
    assert_conforms(openapi, documents, response)


def test_a_real_burst_429_carries_the_vendor_error_envelope(openapi, documents):
    app, store = create_app(pipedrive_data(3), plan="lite", clock=lambda: NOW)
    with serve(app) as served, httpx.Client(base_url=served.base_url,
                                            headers={"x-api-token": store.credentials.api_token}) as client:
        response = [client.get("/api/v2/pipelines") for _ in range(21)][-1]
    assert response.status_code == 429
    assert_conforms(openapi, documents, response)


def test_the_checker_rejects_a_response_that_breaks_the_documents(sandbox, openapi, documents):
    client, _, _ = sandbox
    good = client.get("/api/v2/deals/2")
    broken = httpx.Response(200, json={**good.json(), "data": {**good.json()["data"], "value": "2500"}},
                            request=good.request)
    assert_conforms(openapi, documents, good)
    with pytest.raises(Exception, match="not valid"):
        assert_conforms(openapi, documents, broken)


def test_the_sandbox_charges_each_endpoint_the_token_cost_the_vendor_documents_declare(documents):
    costs = token_costs()
    for version in ("v1", "v2"):
        for endpoint, cost in getattr(costs, version).items():
            method, path = endpoint.split(" ")
            assert documents[version]["paths"][path][method.lower()]["x-token-cost"] == cost, (version, endpoint)

"""Every HubSpot sandbox response fits hubspot-api-client's generated models exactly.

The SDK (generated from HubSpot's own OpenAPI specs) is lenient when it
deserializes: it drops unknown keys, coerces primitives with ``str()``/``int()``
and, with its default ``client_side_validation=False``, accepts missing
required fields and out-of-enum values. So each test calls the real SDK method
(which deserializes) while recording the raw JSON it received, then walks that
JSON against the model the SDK chose, strictly: no key the model lacks, every
field its setter requires, primitives of the declared type, enum values from the
setter's ``allowed_values``, datetimes in HubSpot's ISO-8601 ``Z`` form.

Two deliberate, documented departures from the models, because real HubSpot
sends them: ``null`` property values (a requested property that has no value),
and v4 associations' ``toObjectId`` as a JSON number.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from collections.abc import Callable, Iterator
from functools import cache

import pytest
from hubspot import HubSpot
from hubspot.crm.associations import BatchInputPublicObjectId
from hubspot.crm.associations.v4 import BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.deals import (BatchInputSimplePublicObjectBatchInput,
                               BatchInputSimplePublicObjectBatchInputForCreate,
                               BatchInputSimplePublicObjectBatchInputUpsert, BatchReadInputSimplePublicObjectId,
                               PublicMergeInput, PublicObjectSearchRequest, SimplePublicObjectInput,
                               SimplePublicObjectInputForCreate)

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.hubspot.app import create_app
from pipesync_sandbox.hubspot.store import HubSpotStore
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import World

API_CLIENT_MODULES = [
    "hubspot.crm.deals.api_client", "hubspot.crm.pipelines.api_client", "hubspot.crm.owners.api_client",
    "hubspot.crm.associations.api_client", "hubspot.crm.associations.v4.api_client",
    "hubspot.crm.companies.api_client", "hubspot.crm.contacts.api_client", "hubspot.oauth.api_client",
    "hubspot.crm.properties.api_client", "hubspot.crm.objects.tasks.api_client", "hubspot.crm.schemas.api_client",
]
# (model, attribute) pairs where real HubSpot sends a JSON number for a string field.
NUMBER_AS_STRING = {("MultiAssociatedObjectWithLabel", "to_object_id")}
ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
ALL_DEAL_PROPERTIES = [
    "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
    "hs_lastmodifieddate", "hubspot_owner_id", "closed_lost_reason", "hs_next_step", "notes_last_updated",
    "hs_analytics_source", "hs_is_closed", "hs_is_closed_won", "hs_object_id", "hs_merged_object_ids",
    "salesforce_opportunity_id", "pipesync_origin", "not_a_property",
]


@cache
def _rules(klass: type) -> dict[str, tuple[bool, list[str] | None]]:
    """attribute -> (required, allowed values), read from the generated setters' own checks."""
    rules = {}
    for attribute in klass.openapi_types:
        source = inspect.getsource(getattr(klass, attribute).fset)
        required = "must not be `None`" in source
        allowed = re.search(r"allowed_values = (\[.*?\])", source)
        rules[attribute] = (required, ast.literal_eval(allowed.group(1)) if allowed else None)
    return rules


def conformance_problems(data: object, type_name: str, models: object, path: str = "$") -> list[str]:
    """Every way ``data`` (decoded JSON) departs from the SDK type ``type_name``."""
    if type_name.startswith("list["):
        if not isinstance(data, list):
            return [f"{path}: expected a list, got {type(data).__name__}"]
        inner = type_name[5:-1]
        return [p for i, item in enumerate(data) for p in conformance_problems(item, inner, models, f"{path}[{i}]")]
    if type_name.startswith("dict["):
        if not isinstance(data, dict):
            return [f"{path}: expected an object, got {type(data).__name__}"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [p for key, value in data.items() if value is not None
                for p in conformance_problems(value, inner, models, f"{path}.{key}")]
    primitive = {"str": str, "int": int, "float": (int, float), "bool": bool}.get(type_name)
    if primitive is not None:
        wrong_bool = type_name in ("int", "float") and isinstance(data, bool)
        return [] if isinstance(data, primitive) and not wrong_bool else [f"{path}: expected {type_name}, got {data!r}"]
    if type_name == "datetime":
        return [] if isinstance(data, str) and ISO_Z.match(data) else [f"{path}: not an ISO-8601 UTC datetime: {data!r}"]
    if type_name == "object":
        return []
    klass = getattr(models, type_name)
    if not isinstance(data, dict):
        return [f"{path}: expected a {type_name} object, got {type(data).__name__}"]
    by_key = {key: attribute for attribute, key in klass.attribute_map.items()}
    problems = [f"{path}.{key}: not a field of {type_name}" for key in data if key not in by_key]
    for attribute, (required, allowed) in _rules(klass).items():
        key = klass.attribute_map[attribute]
        value = data.get(key)
        if value is None:
            if required:
                problems.append(f"{path}.{key}: required by {type_name} but missing")
            continue
        if allowed is not None and value not in allowed:
            problems.append(f"{path}.{key}: {value!r} is not one of {allowed}")
        declared = klass.openapi_types[attribute]
        if (type_name, attribute) in NUMBER_AS_STRING and isinstance(value, int):
            continue
        problems += conformance_problems(value, declared, models, f"{path}.{key}")
    return problems


@pytest.fixture(scope="module")
def sandbox(small_world: World) -> Iterator[tuple[HubSpot, HubSpotStore, Faults]]:
    faults = Faults(seed=11)
    app, store = create_app(small_world.systems["hubspot"], faults)  # the store copies; the world stays as it was
    with serve(app) as served:
        yield HubSpot(access_token=store.auth.access_token, host=served.base_url), store, faults


@pytest.fixture
def received(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, str, object]]:
    """(models module, response type, decoded JSON) of every response the SDK deserializes."""
    seen: list[tuple[object, str, object]] = []
    for name in API_CLIENT_MODULES:
        client_class = importlib.import_module(name).ApiClient
        models = importlib.import_module(name.rsplit(".", 1)[0] + ".models")

        def recording(self, response, response_type, _original=client_class.deserialize, _models=models):
            seen.append((_models, response_type, json.loads(response.data)))
            return _original(self, response, response_type)

        monkeypatch.setattr(client_class, "deserialize", recording)
    return seen


def _ids(store: HubSpotStore, count: int, **where: object) -> list[str]:
    live = [d for d in store.deals.values() if d.archived_at_ms is None]
    if where.get("with_company"):
        live = [d for d in live if d.company_ids]
    return sorted((d.id for d in live), key=int)[:count]


CALLS: dict[str, Callable[[HubSpot, HubSpotStore], object]] = {
    "list deals with every property, history and associations": lambda c, s: c.crm.deals.basic_api.get_page(
        limit=50, properties=ALL_DEAL_PROPERTIES, properties_with_history=["dealstage", "amount"],
        associations=["companies", "contacts"]),
    "list deals, default properties": lambda c, s: c.crm.deals.basic_api.get_page(limit=100),
    "list archived deals": lambda c, s: c.crm.deals.basic_api.get_page(limit=100, archived=True),
    "get a deal by id": lambda c, s: c.crm.deals.basic_api.get_by_id(
        _ids(s, 1, with_company=True)[0], properties=ALL_DEAL_PROPERTIES, associations=["companies", "contacts"],
        properties_with_history=["dealstage"]),
    "create a deal": lambda c, s: c.crm.deals.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"dealname": "Conformance", "amount": "12.50", "pipeline": s.pipelines[0].id,
                    "dealstage": s.pipelines[0].stages[0].id},
        associations=[{"to": {"id": next(iter(s.companies))},
                       "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 341}]}])),
    "update a deal": lambda c, s: c.crm.deals.basic_api.update(
        _ids(s, 1)[0], SimplePublicObjectInput(properties={"hs_next_step": "send contract", "pipesync_origin": "x"})),
    "merge two deals": lambda c, s: c.crm.deals.basic_api.merge(
        PublicMergeInput(primary_object_id=_ids(s, 2)[0], object_id_to_merge=_ids(s, 2)[1])),
    "search by last modified": lambda c, s: c.crm.deals.search_api.do_search(PublicObjectSearchRequest(
        filter_groups=[{"filters": [{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": "0"}]}],
        sorts=[{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}], properties=ALL_DEAL_PROPERTIES,
        limit=200)),
    "batch read with a missing id (207)": lambda c, s: c.crm.deals.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in _ids(s, 3)] + [{"id": "1"}], properties=ALL_DEAL_PROPERTIES,
        properties_with_history=["dealstage"])),
    "batch create": lambda c, s: c.crm.deals.batch_api.create(BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[{"properties": {"dealname": f"Batch {n}"}, "objectWriteTraceId": f"t{n}"} for n in range(4)])),
    "batch update": lambda c, s: c.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": i, "properties": {"hs_next_step": "call back"}} for i in _ids(s, 4)])),
    "batch upsert": lambda c, s: c.crm.deals.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(
        inputs=[{"id": f"006CONF{n}", "idProperty": "salesforce_opportunity_id", "properties": {"dealname": "Up"}}
                for n in range(3)])),
    "pipelines": lambda c, s: c.crm.pipelines.pipelines_api.get_all("deals"),
    "one pipeline": lambda c, s: c.crm.pipelines.pipelines_api.get_by_id("deals", s.pipelines[-1].id),
    "stages of a pipeline": lambda c, s: c.crm.pipelines.pipeline_stages_api.get_all("deals", s.pipelines[1].id),
    "one stage": lambda c, s: c.crm.pipelines.pipeline_stages_api.get_by_id(
        "deals", s.pipelines[0].id, s.pipelines[0].stages[-1].id),
    "owners page": lambda c, s: c.crm.owners.owners_api.get_page(limit=3),
    "one owner": lambda c, s: c.crm.owners.owners_api.get_by_id(s.owners[0].id),
    "v3 associations to companies": lambda c, s: c.crm.associations.batch_api.read(
        "deals", "companies", BatchInputPublicObjectId(inputs=[{"id": i} for i in _ids(s, 20)])),
    "v4 associations to contacts": lambda c, s: c.crm.associations.v4.batch_api.get_page(
        "deals", "contacts", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in _ids(s, 20)])),
    "companies batch read": lambda c, s: c.crm.companies.batch_api.read(
        {"inputs": [{"id": i} for i in list(s.companies)[:5]], "properties": ["name", "domain"],
         "propertiesWithHistory": []}),
    "contacts batch read": lambda c, s: c.crm.contacts.batch_api.read(
        {"inputs": [{"id": i} for i in list(s.contacts)[:5]], "properties": ["email", "firstname"],
         "propertiesWithHistory": []}),
    "deal properties": lambda c, s: c.crm.properties.core_api.get_all("deals"),
    "company properties": lambda c, s: c.crm.properties.core_api.get_all("companies"),
    "contact properties": lambda c, s: c.crm.properties.core_api.get_all("0-1"),
    "custom object schemas": lambda c, s: c.crm.schemas.core_api.get_all(),
    "create a property group": lambda c, s: c.crm.properties.groups_api.create(
        "deals", {"name": f"conformance_{len(s.property_groups)}", "label": "Conformance"}),
    "create a deal property": lambda c, s: c.crm.properties.core_api.create("deals", {
        "name": f"conformance_flag_{len(s.custom_properties)}", "label": "Flag", "type": "bool",
        "fieldType": "booleancheckbox", "groupName": "dealinformation",
        "options": [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]}),
    "batch create tasks on deals": lambda c, s: c.crm.objects.tasks.batch_api.create({"inputs": [
        {"properties": {"hs_task_subject": "Check", "hs_timestamp": "2027-01-01T00:00:00Z", "hs_task_status": "NOT_STARTED"},
         "associations": [{"to": {"id": i}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                       "associationTypeId": 216}]}]} for i in _ids(s, 2)]}),
    "batch read tasks": lambda c, s: c.crm.objects.tasks.batch_api.read(
        {"inputs": [{"id": t} for t in list(s.tasks)[:3]] or [{"id": "1"}], "properties": ["hs_task_body"],
         "propertiesWithHistory": []}),
    "v4 associations to tasks": lambda c, s: c.crm.associations.v4.batch_api.get_page(
        "deals", "tasks", BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": i} for i in _ids(s, 5)])),
    "oauth refresh": lambda c, s: HubSpot(host=c.config["host"]).oauth.tokens_api.create(
        grant_type="refresh_token", client_id=s.auth.client_id, client_secret=s.auth.client_secret,
        refresh_token=s.auth.refresh_token),
}


@pytest.mark.parametrize("call", CALLS.values(), ids=CALLS.keys())
def test_every_response_fits_the_sdk_models(sandbox, received, call):
    client, store, _ = sandbox
    call(client, store)
    assert received, "the SDK deserialized nothing"
    for models, response_type, data in received:
        assert conformance_problems(data, response_type, models) == []


def test_partial_batch_failures_fit_the_with_errors_models(sandbox, received):
    client, store, faults = sandbox
    faults.update(partial_batch_failure_rate=0.5, seed=5)  # reseeded: the same items fail whatever ran before
    try:
        for name in ("batch create", "batch update", "batch upsert"):
            CALLS[name](client, store)
    finally:
        faults.update(partial_batch_failure_rate=0.0)
    assert {t for _, t, _ in received} == {"BatchResponseSimplePublicObjectWithErrors",
                                           "BatchResponseSimplePublicUpsertObjectWithErrors"}
    for models, response_type, data in received:
        assert data["numErrors"] == len(data["errors"]) > 0
        assert conformance_problems(data, response_type, models) == []


def test_the_sandbox_data_exercises_the_optional_shapes(sandbox, received):
    """The checks above mean something only if the responses carried associations, history and nulls."""
    client, store, _ = sandbox
    page = CALLS["list deals with every property, history and associations"](client, store)
    assert any(d.associations for d in page.results)
    assert all(d.properties_with_history["dealstage"] for d in page.results)
    assert any(v is None for d in page.results for v in d.properties.values())
    assert CALLS["list archived deals"](client, store).results


@pytest.mark.parametrize(("request_for", "status", "category"), [
    (lambda c, s: HubSpot(access_token="pat-na1-wrong", host=c.config["host"]).crm.deals.basic_api.get_page(),
     401, "INVALID_AUTHENTICATION"),
    (lambda c, s: c.crm.deals.basic_api.get_by_id("1"), 404, "OBJECT_NOT_FOUND"),
    (lambda c, s: c.crm.deals.basic_api.get_page(limit=500), 400, "VALIDATION_ERROR"),
    (lambda c, s: c.crm.deals.basic_api.update(_ids(s, 1)[0], SimplePublicObjectInput(properties={"bogus": "1"})),
     400, "VALIDATION_ERROR"),
    (lambda c, s: c.crm.pipelines.pipelines_api.get_by_id("deals", "nope"), 404, "OBJECT_NOT_FOUND"),
])
def test_error_bodies_fit_hubspots_error_model(sandbox, request_for, status, category):
    client, store, _ = sandbox
    with pytest.raises(Exception) as failed:  # each SDK package raises its own ApiException class
        request_for(client, store)
    body = json.loads(failed.value.body)
    assert failed.value.status == status and body["category"] == category
    assert body.pop("status") == "error"  # sent by the real API, absent from the spec's Error model
    models = importlib.import_module("hubspot.crm.deals.models")
    assert conformance_problems(body, "Error", models) == []


def test_the_checker_catches_what_the_sdk_lets_through():
    models = importlib.import_module("hubspot.crm.deals.models")
    good = {"id": "1", "properties": {"a": "1"}, "createdAt": "2025-01-01T00:00:00.000Z",
            "updatedAt": "2025-01-01T00:00:00.000Z", "archived": False}
    assert conformance_problems(good, "SimplePublicObject", models) == []
    assert conformance_problems({**good, "extra": 1}, "SimplePublicObject", models) == [
        "$.extra: not a field of SimplePublicObject"]
    assert conformance_problems({k: v for k, v in good.items() if k != "updatedAt"}, "SimplePublicObject", models) == [
        "$.updatedAt: required by SimplePublicObject but missing"]
    assert conformance_problems({**good, "properties": {"a": 1}}, "SimplePublicObject", models) == [
        "$.properties.a: expected str, got 1"]
    assert conformance_problems({**good, "createdAt": "2025-01-01 00:00"}, "SimplePublicObject", models) == [
        "$.createdAt: not an ISO-8601 UTC datetime: '2025-01-01 00:00'"]
    batch = {"status": "DONE", "results": [], "startedAt": good["createdAt"], "completedAt": good["createdAt"]}
    assert conformance_problems(batch, "BatchResponseSimplePublicObject", models) == [
        "$.status: 'DONE' is not one of ['PENDING', 'PROCESSING', 'CANCELED', 'COMPLETE']"]

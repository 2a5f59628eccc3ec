"""A local HubSpot: the CRM v3/v4 endpoints a deals adapter uses, faithful enough for ``hubspot-api-client``.

``create_app(data)`` returns an ASGI app and its :class:`HubSpotStore`. Point
the real SDK at it with ``HubSpot(access_token=store.auth.access_token,
host=served.base_url)``; every response deserializes into the SDK's generated
models (tests/sandbox/test_hubspot_conformance.py checks them field by field).

Served: deals list/get/create/update/archive/merge (``/crm/v3/objects/deals``
and ``/0-3``), search, batch read/create/update/upsert/archive, deal properties
(list, create, create a property group) with custom properties on deals, tasks
(batch create/read/archive, associated with deals), pipelines and
stages, owners, deal→company/contact/task associations (v3 and v4 batch read),
company and contact batch read, and the OAuth refresh flow. Every response
past authentication carries HubSpot's ``X-HubSpot-RateLimit-*`` headers; the
ten-second window (by tier), the daily budget and search's own 5 requests per
second answer 429 with HubSpot's body. Vendor facts and their evidence:
shared/reference/crm-api-facts.md §2.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipesync_sandbox.faults import ASGIApp, FaultMiddleware, Faults
from pipesync_sandbox.hubspot.auth import Caller, HubSpotAuth, OAuthError, TokenExpired, TokenKind
from pipesync_sandbox.hubspot.search import SearchError, parse_search, run_search
from pipesync_sandbox.hubspot.store import (ALWAYS_RETURNED, DEFAULT_DEAL_PROPERTIES, PROPERTY_TYPES, TASK_PROPERTIES,
                                            TASK_STATUSES, UNIQUE_PROPERTIES, HubDeal, HubRecord, HubSpotStore, HubTask,
                                            PropertyDef, PropertyError, iso_ms, parse_time_ms)
from pipesync_sandbox.ratelimit import DailyBudget, RollingWindow
from pipesync_sandbox.world import SystemData

# Requests per ten seconds and per day (crm-api-facts.md §2.8).
TIERS: dict[str, tuple[int, int]] = {
    "free": (100, 250_000),
    "starter": (100, 250_000),
    "professional": (190, 625_000),
    "enterprise": (190, 1_000_000),
    "api_limit_increase": (250, 2_000_000),  # enterprise with one API limit increase
}
TEN_SECONDS = 10.0
SEARCH_PER_SECOND = 5
PAGE_MAX = 100
PAGE_MAX_WITH_HISTORY = 50
DEFAULT_PAGE = 10
BATCH_MAX = 100
OWNERS_PAGE_MAX = 500

OBJECT_TYPES = {"deals": "deals", "deal": "deals", "0-3": "deals",
                "companies": "companies", "company": "companies", "0-2": "companies",
                "contacts": "contacts", "contact": "contacts", "0-1": "contacts",
                "tasks": "tasks", "task": "tasks", "0-27": "tasks"}
RECORD_PROPERTIES = {
    "companies": frozenset({"name", "domain", "website", "country", "createdate", "hs_lastmodifieddate", "hs_object_id"}),
    "contacts": frozenset({"firstname", "lastname", "email", "associatedcompanyid", "createdate", "lastmodifieddate",
                           "hs_object_id"}),
}
DEFAULT_RECORD_PROPERTIES = {
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
}
_DEFAULT_SHOWN = tuple(dict.fromkeys([*DEFAULT_DEAL_PROPERTIES, *ALWAYS_RETURNED]))
# v3 association type names and v4 (typeId, label) for deal→company/contact (hubspot/crm/association_type.py).
V3_TYPES = {"companies": ("deal_to_company", "deal_to_company_unlabeled"), "contacts": ("deal_to_contact",),
            "tasks": ("deal_to_task",)}
V4_TYPES = {"companies": ((5, "Primary"), (341, None)), "contacts": ((3, None),), "tasks": ((216, None),)}
TASK_TO_DEAL = 216  # the association type a task is created with to land on a deal
_PROPERTY_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def create_app(data: SystemData, faults: Faults | None = None, *, tier: str = "professional",
               access_token: str | None = None, search_lag_s: float = 0.0, daily_limit: int | None = None,
               clock: Callable[[], float] = time.time) -> tuple[ASGIApp, HubSpotStore]:
    """The HubSpot sandbox app over ``data`` and the store it serves (credentials in ``store.auth``).

    ``tier`` sets the ten-second and daily limits (:data:`TIERS`); ``daily_limit`` overrides the daily one, to
    run a portal out of quota. ``search_lag_s`` delays writes becoming searchable. ``clock`` (epoch seconds)
    dates writes and drives the search lag.
    """
    if tier not in TIERS:
        raise ValueError(f"unknown HubSpot tier {tier!r}; choose one of {', '.join(TIERS)}")
    faults = faults or Faults()
    store = HubSpotStore(data, search_lag_s=search_lag_s, clock=clock)
    store.auth = HubSpotAuth(faults, access_token=access_token, clock=clock)
    api = _HubSpotApi(store, faults, TIERS[tier][0], daily_limit or TIERS[tier][1])
    return FaultMiddleware(api.app, faults, api), store


@dataclass(frozen=True, slots=True)
class _Limits:
    ten_secondly: RollingWindow
    search: RollingWindow
    daily: DailyBudget


def _record_property(kind: str, name: str) -> PropertyDef:
    """A company or contact property's definition: HubSpot-defined, times and ids read-only."""
    stamped = name in ("createdate", "hs_lastmodifieddate", "lastmodifieddate")
    type_, field_type = ("datetime", "date") if stamped else ("number", "number") if name in (
        "hs_object_id", "associatedcompanyid") else ("string", "text")
    return PropertyDef(name, name.replace("_", " ").capitalize(), type_, field_type,
                       "companyinformation" if kind == "companies" else "contactinformation", [], 0, True,
                       read_only=stamped or name == "hs_object_id", unique=name == "hs_object_id")


def _correlation_id() -> str:
    return str(uuid.uuid4())


def _json(body: object, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status,
                    media_type="application/json;charset=utf-8")


def _error_body(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """HubSpot's generic error body (``status`` is sent by the real API though absent from the spec's Error)."""
    return {"status": "error", "message": message, "correlationId": _correlation_id(), "category": category, **extra}


def _error(status: int, category: str, message: str, **extra: Any) -> Response:
    return _json(_error_body(category, message, **extra), status)


class _Refused(Exception):
    """Raised by a handler to answer with HubSpot's error body (400 VALIDATION_ERROR unless told otherwise)."""

    def __init__(self, message: str, status: int = 400, category: str = "VALIDATION_ERROR", **extra: Any):
        super().__init__(message)
        self.response = _error(status, category, message, **extra)


def _property_errors(problems: list[PropertyError]) -> _Refused:
    # HubSpot embeds the per-property validation results, JSON-encoded, in the message.
    detail = [{"isValid": False, "message": p.message, "error": p.error, "name": p.name,
               "localizedErrorMessage": p.message} for p in problems]
    return _Refused(f"Property values were not valid: {json.dumps(detail)}",
                    errors=[{"message": p.message, "code": p.error, "context": {"propertyName": [p.name]}}
                             for p in problems])


def _encode_after(deal_id: int) -> str:
    # HubSpot's list cursors are opaque: base64 of the next id and a newline ("NTI1Cg==" for 525).
    return base64.b64encode(f"{deal_id}\n".encode()).decode()


def _decode_after(after: str) -> int:
    text = unquote(unquote(after))
    try:
        return int(base64.b64decode(text, validate=True).decode().strip())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        if text.isdigit():  # numeric cursors, as some HubSpot endpoints hand out, are accepted too
            return int(text)
        raise _Refused(f"Invalid paging cursor 'after': {after[:40]}") from None


def _list_param(request: Request, name: str) -> list[str] | None:
    """A list query parameter, repeated (``?p=a&p=b``, as the SDK sends it) or comma-separated."""
    raw = request.query_params.getlist(name)
    if not raw:
        return None
    return [item.strip() for value in raw for item in value.split(",") if item.strip()]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


def _int_param(request: Request, name: str, default: int, maximum: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Refused(f"{name} must be an integer, got {raw[:20]!r}") from None
    if not 1 <= value <= maximum:
        raise _Refused(f"{name} must be between 1 and {maximum}, got {value}")
    return value


class _HubSpotApi:
    """Routes, authentication, rate limits and response shapes around one :class:`HubSpotStore`."""

    def __init__(self, store: HubSpotStore, faults: Faults, per_ten_seconds: int, per_day: int):
        self.store = store
        self.faults = faults
        self.auth: HubSpotAuth = store.auth
        scale = lambda: faults.time_scale  # noqa: E731 — follows runtime changes
        self.limits = _Limits(RollingWindow(per_ten_seconds, TEN_SECONDS, scale),
                              RollingWindow(SEARCH_PER_SECOND, 1.0, scale),
                              DailyBudget(per_day, time_scale=scale))
        g = self._guarded
        self.app = Starlette(routes=[
            Route("/oauth/v1/token", self.token, methods=["POST"]),
            Route("/crm/v3/objects/{object_type}", g(self.list_deals), methods=["GET"]),
            Route("/crm/v3/objects/{object_type}", g(self.create_deal), methods=["POST"]),
            Route("/crm/v3/objects/{object_type}/search", g(self.search, search=True), methods=["POST"]),
            Route("/crm/v3/objects/{object_type}/merge", g(self.merge), methods=["POST"]),
            Route("/crm/v3/objects/{object_type}/batch/{action}", g(self.batch), methods=["POST"]),
            Route("/crm/v3/objects/{object_type}/{object_id}", g(self.get_deal), methods=["GET"]),
            Route("/crm/v3/objects/{object_type}/{object_id}", g(self.update_deal), methods=["PATCH"]),
            Route("/crm/v3/objects/{object_type}/{object_id}", g(self.archive_deal), methods=["DELETE"]),
            Route("/crm/v3/properties/{object_type}", g(self.list_properties), methods=["GET"]),
            # the documented path, and the one hubspot-api-client calls
            Route("/crm/v3/schemas", g(self.schemas), methods=["GET"]),
            Route("/crm-object-schemas/v3/schemas", g(self.schemas), methods=["GET"]),
            Route("/crm/v3/properties/{object_type}", g(self.create_property), methods=["POST"]),
            Route("/crm/v3/properties/{object_type}/groups", g(self.create_property_group), methods=["POST"]),
            Route("/crm/v3/pipelines/{object_type}", g(self.pipelines), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}/{pipeline_id}", g(self.pipeline), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages", g(self.stages), methods=["GET"]),
            Route("/crm/v3/pipelines/{object_type}/{pipeline_id}/stages/{stage_id}", g(self.stage), methods=["GET"]),
            Route("/crm/v3/owners", g(self.owners), methods=["GET"]),
            Route("/crm/v3/owners/", g(self.owners), methods=["GET"]),
            Route("/crm/v3/owners/{owner_id}", g(self.owner), methods=["GET"]),
            Route("/crm/v3/associations/{from_type}/{to_type}/batch/read", g(self.associations_v3), methods=["POST"]),
            Route("/crm/v4/associations/{from_type}/{to_type}/batch/read", g(self.associations_v4), methods=["POST"]),
        ], exception_handlers={404: self._not_found, 405: self._not_found, Exception: self._crashed})

    # ----- fault renderer (FaultMiddleware) ------------------------------------------------------

    def server_error(self) -> Response:
        return _error(500, "INTERNAL_ERROR", "Internal error, reference " + _correlation_id())

    def too_many_requests(self, retry_after_s: float | None) -> Response:
        # No Retry-After: HubSpot is not known to send one; clients pace by the X-HubSpot-RateLimit headers.
        return self._rate_limited("TEN_SECONDLY_ROLLING", None, self.limits.ten_secondly, 0)

    # ----- plumbing --------------------------------------------------------------------------

    async def _crashed(self, request: Request, exc: Exception) -> Response:
        return self.server_error()

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _error(404, "OBJECT_NOT_FOUND", f"No resource found at {request.method} {request.url.path}")

    def _guarded(self, handler: Callable[..., Awaitable[Response]], *, search: bool = False):
        """Authenticate, charge the rate limits, call ``handler(request)``, add the rate-limit headers."""

        async def endpoint(request: Request) -> Response:
            try:
                caller = self.auth.check(request.headers.get("authorization"))
            except TokenExpired as expired:
                return _error(401, "EXPIRED_AUTHENTICATION",
                              f"The OAuth token used to make this call expired {expired.seconds_ago} second(s) ago.",
                              context={"expire time": [iso_ms(expired.expired_at_ms)]})
            if caller is None:
                return _error(401, "INVALID_AUTHENTICATION",
                              "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                              "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview")
            window = self.limits.search if search else self.limits.ten_secondly
            burst = window.try_acquire()
            if not burst.allowed:
                return self._rate_limited("SECONDLY" if search else "TEN_SECONDLY_ROLLING", caller, window, 0)
            if not self.limits.daily.try_acquire().allowed:
                return self._rate_limited("DAILY", caller, window, burst.remaining)
            try:
                response = await handler(request)
            except _Refused as bad:
                response = bad.response
            response.headers.update(self._rate_headers(caller, window, burst.remaining))
            return response

        return endpoint

    def _rate_headers(self, caller: Caller | None, window: RollingWindow, remaining: int) -> dict[str, str]:
        headers = {
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(window.interval_s * 1000)),
            "X-HubSpot-RateLimit-Max": str(window.limit),
            "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
        }
        # The daily pair is per account and not reported to OAuth apps.
        if caller is None or caller.kind is TokenKind.PRIVATE_APP:
            daily = self.limits.daily
            headers["X-HubSpot-RateLimit-Daily"] = str(daily.limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(daily.limit - daily.used, 0))
        return headers

    def _rate_limited(self, policy: str, caller: Caller | None, window: RollingWindow, remaining: int) -> Response:
        message = "You have reached your daily limit." if policy == "DAILY" else \
            f"You have reached your {policy.lower()} limit."
        body = {"status": "error", "message": message, "errorType": "RATE_LIMIT", "correlationId": _correlation_id(),
                "policyName": policy, "requestId": _correlation_id()}
        response = _json(body, 429)
        response.headers.update(self._rate_headers(caller, window, remaining))
        return response

    async def _body(self, request: Request) -> dict[str, Any]:
        """The request's JSON object (HubSpot's request bodies are all objects)."""
        raw = await request.body()
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise _Refused(f"Invalid input JSON on line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        if not isinstance(body, dict):
            raise _Refused("Invalid input JSON: expected an object")
        return body

    def _deal_type(self, request: Request) -> None:
        kind = OBJECT_TYPES.get(request.path_params["object_type"])
        if kind != "deals":
            raise _Refused(f"Unable to infer object type from: {request.path_params['object_type']}")

    def _pipeline_type(self, request: Request) -> None:
        if OBJECT_TYPES.get(request.path_params["object_type"]) != "deals":
            raise _Refused(f"The sandbox holds deal pipelines only, not {request.path_params['object_type']!r}",
                           status=404, category="OBJECT_NOT_FOUND")

    # ----- deal shapes -----------------------------------------------------------------------

    def _deal_json(self, deal: HubDeal, names: tuple[str, ...],
                   with_history: Iterable[str] | None = None, associations: Iterable[str] | None = None) -> dict:
        """A SimplePublicObject(WithAssociations); ``names`` comes from :meth:`_shown_names`."""
        props, times = deal.props, deal.times
        shown = {}
        for name in names:  # deal.get() inlined: this loop is most of the time to serve a page
            ms = times.get(name)
            shown[name] = props.get(name) if ms is None else iso_ms(ms)
        body: dict[str, Any] = {"id": deal.id, "properties": shown,
                                "createdAt": shown["createdate"], "updatedAt": shown["hs_lastmodifieddate"],
                                "archived": deal.archived_at_ms is not None}
        if deal.archived_at_ms is not None:
            body["archivedAt"] = iso_ms(deal.archived_at_ms)
        if with_history:
            known = self.store.is_known_property
            body["propertiesWithHistory"] = {name: self._history(deal, name) for name in with_history if known(name)}
        if associations:
            linked = {}
            for to_type in associations:
                results = self._v3_associations(deal, OBJECT_TYPES.get(to_type, ""))
                if results:
                    linked[to_type] = {"results": results}
            if linked:
                body["associations"] = linked
        return body

    def _shown_names(self, properties: Iterable[str] | None) -> tuple[str, ...]:
        """The properties a response shows: those requested that exist, and the ones HubSpot always adds."""
        if not properties:
            return _DEFAULT_SHOWN
        known = self.store.is_known_property
        return tuple(dict.fromkeys([*(n for n in properties if known(n)), *ALWAYS_RETURNED]))

    @staticmethod
    def _history(deal: HubDeal, name: str) -> list[dict[str, str]]:
        entries = deal.history.get(name)
        if entries is None:  # never written since the seed: the current value, from creation
            value = deal.get(name)
            return [] if value is None else [{"value": value, "timestamp": iso_ms(deal.created_ms), "sourceType": "CRM_UI"}]
        # Newest first, as HubSpot lists property versions.
        return [{"value": e.value, "timestamp": iso_ms(e.at_ms), "sourceType": e.source_type} for e in reversed(entries)]

    @staticmethod
    def _v3_associations(deal: HubDeal, to_kind: str) -> list[dict[str, str]]:
        if to_kind == "companies":
            return [{"id": cid, "type": t} for cid in deal.company_ids for t in V3_TYPES["companies"]]
        if to_kind == "contacts":
            return [{"id": cid, "type": "deal_to_contact"} for cid in deal.contact_ids]
        return []

    # ----- deals -----------------------------------------------------------------------------

    async def list_deals(self, request: Request) -> Response:
        self._deal_type(request)
        with_history = _list_param(request, "propertiesWithHistory")
        limit = _int_param(request, "limit", DEFAULT_PAGE, PAGE_MAX_WITH_HISTORY if with_history else PAGE_MAX)
        after = request.query_params.get("after")
        start = _decode_after(after) if after else None
        properties = _list_param(request, "properties")
        associations = _list_param(request, "associations")
        page, next_id = self.store.page(start, limit, archived=_flag(request, "archived"))
        names = self._shown_names(properties)
        body: dict[str, Any] = {"results": [self._deal_json(d, names, with_history, associations) for d in page]}
        if next_id is not None:
            cursor = _encode_after(next_id)
            body["paging"] = {"next": {"after": cursor, "link": str(request.url.include_query_params(after=cursor))}}
        return _json(body)

    def _find(self, request: Request, deal_id: str, *, archived: bool = False) -> HubDeal:
        id_property = request.query_params.get("idProperty")
        deal = self._by_property(id_property, deal_id) if id_property else self.store.resolve(deal_id)
        if deal is None or (deal.archived_at_ms is not None) != archived:
            raise _Refused("Object not found.  objectId are usually numeric.", status=404,
                           category="OBJECT_NOT_FOUND", context={"id": [deal_id]})
        return deal

    def _by_property(self, id_property: str, value: str) -> HubDeal | None:
        if id_property not in UNIQUE_PROPERTIES:
            raise _Refused(f"{id_property} is not a unique identifier property for deals.")
        return self.store.find_by(id_property, value)

    async def get_deal(self, request: Request) -> Response:
        self._deal_type(request)
        deal = self._find(request, request.path_params["object_id"], archived=_flag(request, "archived"))
        return _json(self._deal_json(deal, self._shown_names(_list_param(request, "properties")),
                                     _list_param(request, "propertiesWithHistory"), _list_param(request, "associations")))

    async def create_deal(self, request: Request) -> Response:
        self._deal_type(request)
        body = await self._body(request)
        deal = self.store.create(*self._checked_create(body))
        return _json(self._deal_json(deal, self._shown_names(body.get("properties"))), 201)

    def _checked_create(self, item: dict) -> tuple[dict, list[str], list[str]]:
        """A create input's (properties, company ids, contact ids), or the 400 HubSpot answers for it."""
        properties = item.get("properties") or {}
        problems = self.store.validate(properties, None)
        if problems:
            raise _property_errors(problems)
        companies, contacts = [], []
        for link in item.get("associations") or []:
            to_id = str((link.get("to") or {}).get("id", ""))
            type_ids = {t.get("associationTypeId") for t in link.get("types") or []}
            if type_ids & {5, 341} and to_id in self.store.companies:
                companies.append(to_id)
            elif 3 in type_ids and to_id in self.store.contacts:
                contacts.append(to_id)
            else:
                raise _Refused(f"Invalid association: to {to_id!r} with types {sorted(map(str, type_ids))}")
        return properties, companies, contacts

    async def update_deal(self, request: Request) -> Response:
        self._deal_type(request)
        deal = self._find(request, request.path_params["object_id"])
        body = await self._body(request)
        properties = body.get("properties") or {}
        problems = self.store.validate(properties, deal)
        if problems:
            raise _property_errors(problems)
        self.store.update(deal, properties)
        return _json(self._deal_json(deal, self._shown_names(properties)))

    async def archive_deal(self, request: Request) -> Response:
        self._deal_type(request)
        deal = self.store.resolve(request.path_params["object_id"])
        if deal is not None:
            self.store.archive(deal)
        return Response(status_code=204)

    async def merge(self, request: Request) -> Response:
        self._deal_type(request)
        body = await self._body(request)
        primary_id, other_id = str(body.get("primaryObjectId", "")), str(body.get("objectIdToMerge", ""))
        if not primary_id or not other_id:
            raise _Refused("primaryObjectId and objectIdToMerge are required.")
        primary, other = self.store.resolve(primary_id), self.store.resolve(other_id)
        for wanted, found in ((primary_id, primary), (other_id, other)):
            if found is None or found.archived_at_ms is not None:
                raise _Refused(f"Object {wanted} not found.", status=404, category="OBJECT_NOT_FOUND",
                               context={"id": [wanted]})
        if primary is other:
            raise _Refused("Cannot merge an object with itself.")
        survivor = self.store.merge(primary, other)
        return _json(self._deal_json(survivor, _DEFAULT_SHOWN))

    async def search(self, request: Request) -> Response:
        self._deal_type(request)
        try:
            query = parse_search(await self._body(request), self.store)
        except SearchError as exc:
            raise _Refused(str(exc)) from None
        total, page, next_offset = run_search(query, self.store.searchable(query.modified_range))
        names = self._shown_names(query.properties)
        body: dict[str, Any] = {"total": total, "results": [self._deal_json(d, names) for d in page]}
        if next_offset is not None:
            body["paging"] = {"next": {"after": str(next_offset)}}  # search pages by offset, with no link
        return _json(body)

    # ----- batch -----------------------------------------------------------------------------

    async def batch(self, request: Request) -> Response:
        action = request.path_params["action"]
        kind = OBJECT_TYPES.get(request.path_params["object_type"])
        if kind in ("companies", "contacts") and action == "read":
            return await self._batch_read_records(request, kind)
        if kind == "tasks":
            return await self._task_batch(request, action)
        self._deal_type(request)
        handler = {"read": self._batch_read, "create": self._batch_create, "update": self._batch_update,
                   "upsert": self._batch_upsert, "archive": self._batch_archive}.get(action)
        if handler is None:
            raise _Refused(f"Unknown batch action {action!r}", status=404, category="OBJECT_NOT_FOUND")
        body = await self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list):
            raise _Refused("Batch input must be an object with an 'inputs' list.")
        if len(inputs) > BATCH_MAX:
            raise _Refused(f"Batch input is limited to {BATCH_MAX} inputs, got {len(inputs)}.",
                           context={"inputs": [str(len(inputs))]})
        return await handler(request, body, inputs)

    # ----- tasks -----------------------------------------------------------------------------

    async def _task_batch(self, request: Request, action: str) -> Response:
        body = await self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > BATCH_MAX:
            raise _Refused(f"Batch input must hold an 'inputs' list of at most {BATCH_MAX} items.")
        started = self._now()
        if action == "create":
            checked = [self._checked_task(item) for item in inputs]  # one invalid input refuses the whole batch
            results, errors = [], []
            for properties, deal_ids in checked:
                if self.faults.batch_item_fails():
                    errors.append(self._injected_failure({}))
                    continue
                results.append(self._task_json(self.store.create_task(properties, deal_ids), properties))
            return self._batch_response(results, errors, started, ok_status=201)
        if action == "read":
            names = body.get("properties") or ["hs_task_subject", "hs_task_status", "hs_timestamp"]
            found, missing = [], []
            for item in inputs:
                task = self.store.tasks.get(str(item.get("id", "")))
                (missing.append(str(item.get("id", ""))) if task is None or task.archived
                 else found.append(self._task_json(task, names)))
            errors = [self._item_error("OBJECT_NOT_FOUND", "Could not get some TASK objects, they may be deleted or "
                                       "not exist. Check that ids are valid.", {"ids": missing})] if missing else []
            return self._batch_response(found, errors, started)
        if action == "archive":
            for item in inputs:
                task = self.store.tasks.get(str(item.get("id", "")))
                if task is not None:
                    self.store.archive_task(task)
            return Response(status_code=204)
        raise _Refused(f"Unknown batch action {action!r}", status=404, category="OBJECT_NOT_FOUND")

    def _checked_task(self, item: dict) -> tuple[dict[str, str], list[str]]:
        properties = {k: "" if v is None else str(v) for k, v in (item.get("properties") or {}).items()}
        problems = [PropertyError(n, "PROPERTY_DOESNT_EXIST", f'Property "{n}" does not exist')
                    for n in properties if n not in TASK_PROPERTIES]
        if parse_time_ms(properties.get("hs_timestamp", "")) is None:
            problems.append(PropertyError("hs_timestamp", "REQUIRED", "hs_timestamp is required and must be a date"))
        if properties.get("hs_task_status", "NOT_STARTED") not in TASK_STATUSES:
            problems.append(PropertyError("hs_task_status", "INVALID_OPTION",
                                          f"{properties['hs_task_status']} was not one of the allowed options"))
        if properties.get("hubspot_owner_id") and properties["hubspot_owner_id"] not in {o.id for o in self.store.owners}:
            problems.append(PropertyError("hubspot_owner_id", "INVALID_OWNER_ID",
                                          f"{properties['hubspot_owner_id']} is not a valid owner id"))
        if problems:
            raise _property_errors(problems)
        deal_ids = []
        for link in item.get("associations") or []:
            to_id = str((link.get("to") or {}).get("id", ""))
            type_ids = {t.get("associationTypeId") for t in link.get("types") or []}
            deal = self.store.resolve(to_id)
            if TASK_TO_DEAL not in type_ids or deal is None or deal.archived_at_ms is not None:
                raise _Refused(f"Invalid association: to {to_id!r} with types {sorted(map(str, type_ids))}")
            deal_ids.append(deal.id)
        return properties, deal_ids

    @staticmethod
    def _task_json(task: HubTask, names: Iterable[str]) -> dict:
        created, updated = iso_ms(task.created_ms), iso_ms(task.updated_ms)
        shown = {n: task.props.get(n) for n in names if n in TASK_PROPERTIES}
        shown.update(hs_createdate=created, hs_lastmodifieddate=updated, hs_object_id=task.id)
        return {"id": task.id, "properties": shown, "createdAt": created, "updatedAt": updated, "archived": False}

    # ----- properties ------------------------------------------------------------------------

    def _property_json(self, p: PropertyDef) -> dict:
        stamp = iso_ms(p.created_ms)
        return {"name": p.name, "label": p.label, "type": p.type, "fieldType": p.field_type, "description": "",
                "groupName": p.group, "options": p.options, "displayOrder": -1, "calculated": p.read_only and
                p.hubspot_defined, "externalOptions": False, "hasUniqueValue": p.unique, "hidden": False,
                "hubspotDefined": p.hubspot_defined, "formField": not p.read_only, "createdAt": stamp,
                "updatedAt": stamp, "archived": False,
                "modificationMetadata": {"archivable": not p.hubspot_defined, "readOnlyDefinition": p.hubspot_defined,
                                         "readOnlyValue": p.read_only}}

    async def list_properties(self, request: Request) -> Response:
        kind = OBJECT_TYPES.get(request.path_params["object_type"])
        if kind in RECORD_PROPERTIES:  # companies and contacts: their standard properties
            return _json({"results": [self._property_json(_record_property(kind, name))
                                      for name in sorted(RECORD_PROPERTIES[kind])]})
        self._deal_type(request)
        return _json({"results": [self._property_json(p) for p in self.store.properties()]})

    async def schemas(self, request: Request) -> Response:
        # Custom object schemas: the sandbox's portal has none (standard objects are not listed here).
        return _json({"results": []})

    async def create_property(self, request: Request) -> Response:
        self._deal_type(request)
        body = await self._body(request)
        name, label = str(body.get("name") or ""), str(body.get("label") or "")
        type_, field_type, group = body.get("type"), body.get("fieldType"), str(body.get("groupName") or "")
        if not _PROPERTY_NAME.match(name):
            raise _Refused(f"Property name {name!r} must start with a lower-case letter and hold only lower-case "
                           f"letters, digits and underscores.")
        if not label or not group:
            raise _Refused("label and groupName are required.")
        if type_ not in PROPERTY_TYPES or field_type not in PROPERTY_TYPES[type_]:
            raise _Refused(f"{type_}/{field_type} is not a valid type and fieldType combination.")
        if group not in self.store.property_groups:
            raise _Refused(f"Property group {group!r} does not exist.", status=400)
        if self.store.is_known_property(name) or name == "pipesync_origin":
            raise _Refused(f"A property named '{name}' already exists.", status=409, category="OBJECT_ALREADY_EXISTS")
        options = body.get("options") or []
        if type_ in ("bool", "enumeration") and not options:
            raise _Refused("Options are required for enumeration and bool properties.")
        options = [{"label": str(o.get("label")), "value": str(o.get("value")), "displayOrder": n,
                    "hidden": False} for n, o in enumerate(options)]
        created = self.store.add_property(PropertyDef(name, label, type_, field_type, group, options,
                                                      int(self.store.clock() * 1000), False))
        return _json(self._property_json(created), 201)

    async def create_property_group(self, request: Request) -> Response:
        self._deal_type(request)
        body = await self._body(request)
        name, label = str(body.get("name") or ""), str(body.get("label") or "")
        if not _PROPERTY_NAME.match(name) or not label:
            raise _Refused("A property group needs a name (lower-case letters, digits, underscores) and a label.")
        if name in self.store.property_groups:
            raise _Refused(f"A property group named '{name}' already exists.", status=409,
                           category="OBJECT_ALREADY_EXISTS")
        self.store.property_groups[name] = label
        return _json({"name": name, "label": label, "displayOrder": -1, "archived": False}, 201)

    def _now(self) -> str:
        return iso_ms(int(self.store.clock() * 1000))

    def _batch_response(self, results: list[dict], errors: list[dict], started: str, ok_status: int = 200) -> Response:
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": self._now()}
        if errors:
            body["numErrors"] = len(errors)
            body["errors"] = errors
        return _json(body, 207 if errors else ok_status)

    @staticmethod
    def _item_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
        return {"status": "error", "category": category, "message": message, "context": context,
                "errors": [], "links": {}}

    def _injected_failure(self, context: dict[str, list[str]]) -> dict[str, Any]:
        return self._item_error("INTERNAL_ERROR", "This input could not be processed; retry it.", context)

    async def _batch_read(self, request: Request, body: dict, inputs: list) -> Response:
        started = self._now()
        archived = _flag(request, "archived")
        id_property = body.get("idProperty")
        names, with_history = self._shown_names(body.get("properties")), body.get("propertiesWithHistory") or None
        if with_history and len(inputs) > PAGE_MAX_WITH_HISTORY:
            raise _Refused(f"Batch reads with propertiesWithHistory are limited to {PAGE_MAX_WITH_HISTORY} inputs, "
                           f"got {len(inputs)}.")
        results, missing = [], []
        for item in inputs:
            wanted = str(item.get("id", ""))
            deal = self._by_property(id_property, wanted) if id_property else self.store.resolve(wanted)
            if deal is None or (deal.archived_at_ms is not None) != archived:
                missing.append(wanted)
            else:
                results.append(self._deal_json(deal, names, with_history))
        errors = [self._item_error("OBJECT_NOT_FOUND", "Could not get some DEAL objects, they may be deleted or not exist. "
                                   "Check that ids are valid.", {"ids": missing})] if missing else []
        return self._batch_response(results, errors, started)

    async def _batch_create(self, request: Request, body: dict, inputs: list) -> Response:
        started = self._now()
        checked = [self._checked_create(item) for item in inputs]  # one invalid input refuses the whole batch
        results, errors = [], []
        for item, create in zip(inputs, checked):
            trace = item.get("objectWriteTraceId")
            if self.faults.batch_item_fails():
                errors.append(self._injected_failure({"objectWriteTraceId": [str(trace)]} if trace else {}))
                continue
            deal = self.store.create(*create)
            shown = self._deal_json(deal, self._shown_names(item.get("properties")))
            if trace:
                shown["objectWriteTraceId"] = str(trace)
            results.append(shown)
        return self._batch_response(results, errors, started, ok_status=201)

    async def _batch_update(self, request: Request, body: dict, inputs: list) -> Response:
        started = self._now()
        ids = [str(item.get("id", "")) for item in inputs]
        if len(set(ids)) != len(ids):
            raise _Refused("Duplicate IDs found in batch input: " + ", ".join(sorted({i for i in ids if ids.count(i) > 1})))
        found: list[tuple[dict, HubDeal]] = []
        missing = []
        for item, wanted in zip(inputs, ids):
            id_property = item.get("idProperty")
            deal = self._by_property(id_property, wanted) if id_property else self.store.resolve(wanted)
            if deal is None or deal.archived_at_ms is not None:
                missing.append(wanted)
                continue
            problems = self.store.validate(item.get("properties") or {}, deal)
            if problems:
                raise _property_errors(problems)
            found.append((item, deal))
        results, errors = [], []
        if missing:
            errors.append(self._item_error("OBJECT_NOT_FOUND", "Could not update some DEAL objects, they may be deleted "
                                           "or not exist. Check that ids are valid.", {"ids": missing}))
        for item, deal in found:
            if self.faults.batch_item_fails():
                errors.append(self._injected_failure({"ids": [deal.id]}))
                continue
            self.store.update(deal, item.get("properties") or {})
            results.append(self._deal_json(deal, self._shown_names(item.get("properties"))))
        return self._batch_response(results, errors, started)

    async def _batch_upsert(self, request: Request, body: dict, inputs: list) -> Response:
        started = self._now()
        results, errors = [], []
        for item in inputs:
            id_property, wanted = item.get("idProperty"), str(item.get("id", ""))
            if not id_property or id_property == "hs_object_id":
                raise _Refused("Upsert needs an idProperty naming a unique-value property.")
            existing = self._by_property(id_property, wanted)
            properties = {**(item.get("properties") or {}), id_property: wanted}
            problems = self.store.validate(properties, existing)
            if problems:
                raise _property_errors(problems)
            if self.faults.batch_item_fails():
                errors.append(self._injected_failure({"ids": [wanted]}))
                continue
            if existing is None:
                deal, new = self.store.create(properties), True
            else:
                deal, new = self.store.update(existing, properties), False
            results.append({**self._deal_json(deal, self._shown_names(properties)), "new": new})
        return self._batch_response(results, errors, started)

    async def _batch_archive(self, request: Request, body: dict, inputs: list) -> Response:
        for item in inputs:
            deal = self.store.resolve(str(item.get("id", "")))
            if deal is not None:
                self.store.archive(deal)
        return Response(status_code=204)

    async def _batch_read_records(self, request: Request, kind: str) -> Response:
        started = self._now()
        body = await self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > BATCH_MAX:
            raise _Refused(f"Batch input must hold an 'inputs' list of at most {BATCH_MAX} items.")
        table = self.store.companies if kind == "companies" else self.store.contacts
        names = body.get("properties") or DEFAULT_RECORD_PROPERTIES[kind]
        results, missing = [], []
        for item in inputs:
            record = table.get(str(item.get("id", "")))
            if record is None:
                missing.append(str(item.get("id", "")))
            else:
                results.append(self._record_json(record, kind, names))
        noun = "COMPANY" if kind == "companies" else "CONTACT"
        errors = [self._item_error("OBJECT_NOT_FOUND", f"Could not get some {noun} objects, they may be deleted or "
                                   "not exist. Check that ids are valid.", {"ids": missing})] if missing else []
        return self._batch_response(results, errors, started)

    @staticmethod
    def _record_json(record: HubRecord, kind: str, names: Iterable[str]) -> dict:
        stamp = iso_ms(record.created_ms)
        modified = "lastmodifieddate" if kind == "contacts" else "hs_lastmodifieddate"
        props = {**record.props, "createdate": stamp, modified: stamp}
        shown = {name: props.get(name) for name in names if name in RECORD_PROPERTIES[kind]}
        for name in ("createdate", modified, "hs_object_id"):
            shown[name] = props[name]
        return {"id": record.id, "properties": shown, "createdAt": stamp, "updatedAt": stamp, "archived": False}

    # ----- associations ----------------------------------------------------------------------

    async def _association_inputs(self, request: Request) -> tuple[str, list[str]]:
        if OBJECT_TYPES.get(request.path_params["from_type"]) != "deals":
            raise _Refused("The sandbox resolves associations from deals only.")
        to_kind = OBJECT_TYPES.get(request.path_params["to_type"])
        if to_kind not in ("companies", "contacts", "tasks"):
            raise _Refused(f"Unknown object type {request.path_params['to_type']!r}.")
        body = await self._body(request)
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or len(inputs) > 1000:
            raise _Refused("Batch input must hold an 'inputs' list of at most 1000 items.")
        return to_kind, [str(item.get("id", "")) for item in inputs]

    def _no_associations(self, to_kind: str, ids: list[str]) -> list[dict]:
        noun = {"companies": "company", "contacts": "contact"}.get(to_kind, "task")
        return [{**self._item_error("OBJECT_NOT_FOUND", f"No {noun} is associated with deal {i}.",
                                    {"fromObjectId": [i]}), "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND"}
                for i in ids]

    def _linked(self, to_kind: str, ids: list[str]) -> tuple[list[tuple[str, list[str]]], list[str]]:
        linked, empty = [], []
        for wanted in ids:
            deal = self.store.resolve(wanted)
            targets = [] if deal is None else deal.company_ids if to_kind == "companies" else \
                deal.contact_ids if to_kind == "contacts" else [t.id for t in self.store.tasks_of(deal)]
            (linked.append((wanted, targets)) if targets else empty.append(wanted))
        return linked, empty

    async def associations_v3(self, request: Request) -> Response:
        started = self._now()
        to_kind, ids = await self._association_inputs(request)
        linked, empty = self._linked(to_kind, ids)
        results = [{"from": {"id": deal_id},
                    "to": [{"id": t, "type": name} for t in targets for name in V3_TYPES[to_kind]]}
                   for deal_id, targets in linked]
        return self._batch_response(results, self._no_associations(to_kind, empty), started)

    async def associations_v4(self, request: Request) -> Response:
        started = self._now()
        to_kind, ids = await self._association_inputs(request)
        linked, empty = self._linked(to_kind, ids)
        # HubSpot sends toObjectId as a JSON number, though the spec (and SDK model) call it a string.
        results = [{"from": {"id": deal_id},
                    "to": [{"toObjectId": int(t), "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                        for type_id, label in V4_TYPES[to_kind]]} for t in targets]}
                   for deal_id, targets in linked]
        return self._batch_response(results, self._no_associations(to_kind, empty), started)

    # ----- pipelines -------------------------------------------------------------------------

    def _pipeline_json(self, index: int) -> dict:
        pipeline = self.store.pipelines[index]
        # Default pipelines report createdAt = epoch 0.
        created = "1970-01-01T00:00:00Z" if pipeline.id == "default" else iso_ms(self.store.epoch_ms)
        updated = iso_ms(self.store.epoch_ms)
        return {"id": pipeline.id, "label": pipeline.label, "displayOrder": index, "archived": False,
                "createdAt": created, "updatedAt": updated,
                "stages": [self._stage_json(s, created, updated) for s in pipeline.stages]}

    @staticmethod
    def _stage_json(stage, created: str, updated: str) -> dict:
        return {"id": stage.id, "label": stage.label, "displayOrder": stage.order, "archived": False,
                "createdAt": created, "updatedAt": updated, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
                "metadata": {"probability": str(float(stage.probability)),
                             "isClosed": "true" if stage.is_closed else "false"}}

    def _pipeline_index(self, request: Request) -> int:
        self._pipeline_type(request)
        wanted = request.path_params["pipeline_id"]
        for index, pipeline in enumerate(self.store.pipelines):
            if pipeline.id == wanted:
                return index
        raise _Refused(f"Unable to find pipeline {wanted}", status=404, category="OBJECT_NOT_FOUND")

    async def pipelines(self, request: Request) -> Response:
        self._pipeline_type(request)
        return _json({"results": [self._pipeline_json(i) for i in range(len(self.store.pipelines))]})

    async def pipeline(self, request: Request) -> Response:
        return _json(self._pipeline_json(self._pipeline_index(request)))

    async def stages(self, request: Request) -> Response:
        return _json({"results": self._pipeline_json(self._pipeline_index(request))["stages"]})

    async def stage(self, request: Request) -> Response:
        stages = self._pipeline_json(self._pipeline_index(request))["stages"]
        wanted = request.path_params["stage_id"]
        for stage in stages:
            if stage["id"] == wanted:
                return _json(stage)
        raise _Refused(f"Unable to find stage {wanted}", status=404, category="OBJECT_NOT_FOUND")

    # ----- owners ----------------------------------------------------------------------------

    def _owner_json(self, index: int) -> dict:
        owner = self.store.owners[index]
        first, _, last = owner.name.partition(" ")
        stamp = iso_ms(self.store.epoch_ms)
        user_id = 10_000_000 + index
        return {"id": owner.id, "email": owner.email, "firstName": first, "lastName": last, "type": "PERSON",
                "userId": user_id, "userIdIncludingInactive": user_id, "createdAt": stamp, "updatedAt": stamp,
                "archived": False}

    async def owners(self, request: Request) -> Response:
        limit = _int_param(request, "limit", 100, OWNERS_PAGE_MAX)
        email = request.query_params.get("email")
        if _flag(request, "archived"):
            return _json({"results": []})  # the seed has no deactivated owners
        indexes = [i for i, o in enumerate(self.store.owners) if email is None or o.email.lower() == email.lower()]
        after = request.query_params.get("after")
        start = 0
        if after:
            start = next((n for n, i in enumerate(indexes) if self.store.owners[i].id == after), len(indexes))
        page = indexes[start:start + limit]
        body: dict[str, Any] = {"results": [self._owner_json(i) for i in page]}
        if start + limit < len(indexes):
            cursor = self.store.owners[indexes[start + limit]].id
            body["paging"] = {"next": {"after": cursor, "link": str(request.url.include_query_params(after=cursor))}}
        return _json(body)

    async def owner(self, request: Request) -> Response:
        wanted = request.path_params["owner_id"]
        for index, owner in enumerate(self.store.owners):
            if owner.id == wanted:
                return _json(self._owner_json(index))
        raise _Refused(f"Owner {wanted} not found", status=404, category="OBJECT_NOT_FOUND")

    # ----- OAuth -----------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            grant = self.auth.refresh(form)
        except OAuthError as refused:
            return _json({"status": refused.status, "message": refused.message,
                          "correlationId": _correlation_id(), "requestId": _correlation_id()}, 400)
        return _json({"token_type": "bearer", "refresh_token": grant.refresh_token,
                      "access_token": grant.access_token, "expires_in": grant.expires_in})

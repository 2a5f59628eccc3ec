"""The Pipedrive sandbox's HTTP API: v2 for deals, pipelines, stages, organizations, persons, deal
fields and activities; the v1 endpoints that remain (users, deal flow, changelog, merge, recents); OAuth refresh.

Every API request is authenticated, then charged against the token-based rate
limits (the endpoint's ``x-token-cost``, from ``token_costs.yaml``), then answered in the ``success``
envelope with the ``x-ratelimit-*`` headers. Faults (5xx, 429 bursts, slow or
dropped responses) wrap the whole app.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipesync_sandbox.faults import ASGIApp, FaultMiddleware, Faults
from pipesync_sandbox.pipedrive.auth import Authenticator, Credentials, OAuthError
from pipesync_sandbox.pipedrive.envelope import ApiError, PipedriveJSON, error_response, invalid, ok, ok_items
from pipesync_sandbox.pipedrive.limits import TokenCosts, TokenLimits, seconds_header, token_costs
from pipesync_sandbox.pipedrive.params import Params, encode_cursor, offset_page, start_page
from pipesync_sandbox.pipedrive.render import OPTIONAL_DEAL_FIELDS, Renderer, v1_time
from pipesync_sandbox.pipedrive.store import (
    DEAL_STATUSES,
    SORT_FIELDS,
    Clock,
    Conflict,
    Deal,
    NotFound,
    PipedriveStore,
)
from pipesync_sandbox.pipedrive.writes import check_activity_write, check_deal_write, check_field_create
from pipesync_sandbox.world import SystemData, clock_from

MAX_CUSTOM_FIELD_KEYS = 15
RECENT_ITEMS = ("activity", "activityType", "deal", "file", "filter", "note", "person", "organization",
                "pipeline", "product", "stage", "user")


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler needs from one request."""

    params: Params
    path: dict[str, Any]
    body: Any


Handler = Callable[[Call], Response]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    version: str  # "v1" or "v2": which OpenAPI document describes it
    spec_path: str  # the path as the document writes it, e.g. "/deals/{id}"

    def sandbox_paths(self) -> list[str]:
        path = self.spec_path.replace("{id}", "{id:int}")
        if self.version == "v2":
            return [f"/api/v2{path}"]
        return [f"/v1{path}", f"/api/v1{path}"]


class PipedriveApi:
    """Handlers over one store; :func:`create_app` mounts them."""

    def __init__(self, store: PipedriveStore, auth: Authenticator, limits: TokenLimits,
                 costs: TokenCosts):
        self.store = store
        self.auth = auth
        self.limits = limits
        self.costs = costs
        self.render = Renderer(store)

    def routes(self) -> list[Route]:
        table: list[tuple[Endpoint, Handler]] = [
            (Endpoint("GET", "v2", "/deals"), self.list_deals),
            (Endpoint("GET", "v2", "/deals/archived"), self.list_archived_deals),
            (Endpoint("GET", "v2", "/deals/{id}"), self.get_deal),
            (Endpoint("POST", "v2", "/deals"), self.create_deal),
            (Endpoint("PATCH", "v2", "/deals/{id}"), self.update_deal),
            (Endpoint("DELETE", "v2", "/deals/{id}"), self.delete_deal),
            (Endpoint("GET", "v2", "/pipelines"), self.list_pipelines),
            (Endpoint("GET", "v2", "/stages"), self.list_stages),
            (Endpoint("GET", "v2", "/organizations"), self.list_organizations),
            (Endpoint("GET", "v2", "/persons"), self.list_persons),
            (Endpoint("GET", "v2", "/dealFields"), self.list_deal_fields),
            (Endpoint("POST", "v2", "/dealFields"), self.create_deal_field),
            (Endpoint("GET", "v2", "/activities"), self.list_activities),
            (Endpoint("POST", "v2", "/activities"), self.create_activity),
            (Endpoint("DELETE", "v2", "/activities/{id}"), self.delete_activity),
            (Endpoint("GET", "v1", "/users"), self.list_users),
            *((Endpoint("GET", "v1", f"/{kind}Fields"), self._v1_fields(kind))
              for kind in ("deal", "person", "organization", "note", "activity", "product", "lead")),
            (Endpoint("GET", "v1", "/deals/{id}/flow"), self.deal_flow),
            (Endpoint("GET", "v1", "/deals/{id}/changelog"), self.deal_changelog),
            (Endpoint("PUT", "v1", "/deals/{id}/merge"), self.merge_deals),
            (Endpoint("GET", "v1", "/recents"), self.recents),
        ]
        routes = [Route(path, self._endpoint(endpoint, handler), methods=[endpoint.method])
                  for endpoint, handler in table for path in endpoint.sandbox_paths()]
        routes.append(Route("/oauth/token", self.oauth_token, methods=["POST"]))
        return routes

    def _endpoint(self, endpoint: Endpoint, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        cost = self.costs.of(endpoint.version, endpoint.method, endpoint.spec_path)
        takes_body = endpoint.method in ("POST", "PATCH", "PUT")

        async def run(request: Request) -> Response:
            try:
                caller = self.auth.authenticate(request.headers, request.query_params)
            except ApiError as refused:
                return refused.response()
            verdict = self.limits.charge(caller.kind, cost)
            if not verdict.allowed:
                return too_many_requests(verdict.headers, verdict.retry_after_s)
            try:
                body = _json_body(await request.body()) if takes_body else None
                response = handler(Call(Params(request.query_params), dict(request.path_params), body))
            except ApiError as refused:
                response = refused.response()
            except NotFound as missing:
                response = error_response(404, str(missing))
            except Conflict as conflict:
                response = error_response(400, str(conflict))
            response.headers.update(verdict.headers)
            return response

        return run

    # -- v2 deals ---------------------------------------------------------------------------

    def list_deals(self, call: Call) -> Response:
        return self._deal_page(call, archived=False)

    def list_archived_deals(self, call: Call) -> Response:
        return self._deal_page(call, archived=True)

    def _deal_page(self, call: Call, *, archived: bool) -> Response:
        params = call.params
        statuses = set(params.choices("status", (*DEAL_STATUSES, "deleted")) or DEAL_STATUSES)
        matches = self._field_filter(params, ("owner_id", "person_id", "org_id", "pipeline_id", "stage_id"))
        since = params.moment("updated_since")
        include, custom_keys, option_labels = self._deal_shape(params)
        cutoff = self.store.deleted_cutoff()

        def accept(deal: Deal) -> bool:
            if deal.is_archived != archived:
                return False
            if deal.is_deleted:
                if "deleted" not in statuses or deal.delete_time is None or deal.delete_time < cutoff:
                    return False
            elif deal.status not in statuses:
                return False
            return matches(deal)

        deals, next_cursor = self._page("deals", params, accept, SORT_FIELDS, since=since, ids=params.ids())
        if custom_keys is None and not include and not option_labels:
            return ok_items([self.render.deal_json(deal) for deal in deals], {"next_cursor": next_cursor})
        data = [self._deal(deal, custom_keys, include, option_labels) for deal in deals]
        return ok(data, {"next_cursor": next_cursor})

    def _deal_shape(self, params: Params) -> tuple[list[str], list[str] | None, bool]:
        include = params.choices("include_fields", OPTIONAL_DEAL_FIELDS) or []
        keys = params.get("custom_fields")
        custom_keys = None
        if keys is not None:
            requested = [key.strip() for key in keys.split(",") if key.strip()]
            if len(requested) > MAX_CUSTOM_FIELD_KEYS:
                raise invalid("custom_fields", f"at most {MAX_CUSTOM_FIELD_KEYS} keys are allowed")
            custom_keys = [key for key in requested if key in self.store.custom_fields]
        return include, custom_keys, params.boolean("include_option_labels")

    def _deal(self, deal: Deal, custom_keys: list[str] | None = None, include: list[str] | None = None,
              option_labels: bool = False) -> dict[str, Any]:
        body = self.render.deal(deal, custom_keys=custom_keys, include=include or ())
        if option_labels:
            for custom in self.store.custom_fields.values():
                value = body["custom_fields"].get(custom.key)
                if custom.field_type == "enum" and value is not None:
                    body["custom_fields"][custom.key] = {"id": value, "label": custom.options[value]}
        return body

    def _page(self, kind: str, params: Params, accept: Callable[[Any], bool], sort_fields: tuple[str, ...], *,
              since: datetime | None = None, ids: list[int] | None = None) -> tuple[list[Any], str | None]:
        sort_by, descending = params.sorting(sort_fields)
        limit = params.limit()
        after = params.cursor(sort_by, descending)
        since_key = int(since.timestamp()) if since is not None else None
        found: list[Any] = []
        for record in self.store.scan(kind, sort_by, descending=descending, after=after, since=since_key, ids=ids):
            if accept(record):
                found.append(record)
                if len(found) > limit:
                    break
        if len(found) <= limit:
            return found, None
        page = found[:limit]
        return page, encode_cursor(sort_by, descending, self.store.sort_key(page[-1], sort_by))

    def get_deal(self, call: Call) -> Response:
        include, custom_keys, option_labels = self._deal_shape(call.params)
        return ok(self._deal(self.store.deal(call.path["id"]), custom_keys, include, option_labels))

    def create_deal(self, call: Call) -> Response:
        return ok(self._deal(self.store.create_deal(check_deal_write(self.store, call.body, None))))

    def update_deal(self, call: Call) -> Response:
        current = self.store.live_deal(call.path["id"])
        values = check_deal_write(self.store, call.body, current)
        return ok(self._deal(self.store.update_deal(current.id, values)))

    def delete_deal(self, call: Call) -> Response:
        deal = self.store.live_deal(call.path["id"])
        self.store.delete([deal.id])
        return ok({"id": deal.id})

    # -- v2 configuration, organizations, persons ---------------------------------------------

    def list_pipelines(self, call: Call) -> Response:
        pipelines, cursor = self._page("pipelines", call.params, lambda p: True, SORT_FIELDS)
        return ok([self.render.pipeline(p) for p in pipelines], {"next_cursor": cursor})

    def list_stages(self, call: Call) -> Response:
        pipeline_id = call.params.integer("pipeline_id")
        stages, cursor = self._page("stages", call.params,
                                    lambda s: pipeline_id is None or s.pipeline_id == pipeline_id,
                                    (*SORT_FIELDS, "order_nr"))
        return ok([self.render.stage(s) for s in stages], {"next_cursor": cursor})

    def list_organizations(self, call: Call) -> Response:
        accept = self._field_filter(call.params, ("owner_id",))
        orgs, cursor = self._page("organizations", call.params, accept, SORT_FIELDS, ids=call.params.ids())
        return ok([self.render.organization(o) for o in orgs], {"next_cursor": cursor})

    def list_persons(self, call: Call) -> Response:
        accept = self._field_filter(call.params, ("owner_id", "org_id"))
        persons, cursor = self._page("persons", call.params, accept, SORT_FIELDS, ids=call.params.ids())
        return ok([self.render.person(p) for p in persons], {"next_cursor": cursor})

    @staticmethod
    def _field_filter(params: Params, filters: tuple[str, ...]) -> Callable[[Any], bool]:
        """The list filters every v2 list shares: id fields, and ``update_time`` from/until."""
        if params.get("filter_id") is not None:  # the sandbox company has no saved filters
            raise invalid("filter_id", f"filter {params.get('filter_id')} does not exist")
        wanted = {name: params.integer(name) for name in filters}
        wanted = {name: value for name, value in wanted.items() if value is not None}
        since, until = params.moment("updated_since"), params.moment("updated_until")

        def accept(record: Any) -> bool:
            if since is not None and record.update_time < since:
                return False
            if until is not None and record.update_time >= until:
                return False
            return all(getattr(record, name) == value for name, value in wanted.items())

        return accept

    def list_deal_fields(self, call: Call) -> Response:
        fields, cursor = offset_page(self.render.deal_fields(), call.params)
        return ok(list(fields), {"next_cursor": cursor})

    def create_deal_field(self, call: Call) -> Response:
        custom = self.store.add_custom_field(*check_field_create(call.body))
        return ok(self.render.custom_field(custom))

    # -- v2 activities ----------------------------------------------------------------------

    def list_activities(self, call: Call) -> Response:
        params = call.params
        accept_fields = self._field_filter(params, ("owner_id", "deal_id"))
        done = params.get("done")

        def accept(activity: Any) -> bool:
            return not activity.is_deleted and accept_fields(activity) and (
                done is None or activity.done == (done.lower() in ("true", "1")))

        found, cursor = self._page("activities", params, accept, SORT_FIELDS, ids=params.ids())
        return ok([self.render.activity(a) for a in found], {"next_cursor": cursor})

    def create_activity(self, call: Call) -> Response:
        return ok(self.render.activity(self.store.create_activity(check_activity_write(self.store, call.body))))

    def delete_activity(self, call: Call) -> Response:
        return ok({"id": self.store.delete_activity(call.path["id"]).id})

    # -- v1 ---------------------------------------------------------------------------------

    def _v1_fields(self, kind: str) -> Handler:
        def list_fields(call: Call) -> Response:
            fields, pagination = start_page(self.render.v1_fields(kind), call.params)
            # The v1 reference writes start/limit/more_items_in_collection at the top of additional_data;
            # clients written against the live API read them under pagination: both are served.
            return ok(fields, {**pagination, "pagination": pagination})
        return list_fields

    def list_users(self, call: Call) -> Response:
        return ok([self.render.user(u, is_you=u.id == self.store.admin_id) for u in self.store.users.values()])

    def deal_flow(self, call: Call) -> Response:
        deal = self.store.deal(call.path["id"])
        items = call.params.choices("items", ("activity", "plannedActivity", "note", "file", "change",
                                              "deal", "follower", "participant", "mailMessage",
                                              "mailMessageWithAttachment", "invoice", "document",
                                              "marketing_campaign_stat", "marketing_status_change",
                                              "dealChange"))
        changes = list(reversed(deal.changes)) if items is None or "dealChange" in items else []
        page, pagination = start_page(changes, call.params)
        users = {c.user_id for c in page} | {deal.owner_id}
        related = {
            "deal": {str(deal.id): {"id": deal.id, "title": deal.title, "status": deal.status, "value": deal.value,
                                    "currency": deal.currency, "stage_id": deal.stage_id,
                                    "pipeline_id": deal.pipeline_id}},
            "user": {str(u): {"id": u, "name": self.store.users[u].name, "email": self.store.users[u].email,
                              "has_pic": 0, "pic_hash": None, "active_flag": True}
                     for u in sorted(users) if u in self.store.users},
        }
        # The document's schema lists start/limit flat; its example, like every v1 list, nests them.
        return ok([self.render.flow_item(deal, c) for c in page], {"pagination": pagination},
                  related_objects=related)

    def deal_changelog(self, call: Call) -> Response:
        deal = self.store.deal(call.path["id"])
        changes, cursor = offset_page(list(reversed(deal.changes)), call.params)
        return ok([self.render.changelog_item(c) for c in changes], {"next_cursor": cursor})

    def merge_deals(self, call: Call) -> Response:
        body = call.body if isinstance(call.body, dict) else {}
        raw = body.get("merge_with_id")
        # v1 is lenient about numbers in strings, unlike v2
        if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit())):
            raise invalid("merge_with_id", "is required and must be an integer")
        survivor = self.store.merge(call.path["id"], int(raw))
        return ok({**self.render.deal_v1(survivor), "merge_what_id": call.path["id"]})

    def recents(self, call: Call) -> Response:
        params = call.params
        text = params.get("since_timestamp")
        if text is None:
            raise invalid("since_timestamp", "is required")
        try:
            since = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.store.founded.tzinfo)
        except ValueError:
            raise invalid("since_timestamp", f"'{text}' is not in the format YYYY-MM-DD HH:MM:SS") from None
        items = params.choices("items", RECENT_ITEMS)
        deals: Iterable[Deal] = ()
        if items is None or "deal" in items:
            # Deletions are changes too: deleted deals are listed (deleted: true) until purged.
            deals = (d for d in self.store.scan("deals", "update_time", descending=False, after=None,
                                                since=int(since.timestamp()))
                     if not self.store.is_purged(d))
        page, pagination = start_page(deals, params)
        additional = {
            "since_timestamp": v1_time(since),
            "last_timestamp_on_page": v1_time(page[-1].update_time) if page else v1_time(since),
            "pagination": pagination,
        }
        data = [{"item": "deal", "id": d.id, "data": self.render.deal_v1(d)} for d in page]
        return ok(data, additional)

    # -- OAuth ------------------------------------------------------------------------------

    async def oauth_token(self, request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return _oauth_error(400, "Invalid request: content must be application/x-www-form-urlencoded")
        form = dict(parse_qsl((await request.body()).decode(errors="replace")))
        try:
            tokens = self.auth.refresh(request.headers.get("authorization"), form)
        except OAuthError as refused:
            return _oauth_error(refused.status, refused.message)
        return PipedriveJSON({**tokens, "api_domain": f"{request.url.scheme}://{request.url.netloc}"})


def _oauth_error(status: int, message: str) -> Response:
    return PipedriveJSON({"success": False, "message": message}, status_code=status)


def _json_body(raw: bytes) -> Any:
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("body", "is not valid JSON") from None


def too_many_requests(headers: dict[str, str], retry_after_s: float | None) -> Response:
    headers = dict(headers)
    if retry_after_s is not None:
        headers["retry-after"] = seconds_header(retry_after_s)
    return error_response(429, "Request over limit", headers=headers)


class FaultResponses:
    """How the Pipedrive sandbox shows injected faults: its 500 and 429 envelopes."""

    def __init__(self, limits: TokenLimits):
        self.limits = limits

    def server_error(self) -> Response:
        return error_response(500, "Internal server error")

    def too_many_requests(self, retry_after_s: float | None) -> Response:
        wait = retry_after_s if retry_after_s is not None else 0.0
        return too_many_requests(self.limits.burst_headers("api_token", wait), retry_after_s)


async def _not_found(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 404
    return error_response(status, "Unknown method ." if status == 404 else "Method not allowed")


def create_app(data: SystemData, faults: Faults | None = None, *, plan: str = "growth", seats: int = 1,
               api_token: str | None = None, credentials: Credentials | None = None, as_of: datetime | None = None,
               clock: Clock | None = None) -> tuple[ASGIApp, PipedriveStore]:
    """The Pipedrive sandbox over ``data``: an ASGI app and its mutable store.

    ``store.credentials`` holds the API token and OAuth client/refresh token a
    client needs (generated unless given). ``plan`` and ``seats`` size the
    daily token budget and burst limits; ``faults.time_scale`` speeds up their
    windows. The company's "now" (deletion retention, write times) is
    ``clock()``, else starts at ``as_of`` (a generated world's ``World.as_of``)
    and runs in real time, else is the real time.
    """
    faults = faults or Faults()
    if clock is None and as_of is not None:
        clock = clock_from(as_of)
    store = PipedriveStore(data, clock=clock)
    credentials = credentials or Credentials()
    if api_token is not None:
        credentials.api_token = api_token
    store.credentials = credentials
    limits = TokenLimits(plan, seats, time_scale=lambda: faults.time_scale)
    api = PipedriveApi(store, Authenticator(credentials, faults), limits, token_costs())
    app = Starlette(routes=api.routes(), exception_handlers={HTTPException: _not_found})
    return FaultMiddleware(app, faults, FaultResponses(limits)), store

"""A local Salesforce org that the real ``simple_salesforce.Salesforce`` client cannot tell from the real one.

``create_app(data)`` returns the ASGI app and its :class:`SalesforceStore`;
serve the app with ``pipesync_sandbox.server.serve(app, tls=True)`` (the
client only speaks https) and give the client the CA bundle::

    app, store = create_app(world.systems["salesforce"])
    with serve(app, tls=True) as served:
        token = requests.post(f"{served.base_url}/services/oauth2/token", verify=served.ca_bundle, data={
            "grant_type": "password", "client_id": ..., "client_secret": ..., "username": ...,
            "password": password + security_token}).json()["access_token"]
        session = requests.Session(); session.verify = served.ca_bundle
        sf = Salesforce(instance_url=served.base_url, session_id=token, version="62.0", session=session)

Served (under ``/services/data/vNN.N/``; older versions down to 31.0 too):
``query`` / ``queryAll`` (+ ``query/<cursor>-<offset>`` paging, ``Sforce-Query-Options: batchSize``),
``sobjects`` (describe global), ``sobjects/<type>/describe``, ``…/deleted/``, ``…/updated/``,
``sobjects/<type>[/<id>|/<ExtIdField>/<value>]`` (GET, POST, PATCH, DELETE), ``composite/sobjects``
(POST create, PATCH update, DELETE ``?ids=``) and ``composite/sobjects/<type>/<ExtIdField>`` (PATCH upsert),
``limits``,
Bulk API 2.0 query jobs (``jobs/query``), and the UI API stage subsets of each record type
(``ui-api/object-info/Opportunity/picklist-values/<recordTypeId>[/StageName]``). Plus
``/services/oauth2/token`` and ``/services/oauth2/revoke``.

Every REST response carries ``Sforce-Limit-Info: api-usage=N/M``; every REST
error is Salesforce's JSON array of ``{message, errorCode[, fields]}``.

Faults (:class:`pipesync_sandbox.faults.Faults`) as Salesforce shows them:

- token expiry → 401 ``INVALID_SESSION_ID`` "Session expired or invalid";
- 5xx → 500 ``UNKNOWN_EXCEPTION`` with an ErrorId, as Salesforce reports an internal error;
- the "429 burst" switch → **403** ``REQUEST_LIMIT_EXCEEDED`` "ConcurrentPerOrgLongTxn Limit
  exceeded.", because Salesforce never answers 429: that is what a client sees when too many
  long-running requests run at once, the only burst-shaped limit Salesforce has. No Retry-After:
  Salesforce sends none;
- partial batch failures → per-record ``UNABLE_TO_LOCK_ROW`` in sObject Collections results
  (the usual transient per-record failure), honouring ``allOrNone``.

The daily API allocation (``daily_limit``, a rolling 24 h scaled by ``faults.time_scale``) answers
403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded." once spent.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipesync_sandbox.faults import Faults, FaultMiddleware
from pipesync_sandbox.ids import salesforce_id
from pipesync_sandbox.ratelimit import DailyBudget
from pipesync_sandbox.salesforce.auth import OAuthError, SalesforceCredentials
from pipesync_sandbox.salesforce.soql import (
    CompiledQuery,
    Row,
    SoqlError,
    compile_query,
    execute,
    format_datetime,
    parse,
    parse_datetime_literal,
)
from pipesync_sandbox.salesforce.store import (
    WRITABLE_OBJECTS,
    Clock,
    PreparedWrite,
    RecordError,
    RequestError,
    SalesforceStore,
)
from pipesync_sandbox.world import SystemData

ASGIApp = Callable[..., Awaitable[None]]

JSON_TYPE = "application/json;charset=UTF-8"
DEFAULT_BATCH_SIZE = 2000
MIN_BATCH_SIZE = 200
CURSORS_PER_USER = 10  # Salesforce releases the oldest open query cursor beyond ten per user
COLLECTION_LIMIT = 200
REPLICATION_WINDOW = timedelta(days=30)  # getUpdated/getDeleted: start no further back than this
DELETED_RETENTION = timedelta(days=15)  # getDeleted: the delete log is purged after this
MASTER_RECORD_TYPE_ID = "012000000000000AAA"
OLDEST_VERSION = 31.0
MODSTAMP_BOUNDED = ("SystemModstamp", "LastModifiedDate", "CreatedDate")  # never later than SystemModstamp
_BULK_QUERY_PAGE = 50_000
_DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
_LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
_SOAP_TYPES = {"id": "tns:ID", "reference": "tns:ID", "currency": "xsd:double", "double": "xsd:double",
               "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date", "datetime": "xsd:dateTime",
               "boolean": "xsd:boolean"}
_STANDARD_PICKLISTS = {
    ("Opportunity", "ForecastCategoryName"): ("Omitted", "Pipeline", "Best Case", "Commit", "Closed"),
    ("Opportunity", "Type"): ("New Customer", "Existing Customer - Upgrade", "Existing Customer - Replacement",
                              "Existing Customer - Downgrade"),
    ("Task", "Status"): ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"),
    ("Task", "Priority"): ("High", "Normal", "Low"),
    ("OpportunityContactRole", "Role"): ("Business User", "Decision Maker", "Economic Buyer",
                                         "Economic Decision Maker", "Evaluator", "Executive Sponsor",
                                         "Influencer", "Technical Buyer", "Other"),
}


_ADDRESS_PART = re.compile(r"(Billing|Shipping|Mailing|Other)(Street|City|State|PostalCode|Country|StateCode|CountryCode|"
                           r"Latitude|Longitude|GeocodeAccuracy)")
_NAME_PARTS = frozenset({"Salutation", "FirstName", "MiddleName", "LastName", "Suffix"})


def _compound_field(sobject: str, name: str) -> str | None:
    """The compound field a field is part of (describe's ``compoundFieldName``): an address, a person's Name."""
    if (part := _ADDRESS_PART.fullmatch(name)) is not None:
        return part.group(1) + "Address"
    return "Name" if name in _NAME_PARTS and sobject in ("Contact", "Lead", "User") else None


class ApiError(Exception):
    """A REST error: Salesforce's JSON array body with this status."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None):
        super().__init__(message)
        self.status = status
        entry: dict[str, Any] = {"message": message, "errorCode": code}
        if fields is not None:
            entry["fields"] = fields
        self.body = [entry]


class _SeveralMatches(Exception):
    """An external id matched several records (HTTP 300 with their URLs, for a single upsert)."""

    def __init__(self, urls: list[str]):
        super().__init__(", ".join(urls))
        self.urls = urls


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    # orjson: encoding pages of 2,000 records is most of a query's cost, and it is ~7x faster than json.
    return Response(orjson.dumps(body), status, headers, JSON_TYPE)


def _not_found() -> ApiError:
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")


@dataclass(slots=True)
class _Cursor:
    id: str
    rows: list[Row]
    batch_size: int
    render: Callable[[Row], dict[str, Any]]


@dataclass(slots=True)
class _BulkQueryJob:
    info: dict[str, Any]
    query: CompiledQuery
    rows: list[Row]


class SalesforceApi:
    """The org's REST endpoints over one :class:`SalesforceStore`."""

    def __init__(self, store: SalesforceStore, faults: Faults | None, *, api_version: str, daily_limit: int):
        self.store = store
        self.faults = faults
        self.api_version = api_version
        self.budget = DailyBudget(daily_limit, time_scale=(lambda: faults.time_scale) if faults else 1.0)
        self._cursors: OrderedDict[str, _Cursor] = OrderedDict()
        self._jobs: dict[str, _BulkQueryJob] = {}
        self._lock = threading.Lock()
        self._serial = 0

    # ---------------------------------------------------------- plumbing

    def _next_serial(self) -> int:
        with self._lock:
            self._serial += 1
            return self._serial

    def _limit_info(self) -> str:
        return f"api-usage={self.budget.used}/{self.budget.limit}"

    def rest(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a REST handler: API version, session, daily allocation, error bodies, the limit header."""

        async def endpoint(request: Request) -> Response:
            try:
                self._check_version(request.path_params["version"])
                self._authenticate(request)
                if not self.budget.try_acquire().allowed:
                    raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                response = await handler(request)
            except ApiError as error:
                response = _json(error.body, error.status)
                if error.status == 401:
                    response.headers["WWW-Authenticate"] = "Token"
            except SoqlError as error:
                response = _json([{"message": error.message, "errorCode": error.code}], 400)
            except RequestError as error:
                response = _json([{"message": error.message, "errorCode": error.code}], 400)
            response.headers["Sforce-Limit-Info"] = self._limit_info()
            return response

        return endpoint

    def _check_version(self, version: str) -> None:
        try:
            number = float(version)
        except ValueError:
            raise _not_found() from None
        if not OLDEST_VERSION <= number <= float(self.api_version) or not re.fullmatch(r"\d+\.0", version):
            raise _not_found()

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        valid = scheme.lower() in ("bearer", "oauth") and self.store.auth.is_valid(token)
        if valid and self.faults is not None and self.faults.token_expired(token):
            self.store.auth.revoke(token)
            valid = False
        if not valid:
            raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")

    async def _body(self, request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw) if raw else None
        except ValueError as error:
            raise ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {error}") from None

    def _object(self, name: str) -> str:
        for candidate in self.store.schema:
            if candidate.lower() == name.lower():
                return candidate
        raise _not_found()

    def _url(self, version: str, sobject: str, record_id: str) -> str:
        return f"/services/data/v{version}/sobjects/{sobject}/{record_id}"

    # ---------------------------------------------------------- SOQL

    def _compile(self, soql: str) -> CompiledQuery:
        return compile_query(parse(soql), self.store.schema, self.store.tables, self.store.clock().date())

    def _renderer(self, compiled: CompiledQuery, version: str, include_deleted: bool
                  ) -> Callable[[Row], dict[str, Any]]:
        columns = [(tuple(zip(c.path[:-1], c.objects[:-1], c.objects[1:])), c.path[-1]) for c in compiled.columns]
        render = self._render_object(compiled.sobject.name, columns, version)
        if not compiled.children:
            return render
        children = []
        for child in compiled.children:
            by_parent: dict[str, list[Row]] = {}
            for row in self.store.rows(child.query.sobject.name, include_deleted=include_deleted):
                if row[child.reference] is not None:
                    by_parent.setdefault(row[child.reference], []).append(row)
            children.append((child, by_parent, self._renderer(child.query, version, include_deleted)))

        def with_children(row: Row) -> dict[str, Any]:
            record = render(row)
            for child, by_parent, render_child in children:
                rows = execute(child.query, by_parent.get(row["Id"], []))
                # A parent without matching children gets null, not an empty result, as in Salesforce.
                record[child.relationship] = {"totalSize": len(rows), "done": True,
                                              "records": list(map(render_child, rows))} if rows else None
            return record

        return with_children

    def _render_object(self, sobject: str, columns: list[tuple[tuple[tuple[str, str, str], ...], str]],
                       version: str) -> Callable[[Row], dict[str, Any]]:
        """A function rendering a row as a query record: plain fields in select order, and each relationship as
        a nested record at the place of its first field, as Salesforce lays them out."""
        steps: list[Callable[[dict[str, Any], Row], None]] = []
        run: list[str] = []  # consecutive plain fields, copied in one go
        nested: dict[str, list[tuple[tuple[tuple[str, str, str], ...], str]]] = {}

        def flush() -> None:
            if run:
                names = tuple(run)
                get = itemgetter(*names)
                if len(names) == 1:
                    steps.append(lambda record, row, name=names[0]: record.__setitem__(name, row[name]))
                else:
                    steps.append(lambda record, row: record.update(zip(names, get(row))))
                run.clear()

        for path, leaf in columns:
            if not path:
                run.append(leaf)
                continue
            relationship, owner, target = path[0]
            if relationship not in nested:
                flush()
                nested[relationship] = []
                reference = self.store.schema[owner].relationship(relationship)
                assert reference is not None
                steps.append(self._relation_step(relationship, reference.name, target, nested[relationship], version))
            nested[relationship].append((path[1:], leaf))
        flush()
        prefix = f"/services/data/v{version}/sobjects/{sobject}/"

        def render(row: Row) -> dict[str, Any]:
            record: dict[str, Any] = {"attributes": {"type": sobject, "url": prefix + row["Id"]}}
            for step in steps:
                step(record, row)
            return record

        return render

    def _relation_step(self, relationship: str, reference: str, target: str, columns: list, version: str
                       ) -> Callable[[dict[str, Any], Row], None]:
        table = self.store.tables[target]
        rendered: list[Callable[[Row], dict[str, Any]]] = []  # built on first use: columns is still filling

        def step(record: dict[str, Any], row: Row) -> None:
            if not rendered:
                rendered.append(self._render_object(target, columns, version))
            parent = table.get(row[reference]) if row[reference] else None
            record[relationship] = None if parent is None else rendered[0](parent)

        return step

    def _candidates(self, compiled: CompiledQuery, include_deleted: bool) -> list[Row]:
        """The rows a query must look at: all of them, or those modified since the query's lower bound."""
        since = max((value for name, value in compiled.lower_bounds if name in MODSTAMP_BOUNDED), default=None)
        return self.store.rows(compiled.sobject.name, include_deleted=include_deleted, modified_since=since)

    def _batch_size(self, request: Request, default: int) -> int:
        match = re.search(r"batchSize\s*=\s*(\d+)", request.headers.get("sforce-query-options", ""))
        if match is None:
            return default
        return min(max(int(match.group(1)), MIN_BATCH_SIZE), DEFAULT_BATCH_SIZE)

    def _page(self, cursor: _Cursor, offset: int, batch_size: int, version: str) -> Response:
        end = min(offset + batch_size, len(cursor.rows))
        body: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if not body["done"]:
            body["nextRecordsUrl"] = f"/services/data/v{version}/query/{cursor.id}-{end}"
        body["records"] = list(map(cursor.render, cursor.rows[offset:end]))
        return _json(body)

    async def query(self, request: Request, *, include_deleted: bool) -> Response:
        soql = request.query_params.get("q")
        if not soql:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        compiled = self._compile(soql)
        rows = execute(compiled, self._candidates(compiled, include_deleted))
        if compiled.query.count_only:
            return _json({"totalSize": len(rows), "done": True, "records": []})
        batch_size = self._batch_size(request, DEFAULT_BATCH_SIZE)
        version = request.path_params["version"]
        cursor = _Cursor(salesforce_id("01g", self._next_serial()), rows, batch_size,
                         self._renderer(compiled, version, include_deleted))
        if len(rows) > batch_size:
            with self._lock:
                self._cursors[cursor.id] = cursor
                while len(self._cursors) > CURSORS_PER_USER:
                    self._cursors.popitem(last=False)
        return self._page(cursor, 0, batch_size, version)

    async def query_more(self, request: Request) -> Response:
        cursor_id, _, offset = request.path_params["locator"].rpartition("-")
        with self._lock:
            cursor = self._cursors.get(cursor_id)
            if cursor is not None:
                self._cursors.move_to_end(cursor_id)
        if cursor is None or not offset.isdigit() or int(offset) > len(cursor.rows):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        batch_size = self._batch_size(request, cursor.batch_size)
        return self._page(cursor, int(offset), batch_size, request.path_params["version"])

    # ---------------------------------------------------------- metadata

    async def versions(self, request: Request) -> Response:
        top = int(float(self.api_version))
        return _json([{"label": f"v{v}.0", "url": f"/services/data/v{v}.0", "version": f"{v}.0"}
                      for v in range(int(OLDEST_VERSION), top + 1)])

    async def resources(self, request: Request) -> Response:
        base = f"/services/data/v{request.path_params['version']}"
        return _json({name: f"{base}/{name}" for name in ("limits", "query", "queryAll", "sobjects", "jobs/query",
                                                          "composite", "ui-api")})

    async def limits(self, request: Request) -> Response:
        remaining = self.budget.limit - self.budget.used
        return _json({
            "DailyApiRequests": {"Max": self.budget.limit, "Remaining": remaining},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000 - len(self._jobs)},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
        })

    async def describe_global(self, request: Request) -> Response:
        version = request.path_params["version"]
        return _json({"encoding": "UTF-8", "maxBatchSize": COLLECTION_LIMIT, "sobjects": [
            {"name": o.name, "label": o.label, "keyPrefix": o.key_prefix, "custom": False, "queryable": True,
             "createable": o.name in WRITABLE_OBJECTS, "updateable": o.name in WRITABLE_OBJECTS,
             "deletable": o.name in WRITABLE_OBJECTS, "replicateable": True, "retrieveable": True,
             "urls": {"sobject": f"/services/data/v{version}/sobjects/{o.name}",
                      "describe": f"/services/data/v{version}/sobjects/{o.name}/describe"}}
            for o in self.store.schema.values()]})

    def _picklist(self, sobject: str, field_name: str) -> list[tuple[str, str]]:
        """(value, label) pairs of one picklist field."""
        store = self.store
        if (sobject, field_name) in (("Opportunity", "StageName"), ("OpportunityHistory", "StageName")):
            return [(s.api_name, s.label) for s in store.picklist_values()]
        if field_name == "CurrencyIsoCode":
            return [(c, c) for c in store.currencies]
        if field_name == "ForecastCategory":
            return [(v, v) for v in ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")]
        standard = _STANDARD_PICKLISTS.get((sobject, field_name))
        if standard is not None:
            return [(v, v) for v in standard]
        seen = sorted({row[field_name] for row in store.tables[sobject].values() if row[field_name] is not None})
        return [(v, v) for v in seen]

    async def describe(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        version = request.path_params["version"]
        definition = self.store.schema[sobject]
        writable = sobject in WRITABLE_OBJECTS
        fields = []
        for f in definition.fields.values():
            picklist = [{"active": True, "defaultValue": False, "label": label, "validFor": None, "value": value}
                        for value, label in self._picklist(sobject, f.name)] if f.type == "picklist" else []
            fields.append({
                "name": f.name, "label": f.label, "type": f.type, "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
                "length": f.length, "precision": 18 if f.type == "currency" else 3 if f.type == "percent" else 0,
                "scale": 2 if f.type == "currency" else 0, "nillable": f.nillable,
                "createable": f.createable and writable, "updateable": f.updateable and writable,
                "custom": f.name.endswith("__c"), "externalId": f.external_id, "idLookup": f.external_id or
                f.name == "Id", "unique": False, "calculated": False, "filterable": True, "sortable": True,
                "groupable": f.type not in ("currency", "double", "percent", "datetime"),
                "defaultedOnCreate": not f.nillable and not f.createable,
                "referenceTo": [f.reference_to] if f.reference_to else [], "relationshipName": f.relationship,
                "picklistValues": picklist, "restrictedPicklist": f.name in ("StageName", "CurrencyIsoCode"),
                "compoundFieldName": _compound_field(sobject, f.name), "nameField": f.name == "Name",
                "deprecatedAndHidden": False,
            })
        record_types = []
        if sobject == "Opportunity":
            for process in self.store.processes.values():
                row = self.store.tables["RecordType"][process.record_type_id]
                record_types.append({
                    "active": True, "available": True, "defaultRecordTypeMapping": process.is_default,
                    "developerName": row["DeveloperName"], "master": False, "name": process.name,
                    "recordTypeId": process.record_type_id,
                    "urls": {"layout": f"/services/data/v{version}/sobjects/Opportunity/describe/layouts/"
                                       f"{process.record_type_id}"}})
        record_types.append({"active": True, "available": True, "defaultRecordTypeMapping": not record_types,
                             "developerName": "Master", "master": True, "name": "Master",
                             "recordTypeId": MASTER_RECORD_TYPE_ID, "urls": {
                                 "layout": f"/services/data/v{version}/sobjects/{sobject}/describe/layouts/"
                                           f"{MASTER_RECORD_TYPE_ID}"}})
        base = f"/services/data/v{version}/sobjects/{sobject}"
        return _json({
            "name": sobject, "label": definition.label, "labelPlural": definition.label + "s",
            "keyPrefix": definition.key_prefix, "custom": False, "queryable": True, "retrieveable": True,
            "replicateable": True, "searchable": True, "createable": writable, "updateable": writable,
            "deletable": writable, "undeletable": writable, "mergeable": sobject in ("Account", "Contact"),
            "layoutable": True, "triggerable": True, "fields": fields, "recordTypeInfos": record_types,
            "childRelationships": [{"childSObject": child, "field": reference, "relationshipName": name,
                                    "cascadeDelete": child != "Opportunity", "deprecatedAndHidden": False}
                                   for name, (child, reference) in definition.children.items()], "urls": {"sobject": base, "describe": f"{base}/describe",
                                              "rowTemplate": f"{base}/{{ID}}"},
        })

    async def picklist_values(self, request: Request) -> Response:
        """The UI API's per-record-type picklist values: where Salesforce exposes each sales process's stages."""
        sobject = self._object(request.path_params["sobject"])
        record_type_id = request.path_params["record_type_id"]
        only = request.path_params.get("field")
        if record_type_id != MASTER_RECORD_TYPE_ID and record_type_id not in self.store.processes:
            raise _not_found()
        version = request.path_params["version"]
        base = f"/services/data/v{version}/ui-api/object-info/{sobject}/picklist-values/{record_type_id}"
        values: dict[str, Any] = {}
        for f in self.store.schema[sobject].fields.values():
            if f.type != "picklist" or (only is not None and f.name.lower() != only.lower()):
                continue
            options = self._picklist(sobject, f.name)
            if f.name == "StageName" and record_type_id in self.store.processes:
                allowed = set(self.store.processes[record_type_id].stages)
                options = [option for option in options if option[0] in allowed]
            values[f.name] = {"controllerValues": {}, "defaultValue": None, "eTag": secrets.token_hex(16),
                              "url": f"{base}/{f.name}", "values": [
                                  {"attributes": None, "label": label, "validFor": [], "value": value}
                                  for value, label in options]}
        if only is not None:
            if not values:
                raise _not_found()
            return _json(next(iter(values.values())))
        return _json({"eTag": secrets.token_hex(16), "picklistFieldValues": values})

    # ---------------------------------------------------------- replication (getUpdated / getDeleted)

    def _window(self, request: Request) -> tuple[datetime, datetime, datetime]:
        try:
            start = parse_datetime_literal(request.query_params["start"])
            end = parse_datetime_literal(request.query_params["end"])
        except KeyError:
            raise ApiError(400, "MISSING_ARGUMENT", "start and end must both be specified") from None
        except ValueError:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "start and end must be ISO 8601 datetimes") from None
        # Salesforce ignores seconds (both ends are rounded down to the minute) and reads no offset as UTC.
        start, end = (moment.replace(second=0, microsecond=0, tzinfo=moment.tzinfo or UTC) for moment in (start, end))
        now = self.store.clock()
        if end < start:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "EndDate before StartDate")
        if start < now - REPLICATION_WINDOW:
            raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
        return start, min(end, now.replace(second=0, microsecond=0)), now

    async def deleted(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        start, end, now = self._window(request)
        earliest = (now - DELETED_RETENTION).replace(second=0, microsecond=0)
        kept = [d for d in self.store.deleted_between(max(start, earliest), end)
                if self.store.tables[sobject].get(d.id) is not None]
        return _json({"deletedRecords": [{"id": d.id, "deletedDate": d.deleted_at} for d in kept],
                      "earliestDateAvailable": format_datetime(earliest), "latestDateCovered": format_datetime(end)})

    async def updated(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        start, end, _ = self._window(request)
        return _json({"ids": self.store.updated_between(sobject, start, end),
                      "latestDateCovered": format_datetime(end)})

    # ---------------------------------------------------------- single records

    async def get_record(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        row = self.store.get(sobject, request.path_params["record_id"])
        if row is None:
            raise _not_found()
        if row.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        version = request.path_params["version"]
        return _json({"attributes": {"type": sobject, "url": self._url(version, sobject, row["Id"])}, **row})

    def _raise_record_errors(self, errors: list[RecordError]) -> None:
        raise ApiError(400, errors[0].status_code, errors[0].message, list(errors[0].fields))

    async def create_record(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        write = self.store.prepare_create(sobject, await self._record_body(request))
        if write.errors:
            self._raise_record_errors(write.errors)
        self.store.commit([write])
        return _json({"id": write.record_id, "success": True, "errors": []}, 201)

    async def update_record(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        record_id = request.path_params["record_id"]
        if self.store.get(sobject, record_id) is None:
            raise _not_found()
        write = self.store.prepare_update(sobject, record_id, await self._record_body(request))
        if write.errors:
            if write.errors[0].status_code == "ENTITY_IS_DELETED":
                raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
            self._raise_record_errors(write.errors)
        self.store.commit([write])
        return Response(status_code=204)

    async def delete_record(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        row = self.store.get(sobject, request.path_params["record_id"])
        if row is None or sobject not in WRITABLE_OBJECTS:
            raise _not_found()
        if row.get("IsDeleted"):
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", [])
        self.store.delete_record(sobject, row["Id"])
        return Response(status_code=204)

    async def upsert_record(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        field_name = self._external_id_field(sobject, request.path_params["field"])
        value = request.path_params["value"]
        try:
            write = self._prepare_upsert(sobject, field_name, value, await self._record_body(request), request)
        except _SeveralMatches as several:
            return _json(several.urls, 300)
        if write.errors:
            self._raise_record_errors(write.errors)
        self.store.commit([write])
        return _json({"id": write.record_id, "success": True, "errors": [], "created": write.created},
                     201 if write.created else 200)

    async def _record_body(self, request: Request) -> dict[str, Any]:
        body = await self._body(request)
        if not isinstance(body, dict):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value")
        return body

    def _external_id_field(self, sobject: str, name: str) -> str:
        fdef = self.store.schema[sobject].field(name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise ApiError(400, "NOT_FOUND" if fdef is None else "INVALID_FIELD",
                           f"Provided external ID field does not exist or is not accessible: {name}"
                           if fdef is None else
                           f"Field name provided, {fdef.name} is not an External ID or indexed field for {sobject}")
        return fdef.name

    def _prepare_upsert(self, sobject: str, field_name: str, value: str, values: dict[str, Any],
                        request: Request) -> PreparedWrite:
        matches = ([row] if (row := self.store.get(sobject, value)) is not None and not row.get("IsDeleted") else []) \
            if field_name == "Id" else self.store.find_by_external_id(sobject, field_name, value)
        if len(matches) > 1:
            version = request.path_params["version"]
            raise _SeveralMatches([self._url(version, sobject, r["Id"]) for r in matches])
        values = {k: v for k, v in values.items() if k.lower() != field_name.lower()}
        if matches:
            return self.store.prepare_update(sobject, matches[0]["Id"], values)
        if field_name == "Id":
            return PreparedWrite(sobject, None, None, [RecordError("NOT_FOUND", "Provided external ID field does not "
                                                                   f"exist or is not accessible: {value}", ())])
        return self.store.prepare_create(sobject, {**values, field_name: value})

    # ---------------------------------------------------------- sObject Collections

    async def _collection(self, request: Request) -> tuple[bool, list[dict[str, Any]]]:
        body = await self._body(request)
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize the request: expected {allOrNone, records}")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call")
        for record in records:
            if not isinstance(record, dict):
                raise ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject")
            sobject = (record.get("attributes") or {}).get("type")
            if not sobject:
                raise ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
            if not any(sobject.lower() == name.lower() for name in self.store.schema):
                raise ApiError(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        return bool(body.get("allOrNone", False)), records

    def _finish_collection(self, writes: list[PreparedWrite], all_or_none: bool,
                           upsert: bool = False) -> Response:
        for write in writes:
            if self.faults is not None and self.faults.batch_item_fails() and not write.errors:
                write.errors.append(RecordError(
                    "UNABLE_TO_LOCK_ROW",
                    f"unable to obtain exclusive access to this record or 1 records: {write.record_id or ''}".strip()))
                write.row = None
        failed = any(write.errors for write in writes)
        if not (all_or_none and failed):
            self.store.commit([write for write in writes if not write.errors])
        results = []
        for write in writes:
            if write.errors:
                result: dict[str, Any] = {"success": False, "errors": [e.as_json() for e in write.errors]}
            elif all_or_none and failed:
                result = {"success": False, "errors": [RecordError(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone "
                    "header").as_json()]}
            else:
                result = {"id": write.record_id, "success": True, "errors": []}
            if upsert:
                result["created"] = write.created and not result.get("errors")
            results.append(result)
        return _json(results)

    def _values(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in record.items() if k not in ("attributes", "id", "Id")}

    async def collection_create(self, request: Request) -> Response:
        all_or_none, records = await self._collection(request)
        writes = []
        for record in records:
            sobject = self._object(record["attributes"]["type"])
            values = {k: v for k, v in record.items() if k != "attributes"}
            writes.append(self.store.prepare_create(sobject, values))
        return self._finish_collection(writes, all_or_none)

    async def collection_update(self, request: Request) -> Response:
        all_or_none, records = await self._collection(request)
        writes = []
        for record in records:
            sobject = self._object(record["attributes"]["type"])
            record_id = record.get("id") or record.get("Id")
            writes.append(self.store.prepare_update(sobject, None if record_id is None else str(record_id),
                                                    self._values(record)))
        return self._finish_collection(writes, all_or_none)

    async def collection_delete(self, request: Request) -> Response:
        """``DELETE composite/sobjects?ids=…&allOrNone=…``: to the recycle bin, a result per id in order."""
        ids = [i for i in request.query_params.get("ids", "").split(",") if i]
        if not ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids not specified")
        if len(ids) > COLLECTION_LIMIT:
            raise ApiError(400, "EXCEEDED_ID_LIMIT",
                           f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into this call")
        all_or_none = request.query_params.get("allOrNone", "false").lower() == "true"
        found: list[tuple[str, str | None, RecordError | None]] = []
        for record_id in ids:
            sobject = next((o.name for o in self.store.schema.values() if record_id.startswith(o.key_prefix)), None)
            row = self.store.get(sobject, record_id) if sobject in WRITABLE_OBJECTS else None
            if row is None:
                found.append((record_id, None, RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")))
            elif row.get("IsDeleted"):
                found.append((record_id, None, RecordError("ENTITY_IS_DELETED", "entity is deleted")))
            else:
                found.append((row["Id"], sobject, None))
        failed = any(error for _, _, error in found)
        results = []
        for record_id, sobject, error in found:
            if error is not None:
                results.append({"id": record_id, "success": False, "errors": [error.as_json()]})
            elif all_or_none and failed:
                results.append({"id": record_id, "success": False, "errors": [RecordError(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK", "Record rolled back because not all records were valid "
                    "and the request was using AllOrNone header").as_json()]})
            else:
                self.store.delete_record(sobject, record_id)  # type: ignore[arg-type]
                results.append({"id": record_id, "success": True, "errors": []})
        return _json(results)

    async def collection_upsert(self, request: Request) -> Response:
        sobject = self._object(request.path_params["sobject"])
        field_name = self._external_id_field(sobject, request.path_params["field"])
        all_or_none, records = await self._collection(request)
        writes = []
        for record in records:
            value = next((v for k, v in record.items() if k.lower() == field_name.lower()), None)
            if value in (None, ""):
                writes.append(PreparedWrite(sobject, None, None, [RecordError(
                    "MISSING_ARGUMENT", f"{field_name} not specified", (field_name,))]))
                continue
            try:
                writes.append(self._prepare_upsert(sobject, field_name, str(value), self._values(record), request))
            except _SeveralMatches as several:  # inside a collection, a per-record error
                writes.append(PreparedWrite(sobject, None, None, [RecordError(
                    "DUPLICATE_EXTERNAL_ID", f"{field_name}: more than one record found for external id field: "
                    f"{several}", (field_name,))]))
        return self._finish_collection(writes, all_or_none, upsert=True)

    # ---------------------------------------------------------- Bulk API 2.0 query jobs

    async def create_bulk_query(self, request: Request) -> Response:
        body = await self._body(request)
        if not isinstance(body, dict) or body.get("operation") not in ("query", "queryAll") or not body.get("query"):
            raise ApiError(400, "INVALIDJOB", "InvalidJob : operation and query are required")
        delimiter = body.get("columnDelimiter", "COMMA")
        line_ending = body.get("lineEnding", "LF")
        if delimiter not in _DELIMITERS or line_ending not in _LINE_ENDINGS:
            raise ApiError(400, "INVALIDJOB", "InvalidJob : unsupported columnDelimiter or lineEnding")
        compiled = self._compile(body["query"])
        if compiled.query.count_only or compiled.query.offset or compiled.children:
            raise ApiError(400, "API_ERROR", "Bulk API 2.0 queries do not support COUNT(), OFFSET or "
                                             "parent-child subqueries")
        rows = execute(compiled, self._candidates(compiled, body["operation"] == "queryAll"))
        now = self.store.now()
        job_id = salesforce_id("750", self._next_serial())
        info = {"id": job_id, "operation": body["operation"], "object": compiled.sobject.name,
                "createdById": self.store.integration_user_id, "createdDate": now, "systemModstamp": now,
                "state": "UploadComplete", "concurrencyMode": "Parallel", "contentType": "CSV",
                "apiVersion": float(request.path_params["version"]), "lineEnding": line_ending,
                "columnDelimiter": delimiter}
        with self._lock:
            self._jobs[job_id] = _BulkQueryJob(info, compiled, rows)
        return _json(info)

    def _job(self, request: Request) -> _BulkQueryJob:
        job = self._jobs.get(request.path_params["job_id"])
        if job is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        return job

    async def get_bulk_query(self, request: Request) -> Response:
        job = self._job(request)
        with self._lock:
            # Each poll moves the job one state on, as a real job does while it runs.
            if job.info["state"] == "UploadComplete":
                job.info["state"] = "InProgress"
            elif job.info["state"] == "InProgress":
                job.info.update(state="JobComplete", numberRecordsProcessed=len(job.rows), retries=0,
                                totalProcessingTime=max(1, len(job.rows) // 100))
            job.info["systemModstamp"] = self.store.now()
        return _json({**job.info, "jobType": "V2Query"})

    async def abort_bulk_query(self, request: Request) -> Response:
        job = self._job(request)
        body = await self._body(request)
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOB", "InvalidJob : a query job can only be set to Aborted")
        if job.info["state"] == "JobComplete":
            raise ApiError(400, "INVALIDJOB", "InvalidJob : the job is already complete")
        job.info["state"] = "Aborted"
        return _json(job.info)

    async def delete_bulk_query(self, request: Request) -> Response:
        self._job(request)
        with self._lock:
            self._jobs.pop(request.path_params["job_id"], None)
        return Response(status_code=204)

    async def bulk_query_results(self, request: Request) -> Response:
        job = self._job(request)
        if job.info["state"] != "JobComplete":
            raise ApiError(400, "INVALIDJOB", f"InvalidJob : job {job.info['id']} is not complete: "
                                              f"state {job.info['state']}")
        try:
            offset = int(base64.b64decode(request.query_params.get("locator", "") + "==").decode() or 0)
            max_records = int(request.query_params.get("maxRecords", _BULK_QUERY_PAGE))
        except (ValueError, binascii.Error):
            raise ApiError(400, "INVALIDLOCATOR", "InvalidLocator : the locator is not valid") from None
        if max_records < 1 or offset > len(job.rows):
            raise ApiError(400, "INVALIDLOCATOR", "InvalidLocator : the locator is not valid")
        chunk = job.rows[offset : offset + max_records]
        end = offset + len(chunk)
        locator = base64.b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.rows) else "null"
        return Response(self._csv(job, chunk), 200, {"Sforce-Locator": locator,
                                                     "Sforce-NumberOfRecords": str(len(chunk))},
                        "text/csv")

    def _csv(self, job: _BulkQueryJob, rows: list[Row]) -> str:
        out = io.StringIO()
        writer = csv.writer(out, delimiter=_DELIMITERS[job.info["columnDelimiter"]],
                            lineterminator=_LINE_ENDINGS[job.info["lineEnding"]], quoting=csv.QUOTE_ALL)
        columns = job.query.columns
        writer.writerow([".".join(c.path) for c in columns])
        for row in rows:
            writer.writerow([_csv_value(c.field.type, c.get(row)) for c in columns])
        return out.getvalue()

    # ---------------------------------------------------------- OAuth2

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        instance_url = f"{request.url.scheme}://{request.url.netloc}"
        try:
            return _json(self.store.auth.token_response(form, instance_url))
        except OAuthError as error:
            return _json(error.body, 400)

    async def revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        self.store.auth.revoke(form.get("token") or request.query_params.get("token", ""))
        return Response(status_code=200)

    # ---------------------------------------------------------- faults as Salesforce shows them

    def server_error(self) -> Response:
        error_id = f"{secrets.randbelow(10**10)}-{secrets.randbelow(10**5)} ({-secrets.randbelow(10**9)})"
        return _json([{"errorCode": "UNKNOWN_EXCEPTION",
                       "message": f"An unexpected error occurred. Please include this ErrorId if you contact "
                                  f"support: {error_id}"}], 500, {"Sforce-Limit-Info": self._limit_info()})

    def too_many_requests(self, retry_after_s: float | None) -> Response:
        # Salesforce has no 429 and no Retry-After: concurrent long-running requests over the org's limit get this.
        return _json([{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                     403, {"Sforce-Limit-Info": self._limit_info()})


def _csv_value(field_type: str, value: Any) -> str:
    """A value as Bulk API 2.0 writes it into CSV: null empty, booleans lower-case, datetimes with ``Z``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if field_type == "datetime":
        return value.replace("+0000", "Z")
    return str(value)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return _json([{"errorCode": "METHOD_NOT_ALLOWED",
                       "message": f"HTTP Method '{request.method}' not allowed. Allowed are "
                                  f"{(exc.headers or {}).get('Allow', 'GET')}"}], 405)
    return _json(_not_found().body, 404)


def create_app(data: SystemData, faults: Faults | None = None, *, api_version: str = "62.0",
               daily_limit: int = 100_000, credentials: SalesforceCredentials | None = None,
               as_of: datetime | None = None, clock: Clock | None = None
               ) -> tuple[ASGIApp, SalesforceStore]:
    """The Salesforce sandbox app for one org's data, and the store holding its records.

    ``daily_limit`` is the org's daily API allocation (Enterprise Edition's base is 100,000).
    ``as_of`` (``World.as_of``) is when the org's clock starts, so the seeded deletions fall
    inside getDeleted's window; it then runs in real time. ``clock`` replaces that clock
    (tests step it by hand).
    """
    store = SalesforceStore(data, credentials=credentials, clock=clock, as_of=as_of)
    api = SalesforceApi(store, faults, api_version=api_version, daily_limit=daily_limit)
    rest = api.rest
    base = "/services/data/v{version}"

    async def query(request: Request) -> Response:
        return await api.query(request, include_deleted=False)

    async def query_all(request: Request) -> Response:
        return await api.query(request, include_deleted=True)

    routes = [Route("/services/oauth2/token", api.token, methods=["POST"]),
              Route("/services/oauth2/revoke", api.revoke, methods=["POST"]),
              Route("/services/data", api.versions, methods=["GET"]),
              Route("/services/data/", api.versions, methods=["GET"])]

    def add(paths: str | tuple[str, ...], handler: Callable[[Request], Awaitable[Response]], *methods: str) -> None:
        for path in (paths,) if isinstance(paths, str) else paths:
            routes.append(Route(base + path, rest(handler), methods=list(methods)))

    add(("", "/"), api.resources, "GET")
    add(("/query", "/query/"), query, "GET")
    add(("/queryAll", "/queryAll/"), query_all, "GET")
    add(("/query/{locator}", "/queryAll/{locator}"), api.query_more, "GET")
    add(("/limits", "/limits/"), api.limits, "GET")
    add(("/sobjects", "/sobjects/"), api.describe_global, "GET")
    add(("/sobjects/{sobject}/describe", "/sobjects/{sobject}/describe/"), api.describe, "GET")
    add(("/sobjects/{sobject}/deleted", "/sobjects/{sobject}/deleted/"), api.deleted, "GET")
    add(("/sobjects/{sobject}/updated", "/sobjects/{sobject}/updated/"), api.updated, "GET")
    add(("/sobjects/{sobject}", "/sobjects/{sobject}/"), api.create_record, "POST")
    add("/sobjects/{sobject}/{record_id}", api.get_record, "GET")
    add("/sobjects/{sobject}/{record_id}", api.update_record, "PATCH")
    add("/sobjects/{sobject}/{record_id}", api.delete_record, "DELETE")
    add("/sobjects/{sobject}/{field}/{value}", api.upsert_record, "PATCH")
    add("/composite/sobjects", api.collection_create, "POST")
    add("/composite/sobjects", api.collection_update, "PATCH")
    add("/composite/sobjects", api.collection_delete, "DELETE")
    add("/composite/sobjects/{sobject}/{field}", api.collection_upsert, "PATCH")
    add(("/jobs/query", "/jobs/query/"), api.create_bulk_query, "POST")
    add("/jobs/query/{job_id}", api.get_bulk_query, "GET")
    add("/jobs/query/{job_id}", api.abort_bulk_query, "PATCH")
    add("/jobs/query/{job_id}", api.delete_bulk_query, "DELETE")
    add("/jobs/query/{job_id}/results", api.bulk_query_results, "GET")
    add(("/ui-api/object-info/{sobject}/picklist-values/{record_type_id}",
         "/ui-api/object-info/{sobject}/picklist-values/{record_type_id}/{field}"), api.picklist_values, "GET")

    app: ASGIApp = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    # Always wrapped: the middleware also tells the store which request it serves (its write log).
    return FaultMiddleware(app, faults or Faults(), api), store

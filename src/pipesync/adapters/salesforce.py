"""Salesforce Opportunities: SOQL through simple-salesforce, Bulk API 2.0 for large reads.

- Incremental on ``SystemModstamp`` (which also moves on system-driven changes) through
  ``queryAll``, so deleted rows arrive too: ``IsDeleted`` rows become deletions, and a
  ``MasterRecordId`` on one becomes an alias to the surviving record.
- A read counts its rows first (``SELECT COUNT()``); above ``bulk_threshold`` it runs as a
  Bulk API 2.0 ``queryAll`` job instead of REST batches of 2,000.
- Pipelines are record types (their sales process picks the stages); an org without
  record types has one pipeline, ``master``.
- Every value placed in SOQL goes through ``format_soql``.
- The daily API allocation is watched through ``Sforce-Limit-Info``: the read stops,
  resumably, before the remaining calls fall under ``quota_reserve``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field as dataclass_field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from simple_salesforce import format_soql

from pipesync.adapters.base import Adapter
from pipesync.adapters.changes import (
    ALREADY_IN_PLACE, TASK_KINDS, applied, change_key, created_keys, custom_name, custom_names, failed, no_such_field, origin_marks,
    origin_tag, tagged_body, target_id, task_id_of, task_values, wanted, with_valid_ids, write_once,
)
from pipesync.adapters.lookups import Lookup
from pipesync.adapters.metadata import Metadata
from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.salesforce_client import SalesforceClient
from pipesync.adapters.salesforce_options import SalesforceOptions
from pipesync.adapters.watermark import Watermark
from pipesync.adapters.values import boolean, calendar_date, chunks, decimal_or_none, domain_of, instant, wire
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, ManualStepsRequired, SourceError
from pipesync.model import (
    Change, ChangeKind, ChangeResult, Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, FieldInfo, FieldKind,
    Owner, Page, RawDeal, RawStageChange,
)

SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
NO_RECORD_TYPE = "master"  # the pipeline of opportunities without a record type
COLLECTION_MAX = 200  # sObject Collections
IN_LIST_MAX = 200  # ids per IN (...) clause, to keep GET URLs short
LISTING_SKEW = timedelta(minutes=1)
HISTORY_QUERY = "SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory"
BASE_FIELDS = [
    "Id", "Name", "Amount", "StageName", "CloseDate", "CreatedDate", "LastModifiedDate", "SystemModstamp",
    "Probability", "OwnerId", "Owner.Name", "Owner.Email", "AccountId", "Account.Name", "Account.Website",
    "LeadSource", "NextStep", "LastActivityDate", "IsDeleted", "IsClosed", "IsWon",
]
OPTIONAL_FIELDS = ["CurrencyIsoCode", "RecordTypeId", "MasterRecordId"]
# canonical field → Opportunity field, for writes (lost_reason's field is an option)
WRITABLE = {
    "name": "Name", "amount": "Amount", "currency": "CurrencyIsoCode", "close_date": "CloseDate",
    "source_stage": "StageName", "pipeline": "RecordTypeId", "probability": "Probability",
    "next_step": "NextStep", "lead_source": "LeadSource", "owner_id": "OwnerId",
}


# describe type → what pipesync can write into it
_KINDS: dict[str | None, FieldKind] = {
    "string": "text", "textarea": "text", "combobox": "text", "email": "text", "phone": "text", "url": "url",
    "double": "number", "currency": "number", "percent": "number", "int": "number", "date": "date",
    "datetime": "date", "boolean": "boolean",
}
_SETUP_TYPES = {"text": "Text, length 255", "number": "Number, length 16, decimal places 2", "date": "Date",
                "boolean": "Checkbox", "url": "URL", "other": "Text, length 255"}


def _setup_steps(name: str, label: str, kind: str) -> str:
    """What an admin does in Salesforce to create a field (its REST API cannot: that is the Metadata API)."""
    api = name if name.endswith("__c") else f"{name}__c"
    return (f"Salesforce: pipesync cannot create fields through the REST API it uses; create {api} in Setup:\n"
            f"  1. Setup → Object Manager → Opportunity → Fields & Relationships → New\n"
            f"  2. Data type: {_SETUP_TYPES.get(kind, _SETUP_TYPES['text'])} → Next\n"
            f"  3. Field Label: {label}; Field Name: {api.removesuffix('__c')} (API name {api}) → Next\n"
            f"  4. Field-level security: visible (not read-only) for the profile of pipesync's integration user → Next\n"
            f"  5. Page layouts: as you like → Save; then run the plan again")


def _task_to_delete(i: int, change: Change, current: dict[str, Any]) -> str:
    task = task_id_of(change)
    if task is None or not SF_ID.fullmatch(task):
        raise ConfigError(f"{task!r} is not a Salesforce Task id")
    return task


class SalesforceAdapter(Adapter):
    record_noun = "Opportunity"
    write_batch_max = COLLECTION_MAX

    @property
    def writable_fields(self) -> frozenset[str]:  # type: ignore[override]
        """The lost reason only where the org has the field the options name for it."""
        return frozenset(WRITABLE) | ({"lost_reason"} if self._has(self.options.lost_reason_field) else set())

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = opts = SalesforceOptions.model_validate(source.options)
        self.api = SalesforceClient(source, opts)
        self._fields: dict[str, dict[str, Any]] | None = None
        self.metadata = Metadata(opts.metadata_refresh_hours * 3600)
        self._contacts: dict[str, list[str]] = {}
        # Stage history by opportunity: listed whole with a full read, else 200 opportunities per query.
        self.histories = Lookup(self._histories_of, batch=IN_LIST_MAX)
        self._listing: _HistoryListing | None = None

    def close(self) -> None:
        self.api.close()

    @property
    def calls(self) -> int:
        return self.api.calls

    @property
    def rate_limited(self) -> int:
        return self.api.rate_limited

    # ------------------------------------------------------------ schema

    def _describe(self) -> dict[str, dict[str, Any]]:
        if self._fields is None:
            body = self.api.call(lambda sf: sf.Opportunity.describe(), what="describe Opportunity")
            self._fields = {f["name"]: f for f in body.get("fields") or []}
        return self._fields

    def _has(self, name: str | None) -> bool:
        return bool(name) and name in self._describe()

    def _select(self) -> list[str]:
        opts = self.options
        extra = [f for f in [*OPTIONAL_FIELDS, opts.origin_field, opts.lost_reason_field, *opts.external_ref_fields]
                 if self._has(f)]
        return BASE_FIELDS + list(dict.fromkeys(extra))

    # ------------------------------------------------------------ SOQL

    def _query(self, soql: str, *, deleted: bool, what: str) -> Iterator[list[dict[str, Any]]]:
        """Batches of a REST query (``queryAll`` when ``deleted``), following ``nextRecordsUrl``."""
        headers = {"Sforce-Query-Options": f"batchSize={self.options.batch_size}"}
        body = self.api.call(lambda sf: sf.query(soql, include_deleted=deleted, headers=headers), what=what)
        while True:
            yield body.get("records") or []
            if body.get("done", True) or not body.get("nextRecordsUrl"):
                return
            url = body["nextRecordsUrl"]
            body = self.api.call(lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers), what=what)

    def _query_all(self, soql: str, what: str, deleted: bool = False) -> list[dict[str, Any]]:
        return [r for batch in self._query(soql, deleted=deleted, what=what) for r in batch]

    def _count(self, where: str) -> int:
        body = self.api.call(lambda sf: sf.query(f"SELECT COUNT() FROM Opportunity {where}", include_deleted=True),
                             what="count Opportunities")
        return int(body.get("totalSize") or 0)

    def _bulk(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """A Bulk API 2.0 ``queryAll`` job, as batches of rows shaped like REST records."""
        most = self.options.batch_size * 25
        chunks_ = self.api.call(lambda sf: list(sf.bulk2.Opportunity.query_all(soql, max_records=most)),
                                what="Bulk API 2.0 query")
        for text in chunks_:
            yield [_nest(row) for row in csv.DictReader(io.StringIO(text))]

    # ------------------------------------------------------------ discovery

    def resume(self, since: Cursor | None) -> None:
        self.metadata.resume(since)

    def discover(self) -> Discovery:
        stages = self._all_stages()
        record_types = self.metadata.get("record_types", lambda: self._query_all(
            "SELECT Id, Name, DeveloperName, IsActive FROM RecordType WHERE SobjectType = 'Opportunity'",
            what="list Opportunity record types"))
        pipelines = []
        for rt in record_types:
            if not rt.get("IsActive", True):
                continue
            allowed = self.metadata.get(f"stages of {rt['Id']}", lambda: self._stage_values(rt["Id"]))
            own = [s for s in stages if s["ApiName"] in set(allowed)] if allowed is not None else stages
            pipelines.append(DiscoveredPipeline(id=rt["Id"], label=rt["Name"], stages=[_stage(s) for s in own]))
        if not record_types:
            pipelines.append(DiscoveredPipeline(id=NO_RECORD_TYPE, label="All opportunities",
                                                stages=[_stage(s) for s in stages]))
        users = self.metadata.get("users", lambda: self._query_all("SELECT Id, Name, Email FROM User WHERE IsActive = true",
                                                                   what="list users"))
        return Discovery(source=self.name, pipelines=pipelines,
                         owners=[Owner(id=u["Id"], name=u.get("Name"), email=u.get("Email")) for u in users])

    def _all_stages(self) -> list[dict[str, Any]]:
        return self.metadata.get("stages", lambda: self._query_all(
            "SELECT Id, ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder "
            "FROM OpportunityStage ORDER BY SortOrder", what="list Opportunity stages"))

    def _stage_values(self, record_type_id: str) -> list[str] | None:
        """The stages a record type's sales process allows (UI API), or None if not served."""
        path = f"ui-api/object-info/Opportunity/picklist-values/{quote(record_type_id, safe='')}/StageName"
        try:
            body = self.api.call(lambda sf: sf.restful(path), what="read a record type's stages")
        except SourceError:
            return None
        return [v["value"] for v in body.get("values") or []]

    # ------------------------------------------------------------ reads

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        yield from self.metadata.carried(self._read(since))

    def _read(self, since: Cursor | None) -> Iterator[Page]:
        mark = Watermark.load((since.value if since else {}).get("mark"))
        full = mark.stamp is None
        where = "" if full else format_soql("WHERE SystemModstamp >= {}", instant(mark.stamp))
        soql = f"SELECT {', '.join(self._select())} FROM Opportunity {where} ORDER BY SystemModstamp, Id"
        # A full read lists the whole history when its first page's is asked for
        self._listing = _HistoryListing() if full else None
        if full:
            self._contacts = self._all_contact_roles()
        batches = self._bulk(soql) if self._count(where) > self.options.bulk_threshold else \
            self._query(soql, deleted=True, what="query Opportunities")
        for rows in batches:
            rows = mark.fresh(rows, _record_id, _stamp)
            mark = mark.advance(rows, _record_id, _stamp, order=instant)
            if self._listing is not None:
                self._listing.page = {r["Id"]: instant(_stamp(r)) for r in rows}
                self.histories.prime(self._listing.take())
            yield self._page(rows, {"mark": mark.dump()}, full)
        yield Page(deals=[], cursor=Cursor(value={"mark": mark.dump()}), snapshot_complete=full)

    def _page(self, rows: list[dict[str, Any]], state: dict[str, Any], full: bool) -> Page:
        live = [r for r in rows if not boolean(r.get("IsDeleted"))]
        if self.metadata.known("stages") and {r.get("StageName") for r in live} - {s["ApiName"] for s in self._all_stages()}:
            self.metadata.refresh()  # a new stage: the next run lists the stages and sales processes again
        gone = [r for r in rows if boolean(r.get("IsDeleted"))]
        contacts = self._contacts if full else self._contact_roles([r["Id"] for r in live])
        return Page(
            deals=[self._raw_deal(r, contacts.get(r["Id"], [])) for r in live],
            deleted_ids=[r["Id"] for r in gone],
            aliases={r["Id"]: r["MasterRecordId"] for r in gone if r.get("MasterRecordId")},
            cursor=Cursor(value=dict(state)),
        )

    def _raw_deal(self, r: dict[str, Any], emails: list[str]) -> RawDeal:
        owner, account = r.get("Owner") or {}, r.get("Account") or {}
        updated_at = instant(r.get("SystemModstamp"))
        probability = decimal_or_none(r.get("Probability"))
        values = {
            "source_id": r["Id"],
            "name": r.get("Name") or "",
            "pipeline": r.get("RecordTypeId") or NO_RECORD_TYPE,
            "source_stage": r.get("StageName"),
            "amount": decimal_or_none(r.get("Amount")),
            "currency": r.get("CurrencyIsoCode") or None,
            "probability": None if probability is None else float(probability) / 100,
            "close_date": calendar_date(r.get("CloseDate")),
            # Closing an opportunity sets its CloseDate to that day (unless someone types another).
            "actual_close_date": calendar_date(r.get("CloseDate")) if boolean(r.get("IsClosed")) else None,
            "created_at": instant(r.get("CreatedDate")),
            "updated_at": instant(r.get("LastModifiedDate")) or updated_at,
            "last_activity_at": _day_start(r.get("LastActivityDate")),
            "owner_email": owner.get("Email"),
            "owner_name": owner.get("Name"),
            "account_name": account.get("Name"),
            "account_domain": domain_of(account.get("Website")),
            "contact_emails": emails,
            "lead_source": r.get("LeadSource"),
            "lost_reason": r.get(self.options.lost_reason_field) if self.options.lost_reason_field else None,
            "next_step": r.get("NextStep"),
            "external_refs": [f"{system}:{r[f]}" for f, system in self.options.external_ref_fields.items() if r.get(f)],
            "is_deleted": bool(boolean(r.get("IsDeleted"))),
        }
        raw = {k: v for k, v in r.items() if k != "attributes"}
        raw.update(origin_marks(r.get(self.options.origin_field) if self.options.origin_field else None, updated_at,
                                self.options.own_write_tolerance_s))
        return RawDeal(source_id=r["Id"], locator=f"Opportunity {r['Id']}", values=values, raw=raw)

    def _all_contact_roles(self) -> dict[str, list[str]]:
        rows = self._query_all("SELECT OpportunityId, Contact.Email, IsPrimary FROM OpportunityContactRole",
                               what="list opportunity contact roles")
        return _emails_by_opportunity(rows)

    def _contact_roles(self, ids: list[str]) -> dict[str, list[str]]:
        rows: list[dict[str, Any]] = []
        for batch in chunks(ids, IN_LIST_MAX):
            rows += self._query_all(format_soql(
                "SELECT OpportunityId, Contact.Email, IsPrimary FROM OpportunityContactRole WHERE OpportunityId IN {}",
                batch), what="read opportunity contact roles")
        return _emails_by_opportunity(rows)

    # ------------------------------------------------------------ history

    def read_stage_history(self, source_ids: Sequence[str]) -> Iterator[RawStageChange]:
        """OpportunityHistory rows where the stage changed: listed whole with a full read (2,000 rows
        per call), else read 200 opportunities per query."""
        if self._listing is not None and self._listing.rows is None:
            self._listing.listed_before = datetime.now(timezone.utc) - LISTING_SKEW
            self._listing.rows = _stage_changes(self._query(HISTORY_QUERY + " ORDER BY OpportunityId, CreatedDate",
                                                            deleted=False, what="list OpportunityHistory"))
            self.histories.prime(self._listing.take())
        for changes in self.histories.resolve(i for i in source_ids if SF_ID.fullmatch(i)).values():
            yield from changes

    def _histories_of(self, ids: list[str]) -> dict[str, list[RawStageChange]]:
        return {i: [] for i in ids} | _stage_changes(self._query(format_soql(
            HISTORY_QUERY + " WHERE OpportunityId IN {} ORDER BY OpportunityId, CreatedDate", ids),
            deleted=False, what="read OpportunityHistory"))

    # ------------------------------------------------------------ writes

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """sObject Collections, 200 records per call, each record tagged with its origin."""
        return with_valid_ids(changes, self.name, SF_ID.fullmatch, "Salesforce record", self._write)

    def _write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """One re-read query and one collection call per kind of change in the batch."""
        results: dict[int, ChangeResult] = {}
        groups: dict[str, list[tuple[int, Change]]] = {}
        for i, c in enumerate(changes):
            if c.kind is ChangeKind.MERGE:
                results[i] = failed(c, "Salesforce cannot merge opportunities (merge exists only for leads, "
                                       "contacts, accounts and cases); mark the duplicate instead")
            else:
                group = c.kind.value if c.kind in (ChangeKind.CREATE, *TASK_KINDS) else "update"
                groups.setdefault(group, []).append((i, c))
        for group, members in groups.items():
            for batch in chunks(members, COLLECTION_MAX):
                results.update(self._create_batch(batch) if group == ChangeKind.CREATE.value else self._send(group, batch))
        return [results[i] for i in range(len(changes))]

    def _send(self, group: str, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        if group == ChangeKind.DELETE_TASK.value:
            return write_once(batch, noun=self.record_noun, reread=lambda todo: {i: {} for i, _ in todo},
                              prepare=_task_to_delete, send=self._delete_tasks)
        tasks = group == ChangeKind.CREATE_TASK.value

        def reread(todo: Sequence[tuple[int, Change]]) -> dict[int, dict[str, Any] | None]:
            rows = self._rows([target_id(c, self.name) for _, c in todo], custom_names(c for _, c in todo), tasks)
            return {i: self._current_values(row, c.fields) if (row := rows.get(target_id(c, self.name))) else None
                    for i, c in todo}

        return write_once(batch, noun=self.record_noun, reread=reread,
                          prepare=self._task_record if tasks else self._update_record,
                          send=lambda pending: self._collection(pending, "POST" if tasks else "PATCH"))

    def _update_record(self, i: int, change: Change, current: dict[str, Any]) -> dict[str, Any]:
        return {"attributes": {"type": "Opportunity"}, "id": target_id(change, self.name),
                **self._fields_for(change, current["_row"])}

    def _task_record(self, i: int, change: Change, current: dict[str, Any]) -> dict[str, Any] | ChangeResult:
        key = change_key(change)
        made = next((t["Id"] for t in current["_tasks"] if key in (t.get("Description") or "")), None)
        if made:
            return applied(change, new_source_id=made, reason=ALREADY_IN_PLACE)
        values = task_values(change)
        return {"attributes": {"type": "Task"}, "WhatId": target_id(change, self.name),
                "OwnerId": current["_row"].get("OwnerId"), "Subject": str(values["subject"])[:255],
                "Description": tagged_body(change), "ActivityDate": wire(values.get("due_date")),
                "Status": "Not Started"}

    def _collection(self, pending: list[tuple[int, Change, dict[str, Any]]], method: str) -> dict[int, ChangeResult]:
        """One sObject Collections call; never replayed blindly (``write_once`` re-reads first)."""
        records = [record for _, _, record in pending]
        answer = self.api.call(lambda sf: sf.restful("composite/sobjects", method=method,
                                                     json={"allOrNone": False, "records": records}),
                               what="create Tasks" if method == "POST" else "update Opportunities", idempotent=False)
        return {i: applied(c, new_source_id=item.get("id") if method == "POST" else None) if item.get("success")
                else failed(c, _errors(item)) for (i, c, _), item in zip(pending, answer)}

    def _delete_tasks(self, pending: list[tuple[int, Change, str]]) -> dict[int, ChangeResult]:
        ids = ",".join(task for _, _, task in pending)
        answer = self.api.call(lambda sf: sf.restful("composite/sobjects", method="DELETE",
                                                     params={"ids": ids, "allOrNone": "false"}),
                               what="delete Tasks", idempotent=False)
        results = {}
        for (i, c, _), item in zip(pending, answer):
            gone = any(e.get("statusCode") == "ENTITY_IS_DELETED" for e in item.get("errors") or [])
            results[i] = applied(c) if item.get("success") else \
                applied(c, reason=ALREADY_IN_PLACE) if gone else failed(c, _errors(item))
        return results

    # ------------------------------------------------------------ current values and fields

    def _custom_api(self, name: str) -> str | None:
        """The API name of an Opportunity field named ``name`` (any case), if the org has it."""
        return next((f for f in self._describe() if f.lower() == name.lower()), None)

    def _rows(self, ids: list[str], custom: list[str], tasks: bool = False) -> dict[str, dict[str, Any]]:
        """Opportunities by id, 200 per query, with the custom fields the org has (and their live tasks)."""
        extra = [api for name in custom if (api := self._custom_api(name))]
        select = list(dict.fromkeys(self._select() + extra)) + (["(SELECT Id, Description FROM Tasks)"] if tasks else [])
        rows: dict[str, dict[str, Any]] = {}
        for batch in chunks([i for i in dict.fromkeys(ids) if SF_ID.fullmatch(i)], IN_LIST_MAX):
            found = self._query_all(format_soql(f"SELECT {', '.join(select)} FROM Opportunity WHERE Id IN {{}}", batch),
                                    what="read Opportunities before writing")
            for r in found:
                rows[r["Id"]] = rows[r["Id"][:15]] = r  # a 15-character id reads the same record
        return rows

    def _current_values(self, row: dict[str, Any], fields: Sequence[Any]) -> dict[str, Any]:
        """Canonical values and the ``custom:`` fields named, as a change compares them."""
        values = self._raw_deal(row, []).values
        for f in fields:
            name = getattr(f, "field", f)
            if (custom := custom_name(name)) is not None and (api := self._custom_api(custom)):
                values[name] = row.get(api)
        values["_row"] = row
        values["_tasks"] = ((row.get("Tasks") or {}).get("records")) or []
        return values

    def read_current(self, source_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        rows = self._rows(list(source_ids), custom_names(fields=fields))
        wanted_ = [*fields, "updated_at"]
        return {sid: {f: v for f, v in self._current_values(row, fields).items() if f in wanted_}
                for sid in source_ids if (row := rows.get(sid))}

    def deal_fields(self) -> list[FieldInfo]:
        """From describe, read afresh (a field an admin just added is there)."""
        self._fields = None
        return [FieldInfo(name=f["name"], label=f.get("label") or f["name"], kind=_KINDS.get(f.get("type"), "other"),
                          writable=bool(f.get("updateable")), custom=bool(f.get("custom")))
                for f in self._describe().values()]

    def create_field(self, name: str, label: str, kind: FieldKind) -> FieldInfo:
        raise ManualStepsRequired(_setup_steps(name, label, kind))

    def _fields_for(self, change: Change, row: dict[str, Any] | None, key: str | None = None) -> dict[str, Any]:
        values = wanted(change)
        if change.kind is ChangeKind.CLOSE_LOST and "source_stage" not in values:
            values["source_stage"] = self._lost_stage(row)
        writable = dict(WRITABLE)
        if self._has(self.options.lost_reason_field):
            writable["lost_reason"] = self.options.lost_reason_field
        fields: dict[str, Any] = {}
        for field, value in values.items():
            if (custom := custom_name(field)) is not None:
                api = self._custom_api(custom)
                if api is None:
                    raise no_such_field("Salesforce", custom, _setup_steps(custom, custom, "text"))
                if not self._describe()[api].get("updateable"):
                    raise ConfigError(f"Salesforce: the Opportunity field {api} is read-only for pipesync's user")
                fields[api] = wire(value)
                continue
            if field not in writable or (writable[field] not in self._describe()):
                raise ConfigError(f"Salesforce: pipesync cannot write the field {field!r} in this org "
                                  f"(writable: {', '.join(k for k, v in writable.items() if v in self._describe())})")
            if field == "pipeline" and value == NO_RECORD_TYPE:
                value = None
            if field == "probability" and value is not None:
                value = float(value) * 100
            fields[writable[field]] = wire(value)
        if not fields:
            raise ConfigError("the change sets no fields")
        if self.options.origin_field:
            if not self._has(self.options.origin_field):
                raise ConfigError(
                    f"Salesforce: the org has no Opportunity field {self.options.origin_field} to tag pipesync's writes "
                    f"(without it a later sync reads them back as user changes); create it as Text(255), or set "
                    f"the source's origin_field option to the field you use")
            fields[self.options.origin_field] = origin_tag(key=key)
        return fields

    def _lost_stage(self, row: dict[str, Any] | None) -> str:
        allowed = None
        if row and row.get("RecordTypeId"):
            allowed = self._stage_values(row["RecordTypeId"])
        for s in self._all_stages():
            if s.get("IsClosed") and not s.get("IsWon") and s.get("IsActive", True) and (allowed is None or s["ApiName"] in allowed):
                return s["ApiName"]
        raise ConfigError("Salesforce: the org has no active closed-lost stage to move the opportunity to")

    def _create_batch(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        """Upsert by external id when the org has one (safe to retry); otherwise create, and after
        a lost response look the records up by their origin tag before sending anything again."""
        results: dict[int, ChangeResult] = {}
        records, pending = [], []
        upsert = self._has(self.options.upsert_field)
        for i, change in batch:
            try:
                fields = self._fields_for(change, None, key=change.deal_key)
            except ConfigError as e:
                results[i] = failed(change, str(e))
                continue
            if upsert:
                fields[self.options.upsert_field] = change.deal_key
            records.append({"attributes": {"type": "Opportunity"}, **fields})
            pending.append((i, change))
        if not records:
            return results
        path = f"composite/sobjects/Opportunity/{self.options.upsert_field}" if upsert else "composite/sobjects"
        method = "PATCH" if upsert else "POST"
        try:
            answer = self.api.call(lambda sf: sf.restful(path, method=method, json={"allOrNone": False, "records": records}),
                                   what="create Opportunities", idempotent=upsert)
        except AmbiguousWrite:
            answer = self._recover_creates(records, path, method)
        except SourceError as e:
            return results | {i: failed(c, str(e)) for i, c in pending}
        for (i, change), item in zip(pending, answer):
            results[i] = applied(change, new_source_id=item.get("id")) if item.get("success") else failed(change, _errors(item))
        return results

    def find_created(self, keys: Sequence[str], since: datetime) -> dict[str, str]:
        """By the external id an upsert wrote, else by the origin tag of Opportunities modified since."""
        if self._has(self.options.upsert_field):
            field = self.options.upsert_field
            return {r[field]: r["Id"] for batch in chunks(list(keys), 200) for r in self._query_all(
                format_soql(f"SELECT Id, {field} FROM Opportunity WHERE {field} IN {{}}", batch), what="find created Opportunities")}
        origin = self.options.origin_field
        if not self._has(origin):
            raise SourceError("Salesforce: the org has neither an external id nor an origin field to find created Opportunities by")
        rows = self._query_all(format_soql(f"SELECT Id, {origin} FROM Opportunity WHERE SystemModstamp >= {{}}", since),
                               what="find created Opportunities")
        return created_keys(((r["Id"], r.get(origin)) for r in rows), keys)

    def currencies(self) -> frozenset[str] | None:
        """The org's active currencies (the Opportunity currency picklist); None in a single-currency org."""
        field = self._describe().get("CurrencyIsoCode") or {}
        return frozenset(v["value"] for v in field.get("picklistValues") or [] if v.get("active", True)) or None

    def _recover_creates(self, records: list[dict[str, Any]], path: str, method: str) -> list[dict[str, Any]]:
        origin = self.options.origin_field
        if not self._has(origin):
            raise AmbiguousWrite("Salesforce: a create's outcome is unknown and the org has no origin field to check it")
        tags = [r[origin] for r in records]
        rows = self._query_all(format_soql(f"SELECT Id, {origin} FROM Opportunity WHERE {origin} IN {{}}",
                                           tags), what="find created Opportunities")
        made = {r[origin]: r["Id"] for r in rows}
        missing = [r for r in records if r[origin] not in made]
        answer = self.api.call(lambda sf: sf.restful(path, method=method, json={"allOrNone": False, "records": missing}),
                               what="create Opportunities", idempotent=False) if missing else []
        resent = iter(answer)
        return [{"success": True, "id": made[r[origin]]} if r[origin] in made else next(resent)
                for r in records]


def _stage(s: dict[str, Any]) -> DiscoveredStage:
    p = s.get("DefaultProbability")
    return DiscoveredStage(id=s["ApiName"], label=s.get("MasterLabel") or s["ApiName"], order=s.get("SortOrder"),
                           probability=None if p is None else float(p) / 100, is_closed=bool(s.get("IsClosed")),
                           is_won=bool(s.get("IsClosed") and s.get("IsWon")), active=bool(s.get("IsActive", True)))


@dataclass
class _HistoryListing:
    """A full read's whole OpportunityHistory, handed out page by page.

    History written while the read runs may be missing from the listing: an opportunity
    modified after it began (clocks a minute apart at most) has its history read by id instead.
    """

    rows: dict[str, list[RawStageChange]] | None = None  # listed on the first page's history
    listed_before: datetime | None = None
    page: dict[str, datetime | None] = dataclass_field(default_factory=dict)  # the current page's ids → SystemModstamp

    def take(self) -> dict[str, list[RawStageChange]]:
        if self.rows is None or self.listed_before is None:
            return {}
        return {i: self.rows.pop(i, []) for i, stamp in self.page.items() if stamp and stamp < self.listed_before}


def _stage_changes(batches: Iterable[list[dict[str, Any]]]) -> dict[str, list[RawStageChange]]:
    """Opportunity id → its stage moves, from OpportunityHistory rows ordered by opportunity and time."""
    out: dict[str, list[RawStageChange]] = {}
    for rows in batches:
        for r in rows:
            oid, stage = r["OpportunityId"], r.get("StageName")
            changes = out.setdefault(oid, [])
            previous = changes[-1].to_stage if changes else None
            if stage and stage != previous:
                changes.append(RawStageChange(source_id=oid, from_stage=previous, to_stage=stage,
                                              changed_at=instant(r["CreatedDate"])))  # type: ignore[arg-type]
    return out


def _record_id(r: dict[str, Any]) -> str:
    return r["Id"]


def _stamp(r: dict[str, Any]) -> Any:
    return r.get("SystemModstamp")


def _emails_by_opportunity(rows: list[dict[str, Any]]) -> dict[str, list[str]]:
    emails: dict[str, list[str]] = {}
    for r in sorted(rows, key=lambda r: not boolean(r.get("IsPrimary"))):
        email = (r.get("Contact") or {}).get("Email")
        if email and email not in emails.setdefault(r["OpportunityId"], []):
            emails[r["OpportunityId"]].append(email)
    return emails


def _day_start(value: Any) -> datetime | None:
    day = calendar_date(value)
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _nest(row: dict[str, str]) -> dict[str, Any]:
    """A Bulk API CSV row (``Account.Name`` columns, empty strings for null) shaped like a REST record."""
    record: dict[str, Any] = {}
    for key, value in row.items():
        target = record
        *parents, leaf = key.split(".")
        for p in parents:
            target = target.setdefault(p, {})
        target[leaf] = value if value != "" else None
    return record


def _errors(item: dict[str, Any]) -> str:
    return "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in item.get("errors") or [])[:400] or "failed"

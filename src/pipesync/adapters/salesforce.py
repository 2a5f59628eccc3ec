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
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from simple_salesforce import format_soql

from pipesync.adapters.base import Adapter
from pipesync.adapters.changes import applied, conflict, failed, with_valid_ids, origin_marks, origin_tag, target_id, wanted
from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.salesforce_client import SalesforceClient
from pipesync.adapters.salesforce_options import SalesforceOptions
from pipesync.adapters.watermark import Watermark
from pipesync.adapters.values import boolean, calendar_date, chunks, decimal_or_none, domain_of, instant, wire
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, SourceError
from pipesync.model import (
    Change, ChangeKind, ChangeResult, Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, Owner, Page, RawDeal,
    RawStageChange,
)

SF_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
NO_RECORD_TYPE = "master"  # the pipeline of opportunities without a record type
COLLECTION_MAX = 200  # sObject Collections
IN_LIST_MAX = 200  # ids per IN (...) clause, to keep GET URLs short
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
    "next_step": "NextStep", "lead_source": "LeadSource",
}


class SalesforceAdapter(Adapter):
    record_noun = "Opportunity"

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = opts = SalesforceOptions.model_validate(source.options)
        self.api = SalesforceClient(source, opts)
        self._fields: dict[str, dict[str, Any]] | None = None
        self._stages: list[dict[str, Any]] | None = None
        self._contacts: dict[str, list[str]] = {}

    def close(self) -> None:
        self.api.close()

    @property
    def calls(self) -> int:
        return self.api.calls

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

    def discover(self) -> Discovery:
        stages = self._all_stages()
        record_types = self._query_all(
            "SELECT Id, Name, DeveloperName, IsActive FROM RecordType WHERE SobjectType = 'Opportunity'",
            what="list Opportunity record types")
        pipelines = []
        for rt in record_types:
            if not rt.get("IsActive", True):
                continue
            allowed = self._stage_values(rt["Id"])
            own = [s for s in stages if s["ApiName"] in allowed] if allowed is not None else stages
            pipelines.append(DiscoveredPipeline(id=rt["Id"], label=rt["Name"], stages=[_stage(s) for s in own]))
        if not record_types:
            pipelines.append(DiscoveredPipeline(id=NO_RECORD_TYPE, label="All opportunities",
                                                stages=[_stage(s) for s in stages]))
        users = self._query_all("SELECT Id, Name, Email FROM User WHERE IsActive = true", what="list users")
        return Discovery(source=self.name, pipelines=pipelines,
                         owners=[Owner(id=u["Id"], name=u.get("Name"), email=u.get("Email")) for u in users])

    def _all_stages(self) -> list[dict[str, Any]]:
        if self._stages is None:
            self._stages = self._query_all(
                "SELECT Id, ApiName, MasterLabel, IsActive, IsClosed, IsWon, DefaultProbability, SortOrder "
                "FROM OpportunityStage ORDER BY SortOrder", what="list Opportunity stages")
        return self._stages

    def _stage_values(self, record_type_id: str) -> set[str] | None:
        """The stages a record type's sales process allows (UI API), or None if not served."""
        path = f"ui-api/object-info/Opportunity/picklist-values/{quote(record_type_id, safe='')}/StageName"
        try:
            body = self.api.call(lambda sf: sf.restful(path), what="read a record type's stages")
        except SourceError:
            return None
        return {v["value"] for v in body.get("values") or []}

    # ------------------------------------------------------------ reads

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        mark = Watermark.load((since.value if since else {}).get("mark"))
        full = mark.stamp is None
        where = "" if full else format_soql("WHERE SystemModstamp >= {}", instant(mark.stamp))
        soql = f"SELECT {', '.join(self._select())} FROM Opportunity {where} ORDER BY SystemModstamp, Id"
        if full:
            self._contacts = self._all_contact_roles()
        batches = self._bulk(soql) if self._count(where) > self.options.bulk_threshold else \
            self._query(soql, deleted=True, what="query Opportunities")
        for rows in batches:
            rows = mark.fresh(rows, _record_id, _stamp)
            mark = mark.advance(rows, _record_id, _stamp, order=instant)
            yield self._page(rows, {"mark": mark.dump()}, full)
        yield Page(deals=[], cursor=Cursor(value={"mark": mark.dump()}), snapshot_complete=full)

    def _page(self, rows: list[dict[str, Any]], state: dict[str, Any], full: bool) -> Page:
        live = [r for r in rows if not boolean(r.get("IsDeleted"))]
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
        """OpportunityHistory rows where the stage changed, 200 opportunities per query."""
        for batch in chunks([i for i in source_ids if SF_ID.fullmatch(i)], IN_LIST_MAX):
            rows = self._query_all(format_soql(
                "SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory WHERE OpportunityId IN {} "
                "ORDER BY OpportunityId, CreatedDate", batch), what="read OpportunityHistory")
            previous: dict[str, str | None] = {}
            for r in rows:
                oid, stage = r["OpportunityId"], r.get("StageName")
                if stage and stage != previous.get(oid):
                    yield RawStageChange(source_id=oid, from_stage=previous.get(oid), to_stage=stage,
                                         changed_at=instant(r["CreatedDate"]))  # type: ignore[arg-type]
                    previous[oid] = stage

    # ------------------------------------------------------------ writes

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """sObject Collections, 200 records per call, each record tagged with its origin."""
        return with_valid_ids(changes, self.name, SF_ID.fullmatch, "Salesforce record", self._write)

    def _write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        results: dict[int, ChangeResult] = {}
        for i, c in enumerate(changes):
            if c.kind is ChangeKind.MERGE:
                results[i] = failed(c, "Salesforce cannot merge opportunities (merge exists only for leads, "
                                       "contacts, accounts and cases); mark the duplicate instead")
        updates = [(i, c) for i, c in enumerate(changes) if i not in results and c.kind is not ChangeKind.CREATE]
        for batch in chunks(updates, COLLECTION_MAX):
            results.update(self._update_batch(batch))
        creates = [(i, c) for i, c in enumerate(changes) if c.kind is ChangeKind.CREATE]
        for batch in chunks(creates, COLLECTION_MAX):
            results.update(self._create_batch(batch))
        return [results[i] for i in range(len(changes))]

    def _current(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self._query_all(format_soql(f"SELECT {', '.join(self._select())} FROM Opportunity WHERE Id IN {{}}", ids),
                               what="read Opportunities before writing")
        return {r["Id"]: r for r in rows}

    def _update_batch(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        results: dict[int, ChangeResult] = {}
        current = self._current([target_id(c, self.name) for _, c in batch])
        records, pending = [], []
        for i, change in batch:
            sid = target_id(change, self.name)
            row = current.get(sid)
            blocked = conflict(change, None if row is None else self._raw_deal(row, []).values, self.record_noun)
            if blocked:
                results[i] = blocked
                continue
            try:
                fields = self._fields_for(change, row)
            except ConfigError as e:
                results[i] = failed(change, str(e))
                continue
            records.append({"attributes": {"type": "Opportunity"}, "id": sid, **fields})
            pending.append((i, change))
        if records:
            try:
                # An update sets values: sending it twice leaves the same record, so it may be retried.
                answer = self.api.call(lambda sf: sf.restful("composite/sobjects", method="PATCH",
                                                             json={"allOrNone": False, "records": records}),
                                       what="update Opportunities")
            except SourceError as e:
                return results | {i: failed(c, str(e)) for i, c in pending}
            for (i, change), item in zip(pending, answer):
                results[i] = applied(change) if item.get("success") else failed(change, _errors(item))
        return results

    def _fields_for(self, change: Change, row: dict[str, Any] | None, key: str | None = None) -> dict[str, Any]:
        values = wanted(change)
        if change.kind is ChangeKind.CLOSE_LOST and "source_stage" not in values:
            values["source_stage"] = self._lost_stage(row)
        writable = dict(WRITABLE)
        if self._has(self.options.lost_reason_field):
            writable["lost_reason"] = self.options.lost_reason_field
        fields: dict[str, Any] = {}
        for field, value in values.items():
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
                fields = self._fields_for(change, None, key=str(i))
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

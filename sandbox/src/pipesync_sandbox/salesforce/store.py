"""The Salesforce sandbox's org: its schema and its records, as Salesforce holds them.

One org per sandbox. Pipelines become what they are in Salesforce: the org has
ONE ``StageName`` picklist (the ``OpportunityStage`` rows); each pipeline is an
Opportunity record type whose sales process (``BusinessProcess``) uses a subset
of those values. The subset is served where Salesforce serves it, by the UI API
(``ui-api/object-info/Opportunity/picklist-values/{recordTypeId}/StageName``).
Stages of different pipelines that share a label are one picklist value, and
the first pipeline to use a label sets its probability and closed/won flags.

Rows are dicts holding every field of their object, valued as the REST API
returns them (datetimes ``…000+0000`` in UTC at second precision, dates
``YYYY-MM-DD``, amounts as floats). A write never mutates a row: it replaces
it, so an open query cursor keeps the snapshot it was opened on.

Deleted records stay in the recycle bin (``IsDeleted``, visible to queryAll) for
good; the delete log behind getDeleted keeps 15 days. Merged-away opportunities
carry ``MasterRecordId`` as the issue asks; standard Salesforce merges only
Accounts, Contacts and Leads, so on a real org that field comes from a dedupe
tool (unverified).

Writes go through :meth:`SalesforceStore.prepare_create` / ``prepare_update``
(which check them the way the org would: read-only fields, restricted
picklists, the record type's sales process, required fields) and
:meth:`SalesforceStore.commit`, so the fields Salesforce maintains itself
(``SystemModstamp``, ``IsClosed``/``IsWon``, ``Probability``,
``OpportunityHistory`` rows) stay consistent however the change arrives.
"""

from __future__ import annotations

import random
from bisect import bisect_left, insort
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import filterfalse
from operator import itemgetter
from typing import Any

from pipesync_sandbox.ids import salesforce_id, salesforce_suffix
from pipesync_sandbox.salesforce.auth import OrgAuth, SalesforceCredentials
from pipesync_sandbox.salesforce.soql import (
    ID_PATTERN,
    FieldDef,
    ObjectDef,
    Row,
    format_datetime,
    parse_datetime_literal,
)
from pipesync_sandbox.world import PipelineDef, SeedDeal, StageDef, SystemData, clock_from
from pipesync_sandbox.writelog import WriteLog

Clock = Callable[[], datetime]

# Ids the org issues itself (history rows, stages, record types, new records) start above any seeded one.
_ORG_ID_BASE = 62**8



def _dt(value: datetime | None) -> str | None:
    """A datetime as Salesforce stores it (second precision), in the REST format."""
    if value is None:
        return None
    if value.tzinfo is not None and value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="seconds")[:19] + ".000+0000"


def _float(value: Decimal | float | None) -> float | None:
    return None if value is None else float(value)


# ---------------------------------------------------------------- schema

def _f(name: str, type_: str, label: str, *, ref: str | None = None, rel: str | None = None, length: int = 0,
       write: bool = False, create_only: bool = False, nillable: bool = True, external_id: bool = False) -> FieldDef:
    return FieldDef(name, type_, label, reference_to=ref, relationship=rel, length=length,
                    createable=write or create_only, updateable=write, nillable=nillable, external_id=external_id)


_AUDIT = (
    _f("CreatedDate", "datetime", "Created Date", nillable=False),
    _f("CreatedById", "reference", "Created By ID", ref="User", rel="CreatedBy", nillable=False),
    _f("LastModifiedDate", "datetime", "Last Modified Date", nillable=False),
    _f("LastModifiedById", "reference", "Last Modified By ID", ref="User", rel="LastModifiedBy", nillable=False),
    _f("SystemModstamp", "datetime", "System Modstamp", nillable=False),
)


def _object(name: str, label: str, prefix: str, *fields: FieldDef, audit: Iterable[FieldDef] = _AUDIT,
            children: dict[str, tuple[str, str]] | None = None) -> ObjectDef:
    all_fields = (_f("Id", "id", f"{label} ID", nillable=False), *fields, *audit)
    return ObjectDef(name, label, prefix, {f.name: f for f in all_fields}, children or {})


SCHEMA: dict[str, ObjectDef] = {o.name: o for o in (
    _object(
        "Opportunity", "Opportunity", "006",
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        _f("MasterRecordId", "reference", "Master Record ID", ref="Opportunity", rel="MasterRecord"),
        _f("AccountId", "reference", "Account ID", ref="Account", rel="Account", write=True),
        _f("RecordTypeId", "reference", "Record Type ID", ref="RecordType", rel="RecordType", write=True),
        _f("Name", "string", "Name", length=120, write=True, nillable=False),
        _f("StageName", "picklist", "Stage", length=255, write=True, nillable=False),
        _f("Amount", "currency", "Amount", write=True),
        _f("Probability", "percent", "Probability (%)", write=True),
        _f("CloseDate", "date", "Close Date", write=True, nillable=False),
        _f("Type", "picklist", "Opportunity Type", length=255, write=True),
        _f("NextStep", "string", "Next Step", length=255, write=True),
        _f("LeadSource", "picklist", "Lead Source", length=255, write=True),
        _f("IsClosed", "boolean", "Closed", nillable=False),
        _f("IsWon", "boolean", "Won", nillable=False),
        _f("ForecastCategoryName", "picklist", "Forecast Category", length=255, write=True),
        _f("CurrencyIsoCode", "picklist", "Opportunity Currency", length=3, write=True, nillable=False),
        _f("OwnerId", "reference", "Owner ID", ref="User", rel="Owner", write=True, nillable=False),
        _f("LastActivityDate", "date", "Last Activity"),
        _f("Loss_Reason__c", "picklist", "Loss Reason", length=255, write=True),
        _f("Pipesync_Origin__c", "string", "Pipesync Origin", length=255, write=True),
        _f("External_Id__c", "string", "External Id", length=255, write=True, external_id=True),
        _f("HubSpot_Deal_Id__c", "string", "HubSpot Deal Id", length=64, write=True, external_id=True),
        children={"OpportunityContactRoles": ("OpportunityContactRole", "OpportunityId"),
                  "OpportunityHistories": ("OpportunityHistory", "OpportunityId"),
                  "Tasks": ("Task", "WhatId")},
    ),
    _object(
        "Task", "Task", "00T",
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        # Polymorphic in Salesforce (any object); the sandbox relates tasks to opportunities only.
        _f("WhatId", "reference", "Related To ID", ref="Opportunity", rel="What", write=True),
        _f("OwnerId", "reference", "Assigned To ID", ref="User", rel="Owner", write=True, nillable=False),
        _f("Subject", "combobox", "Subject", length=255, write=True),
        _f("Description", "textarea", "Description", length=32000, write=True),
        _f("ActivityDate", "date", "Due Date Only", write=True),
        _f("Status", "picklist", "Status", length=255, write=True, nillable=False),
        _f("Priority", "picklist", "Priority", length=40, write=True, nillable=False),
    ),
    _object(
        "OpportunityStage", "Opportunity Stage", "01J",
        _f("MasterLabel", "string", "Master Label", length=255),
        _f("ApiName", "string", "Api Name", length=255),
        _f("IsActive", "boolean", "Is Active"),
        _f("SortOrder", "int", "Sort Order"),
        _f("IsClosed", "boolean", "Closed"),
        _f("IsWon", "boolean", "Won"),
        _f("ForecastCategory", "picklist", "Forecast Type", length=40),
        _f("ForecastCategoryName", "picklist", "Forecast Category", length=40),
        _f("DefaultProbability", "percent", "Probability (%)"),
        _f("Description", "string", "Description", length=255),
    ),
    _object(
        "OpportunityHistory", "Opportunity History", "008",
        _f("OpportunityId", "reference", "Opportunity ID", ref="Opportunity", rel="Opportunity", nillable=False),
        _f("StageName", "picklist", "Stage", length=255),
        _f("Amount", "currency", "Amount"),
        _f("ExpectedRevenue", "currency", "Expected Revenue"),
        _f("CloseDate", "date", "Close Date"),
        _f("Probability", "percent", "Probability (%)"),
        _f("ForecastCategory", "picklist", "Forecast Category", length=40),
        _f("PrevAmount", "currency", "Previous Amount"),
        _f("PrevCloseDate", "date", "Previous Close Date"),
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        audit=(_AUDIT[0], _AUDIT[1], _AUDIT[4]),
    ),
    _object(
        "OpportunityContactRole", "Opportunity Contact Role", "00K",
        _f("OpportunityId", "reference", "Opportunity ID", ref="Opportunity", rel="Opportunity", create_only=True),
        _f("ContactId", "reference", "Contact ID", ref="Contact", rel="Contact", write=True),
        _f("Role", "picklist", "Role", length=40, write=True),
        _f("IsPrimary", "boolean", "Primary", write=True),
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
    ),
    _object(
        "Account", "Account", "001",
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        _f("MasterRecordId", "reference", "Master Record ID", ref="Account", rel="MasterRecord"),
        _f("Name", "string", "Account Name", length=255, write=True, nillable=False),
        _f("Website", "url", "Website", length=255, write=True),
        _f("BillingCountry", "string", "Billing Country", length=80, write=True),
        children={"Opportunities": ("Opportunity", "AccountId"), "Contacts": ("Contact", "AccountId")},
    ),
    _object(
        "Contact", "Contact", "003",
        _f("IsDeleted", "boolean", "Deleted", nillable=False),
        _f("MasterRecordId", "reference", "Master Record ID", ref="Contact", rel="MasterRecord"),
        _f("AccountId", "reference", "Account ID", ref="Account", rel="Account", write=True),
        _f("FirstName", "string", "First Name", length=40, write=True),
        _f("LastName", "string", "Last Name", length=80, write=True, nillable=False),
        _f("Name", "string", "Full Name", length=121),
        _f("Email", "email", "Email", length=80, write=True),
        children={"OpportunityContactRoles": ("OpportunityContactRole", "ContactId")},
    ),
    _object(
        "User", "User", "005",
        _f("Username", "string", "Username", length=80),
        _f("FirstName", "string", "First Name", length=40),
        _f("LastName", "string", "Last Name", length=80),
        _f("Name", "string", "Full Name", length=121),
        _f("Email", "email", "Email", length=128),
        _f("IsActive", "boolean", "Active"),
        _f("UserType", "picklist", "User Type", length=40),
    ),
    _object(
        "RecordType", "Record Type", "012",
        _f("Name", "string", "Record Type Name", length=80),
        _f("DeveloperName", "string", "Record Type Name", length=80),
        _f("NamespacePrefix", "string", "Namespace Prefix", length=15),
        _f("Description", "string", "Description", length=255),
        _f("BusinessProcessId", "reference", "Business Process ID", ref="BusinessProcess", rel="BusinessProcess"),
        _f("SobjectType", "picklist", "SObject Type Name", length=40),
        _f("IsActive", "boolean", "Active"),
    ),
    _object(
        "BusinessProcess", "Business Process", "019",
        _f("Name", "string", "Name", length=80),
        _f("NamespacePrefix", "string", "Namespace Prefix", length=15),
        _f("Description", "string", "Description", length=255),
        _f("TableEnumOrId", "picklist", "Entity Enumeration Or ID", length=40),
        _f("IsActive", "boolean", "Active"),
    ),
)}

WRITABLE_OBJECTS = frozenset({"Opportunity", "Account", "Contact", "OpportunityContactRole", "Task"})
# Fields the org changes on every write by itself, and the origin tag every pipesync write sets:
# left out of :meth:`SalesforceStore.snapshot`, which compares what a person would see restored.
VOLATILE_FIELDS = frozenset({"LastModifiedDate", "LastModifiedById", "SystemModstamp", "Pipesync_Origin__c"})
# Salesforce's required-on-create fields (nillable=false, no default) per writable object.
_REQUIRED_ON_CREATE = {"Opportunity": ("Name", "StageName", "CloseDate"), "Account": ("Name",),
                       "Contact": ("LastName",), "OpportunityContactRole": ("OpportunityId", "ContactId")}
_HISTORY_TRACKED = ("StageName", "Amount", "CloseDate", "Probability")


# ---------------------------------------------------------------- stages

@dataclass(frozen=True, slots=True)
class StageValue:
    """One value of the org's StageName picklist (an OpportunityStage row)."""

    id: str
    api_name: str
    label: str
    sort_order: int
    probability: float  # percent, 0..100
    is_closed: bool
    is_won: bool
    forecast_category: str  # API value: Pipeline, BestCase, Forecast, Closed, Omitted

    @property
    def forecast_category_name(self) -> str:
        return {"BestCase": "Best Case", "Forecast": "Commit"}.get(self.forecast_category, self.forecast_category)


def _forecast_category(stage: StageDef) -> str:
    if stage.is_closed:
        return "Closed" if stage.is_won else "Omitted"
    if stage.probability >= 0.7:
        return "Forecast"
    return "BestCase" if stage.probability >= 0.4 else "Pipeline"


def _picklist_order(pipelines: list[PipelineDef]) -> list[str]:
    """The org's one stage picklist, merged from every pipeline's stages so each pipeline keeps its own order.

    A label not seen before goes just before the next of its pipeline's stages
    already placed; failing that, an open stage goes before the closed ones.
    """
    order: list[str] = []
    for pipeline in pipelines:
        stages = sorted(pipeline.stages, key=lambda s: s.order)
        for index, stage in enumerate(stages):
            if stage.label in order:
                continue
            later = next((s.label for s in stages[index + 1 :] if s.label in order), None)
            if later is not None:
                order.insert(order.index(later), stage.label)
                continue
            closed = [i for i, label in enumerate(order) if any(
                s.label == label and s.is_closed for p in pipelines for s in p.stages)]
            order.insert(closed[0] if closed and not stage.is_closed else len(order), stage.label)
    return order


def _developer_name(label: str, fallback: str) -> str:
    """A DeveloperName as Salesforce derives it from a label: letters, digits and single underscores."""
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9]", "_", label)).strip("_")
    if not name or not name[0].isalpha():
        return fallback
    return name


@dataclass(frozen=True, slots=True)
class SalesProcess:
    """A pipeline as Salesforce models it: a record type, its business process and the stage values it offers."""

    record_type_id: str
    business_process_id: str
    name: str
    stages: tuple[str, ...]  # StageName API values, in picklist order
    is_default: bool


# ---------------------------------------------------------------- writes

@dataclass(frozen=True, slots=True)
class RecordError:
    """One entry of a result's ``errors`` (sObject Collections, single-record calls)."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}


class RequestError(Exception):
    """A request the API refuses as a whole (HTTP 400): unknown field, value of the wrong JSON type."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class PreparedWrite:
    """A checked write, applied only by :meth:`SalesforceStore.commit` (so allOrNone can roll back)."""

    sobject: str
    record_id: str | None
    row: Row | None  # the full new row, when the write is valid
    errors: list[RecordError] = field(default_factory=list)
    created: bool = False
    fields: dict[str, Any] = field(default_factory=dict)  # what the request set (for the write log)


@dataclass(frozen=True, slots=True)
class DeletedRecord:
    id: str
    deleted_at: str  # formatted datetime


class SalesforceStore:
    """The org's records in memory; thread-safe (the server thread and test code both touch it)."""

    def __init__(self, data: SystemData, *, credentials: SalesforceCredentials | None = None,
                 clock: Clock | None = None, as_of: datetime | None = None, org_number: int = 1):
        """``as_of`` (a world's "now") starts the org's clock there, running in real time; default: real now."""
        self.credentials = credentials or SalesforceCredentials()
        self.clock: Clock = clock or clock_from(as_of)
        self.org_id = salesforce_id("00D", org_number)
        self.schema = dict(SCHEMA)  # per org: an admin may add custom fields (add_custom_field)
        self.write_log = WriteLog()
        self.tables: dict[str, dict[str, Row]] = {name: {} for name in SCHEMA}
        self.deleted_log: list[DeletedRecord] = []
        self._lock = threading.RLock()
        self._counters: dict[str, int] = {}
        # Per opportunity: its newest history row, and its child rows (for the recycle bin).
        self._last_history: dict[str, Row] = {}
        self._children: dict[str, list[tuple[str, str]]] = {}
        # Per object, (SystemModstamp, Id) in order: Salesforce indexes SystemModstamp, and incremental
        # queries (``WHERE SystemModstamp > …``) should cost what changed, not the whole object.
        self._stamps: dict[str, list[tuple[str, str]]] | None = None
        self._load(data)
        self._stamps = {name: sorted((row["SystemModstamp"], row["Id"]) for row in table.values())
                        for name, table in self.tables.items()}
        self.auth = OrgAuth(self.credentials, self.org_id, self.integration_user_id)

    # ---------------------------------------------------------- loading the seeded world

    def new_id(self, sobject: str) -> str:
        prefix = SCHEMA[sobject].key_prefix
        number = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = number
        return salesforce_id(prefix, _ORG_ID_BASE + number)

    def _load(self, data: SystemData) -> None:
        created = [d.created_at for d in data.deals]
        org_born = _dt((min(created) if created else self.clock()) - timedelta(days=30))
        self.integration_user_id = self.new_id("User")
        self.corporate_currency = _most_common([d.currency for d in data.deals]) or "USD"
        self.currencies = sorted({d.currency for d in data.deals} | {self.corporate_currency})
        self._load_users(data, org_born)
        self._load_pipelines(data.pipelines, org_born)
        for account in data.accounts:
            self._insert("Account", self._audited({
                "Id": account.id, "IsDeleted": False, "MasterRecordId": None, "Name": account.name,
                "Website": account.website, "BillingCountry": account.country}, org_born))
        for contact in data.contacts:
            self._insert("Contact", self._audited({
                "Id": contact.id, "IsDeleted": False, "MasterRecordId": None, "AccountId": contact.account_id,
                "FirstName": contact.first_name, "LastName": contact.last_name,
                "Name": f"{contact.first_name} {contact.last_name}".strip(), "Email": contact.email}, org_born))
        first_deal_of_account: dict[str, str] = {}
        for deal in sorted(data.deals, key=lambda d: d.created_at):
            first_deal_of_account.setdefault(deal.account_id, deal.id)
        for deal in data.deals:
            self._load_deal(deal, first_deal_of_account.get(deal.account_id) == deal.id)

    def _audited(self, row: Row, at: str | None, by: str | None = None) -> Row:
        by = by or self.integration_user_id
        row.update(CreatedDate=at, CreatedById=by, LastModifiedDate=at, LastModifiedById=by, SystemModstamp=at)
        return row

    def _insert(self, sobject: str, row: Row) -> None:
        """Store a new or replaced row (callers hold the lock once the org is loaded)."""
        table = self.tables[sobject]
        if self._stamps is not None:
            stamps = self._stamps[sobject]
            before = table.get(row["Id"])
            if before is not None:
                del stamps[bisect_left(stamps, (before["SystemModstamp"], before["Id"]))]
            insort(stamps, (row["SystemModstamp"], row["Id"]))
        table[row["Id"]] = row

    def _load_users(self, data: SystemData, org_born: str | None) -> None:
        username = self.credentials.username
        integration = {"Id": self.integration_user_id, "Username": username, "FirstName": "Pipesync",
                       "LastName": "Integration", "Name": "Pipesync Integration", "Email": username,
                       "IsActive": True, "UserType": "Standard"}
        self._insert("User", self._audited(integration, org_born))
        for owner in data.owners:
            first, _, last = owner.name.rpartition(" ")
            self._insert("User", self._audited({
                "Id": owner.id, "Username": owner.email, "FirstName": first or None, "LastName": last,
                "Name": owner.name, "Email": owner.email, "IsActive": True, "UserType": "Standard"}, org_born))

    def _load_pipelines(self, pipelines: list[PipelineDef], org_born: str | None) -> None:
        self.stages: dict[str, StageValue] = {}  # by API name, in picklist order
        self.stage_of_seed: dict[tuple[str, str], StageValue] = {}  # (pipeline id, seed stage id) → value
        self.processes: dict[str, SalesProcess] = {}  # by record type id
        self.process_of_pipeline: dict[str, SalesProcess] = {}
        first_def: dict[str, StageDef] = {}
        for pipeline in pipelines:
            first_def.update((s.label, s) for s in pipeline.stages if s.label not in first_def)
        for position, label in enumerate(_picklist_order(pipelines)):
            stage = first_def[label]
            stage_id = stage.id if ID_PATTERN.fullmatch(stage.id) and stage.id.startswith("01J") \
                else self.new_id("OpportunityStage")
            self.stages[label] = StageValue(stage_id, label, label, (position + 1) * 10,
                                            round(stage.probability * 100), stage.is_closed, stage.is_won,
                                            _forecast_category(stage))
        for index, pipeline in enumerate(pipelines):
            for stage in pipeline.stages:
                self.stage_of_seed[(pipeline.id, stage.id)] = self.stages[stage.label]
            used = {stage.label for stage in pipeline.stages}
            names = [name for name in self.stages if name in used]  # a process lists values in picklist order
            record_type_id = pipeline.id if ID_PATTERN.fullmatch(pipeline.id) and pipeline.id.startswith("012") \
                else self.new_id("RecordType")
            process = SalesProcess(record_type_id, self.new_id("BusinessProcess"), pipeline.label, tuple(names),
                                   is_default=index == 0)
            self.processes[record_type_id] = process
            self.process_of_pipeline[pipeline.id] = process
            developer_name = _developer_name(pipeline.label, f"Pipeline_{index + 1}")
            self._insert("BusinessProcess", self._audited({
                "Id": process.business_process_id, "Name": f"{pipeline.label} Process", "NamespacePrefix": None,
                "Description": None, "TableEnumOrId": "Opportunity", "IsActive": True}, org_born))
            self._insert("RecordType", self._audited({
                "Id": record_type_id, "Name": pipeline.label, "DeveloperName": developer_name,
                "NamespacePrefix": None, "Description": f"Pipeline: {pipeline.label} ({pipeline.language})",
                "BusinessProcessId": process.business_process_id, "SobjectType": "Opportunity",
                "IsActive": True}, org_born))
        for value in self.stages.values():
            self._insert("OpportunityStage", self._audited({
                "Id": value.id, "MasterLabel": value.label, "ApiName": value.api_name, "IsActive": True,
                "SortOrder": value.sort_order, "IsClosed": value.is_closed, "IsWon": value.is_won,
                "ForecastCategory": value.forecast_category,
                "ForecastCategoryName": value.forecast_category_name,
                "DefaultProbability": float(value.probability), "Description": None}, org_born))

    def _load_deal(self, deal: SeedDeal, first_of_account: bool) -> None:
        stage = self.stage_of_seed[(deal.pipeline_id, deal.stage_id)]
        external_ref = deal.external_ref or ""
        row = self._audited({
            "Id": deal.id, "IsDeleted": deal.is_deleted, "MasterRecordId": deal.merged_into,
            "AccountId": deal.account_id, "RecordTypeId": self.process_of_pipeline[deal.pipeline_id].record_type_id,
            "Name": deal.name, "StageName": stage.api_name, "Amount": _float(deal.amount),
            "Probability": float(stage.probability), "CloseDate": deal.close_date.isoformat(),
            "Type": "New Customer" if first_of_account else "Existing Customer - Upgrade",
            "NextStep": deal.next_step, "LeadSource": deal.lead_source, "IsClosed": stage.is_closed,
            "IsWon": stage.is_won, "ForecastCategoryName": stage.forecast_category_name,
            "CurrencyIsoCode": deal.currency, "OwnerId": deal.owner_id,
            "LastActivityDate": deal.last_activity_at.date().isoformat() if deal.last_activity_at else None,
            "Loss_Reason__c": deal.lost_reason, "Pipesync_Origin__c": None,
            "External_Id__c": external_ref if external_ref and not external_ref.startswith("hubspot:") else None,
            "HubSpot_Deal_Id__c": external_ref.removeprefix("hubspot:") if external_ref.startswith("hubspot:")
            else None,
        }, _dt(deal.created_at), deal.owner_id)
        row["LastModifiedDate"] = row["SystemModstamp"] = _dt(deal.updated_at)
        self._insert("Opportunity", row)
        previous: Row | None = None
        for visit in deal.history:
            visited = self.stage_of_seed[(deal.pipeline_id, visit.stage_id)]
            previous = self._add_history(row, visited, _dt(visit.entered_at), deal.owner_id, previous,
                                         deleted=deal.is_deleted)
        for index, contact_id in enumerate(deal.contact_ids):
            role_id = self.new_id("OpportunityContactRole")
            self._insert("OpportunityContactRole", self._audited({
                "Id": role_id, "OpportunityId": deal.id, "ContactId": contact_id,
                "Role": "Decision Maker" if index == 0 else "Influencer", "IsPrimary": index == 0,
                "IsDeleted": deal.is_deleted}, _dt(deal.created_at), deal.owner_id))
            self._children.setdefault(deal.id, []).append(("OpportunityContactRole", role_id))
        if deal.is_deleted:
            self.deleted_log.append(DeletedRecord(deal.id, _dt(deal.deleted_at or deal.updated_at)))  # type: ignore[arg-type]

    def _add_history(self, opportunity: Row, stage: StageValue, at: str | None, by: str,
                     previous: Row | None, *, deleted: bool = False) -> Row:
        amount = opportunity["Amount"]
        probability = opportunity["Probability"] if stage.api_name == opportunity["StageName"] else stage.probability
        row = {
            "Id": self.new_id("OpportunityHistory"), "OpportunityId": opportunity["Id"],
            "StageName": stage.api_name, "Amount": amount,
            "ExpectedRevenue": None if amount is None else round(amount * probability / 100, 2),
            "CloseDate": opportunity["CloseDate"], "Probability": float(probability),
            "ForecastCategory": stage.forecast_category,
            "PrevAmount": previous["Amount"] if previous else None,
            "PrevCloseDate": previous["CloseDate"] if previous else None,
            "IsDeleted": deleted, "CreatedDate": at, "CreatedById": by, "SystemModstamp": at,
        }
        self._insert("OpportunityHistory", row)
        self._last_history[opportunity["Id"]] = row
        self._children.setdefault(opportunity["Id"], []).append(("OpportunityHistory", row["Id"]))
        return row

    # ---------------------------------------------------------- reading

    def now(self) -> str:
        return _dt(self.clock())  # type: ignore[return-value]

    def rows(self, sobject: str, *, include_deleted: bool, modified_since: str | None = None) -> list[Row]:
        """A snapshot of one object's rows; ``include_deleted`` is queryAll (the recycle bin too).

        With ``modified_since`` (a formatted datetime) only rows whose SystemModstamp is at or after
        it: a superset of the rows matching a lower bound on SystemModstamp, LastModifiedDate or
        CreatedDate, which never come after SystemModstamp.
        """
        with self._lock:
            table = self.tables[sobject]
            if modified_since is None or self._stamps is None:
                rows = list(table.values())
            else:
                stamps = self._stamps[sobject]
                rows = [table[record_id] for _, record_id in stamps[bisect_left(stamps, (modified_since,)):]]
        if include_deleted or "IsDeleted" not in self.schema[sobject].fields:
            return rows
        return list(filterfalse(_is_deleted, rows))

    def get(self, sobject: str, record_id: str) -> Row | None:
        table = self.tables[sobject]
        row = table.get(record_id)
        if row is None and len(record_id) == 15:
            row = table.get(record_id + salesforce_suffix(record_id))
        return row

    def picklist_values(self) -> list[StageValue]:
        """The org's StageName picklist, in order."""
        return list(self.stages.values())

    @property
    def default_process(self) -> SalesProcess:
        return next(p for p in self.processes.values() if p.is_default)

    def deleted_between(self, start: datetime, end: datetime) -> list[DeletedRecord]:
        low, high = _dt(start), _dt(end)
        with self._lock:
            return [d for d in self.deleted_log if low <= d.deleted_at <= high]  # type: ignore[operator]

    def updated_between(self, sobject: str, start: datetime, end: datetime) -> list[str]:
        low, high = _dt(start), _dt(end)
        return [row["Id"] for row in self.rows(sobject, include_deleted=False, modified_since=low)
                if row["SystemModstamp"] <= high]  # type: ignore[operator]

    # ---------------------------------------------------------- writing

    def coerce(self, sobject: str, values: dict[str, Any]) -> dict[str, Any]:
        """JSON field values in row representation; unknown fields and wrong JSON types refuse the request."""
        definition = self.schema[sobject]
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = definition.field(key)
            if fdef is None:
                raise RequestError("INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject}")
            out[fdef.name] = _coerce_value(fdef, value)
        return out

    def prepare_create(self, sobject: str, values: dict[str, Any]) -> PreparedWrite:
        fields = self.coerce(sobject, values)
        errors = self._read_only_errors(sobject, fields, creating=True)
        if "Id" in fields:
            errors.append(RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ("Id",)))
        row = {name: None for name in self.schema[sobject].fields}
        row.update(self._create_defaults(sobject))
        row.update(fields)
        missing = [name for name in _REQUIRED_ON_CREATE.get(sobject, ()) if row.get(name) in (None, "")]
        if missing:
            errors.append(RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
                                      tuple(missing)))
        if errors:
            return PreparedWrite(sobject, None, None, errors)
        row["Id"] = self.new_id(sobject)
        return self._checked(PreparedWrite(sobject, row["Id"], row, created=True), None, fields)

    def prepare_update(self, sobject: str, record_id: str | None, values: dict[str, Any]) -> PreparedWrite:
        fields = self.coerce(sobject, values)
        fields.pop("Id", None)
        if not record_id:
            return PreparedWrite(sobject, None, None,
                                 [RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ())])
        if not ID_PATTERN.fullmatch(record_id) or not record_id.startswith(self.schema[sobject].key_prefix):
            return PreparedWrite(sobject, None, None, [RecordError(
                "MALFORMED_ID", f"{self.schema[sobject].label} ID: id value of incorrect type: {record_id}", ("Id",))])
        current = self.get(sobject, record_id)
        if current is None:
            return PreparedWrite(sobject, record_id, None,
                                 [RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ())])
        if current.get("IsDeleted"):
            return PreparedWrite(sobject, current["Id"], None, [RecordError("ENTITY_IS_DELETED", "entity is deleted")])
        errors = self._read_only_errors(sobject, fields, creating=False)
        if errors:
            return PreparedWrite(sobject, current["Id"], None, errors)
        return self._checked(PreparedWrite(sobject, current["Id"], {**current, **fields}), current, fields)

    def find_by_external_id(self, sobject: str, field_name: str, value: str) -> list[Row]:
        return [row for row in self.rows(sobject, include_deleted=False) if row[field_name] == value]

    def commit(self, writes: Iterable[PreparedWrite]) -> None:
        """Apply checked writes, maintaining the fields and history rows Salesforce maintains itself."""
        with self._lock:
            now = self.now()
            for write in writes:
                assert write.row is not None and not write.errors
                row = dict(write.row)
                before = None if write.created else self.tables[write.sobject][row["Id"]]
                if write.created:
                    row["CreatedDate"] = now
                    row["CreatedById"] = self.integration_user_id
                row["LastModifiedDate"] = row["SystemModstamp"] = now
                row["LastModifiedById"] = self.integration_user_id
                if write.sobject == "Opportunity":
                    self._derive_stage_fields(row, before)
                self._insert(write.sobject, row)
                self.write_log.record(row["Id"], write.fields)
                if write.sobject == "Opportunity" and (
                        before is None or any(before[name] != row[name] for name in _HISTORY_TRACKED)):
                    self._add_history(row, self.stages[row["StageName"]], now, self.integration_user_id,
                                      self._last_history.get(row["Id"]))

    def _derive_stage_fields(self, row: Row, before: Row | None) -> None:
        stage = self.stages[row["StageName"]]
        row["IsClosed"], row["IsWon"] = stage.is_closed, stage.is_won
        if before is None or before["StageName"] != row["StageName"]:
            # A stage change resets probability and forecast category unless the write set them too.
            if before is None or row["Probability"] == before["Probability"]:
                row["Probability"] = float(stage.probability)
            if before is None or row["ForecastCategoryName"] == before["ForecastCategoryName"]:
                row["ForecastCategoryName"] = stage.forecast_category_name

    def _create_defaults(self, sobject: str) -> dict[str, Any]:
        if sobject == "Opportunity":
            return {"IsDeleted": False, "OwnerId": self.integration_user_id, "CurrencyIsoCode": self.corporate_currency,
                    "RecordTypeId": self.default_process.record_type_id, "IsClosed": False, "IsWon": False}
        if sobject in ("Account", "Contact"):
            return {"IsDeleted": False}
        if sobject == "OpportunityContactRole":
            return {"IsDeleted": False, "IsPrimary": False}
        if sobject == "Task":
            return {"IsDeleted": False, "OwnerId": self.integration_user_id, "Status": "Not Started",
                    "Priority": "Normal"}
        return {}

    def _read_only_errors(self, sobject: str, fields: dict[str, Any], *, creating: bool) -> list[RecordError]:
        if sobject not in WRITABLE_OBJECTS:
            return [RecordError("INSUFFICIENT_ACCESS_OR_READONLY",
                                f"insufficient access rights on object: {sobject} is read-only", ())]
        definition = self.schema[sobject]
        refused = [name for name in fields if name != "Id"
                   and not (definition.fields[name].createable if creating else definition.fields[name].updateable)]
        if not refused:
            return []
        verb = "create" if creating else "update"
        return [RecordError(
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            f"Unable to {verb}/update fields: {', '.join(refused)}. Please check the security settings of this field "
            "and verify that it is read/write for your profile or permission set.", tuple(refused))]

    def _checked(self, write: PreparedWrite, before: Row | None, fields: dict[str, Any]) -> PreparedWrite:
        """The org's field-level rules and validation rules, as per-record errors."""
        write.fields = fields
        row = write.row
        assert row is not None
        definition = self.schema[write.sobject]
        for name, value in fields.items():
            fdef = definition.fields[name]
            if isinstance(value, str) and fdef.length and len(value) > fdef.length:
                write.errors.append(RecordError(
                    "STRING_TOO_LONG", f"{fdef.label}: data value too large: {value[:40]} (max length={fdef.length})",
                    (name,)))
            if fdef.type == "reference" and value is not None:
                target = self.get(fdef.reference_to, value) if ID_PATTERN.fullmatch(value) else None  # type: ignore[arg-type]
                if target is None:
                    write.errors.append(RecordError(
                        "INVALID_CROSS_REFERENCE_KEY", f"{fdef.label}: id value of incorrect type: {value}", (name,)))
                else:
                    row[name] = target["Id"]
        if write.sobject == "Opportunity":
            write.errors.extend(self._opportunity_rules(row, before))
        if write.errors:
            write.row = None
        return write

    def _opportunity_rules(self, row: Row, before: Row | None) -> list[RecordError]:
        errors = []
        if row["StageName"] not in self.stages:
            errors.append(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                      f"Stage: bad value for restricted picklist field: {row['StageName']}",
                                      ("StageName",)))
        elif row["RecordTypeId"] in self.processes and \
                row["StageName"] not in self.processes[row["RecordTypeId"]].stages:
            # The org's validation rule: a stage must belong to the record type's sales process.
            errors.append(RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                f"Stage '{row['StageName']}' is not part of the {self.processes[row['RecordTypeId']].name} "
                "sales process.", ("StageName",)))
        if row["CurrencyIsoCode"] not in self.currencies:
            errors.append(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                      f"Opportunity Currency: bad value for restricted picklist field: "
                                      f"{row['CurrencyIsoCode']}", ("CurrencyIsoCode",)))
        return errors

    # ---------------------------------------------------------- helpers for tests and demos

    def add_custom_field(self, sobject: str, name: str, type_: str, label: str, *, length: int = 0) -> None:
        """What an admin's Setup → Object Manager → Fields & Relationships → New does: a custom field,
        empty on every record, in describe and SOQL from now on."""
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*__c", name):
            raise ValueError(f"a custom field's API name ends in __c: {name!r}")
        with self._lock:
            definition = self.schema[sobject]
            if definition.field(name) is not None:
                raise ValueError(f"{sobject} already has a field {name}")
            fields = {**definition.fields, name: _f(name, type_, label, length=length, write=True)}
            self.schema[sobject] = ObjectDef(definition.name, definition.label, definition.key_prefix, fields,
                                             definition.children)
            table = self.tables[sobject]
            for record_id, row in list(table.items()):
                table[record_id] = {**row, name: None}  # replaced, not edited: open cursors keep their rows

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every opportunity (the recycle bin too), field by field, with the ids of its live tasks under
        ``"tasks"``; the fields the org stamps on every write are left out (:data:`VOLATILE_FIELDS`)."""
        with self._lock:
            tasks: dict[str, list[str]] = {}
            for task in self.tables["Task"].values():
                if not task["IsDeleted"] and task["WhatId"]:
                    tasks.setdefault(task["WhatId"], []).append(task["Id"])
            return {record_id: {**{k: v for k, v in row.items() if k not in VOLATILE_FIELDS},
                                "tasks": sorted(tasks.get(record_id, []))}
                    for record_id, row in self.tables["Opportunity"].items()}

    def update_record(self, sobject: str, record_id: str, values: dict[str, Any]) -> None:
        """Change one record as a user would in the UI; raises ValueError with the org's errors if refused."""
        write = self.prepare_update(sobject, record_id, values)
        if write.errors:
            raise ValueError("; ".join(f"{e.status_code}: {e.message}" for e in write.errors))
        self.commit([write])

    # DealMutations (pipesync_sandbox.mutations), for tests and demos

    def touch_deals(self, fraction: float, *, seed: int = 0) -> list[str]:
        """Edit ``fraction`` of the live open opportunities: advance the stage, move the amount or the close date.

        Deterministic for a seed. Every edit bumps SystemModstamp/LastModifiedDate and
        records an OpportunityHistory row, as a salesperson's edit would.
        """
        rng = random.Random(seed)
        candidates = [row for row in self.rows("Opportunity", include_deleted=False) if not row["IsClosed"]]
        chosen = rng.sample(candidates, round(len(candidates) * fraction))
        for index, row in enumerate(chosen):
            match index % 3:
                case 0:
                    stages = self.processes[row["RecordTypeId"]].stages
                    position = stages.index(row["StageName"]) if row["StageName"] in stages else -1
                    change = {"StageName": stages[min(position + 1, len(stages) - 1)]}
                case 1:
                    change = {"Amount": round((row["Amount"] or 1000.0) * rng.uniform(0.8, 1.25), 2)}
                case _:
                    closes = date.fromisoformat(row["CloseDate"]) + timedelta(days=rng.choice((7, 14, 30)))
                    change = {"CloseDate": closes.isoformat()}
            self.update_record("Opportunity", row["Id"], change)
        return [row["Id"] for row in chosen]

    def delete_record(self, sobject: str, record_id: str) -> None:
        """Move a record to the recycle bin: IsDeleted, logged for getDeleted, still visible to queryAll."""
        self._delete(sobject, record_id, master_id=None)

    def delete_deal(self, deal_id: str) -> None:
        self.delete_record("Opportunity", deal_id)

    def merge_deals(self, survivor_id: str, merged_id: str) -> str:
        """Merge into ``survivor_id``: the loser is deleted with ``MasterRecordId`` pointing at it."""
        survivor = self.get("Opportunity", survivor_id)
        if survivor is None or survivor["IsDeleted"]:
            raise ValueError(f"merge survivor {survivor_id} does not exist or is deleted")
        self._delete("Opportunity", merged_id, master_id=survivor["Id"])
        self.update_record("Opportunity", survivor["Id"], {})
        return survivor["Id"]

    def _delete(self, sobject: str, record_id: str, master_id: str | None) -> None:
        with self._lock:
            row = self.get(sobject, record_id)
            if row is None or row["IsDeleted"]:
                raise ValueError(f"{sobject} {record_id} does not exist or is already deleted")
            now = self.now()
            changed = {**row, "IsDeleted": True, "LastModifiedDate": now, "SystemModstamp": now,
                       "LastModifiedById": self.integration_user_id}
            if "MasterRecordId" in changed:
                changed["MasterRecordId"] = master_id
            self._insert(sobject, changed)
            self.write_log.record(row["Id"], {"IsDeleted": True})
            self.deleted_log.append(DeletedRecord(row["Id"], now))
            if sobject == "Opportunity":
                # Its history and contact roles go to the recycle bin with it.
                for child, child_id in self._children.get(row["Id"], ()):
                    table = self.tables[child]
                    self._insert(child, {**table[child_id], "IsDeleted": True})


_is_deleted = itemgetter("IsDeleted")


def _most_common(values: list[str]) -> str | None:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None


def _coerce_value(fdef: FieldDef, value: Any) -> Any:
    """One JSON value as the row holds it; a value of the wrong JSON type refuses the request, as Salesforce does."""
    if value is None:
        return None
    kind = fdef.type
    try:
        if kind in ("currency", "double", "percent", "int"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind == "boolean":
            if not isinstance(value, bool):
                raise ValueError
            return value
        if kind == "date":
            return date.fromisoformat(str(value)[:10]).isoformat()
        if kind == "datetime":
            return format_datetime(parse_datetime_literal(str(value)))
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except ValueError:
        token = _JSON_TOKENS.get(type(value), "VALUE_STRING")
        if isinstance(value, bool):
            token = "VALUE_TRUE" if value else "VALUE_FALSE"
        raise RequestError("JSON_PARSER_ERROR",
                           f"Cannot deserialize instance of {kind} from {token} value {value} or request may be "
                           f"missing a required field (field {fdef.name})") from None


# The JSON token names Salesforce's parser (Jackson) reports in JSON_PARSER_ERROR messages.
_JSON_TOKENS = {str: "VALUE_STRING", int: "VALUE_NUMBER_INT", float: "VALUE_NUMBER_FLOAT", dict: "START_OBJECT",
                list: "START_ARRAY"}

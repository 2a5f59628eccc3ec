"""The canonical model: the typed objects that cross every arrow of the data flow.

See docs/architecture.md, "The canonical model". Amounts are Decimal, instants are
UTC-aware datetimes, calendar dates (close dates) are plain dates so they never
shift through a timezone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Category(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


# A deal's status is the category of its stage; one vocabulary for both.
Status = Category


class Stage(BaseModel):
    """One stage of the shared pipeline."""

    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    category: Category
    probability: float = Field(ge=0, le=1)
    sla_days: int | None = Field(default=None, gt=0)
    # Parked stages ("fridge") count as open pipeline but stay out of velocity and conversion.
    parked: bool = False


class SharedPipeline(BaseModel):
    """The ordered shared pipeline every source is mapped onto."""

    stages: list[Stage]

    @field_validator("stages")
    @classmethod
    def _unique_keys(cls, stages: list[Stage]) -> list[Stage]:
        seen: set[str] = set()
        for s in stages:
            if s.key in seen:
                raise ValueError(f"stage key {s.key!r} appears twice")
            seen.add(s.key)
        if not any(s.category is Category.WON for s in stages):
            raise ValueError("the pipeline needs at least one won stage")
        if not any(s.category is Category.LOST for s in stages):
            raise ValueError("the pipeline needs at least one lost stage")
        return stages

    def get(self, key: str) -> Stage:
        for s in self.stages:
            if s.key == key:
                return s
        raise KeyError(key)

    @property
    def keys(self) -> list[str]:
        return [s.key for s in self.stages]

    def order(self, key: str) -> int:
        return self.keys.index(key)


def utc(dt: datetime) -> datetime:
    """An aware datetime in UTC; naive input is refused rather than guessed."""
    if dt.tzinfo is None:
        raise ValueError("datetime has no timezone")
    return dt.astimezone(timezone.utc)


class Deal(BaseModel):
    """One record of one source, in canonical form."""

    model_config = ConfigDict(validate_assignment=False)

    source: str
    source_id: str
    name: str = ""
    pipeline: str | None = None
    source_stage: str | None = None
    stage: str
    status: Status
    amount: Decimal | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    amount_reporting: Decimal | None = None
    probability: float | None = Field(default=None, ge=0, le=1)
    close_date: date | None = None  # expected close date (the forecast; a closed deal's may be stale)
    actual_close_date: date | None = None  # the day it was won or lost, where the source says
    created_at: datetime | None = None
    updated_at: datetime | None = None
    stage_entered_at: datetime | None = None
    last_activity_at: datetime | None = None
    owner_email: str | None = None
    owner_name: str | None = None
    account_name: str | None = None
    account_domain: str | None = None
    contact_emails: list[str] = Field(default_factory=list)
    lead_source: str | None = None
    lost_reason: str | None = None
    next_step: str | None = None
    external_refs: list[str] = Field(default_factory=list)
    is_deleted: bool = False
    raw: dict[str, Any] = Field(default_factory=dict)

    @field_validator("created_at", "updated_at", "stage_entered_at", "last_activity_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        return None if v is None else utc(v)

    @property
    def key(self) -> str:
        return deal_key(self.source, self.source_id)


def deal_key(source: str, source_id: str) -> str:
    return f"{source}:{source_id}"


class StageChange(BaseModel):
    deal_key: str
    from_stage: str | None
    to_stage: str
    changed_at: datetime
    origin: str = Field(pattern=r"^(source_history|observed)$")

    @field_validator("changed_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return utc(v)


class Cursor(BaseModel):
    """Where an incremental read resumes: an opaque, adapter-owned value.

    ``value`` is what the adapter needs to resume (a timestamp, a page token, a
    file fingerprint); the warehouse stores it as JSON in ``sync_state``.
    """

    value: dict[str, Any] = Field(default_factory=dict)


# The canonical field names an adapter may put in ``RawDeal.values``. Values may be
# source text (files) or typed (APIs: Decimal, date, aware datetime, bool, list);
# ``pipesync.normalize`` parses and checks both. ``status`` is the source's own
# won/lost/open word where it has one (Pipedrive); ``source_stage`` is the stage
# id or label that the mapping file maps.
RAW_FIELDS = (
    "source_id", "name", "pipeline", "source_stage", "status", "amount", "currency",
    "probability", "close_date", "actual_close_date", "created_at", "updated_at", "stage_entered_at",
    "last_activity_at", "owner_email", "owner_name", "account_name", "account_domain",
    "contact_emails", "lead_source", "lost_reason", "next_step", "external_refs", "is_deleted",
)
# Of those, the ones holding a point in time (read in the source's timezone) and every field
# holding a date, whose all-numeric forms need the mapping's ``parse.date_order``.
INSTANT_FIELDS = ("created_at", "updated_at", "stage_entered_at", "last_activity_at")
DATE_FIELDS = ("close_date", "actual_close_date", *INSTANT_FIELDS)


class SheetNumber(str):
    """A spreadsheet's number cell, as text in its shortest exact form ("1234.5", "45000").

    Files hand over text; a workbook's numbers are typed, and normalization reads them as the
    numbers they are (never through the mapping's decimal separator), and a number in a date
    column as a spreadsheet's serial day. JSON and hashes see the text.
    """

    __slots__ = ()


@dataclass(slots=True)
class RawDeal:
    """A deal as an adapter read it, before the mapping file is applied.

    ``values`` holds canonical field names (``name``, ``amount``, ``close_date`` …)
    with the source's values: strings from files (:class:`SheetNumber` for a workbook's
    numbers), typed values from APIs.
    ``locator`` says where the record came from, for error messages
    ("deals.csv row 12", "Opportunity 006…").

    A plain dataclass, not a validated model: adapters build one per record read
    (hundreds of thousands per sync) and the normalizer checks every value anyway.
    """

    source_id: str | None
    locator: str
    values: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)
    # Set by an adapter that can already tell the record is broken (a CSV row with
    # the wrong number of cells): (field, reason). The record is quarantined.
    problem: tuple[str, str] | None = None


class RawStageChange(BaseModel):
    source_id: str
    pipeline: str | None = None
    from_stage: str | None
    to_stage: str
    changed_at: datetime


@dataclass(slots=True)
class Page:
    """One page of an incremental read, with the cursor that resumes after it.

    The warehouse commits the page and its cursor in one transaction, so a run
    killed between pages resumes exactly where it stopped.
    ``snapshot_complete`` is set on the last page of a read that saw every live
    record of the source (a full file export): records it did not list are gone.
    """

    deals: list[RawDeal]
    cursor: Cursor
    snapshot_complete: bool = False
    # ids the source reports deleted (or merged away) without a full record
    deleted_ids: list[str] = field(default_factory=list)
    # merged-away id → surviving id, as the source reports merges (the warehouse's deal_aliases)
    aliases: dict[str, str] = field(default_factory=dict)
    # when the source says its records were as read (a file's modification time): dates a stage change
    # seen on a record with no time of its own, so every run reading the same snapshot records one row
    as_of: datetime | None = None


class DiscoveredStage(BaseModel):
    id: str
    label: str
    order: int | None = None
    probability: float | None = None
    is_closed: bool | None = None
    is_won: bool | None = None
    active: bool = True
    deal_count: int | None = None


class DiscoveredPipeline(BaseModel):
    id: str
    label: str
    stages: list[DiscoveredStage]


class Owner(BaseModel):
    id: str
    name: str | None = None
    email: str | None = None


class Discovery(BaseModel):
    """What ``adapter.discover()`` returns: the source's pipelines, stages and owners, and the values
    of its lost reasons and lead sources where the source can list them (files)."""

    source: str
    pipelines: list[DiscoveredPipeline]
    owners: list[Owner] = Field(default_factory=list)
    # Values of fields mapped onto a shared vocabulary (lost_reason, lead_source): value → deals holding it.
    values: dict[str, dict[str, int]] = Field(default_factory=dict)


class DateStyle(BaseModel):
    """How a source writes all-numeric dates, as far as its values tell (files people export or type)."""

    order: Literal["DMY", "MDY"] | None = Field(
        default=None, description="the one order the values prove; None when they prove neither, or both"
    )
    proof: dict[str, str] = Field(default_factory=dict, description="order → the first value proving it, and where")
    ambiguous: int = Field(default=0, description="values only a configured order can read (03/04/2026)")

    @classmethod
    def of(cls, proof: dict[str, str], ambiguous: int) -> "DateStyle":
        return cls(order=next(iter(proof)) if len(proof) == 1 else None, proof=proof, ambiguous=ambiguous)


class ChangeKind(StrEnum):
    SET_FIELDS = "set_fields"
    MOVE_STAGE = "move_stage"
    CLOSE_LOST = "close_lost"
    MARK_DUPLICATE = "mark_duplicate"
    MERGE = "merge"
    CREATE = "create"
    # A task for the deal's owner (fields ``subject``, ``body``, optional ``due_date``), and its undo
    # (field ``task_id``); the engine turns what it must not change (a suspicious amount) into one.
    CREATE_TASK = "create_task"
    DELETE_TASK = "delete_task"


# A ``FieldChange.field`` naming a CRM field by its API name rather than a canonical field.
CUSTOM_PREFIX = "custom:"
# What pipesync can create and check a write-back field as; "other" is every type it only reads.
FieldKind = Literal["text", "number", "date", "boolean", "url", "other"]


class FieldInfo(BaseModel):
    """One deal field of a CRM, as ``Adapter.deal_fields`` lists it and ``create_field`` returns it."""

    name: str = Field(description="the API name a write uses: Salesforce Foo__c, a HubSpot internal name, "
                                  "a Pipedrive 40-character key")
    label: str
    kind: FieldKind
    writable: bool
    custom: bool = False


class FieldChange(BaseModel):
    field: str
    before: Any = None
    after: Any = None


class Change(BaseModel):
    """One write a plan proposes, with the before-image it expects to find."""

    deal_key: str
    kind: ChangeKind
    fields: list[FieldChange] = Field(default_factory=list)
    rule: str
    reason: str
    merge_into: str | None = None
    # The record's modification time when the plan read it: a later one means a person changed
    # the record since, and the change is not applied (None: no such check, as for an undo).
    unchanged_since: datetime | None = None


class ChangeOutcome(StrEnum):
    APPLIED = "applied"
    FAILED = "failed"
    CONFLICT = "conflict"


class ChangeResult(BaseModel):
    deal_key: str
    outcome: ChangeOutcome
    reason: str | None = None
    new_source_id: str | None = None

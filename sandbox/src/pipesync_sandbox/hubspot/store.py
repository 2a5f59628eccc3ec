"""The HubSpot sandbox's mutable state: deals as HubSpot holds them, plus companies, contacts, owners, pipelines.

Deal properties are kept as the strings HubSpot sends (its v3 API types
every property value as a string), except datetimes, which are kept as epoch
milliseconds (for search filters and sorts) and rendered on read. Writes go through
:class:`HubSpotStore` so the calculated properties HubSpot maintains itself
(``hs_lastmodifieddate``, ``hs_is_closed*``, ``hs_v2_date_entered_*``, the
property history) stay consistent.

Real-HubSpot behaviours emulated here, on purpose:

- archiving (``DELETE``, batch archive) does NOT bump ``hs_lastmodifieddate``,
  so a ``hs_lastmodifieddate`` search never sees deletions: only
  ``archived=true`` listing does;
- a merge creates the survivor under a NEW id; both input ids are listed in
  its ``hs_merged_object_ids`` and, when read by id, resolve to the survivor;
- search is eventually consistent: a write becomes searchable ``search_lag_s``
  seconds after it happened (0 by default).
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from decimal import Decimal, InvalidOperation

from pipesync_sandbox.hubspot.auth import HubSpotAuth
from pipesync_sandbox.world import Account, Contact, Owner, PipelineDef, SeedDeal, StageDef, SystemData
from pipesync_sandbox.writelog import WriteLog

Clock = Callable[[], float]

# HubSpot returns these when a request names no properties.
DEFAULT_DEAL_PROPERTIES = ("amount", "closedate", "createdate", "dealname", "dealstage",
                           "hs_lastmodifieddate", "hs_object_id", "pipeline")
# HubSpot always adds these, whatever the request names.
ALWAYS_RETURNED = ("createdate", "hs_lastmodifieddate", "hs_object_id")

WRITABLE_PROPERTIES = frozenset({
    "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
    "closed_lost_reason", "hs_next_step", "hs_analytics_source", "salesforce_opportunity_id", "pipesync_origin",
})
# Calculated by HubSpot; a write naming one is refused (READ_ONLY_VALUE).
READ_ONLY_PROPERTIES = frozenset({
    "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_is_closed", "hs_is_closed_won", "hs_is_closed_lost",
    "hs_deal_stage_probability", "hs_merged_object_ids", "notes_last_updated",
})
DATETIME_PROPERTIES = frozenset({"closedate", "createdate", "hs_lastmodifieddate", "notes_last_updated"})
NUMBER_PROPERTIES = frozenset({"amount", "hs_object_id", "hs_deal_stage_probability"})
# Properties with hasUniqueValue=true: usable as idProperty, and no two deals may share a value.
UNIQUE_PROPERTIES = frozenset({"hs_object_id", "salesforce_opportunity_id"})
_CUSTOM_UNIQUE = UNIQUE_PROPERTIES - {"hs_object_id"}
STAGE_DATE_PREFIXES = ("hs_v2_date_entered_", "hs_v2_date_exited_")
# HubSpot maintains these on every write (and pipesync tags each write): left out of snapshots.
VOLATILE_PROPERTIES = frozenset({"hs_lastmodifieddate", "pipesync_origin"})
# (type, fieldType) pairs a property may be created with
PROPERTY_TYPES = {"string": ("text", "textarea"), "number": ("number",), "date": ("date",), "datetime": ("date",),
                  "bool": ("booleancheckbox",), "enumeration": ("select", "radio", "checkbox", "booleancheckbox")}
TASK_PROPERTIES = frozenset({"hs_task_subject", "hs_task_body", "hs_timestamp", "hubspot_owner_id", "hs_task_status",
                             "hs_task_priority", "hs_task_type"})
TASK_STATUSES = ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")
_FIRST_TASK_ID = 80_000_000_001  # tasks are numbered apart from deals, as HubSpot's object ids are

# Who made a change, as HubSpot's property history reports it (ValueWithTimestamp.sourceType).
SOURCE_SEED = "CRM_UI"
SOURCE_API = "INTEGRATION"


_EPOCH = date(1970, 1, 1)


_MILLIS = [f"{n:03d}Z" for n in range(1000)]


@lru_cache(maxsize=1 << 16)
def _iso_day(days: int) -> str:
    return (_EPOCH + timedelta(days=days)).isoformat() + "T"


@lru_cache(maxsize=86_400)
def _iso_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}."


def iso_ms(ms: int) -> str:
    """HubSpot's timestamp format: ISO 8601, UTC, milliseconds, ``Z``.

    Built from cached pieces: formatting dates dominated the time to serve a page.
    """
    days, rest = divmod(ms, 86_400_000)
    seconds, millis = divmod(rest, 1000)
    return _iso_day(days) + _iso_time(seconds) + _MILLIS[millis]


def to_ms(value: datetime | date) -> int:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def parse_time_ms(text: str) -> int | None:
    """Epoch milliseconds from what HubSpot accepts for a datetime: epoch ms, ISO date or ISO datetime."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return to_ms(parsed)


class PropertyError(ValueError):
    """One invalid property value in a write, as HubSpot reports it inside a VALIDATION_ERROR."""

    def __init__(self, name: str, error: str, message: str):
        super().__init__(message)
        self.name = name
        self.error = error
        self.message = message


@dataclass(slots=True)
class HistoryEntry:
    value: str
    at_ms: int
    source_type: str


@dataclass(slots=True)
class HubDeal:
    id: str
    props: dict[str, str]  # every non-datetime property with a value, as HubSpot sends it
    times: dict[str, int]  # every datetime property with a value, as epoch ms
    company_ids: list[str]
    contact_ids: list[str]
    history: dict[str, list[HistoryEntry]] = field(default_factory=dict)  # oldest first
    archived_at_ms: int | None = None

    def get(self, name: str) -> str | None:
        """A property's value as HubSpot sends it; None when unset."""
        ms = self.times.get(name)
        return self.props.get(name) if ms is None else iso_ms(ms)

    def has(self, name: str) -> bool:
        return name in self.props or name in self.times

    @property
    def created_ms(self) -> int:
        return self.times["createdate"]

    @property
    def updated_ms(self) -> int:
        return self.times["hs_lastmodifieddate"]


@dataclass(slots=True)
class HubRecord:
    """A company or contact: only what deal resolution needs."""

    id: str
    props: dict[str, str]
    created_ms: int


@dataclass(slots=True)
class PropertyDef:
    """A deal property's definition (``/crm/v3/properties/deals``)."""

    name: str
    label: str
    type: str
    field_type: str
    group: str
    options: list[dict[str, object]]
    created_ms: int
    hubspot_defined: bool
    read_only: bool = False
    unique: bool = False


@dataclass(slots=True)
class HubTask:
    id: str
    props: dict[str, str]
    deal_ids: list[str]
    created_ms: int
    updated_ms: int
    archived: bool = False


def _standard_type(name: str) -> tuple[str, str]:
    if name in DATETIME_PROPERTIES or name.startswith(STAGE_DATE_PREFIXES):
        return "datetime", "date"
    if name in NUMBER_PROPERTIES:
        return "number", "number"
    if name in ("dealstage", "pipeline", "deal_currency_code"):
        return "enumeration", "select"
    if name.startswith("hs_is_closed"):
        return "bool", "booleancheckbox"
    return "string", "text"


_BOOL_OPTIONS = [{"label": "Yes", "value": "true", "displayOrder": 0, "hidden": False},
                 {"label": "No", "value": "false", "displayOrder": 1, "hidden": False}]


class HubSpotStore:
    """All the data one HubSpot portal holds; thread-safe, changed by the API and by test helpers.

    ``auth`` holds the portal's credentials (set by ``hubspot.create_app``).
    """

    auth: HubSpotAuth

    def __init__(self, data: SystemData, *, search_lag_s: float = 0.0, clock: Clock = time.time):
        self.clock = clock
        self.search_lag_s = search_lag_s
        self.pipelines: list[PipelineDef] = data.pipelines
        self.owners: list[Owner] = data.owners
        self._lock = threading.RLock()
        self._stages: dict[str, tuple[PipelineDef, StageDef]] = {}
        for pipeline in data.pipelines:
            for stage in pipeline.stages:
                if stage.id in self._stages:
                    raise ValueError(f"stage id {stage.id!r} appears in two HubSpot pipelines; HubSpot stage ids are unique")
                self._stages[stage.id] = (pipeline, stage)
        self._pipeline_ids = {p.id for p in data.pipelines}
        self._owner_ids = {o.id for o in data.owners}
        self.stage_date_properties = frozenset(
            prefix + stage_id for stage_id in self._stages for prefix in STAGE_DATE_PREFIXES)

        self.deals: dict[str, HubDeal] = {}
        self._order: list[int] = []  # every live or archived deal id, ascending
        self._aliases: dict[str, str] = {}  # merged-away id -> survivor id
        self._unique: dict[str, dict[str, str]] = {name: {} for name in _CUSTOM_UNIQUE}  # property -> value -> id
        self._search_pending: list[tuple[float, str, HubDeal | None]] = []  # (visible at, id, snapshot or None)
        self._search_index = SearchIndex()
        self.write_log = WriteLog()
        self.property_groups: dict[str, str] = {"dealinformation": "Deal information"}
        self.custom_properties: dict[str, PropertyDef] = {}
        self.tasks: dict[str, HubTask] = {}
        self._next_task_id = _FIRST_TASK_ID

        # Companies, contacts and pipelines have no timestamps in the seed; date them with the oldest deal.
        epoch_ms = min((to_ms(d.created_at) for d in data.deals), default=0)
        self.epoch_ms = epoch_ms
        self.companies = {a.id: _company(a, epoch_ms) for a in data.accounts}
        self.contacts = {c.id: _contact(c, epoch_ms) for c in data.contacts}
        merged_into: dict[str, list[str]] = {}
        for seed in data.deals:
            if seed.merged_into:
                merged_into.setdefault(seed.merged_into, []).append(seed.id)
                self._aliases[seed.id] = seed.merged_into
                continue
            deal = self._from_seed(seed)
            self.deals[deal.id] = deal
            self._index_unique(deal)
        for survivor, merged in merged_into.items():
            if survivor in self.deals:
                self.deals[survivor].props["hs_merged_object_ids"] = ";".join(sorted(merged, key=int))
        self._order = sorted(int(i) for i in self.deals)
        self._next_id = (self._order[-1] + 1) if self._order else 1
        self.set_search_lag(search_lag_s)

    # ----- reading ---------------------------------------------------------------------------

    def is_known_property(self, name: str) -> bool:
        return (name in WRITABLE_PROPERTIES or name in READ_ONLY_PROPERTIES or name in self.stage_date_properties
                or name in self.custom_properties)

    def properties(self) -> list[PropertyDef]:
        """Every deal property: HubSpot's own, then the portal's custom ones."""
        standard = sorted(WRITABLE_PROPERTIES | READ_ONLY_PROPERTIES | self.stage_date_properties)
        own = [PropertyDef(n, n.replace("_", " ").capitalize(), *_standard_type(n), "dealinformation",
                           _BOOL_OPTIONS if _standard_type(n)[0] == "bool" else [], self.epoch_ms, True,
                           read_only=n not in WRITABLE_PROPERTIES, unique=n in UNIQUE_PROPERTIES)
               for n in standard if n != "pipesync_origin"]
        return own + list(self.custom_properties.values())

    def add_property(self, definition: PropertyDef) -> PropertyDef:
        """A new custom deal property (checked by the API layer)."""
        with self._lock:
            self.custom_properties[definition.name] = definition
            self.write_log.record(definition.name, {"property": definition.name, "type": definition.type})
            return definition

    def tasks_of(self, deal: HubDeal) -> list[HubTask]:
        """The live tasks associated with ``deal`` (through any id that resolves to it)."""
        with self._lock:
            return [t for t in self.tasks.values()
                    if not t.archived and any(self.resolve(d) is deal for d in t.deal_ids)]

    def create_task(self, properties: dict[str, str], deal_ids: list[str]) -> HubTask:
        with self._lock:
            now = self._now_ms()
            task_id = str(self._next_task_id)
            self._next_task_id += 1
            task = HubTask(task_id, {**properties, "hs_object_id": task_id}, deal_ids, now, now)
            if "hs_timestamp" in properties:
                task.props["hs_timestamp"] = iso_ms(parse_time_ms(properties["hs_timestamp"]) or 0)
            self.tasks[task_id] = task
            self.write_log.record(task_id, properties)
            return task

    def archive_task(self, task: HubTask) -> None:
        with self._lock:
            if not task.archived:
                task.archived = True
                self.write_log.record(task.id, {"archived": True})

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Every deal (archived too), property by property, with the ids of its live tasks under ``"tasks"``;
        the properties HubSpot stamps on every write are left out (:data:`VOLATILE_PROPERTIES`)."""
        with self._lock:
            return {deal.id: {**{k: v for k, v in deal.props.items() if k not in VOLATILE_PROPERTIES},
                              **{k: iso_ms(v) for k, v in deal.times.items() if k not in VOLATILE_PROPERTIES},
                              "archived": deal.archived_at_ms is not None,
                              "tasks": sorted(t.id for t in self.tasks_of(deal))}
                    for deal in self.deals.values()}

    def resolve(self, deal_id: str) -> HubDeal | None:
        """The deal with this id, following merges (a merged-away id reads as its survivor)."""
        with self._lock:
            seen = 0
            while deal_id in self._aliases and seen < 100:
                deal_id = self._aliases[deal_id]
                seen += 1
            return self.deals.get(deal_id)

    def find_by(self, id_property: str, value: str) -> HubDeal | None:
        """The deal whose unique property ``id_property`` holds ``value`` (``hs_object_id`` follows merges)."""
        if id_property == "hs_object_id":
            return self.resolve(value)
        with self._lock:
            deal_id = self._unique[id_property].get(value)
            return None if deal_id is None else self.deals.get(deal_id)

    def page(self, after_id: int | None, limit: int, *, archived: bool) -> tuple[list[HubDeal], int | None]:
        """Deals in id order from ``after_id`` (inclusive): (page, id the next page starts at or None)."""
        with self._lock:
            start = bisect.bisect_left(self._order, after_id) if after_id is not None else 0
            page: list[HubDeal] = []
            for position in range(start, len(self._order)):
                deal = self.deals.get(str(self._order[position]))
                if deal is None or (deal.archived_at_ms is not None) != archived:
                    continue
                if len(page) == limit:
                    return page, self._order[position]
                page.append(deal)
            return page, None

    def searchable(self, modified_range: tuple[int | None, int | None] | None = None) -> list[HubDeal]:
        """The deals search sees now (not archived; writes older than the search lag), optionally only
        those whose hs_lastmodifieddate lies in the inclusive ``modified_range``."""
        with self._lock:
            now = self.clock()
            due = 0
            for visible_at, deal_id, snapshot in self._search_pending:
                if visible_at > now:
                    break
                due += 1
                self._search_index.put(deal_id, snapshot)
            del self._search_pending[:due]
            if modified_range is None:
                return list(self._search_index.docs.values())
            return self._search_index.modified_between(*modified_range)

    # ----- writing (the API) -----------------------------------------------------------------

    def validate(self, properties: dict[str, object], current: HubDeal | None) -> list[PropertyError]:
        """HubSpot's per-property checks for a create (current None) or an update."""
        current_pipeline = current.props.get("pipeline") if current else None
        pipeline_id = str(properties.get("pipeline") or current_pipeline or "")
        problems = [p for name, raw in properties.items()
                    if (p := self._check(name, "" if raw is None else str(raw), pipeline_id, current)) is not None]
        if current is None and "dealstage" not in properties and properties.get("pipeline"):
            problems.append(PropertyError("dealstage", "REQUIRED", "dealstage is required when pipeline is set"))
        return problems

    def _check(self, name: str, value: str, pipeline_id: str, current: HubDeal | None) -> PropertyError | None:
        def refuse(error: str, message: str) -> PropertyError:
            return PropertyError(name, error, message)

        if name in READ_ONLY_PROPERTIES or name in self.stage_date_properties:
            return refuse("READ_ONLY_VALUE", f'"{name}" is a read only property; its value cannot be set.')
        if name not in WRITABLE_PROPERTIES and name not in self.custom_properties:
            return refuse("PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
        if value == "":
            return None  # an empty string clears the value
        custom = self.custom_properties.get(name)
        if custom is not None:
            return self._check_custom(custom, value)
        if name == "pipeline" and value not in self._pipeline_ids:
            return refuse("INVALID_OPTION", f"{value} was not one of the allowed options: {sorted(self._pipeline_ids)}")
        if name == "dealstage":
            found = self._stages.get(value)
            if found is None or (pipeline_id and found[0].id != pipeline_id):
                allowed = ([s.id for s in self._pipeline(pipeline_id).stages] if pipeline_id in self._pipeline_ids
                           else sorted(self._stages))
                return refuse("INVALID_OPTION", f"{value} was not one of the allowed options: {allowed}")
        if name == "amount":
            try:
                Decimal(value)
            except InvalidOperation:
                return refuse("INVALID_DECIMAL", f"{value} was not a valid number.")
        if name == "closedate" and parse_time_ms(value) is None:
            return refuse("INVALID_DATE", f"{value} was not a valid date or datetime.")
        if name == "hubspot_owner_id" and value not in self._owner_ids:
            return refuse("INVALID_OWNER_ID", f"{value} is not a valid owner id")
        holder = self._unique[name].get(value) if name in self._unique else None
        if holder is not None and (current is None or holder != current.id):
            return refuse("VALUE_NOT_UNIQUE", f"{value} is already the {name} of deal {holder}")
        return None

    @staticmethod
    def _check_custom(custom: PropertyDef, value: str) -> PropertyError | None:
        def refuse(error: str, message: str) -> PropertyError:
            return PropertyError(custom.name, error, message)

        if custom.type == "number":
            try:
                Decimal(value)
            except InvalidOperation:
                return refuse("INVALID_DECIMAL", f"{value} was not a valid number.")
        elif custom.type in ("date", "datetime"):
            ms = parse_time_ms(value)
            if ms is None:
                return refuse("INVALID_DATE", f"{value} was not a valid date or datetime.")
            if custom.type == "date" and ms % 86_400_000:
                return refuse("INVALID_DATE", f"{value} is not midnight UTC; a date property holds whole days.")
        elif custom.type in ("bool", "enumeration"):
            allowed = [str(o["value"]) for o in custom.options]
            if value not in allowed:
                return refuse("INVALID_OPTION", f"{value} was not one of the allowed options: {allowed}")
        return None

    def create(self, properties: dict[str, object], company_ids: Iterable[str] = (), contact_ids: Iterable[str] = ()) -> HubDeal:
        """A new deal (properties already validated); dealstage/pipeline default to the first pipeline."""
        with self._lock:
            now = self._now_ms()
            deal_id = self._allocate_id()
            deal = HubDeal(deal_id, {"hs_object_id": deal_id}, {"createdate": now, "hs_lastmodifieddate": now},
                           list(dict.fromkeys(company_ids)), list(dict.fromkeys(contact_ids)))
            values = {k: "" if v is None else str(v) for k, v in properties.items()}
            if not values.get("dealstage") and self.pipelines:
                first = self._pipeline(values.get("pipeline") or self.pipelines[0].id)
                values["pipeline"] = first.id
                values["dealstage"] = first.stages[0].id
            self._apply(deal, values, now, SOURCE_API)
            self._insert(deal)
            self.write_log.record(deal.id, properties)
            return deal

    def update(self, deal: HubDeal, properties: dict[str, object], *, source_type: str = SOURCE_API) -> HubDeal:
        with self._lock:
            now = max(self._now_ms(), deal.updated_ms + 1)
            self._apply(deal, {k: "" if v is None else str(v) for k, v in properties.items()}, now, source_type)
            self._touch(deal, now)
            self.write_log.record(deal.id, properties)
            return deal

    def archive(self, deal: HubDeal) -> None:
        """Move to the recycle bin. HubSpot does not bump hs_lastmodifieddate (nor updatedAt) on archive."""
        with self._lock:
            if deal.archived_at_ms is None:
                deal.archived_at_ms = self._now_ms()
                self._reindex(deal)
                self.write_log.record(deal.id, {"archived": True})

    def merge(self, primary: HubDeal, merged: HubDeal) -> HubDeal:
        """HubSpot's merge: the survivor is a NEW record holding the primary's values (gaps filled from the other)."""
        with self._lock:
            now = self._now_ms()
            survivor_id = self._allocate_id()
            props = {**merged.props, **{k: v for k, v in primary.props.items() if v != ""}}
            merged_ids = [primary.id, merged.id]
            for source in (primary, merged):
                merged_ids += [i for i in source.props.get("hs_merged_object_ids", "").split(";") if i]
            props["hs_merged_object_ids"] = ";".join(sorted(set(merged_ids), key=int))
            props["hs_object_id"] = survivor_id
            times = {**merged.times, **primary.times, "createdate": min(primary.created_ms, merged.created_ms)}
            history = {**merged.history, **primary.history}
            survivor = HubDeal(survivor_id, props, times,
                               list(dict.fromkeys(primary.company_ids + merged.company_ids)),
                               list(dict.fromkeys(primary.contact_ids + merged.contact_ids)), history)
            self._touch(survivor, now)
            for old in (primary, merged):
                del self.deals[old.id]
                self._aliases[old.id] = survivor_id
                self._reindex_removed(old.id)
            self._insert(survivor)
            self._index_unique(survivor)
            self.write_log.record(survivor_id, {"merged": [primary.id, merged.id]})
            return survivor

    # ----- DealMutations (pipesync_sandbox.mutations) and other test helpers -----------------

    def touch_deals(self, fraction: float, *, seed: int = 0) -> list[str]:
        """Touch a deterministic ``fraction`` of live deals (next step text), bumping hs_lastmodifieddate; their ids."""
        rng = random.Random(seed)
        with self._lock:
            chosen = self._sample_live(fraction, rng)
            for deal in chosen:
                self.update(deal, {"hs_next_step": f"follow up #{rng.randrange(10_000)}"}, source_type=SOURCE_SEED)
            return [d.id for d in chosen]

    def delete_deal(self, deal_id: str) -> None:
        deal = self.resolve(deal_id)
        if deal is None:
            raise ValueError(f"deal {deal_id} does not exist")
        self.archive(deal)

    def merge_deals(self, survivor_id: str, merged_id: str) -> str:
        """HubSpot's merge with ``survivor_id`` as the primary: the id of the NEW record that survives."""
        primary, merged = self.resolve(survivor_id), self.resolve(merged_id)
        if primary is None or merged is None:
            raise ValueError(f"deal {merged_id if primary else survivor_id} does not exist")
        return self.merge(primary, merged).id

    def archive_fraction(self, fraction: float, *, seed: int = 0) -> list[str]:
        """Archive a deterministic ``fraction`` of live deals (hs_lastmodifieddate stays as it was); their ids."""
        with self._lock:
            chosen = self._sample_live(fraction, random.Random(seed))
            for deal in chosen:
                self.archive(deal)
            return [d.id for d in chosen]

    def _sample_live(self, fraction: float, rng: random.Random) -> list[HubDeal]:
        live = sorted((d for d in self.deals.values() if d.archived_at_ms is None), key=lambda d: int(d.id))
        return rng.sample(live, round(len(live) * fraction))

    def set_search_lag(self, seconds: float) -> None:
        """Change the search index lag; the index restarts from the current data."""
        with self._lock:
            self.search_lag_s = seconds
            self._search_pending.clear()
            live = [d for d in self.deals.values() if d.archived_at_ms is None]
            self._search_index = SearchIndex(live if seconds <= 0 else [_snapshot(d) for d in live])

    # ----- internals -------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _pipeline(self, pipeline_id: str) -> PipelineDef:
        return next(p for p in self.pipelines if p.id == pipeline_id)

    def _allocate_id(self) -> str:
        deal_id = self._next_id
        self._next_id += 1
        return str(deal_id)

    def _insert(self, deal: HubDeal) -> None:
        self.deals[deal.id] = deal
        bisect.insort(self._order, int(deal.id))
        self._reindex(deal)

    def _index_unique(self, deal: HubDeal) -> None:
        for name, index in self._unique.items():
            if name in deal.props:
                index[deal.props[name]] = deal.id

    def _reindex_removed(self, deal_id: str) -> None:
        position = bisect.bisect_left(self._order, int(deal_id))
        if position < len(self._order) and self._order[position] == int(deal_id):
            del self._order[position]
        self._queue_for_search(deal_id, None)

    def _reindex(self, deal: HubDeal) -> None:
        self._queue_for_search(deal.id, None if deal.archived_at_ms is not None else deal)

    def _queue_for_search(self, deal_id: str, deal: HubDeal | None) -> None:
        if self.search_lag_s <= 0:
            self._search_index.put(deal_id, deal)  # the live record: reads and search agree at once
        else:
            snapshot = None if deal is None else _snapshot(deal)
            self._search_pending.append((self.clock() + self.search_lag_s, deal_id, snapshot))

    def _touch(self, deal: HubDeal, now: int) -> None:
        deal.times["hs_lastmodifieddate"] = now
        self._reindex(deal)

    def _apply(self, deal: HubDeal, values: dict[str, str], now: int, source_type: str) -> None:
        if values.get("pipeline") and not values.get("dealstage") and deal.props.get("pipeline") != values["pipeline"]:
            values["dealstage"] = self._pipeline(values["pipeline"]).stages[0].id
        for name, value in values.items():
            old = deal.get(name)
            if old is not None and name not in deal.history:
                # History is materialised lazily: the seed value counts from the deal's creation.
                deal.history[name] = [HistoryEntry(old, deal.created_ms, SOURCE_SEED)]
            deal.props.pop(name, None)
            deal.times.pop(name, None)
            if name in self._unique:
                self._unique[name].pop(old or "", None)
                if value:
                    self._unique[name][value] = deal.id
            custom = self.custom_properties.get(name)
            if name in DATETIME_PROPERTIES and value:
                ms = parse_time_ms(value)
                assert ms is not None  # validated before
                deal.times[name], value = ms, iso_ms(ms)
            elif custom is not None and custom.type == "date" and value:
                # A date property reads back as the calendar day, however it was written.
                value = iso_ms(parse_time_ms(value) or 0)[:10]
                deal.props[name] = value
            elif value:
                deal.props[name] = value
            if old != (value or None):
                deal.history.setdefault(name, []).append(HistoryEntry(value, now, source_type))
            if name == "dealstage" and value and old != value:
                self._enter_stage(deal, value, old, now)

    def _enter_stage(self, deal: HubDeal, stage_id: str, previous: str | None, at_ms: int) -> None:
        pipeline, stage = self._stages[stage_id]
        deal.props["pipeline"] = pipeline.id
        deal.times["hs_v2_date_entered_" + stage_id] = at_ms
        if previous:
            deal.times["hs_v2_date_exited_" + previous] = at_ms
        deal.props["hs_is_closed"] = _bool(stage.is_closed)
        deal.props["hs_is_closed_won"] = _bool(stage.is_closed and stage.is_won)
        deal.props["hs_is_closed_lost"] = _bool(stage.is_closed and not stage.is_won)
        deal.props["hs_deal_stage_probability"] = str(float(stage.probability))

    def _from_seed(self, seed: SeedDeal) -> HubDeal:
        created, updated = to_ms(seed.created_at), to_ms(seed.updated_at)
        props = {
            "hs_object_id": seed.id,
            "dealname": seed.name,
            "deal_currency_code": seed.currency,
            "hubspot_owner_id": seed.owner_id,
        }
        optional = {
            "amount": None if seed.amount is None else str(seed.amount),
            "closed_lost_reason": seed.lost_reason,
            "hs_next_step": seed.next_step,
            "hs_analytics_source": seed.lead_source,
            "salesforce_opportunity_id": _salesforce_ref(seed.external_ref),
        }
        props.update({k: v for k, v in optional.items() if v})
        times = {"createdate": created, "hs_lastmodifieddate": max(updated, created), "closedate": to_ms(seed.close_date)}
        if seed.last_activity_at is not None:
            times["notes_last_updated"] = to_ms(seed.last_activity_at)
        deal = HubDeal(seed.id, props, times, [seed.account_id] if seed.account_id else [], list(seed.contact_ids))
        entries = [HistoryEntry(visit.stage_id, to_ms(visit.entered_at), SOURCE_SEED) for visit in seed.history]
        if not entries or entries[-1].value != seed.stage_id:
            entries.append(HistoryEntry(seed.stage_id, created, SOURCE_SEED))
        for visit, following in zip(entries, entries[1:] + [None]):
            times["hs_v2_date_entered_" + visit.value] = visit.at_ms
            if following is not None:
                times["hs_v2_date_exited_" + visit.value] = following.at_ms
        self._enter_stage(deal, seed.stage_id, None, entries[-1].at_ms)
        deal.props["pipeline"] = seed.pipeline_id
        deal.props["dealstage"] = seed.stage_id
        deal.history["dealstage"] = entries
        if seed.is_deleted:
            deal.archived_at_ms = to_ms(seed.deleted_at) if seed.deleted_at else updated
        return deal


class SearchIndex:
    """What search sees: documents by id, plus their (hs_lastmodifieddate, id) in order for range filters."""

    def __init__(self, deals: Iterable[HubDeal] = ()):
        self.docs: dict[str, HubDeal] = {d.id: d for d in deals}
        self._keys = {i: (d.updated_ms, int(i)) for i, d in self.docs.items()}
        self._modified = sorted(self._keys.values())

    def put(self, deal_id: str, deal: HubDeal | None) -> None:
        """Index ``deal`` under ``deal_id`` (None removes it), replacing what was indexed before."""
        old = self._keys.pop(deal_id, None)
        if old is not None:
            del self._modified[bisect.bisect_left(self._modified, old)]
            del self.docs[deal_id]
        if deal is not None:
            key = (deal.updated_ms, int(deal_id))
            self.docs[deal_id] = deal
            self._keys[deal_id] = key
            bisect.insort(self._modified, key)

    def modified_between(self, low: int | None, high: int | None) -> list[HubDeal]:
        start = 0 if low is None else bisect.bisect_left(self._modified, (low, -1))
        end = len(self._modified) if high is None else bisect.bisect_right(self._modified, (high, float("inf")))
        return [self.docs[str(deal_id)] for _, deal_id in self._modified[start:end]]


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _snapshot(deal: HubDeal) -> HubDeal:
    """A frozen copy for the lagging search index (history and associations are not searched)."""
    return HubDeal(deal.id, dict(deal.props), dict(deal.times), deal.company_ids, deal.contact_ids,
                   deal.history, deal.archived_at_ms)


def _salesforce_ref(external_ref: str | None) -> str | None:
    if external_ref and external_ref.startswith("salesforce:"):
        return external_ref.split(":", 1)[1]
    return None


def _company(account: Account, epoch_ms: int) -> HubRecord:
    props = {"name": account.name, "country": account.country, "hs_object_id": account.id}
    if account.website:
        props["website"] = account.website
        props["domain"] = _domain(account.website)
    return HubRecord(account.id, props, epoch_ms)


def _contact(contact: Contact, epoch_ms: int) -> HubRecord:
    props = {"firstname": contact.first_name, "lastname": contact.last_name, "email": contact.email,
             "associatedcompanyid": contact.account_id, "hs_object_id": contact.id}
    return HubRecord(contact.id, props, epoch_ms)


def _domain(website: str) -> str:
    host = website.split("://", 1)[-1].split("/", 1)[0].lower()
    return host.removeprefix("www.")


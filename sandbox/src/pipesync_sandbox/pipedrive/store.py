"""What one Pipedrive company holds, as Pipedrive models it, and how it changes.

Built from a :class:`~pipesync_sandbox.world.SystemData`: every record gets the
integer id Pipedrive would give it, times are whole UTC seconds (Pipedrive
keeps no fractions), won/lost is the deal's ``status`` (a won deal keeps its
last stage), and what other CRMs keep in standard fields (lead source, next
step, the id of the same deal elsewhere) lives in hash-keyed custom fields.

The store is mutable: the API's writes change it, and tests and benchmarks
drive realistic churn through :meth:`PipedriveStore.touch`, :meth:`delete`,
:meth:`archive` and :meth:`merge`. Every change bumps ``update_time`` and is
logged per deal, which is what ``/v1/deals/{id}/flow`` and ``/changelog`` serve.
"""

from __future__ import annotations

import bisect
import hashlib
import random
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pipesync_sandbox.world import SystemData
from pipesync_sandbox.writelog import WriteLog

if TYPE_CHECKING:
    from pipesync_sandbox.pipedrive.auth import Credentials

Clock = Callable[[], datetime]

DELETED_RETENTION = timedelta(days=30)  # deleted deals are listed (status=deleted) and then purged
DEAL_STATUSES = ("open", "won", "lost")
SORT_FIELDS = ("id", "update_time", "add_time")


def utc_seconds(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime without fractions (naive input is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def field_key(name: str) -> str:
    """A custom field's 40-character key: stable for a name, shaped like Pipedrive's random hashes."""
    return hashlib.sha1(f"pipedrive custom field: {name}".encode()).hexdigest()


@dataclass(slots=True)
class Change:
    """One logged change of one deal field (values as Pipedrive logs them: strings or null)."""

    id: int
    field_key: str
    old_value: str | None
    new_value: str | None
    time: datetime
    user_id: int
    change_source: str  # "app" for the seeded history, "api" for writes through the API


@dataclass(slots=True)
class User:
    id: int
    name: str
    email: str
    add_time: datetime


@dataclass(slots=True)
class Organization:
    id: int
    name: str
    owner_id: int
    website: str | None
    country: str
    add_time: datetime
    update_time: datetime


@dataclass(slots=True)
class Person:
    id: int
    first_name: str
    last_name: str
    email: str
    org_id: int | None
    owner_id: int
    add_time: datetime
    update_time: datetime


@dataclass(slots=True)
class Pipeline:
    id: int
    name: str
    order_nr: int
    add_time: datetime
    update_time: datetime
    is_deal_probability_enabled: bool = True
    is_deleted: bool = False


@dataclass(slots=True)
class Stage:
    id: int
    pipeline_id: int
    name: str
    order_nr: int
    deal_probability: int  # percent
    is_deal_rot_enabled: bool
    days_to_rotten: int | None
    add_time: datetime
    update_time: datetime
    is_deleted: bool = False


@dataclass(slots=True)
class CustomField:
    key: str  # 40-char hash
    name: str
    field_type: str  # Pipedrive's field type: enum, varchar, text, double, date
    options: dict[int, str] = field(default_factory=dict)  # option id -> label (enum fields)
    add_time: datetime | None = None

    def option_id(self, label: str) -> int:
        return next(option for option, text in self.options.items() if text == label)


@dataclass(slots=True)
class Deal:
    id: int
    title: str
    value: float
    currency: str
    owner_id: int
    person_id: int | None
    org_id: int | None
    pipeline_id: int
    stage_id: int
    status: str  # open | won | lost
    expected_close_date: date | None
    add_time: datetime
    update_time: datetime
    stage_change_time: datetime | None = None
    close_time: datetime | None = None
    won_time: datetime | None = None
    first_won_time: datetime | None = None
    lost_time: datetime | None = None
    lost_reason: str | None = None
    probability: float | None = None
    visible_to: int = 3  # "owner's visibility group", Pipedrive's default
    label_ids: list[int] = field(default_factory=list)
    origin: str = "ManuallyCreated"
    custom_fields: dict[str, Any] = field(default_factory=dict)
    is_deleted: bool = False
    delete_time: datetime | None = None
    is_archived: bool = False
    archive_time: datetime | None = None
    merged_into: int | None = None
    changes: list[Change] = field(default_factory=list)  # oldest first
    revision: int = 0  # bumped on every change, so renderings can be cached per deal


@dataclass(slots=True)
class Activity:
    """A v2 activity (a task, a call …), optionally on a deal."""

    id: int
    subject: str
    type: str
    owner_id: int
    deal_id: int | None
    due_date: date | None
    note: str | None
    add_time: datetime
    update_time: datetime
    done: bool = False
    is_deleted: bool = False


Record = Deal | Person | Organization | Pipeline | Stage | Activity
# Changed by every write (or the origin tag every pipesync write sets): left out of snapshots.
VOLATILE_FIELDS = frozenset({"update_time", "revision", "changes"})


class NotFound(LookupError):
    """No such record (or it is no longer visible)."""


class Conflict(ValueError):
    """The change is not allowed in the record's current state; the message says why."""


def _int_ids(values: Iterable[str]) -> dict[str, int]:
    """Pipedrive ids for the world's ids: the numbers themselves when they are numeric, else 1, 2, 3…"""
    values = list(dict.fromkeys(values))
    if all(value.isdigit() for value in values):
        return {value: int(value) for value in values}
    return {value: position for position, value in enumerate(values, start=1)}


class PipedriveStore:
    """One Pipedrive company: users, organizations, persons, pipelines, stages, deals, deal fields."""

    def __init__(self, data: SystemData, *, clock: Clock | None = None):
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.RLock()
        # (kind, sort field) -> [(sort key, id)] ascending. Replaced, never edited in place, so a
        # page being read while a write lands keeps a consistent list.
        self._indexes: dict[tuple[str, str], list[tuple[int, int]]] = {}
        self._change_ids = 0
        self.credentials: Credentials | None = None  # set by create_app: what clients log in with
        self.fields_version = 0  # bumped when the deal field catalogue changes
        self.write_log = WriteLog()
        self.activities: dict[int, Activity] = {}
        self._load(data)

    # -- building from the world -------------------------------------------------------------

    def _load(self, data: SystemData) -> None:
        deal_times = [utc_seconds(deal.created_at) for deal in data.deals]
        # The company exists since its first record: configuration and people are that old.
        self.founded = min(deal_times) if deal_times else self.now()

        user_ids = _int_ids(owner.id for owner in data.owners)
        self.users = {
            user_ids[o.id]: User(user_ids[o.id], o.name, o.email, self.founded) for o in data.owners
        }
        self.admin_id = next(iter(self.users)) if self.users else 1  # the token's user

        self.pipelines: dict[int, Pipeline] = {}
        self.stages: dict[int, Stage] = {}
        pipeline_ids = _int_ids(p.id for p in data.pipelines)
        stage_ids = _int_ids(f"{p.id}\x00{s.id}" for p in data.pipelines for s in p.stages)
        stage_of: dict[tuple[str, str], int] = {}
        for order, pdef in enumerate(data.pipelines, start=1):
            pid = pipeline_ids[pdef.id]
            self.pipelines[pid] = Pipeline(pid, pdef.label, order, self.founded, self.founded)
            for sdef in sorted(pdef.stages, key=lambda s: s.order):
                sid = stage_ids[f"{pdef.id}\x00{sdef.id}"]
                stage_of[(pdef.id, sdef.id)] = sid
                self.stages[sid] = Stage(
                    sid, pid, sdef.label, sdef.order, round(sdef.probability * 100),
                    sdef.rot_days is not None, sdef.rot_days, self.founded, self.founded,
                )

        org_ids = _int_ids(a.id for a in data.accounts)
        person_ids = _int_ids(c.id for c in data.contacts)
        first_deal: dict[str, Any] = {}
        for deal in sorted(data.deals, key=lambda d: d.created_at):
            first_deal.setdefault(deal.account_id, deal)
        self.organizations: dict[int, Organization] = {}
        for account in data.accounts:
            earliest = first_deal.get(account.id)
            since = utc_seconds(earliest.created_at) if earliest else self.founded
            owner = user_ids.get(earliest.owner_id, self.admin_id) if earliest else self.admin_id
            oid = org_ids[account.id]
            self.organizations[oid] = Organization(oid, account.name, owner, account.website, account.country,
                                                   since, since)
        self.persons: dict[int, Person] = {}
        for contact in data.contacts:
            org = self.organizations.get(org_ids.get(contact.account_id, -1))
            pid = person_ids[contact.id]
            self.persons[pid] = Person(
                pid, contact.first_name, contact.last_name, contact.email, org.id if org else None,
                org.owner_id if org else self.admin_id, org.add_time if org else self.founded,
                org.add_time if org else self.founded,
            )

        fields = self._define_custom_fields(data)
        self.custom_fields = {custom.key: custom for custom in fields.values()}
        lead_source, next_step = fields["Lead source"], fields["Next step"]

        deal_ids = _int_ids(d.id for d in data.deals)
        self.deals: dict[int, Deal] = {}
        now = self.now()
        for seed in data.deals:
            visits = [(stage_of[(seed.pipeline_id, v.stage_id)], utc_seconds(v.entered_at)) for v in seed.history]
            stage_id = stage_of[(seed.pipeline_id, seed.stage_id)]
            created = utc_seconds(seed.created_at)
            updated = max(utc_seconds(seed.updated_at), created)
            deal = Deal(
                id=deal_ids[seed.id], title=seed.name,
                value=float(seed.amount) if seed.amount is not None else 0.0, currency=seed.currency,
                owner_id=user_ids[seed.owner_id],
                person_id=next((person_ids[c] for c in seed.contact_ids if c in person_ids), None),
                org_id=org_ids.get(seed.account_id), pipeline_id=pipeline_ids[seed.pipeline_id],
                stage_id=stage_id, status=seed.status, expected_close_date=seed.close_date,
                add_time=created, update_time=updated,
                stage_change_time=visits[-1][1] if len(visits) > 1 else None,
                lost_reason=seed.lost_reason if seed.status == "lost" else None,
            )
            if seed.lead_source:
                deal.custom_fields[lead_source.key] = lead_source.option_id(seed.lead_source)
            if seed.next_step:
                deal.custom_fields[next_step.key] = seed.next_step
            if seed.external_ref:
                system, _, ref = seed.external_ref.partition(":")
                deal.custom_fields[fields[_ref_field_name(system)].key] = ref
            for (old, _), (new, at) in zip(visits, visits[1:]):
                self._log(deal, "stage_id", str(old), str(new), at, deal.owner_id, "app")
            if seed.status in ("won", "lost"):
                closed = utc_seconds(seed.closed_at) if seed.closed_at else \
                    _close_time(seed.close_date, visits[-1][1] if visits else created, updated)
                deal.close_time = closed
                if seed.status == "won":
                    deal.won_time = deal.first_won_time = closed
                else:
                    deal.lost_time = closed
                self._log(deal, "status", "open", seed.status, closed, deal.owner_id, "app")
            if seed.is_deleted or seed.merged_into:
                deal.is_deleted = True
                deal.delete_time = utc_seconds(seed.deleted_at) if seed.deleted_at else min(updated, now)
                if seed.merged_into in deal_ids:
                    deal.merged_into = deal_ids[seed.merged_into]
            self.deals[deal.id] = deal

    def _define_custom_fields(self, data: SystemData) -> dict[str, CustomField]:
        """Deal custom fields for what Pipedrive has no standard field for, keyed by field name."""
        sources = sorted({d.lead_source for d in data.deals if d.lead_source})
        fields = [
            CustomField(field_key("Lead source"), "Lead source", "enum",
                        {position: label for position, label in enumerate(sources, start=1)}),
            CustomField(field_key("Next step"), "Next step", "varchar"),
        ]
        systems = sorted({d.external_ref.partition(":")[0] for d in data.deals if d.external_ref})
        fields += [CustomField(field_key(_ref_field_name(s)), _ref_field_name(s), "varchar") for s in systems]
        for custom in fields:
            custom.add_time = self.founded
        return {custom.name: custom for custom in fields}

    # -- reading ----------------------------------------------------------------------------

    def now(self) -> datetime:
        return utc_seconds(self._clock())

    def deleted_cutoff(self) -> datetime:
        """Deals deleted before this moment have been purged."""
        return self.now() - DELETED_RETENTION

    def is_purged(self, deal: Deal) -> bool:
        return deal.is_deleted and (deal.delete_time is None or deal.delete_time < self.deleted_cutoff())

    def table(self, kind: str) -> dict[int, Any]:
        return {"deals": self.deals, "persons": self.persons, "organizations": self.organizations,
                "pipelines": self.pipelines, "stages": self.stages, "activities": self.activities}[kind]

    def deal(self, deal_id: int) -> Deal:
        """A deal that is still visible (live, or deleted within the last 30 days)."""
        deal = self.deals.get(deal_id)
        if deal is None or self.is_purged(deal):
            raise NotFound(f"Deal {deal_id} not found")
        return deal

    def live_deal(self, deal_id: int) -> Deal:
        """A deal that is not deleted: the only kind that can be changed."""
        deal = self.deal(deal_id)
        if deal.is_deleted:
            raise NotFound(f"Deal {deal_id} not found")
        return deal

    def index(self, kind: str, sort_by: str) -> list[tuple[int, int]]:
        """``(sort key, id)`` of every record of ``kind``, ascending; built on first use, then kept current."""
        with self._lock:
            entries = self._indexes.get((kind, sort_by))
            if entries is None:
                entries = sorted(self.sort_key(r, sort_by) for r in self.table(kind).values())
                self._indexes[(kind, sort_by)] = entries
            return entries

    def scan(self, kind: str, sort_by: str, *, descending: bool, after: tuple[int, int] | None,
             since: int | None = None, ids: Iterable[int] | None = None) -> Iterator[Any]:
        """Records of ``kind`` in sort order, starting after the ``(key, id)`` position ``after``.

        ``since`` lets an ``update_time`` scan skip straight to the first record
        at or after it; ``ids`` restricts the scan to those records.
        """
        table = self.table(kind)
        if ids is not None:
            entries = sorted(self.sort_key(table[i], sort_by) for i in set(ids) if i in table)
        else:
            entries = self.index(kind, sort_by)
        if descending:
            stop = bisect.bisect_left(entries, after) if after else len(entries)
            positions: Iterable[int] = range(stop - 1, -1, -1)
        else:
            start = bisect.bisect_right(entries, after) if after else 0
            if since is not None and sort_by == "update_time":
                start = max(start, bisect.bisect_left(entries, (since, -1)))
            positions = range(start, len(entries))
        for position in positions:
            record = table.get(entries[position][1])
            if record is not None:
                yield record

    @staticmethod
    def sort_key(record: Any, sort_by: str) -> tuple[int, int]:
        """A record's position in a ``sort_by`` ordering: (value, id), times as epoch seconds."""
        value = getattr(record, sort_by)
        return (int(value.timestamp()) if isinstance(value, datetime) else value, record.id)

    # -- writing ----------------------------------------------------------------------------

    def _touched(self, deal: Deal, change: Callable[[datetime], None]) -> None:
        """Apply ``change`` to ``deal`` at the current time, then bump its update_time and revision."""
        before = self.sort_key(deal, "update_time")
        now = self.now()
        change(now)
        deal.update_time = now
        deal.revision += 1
        self._reindex(deal, before)

    def _reindex(self, deal: Deal, before: tuple[int, int] | None) -> None:
        """Move a changed deal (``before``: its old update_time key; None when new) in the built indexes."""
        for (kind, sort_by), entries in list(self._indexes.items()):
            if kind != "deals" or (before is not None and sort_by != "update_time"):
                continue
            replaced = list(entries)
            if before is not None:
                del replaced[bisect.bisect_left(replaced, before)]
            bisect.insort(replaced, self.sort_key(deal, sort_by))
            self._indexes[(kind, sort_by)] = replaced

    def _log(self, deal: Deal, key: str, old: str | None, new: str | None, at: datetime, user_id: int,
             source: str) -> None:
        self._change_ids += 1
        deal.changes.append(Change(self._change_ids, key, old, new, at, user_id, source))
        deal.revision += 1

    def create_deal(self, values: dict[str, Any]) -> Deal:
        """A new open deal (values already validated by the API layer)."""
        with self._lock:
            now = self.now()
            if "stage_id" in values:
                pipeline_id = self.stages[values["stage_id"]].pipeline_id
            else:
                pipeline_id = values.get("pipeline_id") or min(self.pipelines.values(), key=lambda p: p.order_nr).id
            stage_id = values.get("stage_id") or self.first_stage(pipeline_id).id
            deal = Deal(
                id=max(self.deals, default=0) + 1, title=values["title"], value=float(values.get("value", 0)),
                currency=values.get("currency", "USD"), owner_id=values.get("owner_id", self.admin_id),
                person_id=values.get("person_id"), org_id=values.get("org_id"), pipeline_id=pipeline_id,
                stage_id=stage_id, status="open", expected_close_date=values.get("expected_close_date"),
                add_time=now, update_time=now, origin="API",
            )
            self.deals[deal.id] = deal
            rest = {k: v for k, v in values.items() if k not in {"title", "value", "currency", "owner_id",
                                                                  "person_id", "org_id", "pipeline_id",
                                                                  "stage_id", "expected_close_date"}}
            self._apply(deal, rest, now, source="api", user_id=self.admin_id)
            self._reindex(deal, None)
            self.write_log.record(str(deal.id), values)
            return deal

    def update_deal(self, deal_id: int, values: dict[str, Any], *, source: str = "api") -> Deal:
        """Apply validated field values to a live deal, logging each change."""
        with self._lock:
            deal = self.live_deal(deal_id)
            self._touched(deal, lambda now: self._apply(deal, values, now, source=source, user_id=self.admin_id))
            self.write_log.record(str(deal.id), values)
            return deal

    def _apply(self, deal: Deal, values: dict[str, Any], now: datetime, *, source: str, user_id: int) -> None:
        if "pipeline_id" in values and "stage_id" not in values and values["pipeline_id"] != deal.pipeline_id:
            values = {**values, "stage_id": self.first_stage(values["pipeline_id"]).id}
        for name, new in values.items():
            if name == "custom_fields":
                for key, value in new.items():
                    old = deal.custom_fields.get(key)
                    if old != value:
                        self._log(deal, key, _logged(old), _logged(value), now, user_id, source)
                    if value is None:
                        deal.custom_fields.pop(key, None)
                    else:
                        deal.custom_fields[key] = value
                continue
            old = getattr(deal, name)
            if old == new:
                continue
            if name == "status":
                self._set_status(deal, new, now)
            else:
                setattr(deal, name, new)
            if name == "stage_id":
                deal.stage_change_time = now
                deal.pipeline_id = self.stages[new].pipeline_id
            if name == "is_archived":
                deal.archive_time = now if new else None
            if name == "is_deleted":
                deal.delete_time = now if new else None
            self._log(deal, name, _logged(old), _logged(new), now, user_id, source)

    @staticmethod
    def _set_status(deal: Deal, status: str, now: datetime) -> None:
        deal.status = status
        deal.close_time = now if status in ("won", "lost") else None
        deal.won_time = now if status == "won" else None
        deal.lost_time = now if status == "lost" else None
        if status == "won" and deal.first_won_time is None:
            deal.first_won_time = now
        if status != "lost":
            deal.lost_reason = None

    def add_custom_field(self, name: str, field_type: str, option_labels: Iterable[str] = ()) -> CustomField:
        """A new deal custom field, as an admin adds one (a fresh hash key even when the name is taken)."""
        with self._lock:
            key, salt = field_key(name), 0
            while key in self.custom_fields:
                salt += 1
                key = field_key(f"{name}\x00{salt}")
            options = {position: label for position, label in enumerate(option_labels, start=1)}
            custom = CustomField(key, name, field_type, options, self.now())
            self.custom_fields[key] = custom
            self.fields_version += 1
            self.write_log.record(key, {"field_name": name, "field_type": field_type})
            return custom

    def create_activity(self, values: dict[str, Any]) -> Activity:
        """A new activity (values validated by the API layer); its owner defaults to the token's user."""
        with self._lock:
            now = self.now()
            activity = Activity(max(self.activities, default=0) + 1, values.get("subject") or "", values.get("type")
                                or "task", values.get("owner_id") or self.admin_id, values.get("deal_id"),
                                values.get("due_date"), values.get("note"), now, now, bool(values.get("done")))
            self.activities[activity.id] = activity
            self._forget_index("activities")
            self.write_log.record(f"activity:{activity.id}", values)
            return activity

    def delete_activity(self, activity_id: int) -> Activity:
        """Mark an activity deleted (Pipedrive purges it after 30 days)."""
        with self._lock:
            activity = self.activities.get(activity_id)
            if activity is None or activity.is_deleted:
                raise NotFound(f"Activity {activity_id} not found")
            activity.is_deleted, activity.update_time = True, self.now()
            self._forget_index("activities")
            self.write_log.record(f"activity:{activity.id}", {"is_deleted": True})
            return activity

    def _forget_index(self, kind: str) -> None:
        for key in [k for k in self._indexes if k[0] == kind]:
            del self._indexes[key]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every deal (deleted too), field by field (custom fields as ``custom_fields.<key>``), with the ids of
        its live activities under ``"activities"``; what every write changes is left out (:data:`VOLATILE_FIELDS`)."""
        with self._lock:
            activities: dict[int, list[int]] = {}
            for a in self.activities.values():
                if not a.is_deleted and a.deal_id is not None:
                    activities.setdefault(a.deal_id, []).append(a.id)
            # pipesync's origin tag is a custom field it stamps on every write, like a modification time
            stamps = {k for k, f in self.custom_fields.items() if f.name.casefold() == ORIGIN_FIELD_NAME}
            snap = {}
            for deal in self.deals.values():
                fields = {name: getattr(deal, name) for name in Deal.__dataclass_fields__
                          if name not in VOLATILE_FIELDS and name != "custom_fields"}
                fields.update({f"custom_fields.{k}": v for k, v in sorted(deal.custom_fields.items()) if k not in stamps})
                fields["activities"] = sorted(activities.get(deal.id, []))
                snap[str(deal.id)] = fields
            return snap

    def first_stage(self, pipeline_id: int) -> Stage:
        return min((s for s in self.stages.values() if s.pipeline_id == pipeline_id), key=lambda s: s.order_nr)

    def delete(self, deal_ids: Iterable[int]) -> None:
        """Soft-delete deals: listed with ``status=deleted`` for 30 days, then gone."""
        for deal_id in deal_ids:
            self.update_deal(deal_id, {"is_deleted": True})

    def archive(self, deal_ids: Iterable[int]) -> None:
        """Archive deals: they leave ``/deals`` and appear in ``/deals/archived``."""
        for deal_id in deal_ids:
            self.update_deal(deal_id, {"is_archived": True})

    def merge(self, deal_id: int, into_id: int) -> Deal:
        """Merge deal ``deal_id`` into ``into_id``: the first is deleted, the second survives, updated."""
        with self._lock:
            if deal_id == into_id:
                raise Conflict("A deal cannot be merged with itself")
            merged, survivor = self.live_deal(deal_id), self.live_deal(into_id)
            merged.merged_into = into_id
            self.update_deal(deal_id, {"is_deleted": True})
            self._touched(survivor, lambda now: self._log(survivor, "merge_what_id", None, str(deal_id), now,
                                                          self.admin_id, "api"))
            self.write_log.record(str(into_id), {"merge_what_id": deal_id})
            return survivor

    # DealMutations (pipesync_sandbox.mutations), for tests and demos

    def touch_deals(self, fraction: float, *, seed: int = 0) -> list[str]:
        """Edit a ``fraction`` of the live deals the way sales reps do (value up by 10 %), bumping update_time.

        Returns the ids changed (in id order), so a test knows what an incremental read must find.
        """
        with self._lock:
            live = sorted(d.id for d in self.deals.values() if not d.is_deleted)
            chosen = sorted(random.Random(seed).sample(live, round(len(live) * fraction)))
            for deal_id in chosen:
                deal = self.deals[deal_id]
                self.update_deal(deal_id, {"value": round(deal.value * 1.1, 2) or 100.0}, source="app")
            return [str(deal_id) for deal_id in chosen]

    def delete_deal(self, deal_id: str) -> None:
        self.delete([int(deal_id)])

    def merge_deals(self, survivor_id: str, merged_id: str) -> str:
        return str(self.merge(int(merged_id), int(survivor_id)).id)


ORIGIN_FIELD_NAME = "pipesync origin"  # the Pipedrive adapter's default origin_field


def _ref_field_name(system: str) -> str:
    return {"salesforce": "Salesforce ID", "hubspot": "HubSpot ID"}.get(system, f"{system.title()} ID")


def _close_time(close_date: date, last_stage_entered: datetime, updated: datetime) -> datetime:
    """When a closed deal was won/lost: its close date at noon, kept between its last stage move and its last update."""
    at_noon = datetime.combine(close_date, time_of_day(12), tzinfo=UTC)
    return min(max(at_noon, last_stage_entered), updated)


def _logged(value: Any) -> str | None:
    """A value as the change log shows it: a string, or null."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float | Decimal) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)

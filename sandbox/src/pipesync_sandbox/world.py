"""The sandboxes' data: one seeded "world" of real deals, as each CRM holds them.

The generator (``pipesync_sandbox.generator``) builds a :class:`World`; each
vendor sandbox serves its :class:`SystemData` in that vendor's API shape. Every
record knows the real-world deal it stands for (``truth_id``), so consolidation
quality can be measured against ground truth.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

SYSTEMS = ("salesforce", "hubspot", "pipedrive")


@dataclass(slots=True)
class Account:
    id: str  # the system's own id (SF Account 001…, HubSpot company id, Pipedrive org id)
    truth_id: str  # the real company this record stands for
    name: str  # as spelled in this system (legal-suffix and script variants)
    website: str | None
    country: str


@dataclass(slots=True)
class Owner:
    id: str
    name: str
    email: str


@dataclass(slots=True)
class Contact:
    id: str
    account_id: str
    first_name: str
    last_name: str
    email: str


@dataclass(slots=True)
class StageDef:
    id: str
    label: str
    order: int
    probability: float  # 0..1
    is_closed: bool
    is_won: bool
    shared: str  # ground truth: the shared-pipeline stage key this stage means
    rot_days: int | None = None


@dataclass(slots=True)
class PipelineDef:
    id: str
    label: str
    language: str  # BCP 47 tag of the stage labels: en, zh, ko, ar, de, es …
    stages: list[StageDef]


@dataclass(slots=True)
class StageVisit:
    stage_id: str
    entered_at: datetime


@dataclass(slots=True)
class SeedDeal:
    id: str  # the record's id in its system, vendor-shaped
    system: str
    truth_id: str  # the real-world deal (ground-truth cluster)
    pipeline_id: str
    stage_id: str
    status: str  # open | won | lost
    name: str
    amount: Decimal | None
    currency: str
    close_date: date
    created_at: datetime
    updated_at: datetime
    last_activity_at: datetime | None
    owner_id: str
    account_id: str
    contact_ids: list[str]
    lead_source: str | None
    lost_reason: str | None
    next_step: str | None
    history: list[StageVisit]  # oldest first; the last visit is the current stage
    external_ref: str | None = None  # "<system>:<id>" of the same deal in another system
    is_deleted: bool = False
    deleted_at: datetime | None = None
    merged_into: str | None = None  # survivor id, for records merged away
    closed_at: datetime | None = None  # when it was won or lost (Pipedrive's won_time/lost_time)
    # ground truth beyond the cluster, for measuring cleanups (see docs/sandbox.md, labels file):
    role: str = "primary"  # primary | copy (same deal, another system) | duplicate (same system)
    anomalies: tuple[str, ...] = ()  # e.g. misplaced_zero, stale, behind


@dataclass
class SystemData:
    system: str
    pipelines: list[PipelineDef]
    owners: list[Owner]
    accounts: list[Account]
    contacts: list[Contact]
    deals: list[SeedDeal]


@dataclass
class World:
    seed: int
    systems: dict[str, SystemData] = field(default_factory=dict)
    size: int = 0  # the requested number of deal records across all systems
    as_of: datetime | None = None  # the world's "now": ages, staleness and deletions are relative to it


def clock_from(as_of: datetime | None) -> Callable[[], datetime]:
    """A sandbox's "now": starts at a seeded world's ``as_of`` and runs in real time (the real time without one)."""
    if as_of is None:
        return lambda: datetime.now(UTC)
    started = time.monotonic()
    return lambda: as_of + timedelta(seconds=time.monotonic() - started)

"""A migration planned from the warehouse: each deal of the source as the create that would put it
in the target, or skipped with the reason. Nothing is sent to the target here (the dry run).

A deal's stage goes source stage → shared stage (already in the warehouse) → the target's
stage by the reverse mapping in the target's mapping file (``writes:``, or the one stage mapped
to it). Owners are matched by e-mail; amounts keep their currency, which the target must have.
What stops the migration — a shared stage with no landing stage, a currency the target lacks —
is listed in ``blockers`` with the fix, and ``run`` refuses to start until it is fixed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import UsageError
from pipesync.mapping import ANY as ANY_PIPELINE
from pipesync.mapping import Mapping, PipelineRule, load_mapping
from pipesync.model import ChangeKind, FieldChange, SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.pushback.planner import landing_fields
from pipesync.pushback.plan import PlannedChange
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse

RULE = "migrate"
SAMPLE = 10
# What a migrated deal carries, in the order a target's own import would list it.
CARRIED = ("name", "pipeline", "source_stage", "status", "amount", "currency", "close_date", "owner_id",
           "lost_reason", "lead_source", "next_step")
CURRENCY_SETTINGS = {
    "salesforce": "Setup → Company Information → Currencies → New (multi-currency must be on)",
    "hubspot": "Settings → Account defaults → Currency → Add currency",
    "pipedrive": "Company settings → Currencies",
}


class Skipped(BaseModel):
    source_key: str
    reason: str


class Migration(BaseModel):
    migration_id: str
    source: str
    target: str
    created_at: datetime
    target_pipeline: str | None = None
    changes: list[PlannedChange] = Field(default_factory=list)
    skipped: list[Skipped] = Field(default_factory=list)
    #: what stops the migration, each with its fix
    blockers: list[str] = Field(default_factory=list)
    by_stage: dict[str, int] = Field(default_factory=dict)
    by_owner: dict[str, int] = Field(default_factory=dict)
    #: owners of the source no target user has the e-mail of → their deals
    unmatched_owners: dict[str, int] = Field(default_factory=dict)
    #: fields the source holds that the target cannot be written (they are left out)
    not_written: list[str] = Field(default_factory=list)

    def summary(self, sample: int = SAMPLE) -> dict[str, Any]:
        """What the dry run shows and ``--json`` prints: counts and a sample of each action."""
        return {
            "migration_id": self.migration_id, "source": self.source, "target": self.target,
            "target_pipeline": self.target_pipeline, "ok": not self.blockers, "blockers": self.blockers,
            "counts": {"create": len(self.changes), "skip": len(self.skipped)},
            "by_stage": self.by_stage, "by_owner": self.by_owner, "unmatched_owners": self.unmatched_owners,
            "not_written": self.not_written,
            "sample": {"create": [{"source_key": c.deal_key, **{f.field: f.after for f in c.fields}}
                                  for c in self.changes[:sample]],
                       "skip": [s.model_dump() for s in self.skipped[:sample]]},
        }


def migrated_ids(conn: Any, target: str) -> dict[str, str]:
    """source key → the target's record id, for every deal migrated into ``target`` so far."""
    m = t.id_map
    return dict(conn.execute(select(m.c.source_key, m.c.target_id).where(m.c.target == target)).all())


def target_rule(mapping: Mapping, wanted: str | None) -> PipelineRule | None:
    """The target pipeline deals land in: ``wanted`` (id or label), else the mapping's first named one."""
    if wanted is not None:
        rule = mapping.pipeline_rule(wanted)
        if rule is None or rule.id == ANY_PIPELINE and wanted != ANY_PIPELINE:
            raise UsageError(f"the mapping of the target has no pipeline {wanted!r}")
        return rule
    return next((p for p in mapping.pipelines if p.id != ANY_PIPELINE), mapping.pipeline_rule(None))


def make_migration(settings: Settings, source: str, target: str, *, limit: int | None = None,
                   default_owner: str | None = None, pipeline_id: str | None = None,
                   opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter,
                   now: datetime | None = None) -> Migration:
    """The migration of ``source``'s deals in the warehouse into ``target``; nothing is sent."""
    if source == target:
        raise UsageError("--from and --to name the same source")
    target_config = settings.source(target)
    settings.source(source)  # a typo names the source it cannot find
    now = now or datetime.now(timezone.utc)
    shared = load_pipeline(settings.pipeline_path())
    mapping_path = settings.mapping_path(target_config)
    if not mapping_path.exists():
        raise UsageError(f"{target} has no mapping file ({mapping_path}): run `pipesync map {target}` first, so "
                         f"each shared stage has a stage of {target} to land in")
    mapping = load_mapping(mapping_path, shared)
    rule = target_rule(mapping, pipeline_id)
    with opener(target_config, settings) as adapter:
        if not adapter.write_batch_max:
            raise UsageError(f"{target} ({target_config.type}) cannot be written to: it cannot be a migration's target")
        discovery = adapter.discover()
        currencies = adapter.currencies()
        writable = adapter.writable_fields
    owners = {o.email.casefold(): o.id for o in discovery.owners if o.email}
    fallback = None
    if default_owner is not None:
        fallback = owners.get(default_owner.casefold())
        if fallback is None:
            raise UsageError(f"--default-owner {default_owner}: no user of {target} has that e-mail")
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            done = migrated_ids(conn, target)
            d = t.deals
            query = select(d).where(d.c.source == source, d.c.is_deleted.is_(False)).order_by(d.c.key)
            rows = [dict(r) for r in conn.execute(query).mappings()]
    finally:
        warehouse.close()
    if not rows:
        raise UsageError(f"the warehouse holds no deals of {source}: run `pipesync sync --source {source}` first")
    planner = _Planner(target, shared, rule, writable, currencies, owners, fallback)
    migration = Migration(migration_id=f"{source}>{target}", source=source, target=target, created_at=now,
                          target_pipeline=rule.id if rule and rule.id != ANY_PIPELINE else None)
    stages: Counter[str] = Counter()
    by_owner: Counter[str] = Counter()
    for row in rows:
        if row["key"] in done:
            migration.skipped.append(Skipped(source_key=row["key"], reason=f"already migrated as {done[row['key']]}"))
            continue
        if limit is not None and len(migration.changes) >= limit:
            continue
        fields = planner.fields(row)
        if fields is None:
            continue
        stages[row["stage"]] += 1
        by_owner[planner.owner_shown(row)] += 1
        migration.changes.append(PlannedChange(
            seq=len(migration.changes) + 1, source=target, source_id="", deal_key=row["key"], kind=ChangeKind.CREATE,
            fields=[FieldChange(field=k, before=None, after=v) for k, v in fields.items()], rule=RULE,
            reason=f"{row['name'] or row['key']} from {source}"))
    migration.by_stage = {s.key: stages[s.key] for s in shared.stages if stages[s.key]}
    migration.by_owner = dict(by_owner.most_common())
    migration.unmatched_owners = dict(planner.unmatched.most_common())
    migration.not_written = sorted(planner.not_written)
    migration.blockers = planner.blockers(settings, target_config, mapping_path)
    return migration


def _plain(value: Any) -> Any:
    """A value as the plan and the journal hold it: amounts as exact text, dates as ISO."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value.isoformat() if hasattr(value, "isoformat") else value


class _Planner:
    """One deal's fields in the target, noting what cannot land (stages, currencies) as it goes."""

    def __init__(self, target: str, shared: SharedPipeline, rule: PipelineRule | None, writable: frozenset[str],
                 currencies: frozenset[str] | None, owners: dict[str, str], fallback: str | None):
        self.target, self.shared, self.rule, self.writable = target, shared, rule, writable
        self.currencies, self.owners, self.fallback = currencies, owners, fallback
        self.unlanded: Counter[str] = Counter()
        self.foreign: Counter[str] = Counter()
        self.unmatched: Counter[str] = Counter()
        self.not_written: set[str] = set()
        self._landing: dict[str, dict[str, Any] | None] = {}

    def landing(self, stage: str) -> dict[str, Any] | None:
        if stage not in self._landing:
            landed = landing_fields(self.rule, self.shared, stage, self.writable)
            category = self.shared.get(stage).category.value
            if landed is not None and "status" in self.writable and category in ("won", "lost"):
                landed = {**landed, "status": category}  # a CRM closing by status (Pipedrive) needs it too
            self._landing[stage] = landed
        return self._landing[stage]

    def owner_shown(self, row: dict[str, Any]) -> str:
        email = (row["owner_email"] or "").casefold()
        if email in self.owners:
            return email
        return "(default owner)" if self.fallback else "(unassigned)"

    def fields(self, row: dict[str, Any]) -> dict[str, Any] | None:
        landed = self.landing(row["stage"])
        if landed is None:
            self.unlanded[row["stage"]] += 1
            return None
        currency = row["currency"]
        if currency and self.currencies is not None and currency not in self.currencies:
            self.foreign[currency] += 1
            return None
        email = (row["owner_email"] or "").casefold()
        owner = self.owners.get(email)
        if owner is None:
            self.unmatched[row["owner_email"] or row["owner_name"] or "(no owner)"] += 1
            owner = self.fallback
        closed = self.shared.get(row["stage"]).category.value in ("won", "lost")
        wanted = {
            "name": row["name"] or row["key"],
            "pipeline": self.rule.id if self.rule and self.rule.id != ANY_PIPELINE else None,
            **landed,
            "amount": row["amount"],
            "currency": currency,
            # A target holds one close date: the day it closed for a closed deal, else the expected one.
            "close_date": (row["actual_close_date"] or row["close_date"]) if closed else row["close_date"],
            "owner_id": owner,
            "lost_reason": row["lost_reason"] if self.shared.get(row["stage"]).category.value == "lost" else None,
            "lead_source": row["lead_source"],
            "next_step": row["next_step"],
        }
        out = {}
        for name in CARRIED:
            value = wanted.get(name)
            if value is None or value == "":
                continue
            if name not in self.writable:
                self.not_written.add(name)
                continue
            out[name] = _plain(value)
        return out

    def blockers(self, settings: Settings, target: SourceConfig, mapping_path: Any) -> list[str]:
        out = []
        if self.unlanded:
            where = f"pipeline {self.rule.id!r}" if self.rule else "a pipeline"
            listed = ", ".join(f"{s} ({n} deals)" for s, n in self.unlanded.most_common())
            out.append(f"shared stages with no stage of {self.target} to land in: {listed}; under {where} in "
                       f"{mapping_path} map one stage to each, or add `writes: {{SHARED_STAGE: STAGE_ID}}` "
                       f"(`pipesync map {self.target} --for-writes` shows where each shared stage lands)")
        if self.foreign:
            listed = ", ".join(f"{c} ({n} deals)" for c, n in self.foreign.most_common())
            has = ", ".join(sorted(self.currencies or ()))
            how = CURRENCY_SETTINGS.get(target.type, "the CRM's currency settings")
            out.append(f"currencies {self.target} does not have: {listed} (it has {has}); add them in {how}")
        return out

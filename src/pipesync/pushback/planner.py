"""``pipesync plan``: the rules, applied to the consolidated truth, as a list of changes.

Each rule proposes changes per CRM record (``Proposal``); the planner keeps those in
scope, reads every targeted record's current values from its CRM (the before-images),
drops what would change nothing, and refuses the whole plan when a cap is exceeded.
Nothing is written to any CRM here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from pipesync.adapters import Adapter, open_adapter
from pipesync.adapters.changes import same_value
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, GuardrailError
from pipesync.mapping import Mapping, PipelineRule, load_mapping
from pipesync.model import Category, ChangeKind, FieldChange, SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.pushback.fields import FieldProblem, check_fields, describe
from pipesync.pushback.facts import Facts, Golden, Member, load_facts, survivor
from pipesync.pushback.journal import created_tasks
from pipesync.pushback.plan import Plan, PlannedChange, Refusal, plan_id, warehouse_fingerprint
from pipesync.pushback.rules import DEFAULT_RULES_FILE, PushbackRules, load_rules
from pipesync.warehouse.store import Warehouse

CUSTOM = "custom:"


def rules_for(settings: Settings, path: str | Path | None = None) -> PushbackRules:
    """``path``, else the ``pushback:`` setting, else ``pushback.yaml`` beside the config when present."""
    chosen = path or settings.pushback
    if chosen is not None:
        resolved = settings.path(chosen)
        if not resolved.exists():
            raise ConfigError(f"{resolved}: no such push-back rules file")
        return load_rules(resolved)
    return load_rules(settings.path(DEFAULT_RULES_FILE))


@dataclass
class Proposal:
    member: Member
    kind: ChangeKind
    after: dict[str, Any]
    rule: str
    reason: str
    merge_into: str | None = None


@dataclass
class Context:
    settings: Settings
    rules: PushbackRules
    pipeline: SharedPipeline
    facts: Facts
    adapters: dict[str, Adapter]
    mappings: dict[str, Mapping]
    refused: list[Refusal] = field(default_factory=list)

    def refuse(self, rule: str, reason: str, member: Member | None = None, source: str | None = None) -> None:
        self.refused.append(Refusal(rule=rule, source=member.source if member else source,
                                    deal_key=member.key if member else None, reason=reason))

    def url(self, m: Member) -> str:
        return self.settings.source(m.source).options.record_url(m.source_id) or f"{m.source}:{m.source_id}"

    def landing(self, m: Member, shared: str, rule: str) -> dict[str, Any] | None:
        """The fields that put ``m`` in the shared stage ``shared``, by the source's reverse mapping."""
        mapping = self.mappings.get(m.source)
        rule_for = mapping.pipeline_rule(m.pipeline) if mapping else None
        landed = landing_fields(rule_for, self.pipeline, shared, self.adapters[m.source].writable_fields)
        if landed is not None:
            return landed
        where = f"pipeline {m.pipeline!r}" if m.pipeline else "its pipeline"
        self.refuse(rule, f"no stage of {where} maps to {shared!r}, or several do: add `writes: {{{shared}: STAGE_ID}}` "
                          f"under that pipeline in {self.settings.mapping_path(self.settings.source(m.source))} "
                          f"(`pipesync map {m.source} --for-writes --yes` proposes one where several do)", m)
        return None


def landing_fields(rule: PipelineRule | None, pipeline: SharedPipeline, shared: str,
                   writable: frozenset[str]) -> dict[str, Any] | None:
    """The fields that put a deal of the pipeline ``rule`` maps in the shared stage ``shared``: the
    stage the reverse mapping names, or a lost status where the CRM closes by status (Pipedrive);
    None when neither can."""
    stage = rule.landing_stage(shared) if rule else None
    if stage is not None:
        return {"source_stage": stage}
    if pipeline.get(shared).category is Category.LOST and "status" in writable:
        return {"status": "lost"}
    return None


# ------------------------------------------------------------------ the rules

def _write_back(ctx: Context) -> Iterator[Proposal]:
    fields = ctx.rules.write_back.fields
    for g in ctx.facts.goldens.values():
        by_source: dict[str, list[Member]] = defaultdict(list)
        for m in g.members:
            by_source[m.source].append(m)
        for m in g.members:
            wanted = fields.get(m.source)
            if not wanted:
                continue
            first = survivor(by_source[m.source])
            figures = _figures(ctx, g, m, first, [o for o in g.members if o.source != m.source])
            yield Proposal(m, ChangeKind.SET_FIELDS, {CUSTOM + crm: figures[what] for what, crm in wanted.items()},
                           "write_back", "the consolidated figures of its golden deal")


def _figures(ctx: Context, g: Golden, m: Member, first: Member, elsewhere: list[Member]) -> dict[str, Any]:
    attention = ", ".join(word for word, on in (("stuck", g.stuck), ("stale", g.stale_days is not None)) if on)
    amount = None if g.amount is None else g.amount.quantize(g.amount.__class__("0.01"))
    return {
        "golden_id": g.id,
        "shared_stage": ctx.pipeline.get(g.stage).label if g.stage in ctx.pipeline.keys else None,
        "duplicate_of": None if m is first else ctx.url(first),
        "also_in": " ".join(sorted(ctx.url(o) for o in elsewhere)) or None,
        "days_in_stage": None if g.days_in_stage is None else int(g.days_in_stage),
        "attention": attention or None,
        "amount_reporting": amount,
        "weighted_amount": None if amount is None else (amount * amount.__class__(str(g.probability))).quantize(amount.__class__("0.01")),
    }


def _close_stale(ctx: Context) -> Iterator[Proposal]:
    rule = ctx.rules.close_stale
    lost = next(s.key for s in ctx.pipeline.stages if s.category is Category.LOST)
    for g in ctx.facts.goldens.values():
        if not g.open or g.stale_days is None or (rule.only_stuck and not g.stuck):
            continue
        reason = f"no activity or update for {g.stale_days:.0f} days" + (" and stuck past its stage's SLA" if g.stuck else "")
        for m in g.members:
            if m.status != "open":
                continue
            if rule.action == "park":
                fields = ctx.landing(m, rule.park_in, "close_stale")
                if fields is not None:
                    yield Proposal(m, ChangeKind.MOVE_STAGE, fields, "close_stale", reason)
                continue
            fields = ctx.landing(m, lost, "close_stale")
            if fields is not None:
                if "lost_reason" in ctx.adapters[m.source].writable_fields:
                    fields["lost_reason"] = rule.lost_reason.format(days=f"{g.stale_days:.0f}")
                yield Proposal(m, ChangeKind.CLOSE_LOST, fields, "close_stale", reason)


def _duplicates(ctx: Context) -> Iterator[Proposal]:
    rule = ctx.rules.duplicates
    lost = next(s.key for s in ctx.pipeline.stages if s.category is Category.LOST)
    for g in ctx.facts.goldens.values():
        by_source: dict[str, list[Member]] = defaultdict(list)
        for m in g.members:
            by_source[m.source].append(m)
        for source, members in by_source.items():
            if len(members) < 2:
                continue
            first = survivor(members)
            for m in members:
                if m is first:
                    continue
                why = f"a duplicate of {ctx.url(first)} in {source} (golden deal {g.id})"
                if rule.action == "merge":
                    if not ctx.adapters[source].merges:
                        ctx.refuse("duplicates", f"{source} cannot merge deals through its API: use action mark or close", m)
                        continue
                    yield Proposal(m, ChangeKind.MERGE, {}, "duplicates", why, merge_into=first.key)
                    continue
                mark = ctx.rules.write_back.fields.get(source, {}).get("duplicate_of")
                fields: dict[str, Any] = {CUSTOM + mark: ctx.url(first)} if mark else {}
                kind = ChangeKind.MARK_DUPLICATE
                if rule.action == "close" and m.status == "open":
                    landing = ctx.landing(m, lost, "duplicates")
                    if landing is None:
                        continue
                    fields |= landing
                    if "lost_reason" in ctx.adapters[source].writable_fields:
                        fields["lost_reason"] = rule.lost_reason.format(survivor=ctx.url(first))
                    kind = ChangeKind.CLOSE_LOST
                if not fields:
                    ctx.refuse("duplicates", f"no duplicate_of write-back field is set for {source}", m)
                    continue
                yield Proposal(m, kind, fields, "duplicates", why)


def _suspicious(ctx: Context, already: set[str]) -> Iterator[Proposal]:
    rule = ctx.rules.suspicious_amounts
    due = (datetime.now(timezone.utc) + timedelta(days=rule.due_in_days)).date()
    for g in ctx.facts.goldens.values():
        if g.suspicious is None:
            continue
        m = survivor(g.members)
        if m.key in already:
            continue  # its task was created by an earlier apply and not undone
        yield Proposal(m, ChangeKind.CREATE_TASK, {
            "subject": rule.subject.format(deal=g.name), "body": rule.body.format(deal=g.name, reason=g.suspicious),
            "due_date": due}, "suspicious_amounts", g.suspicious)


# ------------------------------------------------------------------ plan

def _in_scope(ctx: Context, p: Proposal) -> bool:
    scope = ctx.rules.scope
    if not scope.pipelines.admits(p.member.pipeline):
        return False
    return scope.owners.admits(p.member.owner_email) and scope.owners.admits(p.member.owner_name)


def _with_before_images(ctx: Context, proposals: list[Proposal]) -> list[PlannedChange]:
    """Each proposal with the record's current values as its before-image; no-ops dropped."""
    planned: list[PlannedChange] = []
    by_source: dict[str, list[Proposal]] = defaultdict(list)
    for p in proposals:
        by_source[p.member.source].append(p)
    for source, items in sorted(by_source.items()):
        adapter = ctx.adapters[source]
        ids = sorted({p.member.source_id for p in items})
        names = sorted({f for p in items for f in p.after if p.kind is not ChangeKind.CREATE_TASK})
        current = adapter.read_current(ids, names) if names or any(p.kind is ChangeKind.MERGE for p in items) else {}
        for p in items:
            seen = None
            if p.kind is ChangeKind.CREATE_TASK:
                fields = [FieldChange(field=k, before=None, after=v) for k, v in p.after.items()]
            else:
                now = current.get(p.member.source_id)
                if now is None:
                    ctx.refuse(p.rule, f"the record is no longer in {source} (deleted or merged since the last sync)", p.member)
                    continue
                fields = [FieldChange(field=k, before=now.get(k), after=v) for k, v in p.after.items()
                          if not same_value(now.get(k), v)]
                if not fields and p.kind is not ChangeKind.MERGE:
                    continue  # already so: nothing to write
                seen = now.get("updated_at")
            planned.append(PlannedChange(
                seq=0, source=source, source_id=p.member.source_id, deal_key=p.member.key,
                golden_id=p.member.golden_id if ctx.facts.consolidated else None, kind=p.kind, fields=fields,
                rule=p.rule, reason=p.reason, merge_into=p.merge_into,
                record_url=ctx.settings.source(source).options.record_url(p.member.source_id),
                seen_updated_at=seen if isinstance(seen, datetime) else None))
    return planned


def _check_caps(rules: PushbackRules, changes: list[PlannedChange]) -> None:
    per_rule: dict[str, int] = defaultdict(int)
    for c in changes:
        per_rule[c.rule] += 1
    for name, n in sorted(per_rule.items()):
        cap = getattr(rules, name).cap
        if cap is not None and n > cap:
            raise GuardrailError(f"the plan is refused: rule {name} would make {n} changes, over its cap of {cap} "
                                 f"(raise {name}.cap in the push-back rules, or narrow the scope)")
    if len(changes) > rules.max_changes:
        worst = max(per_rule, key=per_rule.__getitem__)
        raise GuardrailError(f"the plan is refused: {len(changes)} changes, over max_changes {rules.max_changes} "
                             f"(most from rule {worst}: {per_rule[worst]}); raise max_changes or narrow the scope")


def writable_sources(settings: Settings, rules: PushbackRules) -> list[SourceConfig]:
    return [s for s in settings.sources if rules.scope.sources.admits(s.name)]


def make_plan(settings: Settings, rules: PushbackRules | None = None, *, now: datetime | None = None,
              opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter) -> Plan:
    """The plan the rules make of the warehouse's consolidated truth, as of ``now``."""
    rules = rules or rules_for(settings)
    now = now or datetime.now(timezone.utc)
    pipeline = load_pipeline(settings.pipeline_path())
    sources = writable_sources(settings, rules)
    adapters: dict[str, Adapter] = {}
    warehouse = Warehouse(settings.warehouse_url())
    try:
        for s in sources:
            adapter = opener(s, settings)
            if adapter.write_batch_max:
                adapters[s.name] = adapter
            else:
                adapter.close()
        if rules.write_back.enabled:
            problems = [p for a in adapters.values() for p in check_fields(a, rules)]
            if problems:
                raise ConfigError(describe(problems))
        with warehouse.begin() as conn:
            facts = load_facts(conn, pipeline, set(adapters), now, stale_after_days=rules.close_stale.after_days,
                               suspicious=rules.suspicious_amounts.enabled, reporting_currency=settings.reporting_currency)
            tasks = created_tasks(conn) if rules.suspicious_amounts.enabled else set()
        mappings = {name: load_mapping(settings.mapping_path(settings.source(name)), pipeline) for name in adapters
                    if settings.mapping_path(settings.source(name)).exists()}
        ctx = Context(settings, rules, pipeline, facts, adapters, mappings)
        for s in settings.sources:
            if s.name in rules.write_back.fields and s.name not in adapters:
                ctx.refuse("write_back", f"{s.name} ({s.type}) cannot be written to, or is out of scope", source=s.name)
        proposals: list[Proposal] = []
        # duplicates first: where it marks a record, write-back's figures join that one change
        if rules.duplicates.enabled:
            proposals += _duplicates(ctx)
        if rules.close_stale.enabled:
            proposals += _close_stale(ctx)
        if rules.write_back.enabled:
            proposals += _write_back(ctx)
        if rules.suspicious_amounts.enabled:
            proposals += _suspicious(ctx, tasks)
        proposals = _one_per_record_and_kind(p for p in proposals if _in_scope(ctx, p))
        changes = _with_before_images(ctx, proposals)
    finally:
        for a in adapters.values():
            a.close()
        warehouse.close()
    _check_caps(rules, changes)
    for seq, c in enumerate(changes, 1):
        c.seq = seq
    return Plan(plan_id=plan_id(now, changes), created_at=now, warehouse=warehouse_fingerprint(settings.warehouse_url()),
                rules=rules.enabled(), changes=changes, refused=ctx.refused)


def check_write_back_fields(settings: Settings, rules: PushbackRules, source: str | None = None, *,
                            opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter) -> list[FieldProblem]:
    """``pipesync fields check``: each write-back field's problem, for one source or all that have some."""
    names = [source] if source else sorted(rules.write_back.fields)
    problems = []
    for name in names:
        with opener(settings.source(name), settings) as adapter:
            problems += check_fields(adapter, rules)
    return problems


# One write per record: field changes of several rules fold into the strongest one's change.
STRENGTH = {ChangeKind.SET_FIELDS: 0, ChangeKind.MARK_DUPLICATE: 1, ChangeKind.MOVE_STAGE: 2, ChangeKind.CLOSE_LOST: 3}


def _one_per_record_and_kind(proposals: Iterator[Proposal]) -> list[Proposal]:
    """At most one field change per record (so no write of a plan sees another of the same plan as
    someone else's edit): the strongest kind keeps its rule and reason and takes the others' fields,
    its own winning a clash. A record merged away gets no field change; tasks stay apart."""
    fields: dict[str, Proposal] = {}
    others: list[Proposal] = []
    merged = set()
    for p in proposals:
        if p.kind not in STRENGTH:
            others.append(p)
            merged |= {p.member.key} if p.kind is ChangeKind.MERGE else set()
            continue
        held = fields.get(p.member.key)
        if held is None:
            fields[p.member.key] = p
        elif STRENGTH[p.kind] > STRENGTH[held.kind]:
            p.after = held.after | p.after
            fields[p.member.key] = p
        else:
            held.after = p.after | held.after
    return [p for p in others] + [p for key, p in fields.items() if key not in merged]

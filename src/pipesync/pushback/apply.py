"""``pipesync apply PLAN``: the plan's changes sent to the CRMs, a batch at a time, each batch
journaled before it is sent.

The engine owns batching: an adapter says how many changes one write call carries
(``write_batch_max``) and gets one batch at a time. The adapter re-reads the batch's
records and skips every change whose before-image no longer holds (a conflict: someone
changed the record since the plan), so nothing a person did is overwritten. A run killed
anywhere resumes from the journal: changes with an outcome are not sent again, and a
change that was sent but not recorded finds its values already in place.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import PipesyncError, UsageError
from pipesync.model import ChangeOutcome, ChangeResult
from pipesync.pushback import journal
from pipesync.pushback.plan import Plan, PlannedChange, warehouse_fingerprint
from pipesync.pushback.planner import rules_for
from pipesync.redaction import scrub
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse

Progress = Callable[[str, int, int], None]  # (source, done, total)
# Called with each sent batch's changes and results, in the transaction that journals the results
# (migration records the ids it created in ``id_map`` there: both land, or neither).
OnResults = Callable[[Connection, list[tuple[PlannedChange, ChangeResult]]], None]


@dataclass
class RunSummary:
    run_id: str
    plan_id: str
    kind: str
    counts: dict[str, int]  # outcome → changes, over the whole run (earlier attempts included)
    by_source: dict[str, dict[str, int]]
    problems: list[dict[str, Any]] = field(default_factory=list)  # each failed or conflicting change, and why
    stopped: dict[str, str] = field(default_factory=dict)  # source → why its remaining batches were not sent

    @property
    def ok(self) -> bool:
        return not self.stopped and not self.counts.get("failed") and not self.counts.get("conflict")

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "plan_id": self.plan_id, "kind": self.kind, "ok": self.ok, "counts": self.counts,
                "by_source": self.by_source, "problems": self.problems, "stopped": self.stopped}


def batches(changes: Sequence[PlannedChange], most: int) -> Iterator[list[PlannedChange]]:
    """Runs of at most ``most`` changes, in plan order, none holding one record twice
    (a CRM's batch endpoint refuses a record repeated in one call)."""
    batch: list[PlannedChange] = []
    keys: set[str] = set()
    for c in changes:
        if len(batch) >= most or c.deal_key in keys:
            yield batch
            batch, keys = [], set()
        batch.append(c)
        keys.add(c.deal_key)
    if batch:
        yield batch


def _retarget(conn: Any, changes: list[PlannedChange]) -> dict[int, ChangeResult]:
    """Changes whose golden deal a re-consolidation changed: re-targeted through the alias the
    consolidation left, or refused (returned) when the record now belongs elsewhere."""
    keys = sorted({c.deal_key for c in changes if c.golden_id})
    if not keys:
        return {}
    links, aliases = t.deal_links, t.golden_aliases
    now = {}
    for start in range(0, len(keys), 5000):
        chunk = keys[start:start + 5000]
        now.update(conn.execute(select(links.c.deal_key, links.c.golden_id).where(links.c.deal_key.in_(chunk))).all())
    alias = dict(conn.execute(select(aliases.c.alias_id, aliases.c.golden_id)).all())
    refused = {}
    for c in changes:
        if not c.golden_id or now.get(c.deal_key) == c.golden_id:
            continue
        target = alias.get(c.golden_id)
        if target is not None and target == now.get(c.deal_key):
            for f in c.fields:
                if f.after == c.golden_id:
                    f.after = target
            c.golden_id = target
            continue
        refused[c.seq] = ChangeResult(deal_key=c.deal_key, outcome=ChangeOutcome.CONFLICT, reason=(
            f"its golden deal changed since the plan ({c.golden_id} → {now.get(c.deal_key) or 'none'}): make a new plan"))
    return refused


def run_changes(settings: Settings, run_id: str, plan_id: str, kind: str, changes: list[PlannedChange], *,
                undo_of: str | None = None, retry_conflicts: bool = False, opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter,
                progress: Progress | None = None, on_results: OnResults | None = None) -> RunSummary:
    """Sends ``changes`` as the journaled run ``run_id`` (resuming it if it exists)."""
    warehouse = Warehouse(settings.warehouse_url())
    stopped: dict[str, str] = {}
    try:
        with warehouse.begin() as conn:
            journal.start_run(conn, run_id, plan_id, kind, undo_of)
            done = journal.settled(conn, run_id, conflicts_final=not retry_conflicts)
            todo = [c for c in changes if c.seq not in done]
            refused = _retarget(conn, todo) if kind == "apply" else {}
            if refused:
                journal.journal_batch(conn, run_id, 0, [c for c in todo if c.seq in refused])
                journal.record_results(conn, run_id, refused.items())
        todo = [c for c in todo if c.seq not in refused]
        by_source: dict[str, list[PlannedChange]] = defaultdict(list)
        for c in todo:
            by_source[c.source].append(c)
        for source, items in sorted(by_source.items()):
            try:
                config = settings.source(source)
            except PipesyncError:
                stopped[source] = "no source of that name is configured any more"
                continue
            with opener(config, settings) as adapter:
                if not adapter.write_batch_max:
                    stopped[source] = f"{source} ({config.type}) cannot be written to"
                    continue
                sent = 0
                for number, batch in enumerate(batches(items, adapter.write_batch_max), 1):
                    with warehouse.begin() as conn:
                        journal.journal_batch(conn, run_id, number, batch)
                    try:
                        results = adapter.write([c.change() for c in batch])
                    except PipesyncError as e:
                        # the whole call failed (auth, quota): the batch stays journaled without an
                        # outcome and the source's later batches unsent, for a re-run to finish
                        stopped[source] = scrub(str(e))
                        break
                    with warehouse.begin() as conn:
                        journal.record_results(conn, run_id, ((c.seq, r) for c, r in zip(batch, results)))
                        if on_results:
                            on_results(conn, list(zip(batch, results)))
                    sent += len(batch)
                    if progress:
                        progress(source, sent, len(items))
        with warehouse.begin() as conn:
            entries = journal.entries(conn, run_id)
            counts = dict(Counter(e.outcome.value if e.outcome else "pending" for e in entries))
            journal.finish_run(conn, run_id, "done" if not stopped and set(counts) <= {"applied"} else "incomplete", counts)
    finally:
        warehouse.close()
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    for e in entries:
        per_source[e.source or "?"][e.outcome.value if e.outcome else "pending"] += 1
    problems = [{"seq": e.seq, "source": e.source, "deal_key": e.deal_key, "kind": e.kind.value, "rule": e.rule,
                 "outcome": e.outcome.value if e.outcome else "pending", "reason": e.result_reason}
                for e in entries if e.outcome is not ChangeOutcome.APPLIED]
    return RunSummary(run_id, plan_id, kind, counts, {s: dict(n) for s, n in sorted(per_source.items())},
                      problems, stopped)


def apply_plan(settings: Settings, plan: Plan, *, opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter,
               progress: Progress | None = None) -> RunSummary:
    """Applies ``plan`` exactly once: a second call resumes or, once complete, sends nothing."""
    if plan.warehouse != warehouse_fingerprint(settings.warehouse_url()):
        raise UsageError(f"plan {plan.plan_id} was made against another warehouse: make the plan with this configuration")
    rules = rules_for(settings)
    outside = sorted({c.source for c in plan.changes if not rules.scope.sources.admits(c.source)})
    if outside:
        raise UsageError(f"plan {plan.plan_id} touches sources the push-back scope now denies: {', '.join(outside)}")
    if len(plan.changes) > rules.max_changes:
        raise UsageError(f"plan {plan.plan_id} holds {len(plan.changes)} changes, over max_changes {rules.max_changes}")
    _refuse_out_of_scope(settings, rules, plan)
    return run_changes(settings, "apply:" + plan.plan_id, plan.plan_id, "apply",
                       [c.model_copy(deep=True) for c in plan.changes], opener=opener, progress=progress)


def _refuse_out_of_scope(settings: Settings, rules: Any, plan: Plan) -> None:
    """A deny-listed pipeline or owner is never touched, even by a plan edited by hand."""
    if not (rules.scope.pipelines.allow or rules.scope.pipelines.deny or rules.scope.owners.allow or rules.scope.owners.deny):
        return
    d = t.deals
    keys = sorted({c.deal_key for c in plan.changes})
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            facts = {}
            for start in range(0, len(keys), 5000):
                chunk = keys[start:start + 5000]
                facts.update({k: (p, e, n) for k, p, e, n in conn.execute(
                    select(d.c.key, d.c.pipeline, d.c.owner_email, d.c.owner_name).where(d.c.key.in_(chunk)))})
    finally:
        warehouse.close()
    scope = rules.scope
    bad = [k for k in keys if k in facts and not (scope.pipelines.admits(facts[k][0]) and scope.owners.admits(facts[k][1])
                                                    and scope.owners.admits(facts[k][2]))]
    if bad:
        raise UsageError(f"plan {plan.plan_id} touches {len(bad)} deal(s) outside the push-back scope "
                         f"(first: {bad[0]}): make a new plan")

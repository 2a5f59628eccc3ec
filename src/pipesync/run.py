"""``pipesync run``: the one job a scheduler starts — sync → consolidate → metrics → plan → apply.

Each step is a function in :data:`STEPS`, run in that order; a step that fails is recorded and
the later steps still run on what the warehouse holds (their results are stored too), so one
unreachable CRM does not hold back the others' figures. Every step is idempotent on its own
(sync resumes from committed cursors, consolidation and the metrics snapshot are rewritten
whole, a plan applies exactly once), so a run killed at any point and started again ends in the
tables of one clean run. ``apply`` sends the plan only where the config says so
(``run.apply: true``), holding the run lock of every source it writes to.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pipesync.config import Settings
from pipesync.errors import PipesyncError, UsageError
from pipesync.logs import event, progress_lines

log = logging.getLogger(__name__)


@dataclass
class JobContext:
    settings: Settings
    run_id: str
    sources: Sequence[str] = ()  # sync: these sources only (all when empty)
    full: bool = False
    wait: float = 0.0
    plan: Any = None  # the push-back plan the plan step made, for apply


@dataclass
class StepResult:
    step: str
    status: str  # ok | failed | skipped
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    exit_code: int = 0


@dataclass
class JobResult:
    run_id: str
    steps: list[StepResult]

    @property
    def exit_code(self) -> int:
        """0 when every step succeeded; else the gravest step's code (2 configuration, 1 failure)."""
        return max((s.exit_code for s in self.steps), default=0)

    def as_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "status": "ok" if not self.exit_code else "failed", "exit_code": self.exit_code,
                "steps": [vars(s) for s in self.steps]}


class StepFailed(PipesyncError):
    """A step finished but reported failures (a source that did not sync); its results are stored."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None, exit_code: int = 1):
        super().__init__(message)
        self.summary = summary or {}
        self.exit_code = exit_code


def _sync(ctx: JobContext) -> dict[str, Any]:
    from pipesync.sync import run_sync

    result = run_sync(ctx.settings, ctx.sources, full=ctx.full, wait=ctx.wait,
                      progress=progress_lines(log, "sync", run_id=ctx.run_id))
    for name, counts in result.sources.items():
        event(log, f"sync {name}: {counts.error or 'ok'}", logging.ERROR if counts.error else logging.INFO,
              run_id=ctx.run_id, step="sync", source=name, read=counts.read, inserted=counts.inserted,
              updated=counts.updated, deleted=counts.deleted, quarantined=counts.quarantined,
              lock_wait_s=counts.lock_wait_s, api_calls=counts.api_calls, rate_limited=counts.rate_limited)
    summary = result.as_dict()
    if result.exit_code:
        failed = "; ".join(f"{n}: {c.error}" for n, c in result.sources.items() if c.error)
        raise StepFailed(failed, summary, result.exit_code)
    return summary


def _consolidate(ctx: JobContext) -> dict[str, Any]:
    from pipesync.consolidate.store import run_consolidation

    summary = run_consolidation(ctx.settings).as_dict()
    summary.pop("weights", None)  # the model's estimates: `pipesync consolidate --json` shows them
    return summary


def _metrics(ctx: JobContext) -> dict[str, Any]:
    from pipesync.metrics.run import run_metrics

    metrics = run_metrics(ctx.settings)
    return {"period": metrics.period.model_dump(mode="json"), "deal_set": metrics.deal_set,
            "as_of": metrics.as_of.isoformat()}


def _has_pushback_rules(settings: Settings) -> bool:
    from pipesync.pushback.rules import DEFAULT_RULES_FILE

    return settings.pushback is not None or settings.path(DEFAULT_RULES_FILE).exists()


def _plan(ctx: JobContext) -> dict[str, Any] | None:
    if not _has_pushback_rules(ctx.settings):
        return None
    from pipesync.pushback.plan import save_plan
    from pipesync.pushback.planner import make_plan

    ctx.plan = make_plan(ctx.settings)
    folder = ctx.settings.path(ctx.settings.run.plans_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"plan-{ctx.run_id}.json"
    save_plan(ctx.plan, path)
    return {"plan_id": ctx.plan.plan_id, "changes": len(ctx.plan.changes), "by_rule": ctx.plan.counts(),
            "refused": len(ctx.plan.refused), "path": str(path)}


def _apply(ctx: JobContext) -> dict[str, Any] | None:
    if not ctx.settings.run.apply or ctx.plan is None or not ctx.plan.changes:
        return None
    from pipesync.pushback.apply import apply_plan
    from pipesync.warehouse.locks import source_lock
    from pipesync.warehouse.store import Warehouse

    warehouse = Warehouse(ctx.settings.warehouse_url())
    try:
        with ExitStack() as locks:
            for source in sorted({c.source for c in ctx.plan.changes}):
                locks.enter_context(source_lock(warehouse, source, ctx.wait))
            summary = apply_plan(ctx.settings, ctx.plan)
    finally:
        warehouse.close()
    if not summary.ok:
        raise StepFailed(f"push-back run {summary.run_id}: {summary.counts}; {summary.stopped or summary.problems[:3]}",
                         summary.as_dict())
    return summary.as_dict()


# The job's steps, in order. A step returns its summary, or None when it had nothing to do (skipped).
STEPS: dict[str, Callable[[JobContext], dict[str, Any] | None]] = {
    "sync": _sync,
    "consolidate": _consolidate,
    "metrics": _metrics,
    "plan": _plan,
    "apply": _apply,
}


def chosen_steps(only: Sequence[str] = (), skip: Sequence[str] = ()) -> list[str]:
    unknown = [s for s in [*only, *skip] if s not in STEPS]
    if unknown:
        raise UsageError(f"unknown step(s) {', '.join(unknown)}: the steps are {', '.join(STEPS)}")
    return [s for s in STEPS if (not only or s in only) and s not in skip]


def run_job(settings: Settings, *, only: Sequence[str] = (), skip: Sequence[str] = (), sources: Sequence[str] = (),
            full: bool = False, wait: float = 0.0) -> JobResult:
    """Runs the job's steps (all, or ``only`` those, less ``skip``) and returns each one's result.

    ``sources`` limits the sync step to those sources: an orchestrator runs one sync task per
    source side by side, then the other steps once (recipes/).
    """
    steps = chosen_steps(only, skip)
    ctx = JobContext(settings, datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6],
                     sources=sources, full=full, wait=wait)
    event(log, f"run {ctx.run_id}: {', '.join(steps)}", run_id=ctx.run_id, steps=steps)
    results = []
    for name in steps:
        started = time.perf_counter()
        try:
            summary = STEPS[name](ctx)
            step = StepResult(name, "skipped" if summary is None else "ok", summary=summary or {})
        except PipesyncError as e:
            step = StepResult(name, "failed", summary=getattr(e, "summary", {}), error=str(e), exit_code=e.exit_code)
        except Exception as e:  # noqa: BLE001 - one step's bug is that step's failure; the next steps still run
            step = StepResult(name, "failed", error=f"unexpected {type(e).__name__}: {e}", exit_code=1)
        step.seconds = round(time.perf_counter() - started, 3)
        event(log, f"step {name}: {step.status}", logging.ERROR if step.error else logging.INFO, run_id=ctx.run_id,
              step=name, status=step.status, seconds=step.seconds, error=step.error)
        results.append(step)
    result = JobResult(ctx.run_id, results)
    event(log, f"run {ctx.run_id}: {'ok' if not result.exit_code else 'failed'}", run_id=ctx.run_id,
          exit_code=result.exit_code, seconds=round(sum(s.seconds for s in results), 3))
    return result

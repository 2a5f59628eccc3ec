"""Benchmark push-back end to end: a plan of ``--changes`` write-back changes across Salesforce,
HubSpot and Pipedrive, applied and undone through the engine, as `pipesync plan`, `apply` and
`undo` run them (journal writes to the SQLite warehouse included).

Set-up (not timed): a seeded world served by the three sandboxes, mapped, synced and
consolidated; each CRM gets a write-back field for the golden id (Salesforce's made in the
sandbox as an admin would in Setup, the others by `fields create`). Then, timed:

- ``plan``: every live record's golden id (one change per record), before-images read from
  each CRM;
- ``apply``: per CRM, API calls used against the minimum (per batch: one re-read, then one
  bulk write on Salesforce/HubSpot or one call per deal on Pipedrive), changes/s, and the
  share of the CRM's allowed request rate reached (HubSpot's ten-second and Pipedrive's
  two-second burst limits, time-scaled by ``--time-scale`` so a run takes seconds; Salesforce
  has a daily quota, not a burst limit);
- ``undo``: the same, and each sandbox compared record by record, field by field, with its
  state before the apply;
- a second ``apply`` of the same plan sends nothing (every change is settled).

    python bench/bench_pushback.py [--changes 10000] [--time-scale 20] [--seed 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from pipesync.adapters import open_adapter
from pipesync.consolidate.store import run_consolidation
from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.pushback.apply import apply_plan
from pipesync.pushback.fields import create_fields
from pipesync.pushback.planner import make_plan, rules_for
from pipesync.pushback.undo import undo_run
from pipesync.sync import run_sync
from pipesync_sandbox.demo import write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

# The burst limits the sandboxes enforce at their default tiers: (requests, window seconds).
BURST = {"hubspot": (190, 10.0), "pipedrive": (40, 2.0)}
RULES = """\
max_changes: 1000000
write_back:
  enabled: true
  fields:
    salesforce: {golden_id: Pipesync_Golden_Id__c}
    hubspot: {golden_id: pipesync_golden_id}
    pipedrive: {golden_id: pipesync_golden_id}
"""


class Counting:
    """Opens adapters as the engine does, and keeps each source's API calls and time."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = defaultdict(int)
        self.seconds: dict[str, float] = defaultdict(float)

    def __call__(self, source, settings):  # type: ignore[no-untyped-def]
        adapter = open_adapter(source, settings)
        started, close = time.perf_counter(), adapter.close
        counter = self

        def closing() -> None:
            counter.calls[source.name] += adapter.calls
            counter.seconds[source.name] += time.perf_counter() - started
            close()

        adapter.close = closing  # type: ignore[method-assign]
        return adapter


def minimum(system: str, n: int, batch: int) -> int:
    batches = -(-n // batch)
    return batches + (n if system == "pipedrive" else batches)


def report(step: str, counting: Counting, per_source: dict[str, int], batch: dict[str, int], scale: float) -> None:
    for system in SYSTEMS:
        n = per_source.get(system, 0)
        if not n:
            continue
        calls, seconds = counting.calls[system], counting.seconds[system]
        line = (f"  {step:<5} {system:<10} {n:>6} changes  {calls:>6} calls (minimum {minimum(system, n, batch[system]):>6}, "
                f"+ discovery)  {n / seconds:>8.0f} changes/s  {seconds:6.2f} s")
        if system in BURST:
            limit, window = BURST[system]
            allowed = limit / window * scale
            line += f"  {calls / seconds / allowed:>4.0%} of the allowed {allowed:.0f} req/s"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    world = generate(args.seed, int(args.changes * 1.2))  # a sixth of the records are deleted or merged away
    faults = {s: Faults(time_scale=args.time_scale) for s in SYSTEMS}
    with Sandboxes(world, faults=faults) as boxes, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        options = {"pipedrive": {"burst_window_s": BURST["pipedrive"][1] / args.time_scale}}
        sources = [sandbox_source(boxes[s], folder / ".secrets", options=options.get(s)) for s in SYSTEMS]
        settings = write_project(folder, sources)
        for s in SYSTEMS:
            ctx = map_context(settings, s)
            write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
        faults_off = args.time_scale
        for f in faults.values():
            f.update(time_scale=1000.0)  # set-up at full speed
        run_sync(settings)
        run_consolidation(settings)
        (folder / "pushback.yaml").write_text(RULES)
        rules = rules_for(settings)
        boxes["salesforce"].store.add_custom_field("Opportunity", "Pipesync_Golden_Id__c", "string", "golden id", length=255)
        for s in ("hubspot", "pipedrive"):
            create_fields(settings, s, rules)
        before = {s: boxes[s].store.snapshot() for s in SYSTEMS}
        for s in SYSTEMS:
            boxes[s].store.write_log.clear()
        for f in faults.values():
            f.update(time_scale=faults_off)

        started = time.perf_counter()
        plan = make_plan(settings, rules, now=world.as_of)
        plan_s = time.perf_counter() - started
        per_source: dict[str, int] = defaultdict(int)
        for c in plan.changes:
            per_source[c.source] += 1
        batch = {s: open_adapter(settings.source(s), settings).write_batch_max for s in SYSTEMS}
        print(f"plan: {len(plan.changes):,} changes ({dict(per_source)}) in {plan_s:.2f} s")

        counting = Counting()
        started = time.perf_counter()
        applied = apply_plan(settings, plan, opener=counting)
        apply_s = time.perf_counter() - started
        print(f"apply: {applied.counts} in {apply_s:.2f} s = {len(plan.changes) / apply_s:,.0f} changes/s end to end")
        report("apply", counting, per_source, batch, args.time_scale)
        # deal writes only: Pipedrive's first write also creates the origin field (dealFields)
        logged = {s: sum(1 for w in boxes[s].store.write_log.entries if "Fields" not in w.path) for s in SYSTEMS}
        once = all(logged[s] == per_source[s] for s in SYSTEMS)
        print(f"  sandbox write logs: {logged} deal writes (one per change: {once})")

        counting = Counting()
        started = time.perf_counter()
        again = apply_plan(settings, plan, opener=counting)
        print(f"apply again: {again.counts}, {sum(counting.calls.values())} API calls in {time.perf_counter() - started:.2f} s")

        counting = Counting()
        started = time.perf_counter()
        undone = undo_run(settings, applied.run_id, opener=counting)
        undo_s = time.perf_counter() - started
        print(f"undo: {undone.counts} in {undo_s:.2f} s = {len(plan.changes) / undo_s:,.0f} changes/s end to end")
        report("undo", counting, per_source, batch, args.time_scale)
        after = {s: boxes[s].store.snapshot() for s in SYSTEMS}
        for s in SYSTEMS:
            differing = [k for k in before[s] if before[s][k] != after[s].get(k)]
            print(f"  {s}: {len(before[s]):,} records compared field by field, {len(differing)} differ from before the apply")


if __name__ == "__main__":
    main()

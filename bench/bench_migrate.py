"""Benchmark `pipesync migrate` end to end: HubSpot → Salesforce and Pipedrive → HubSpot through
the sandboxes, as `pipesync migrate --execute` runs them (journal and id_map writes to the
SQLite warehouse included).

Set-up (not timed): a seeded world served by the three sandboxes; the source synced into the
warehouse, source and target mapped; the fixes the dry run names applied (Salesforce: a
landing stage where several stages map to one shared stage, and the world's currencies
enabled). Then, timed, per pair:

- the dry run (``make_migration``: the warehouse read, the target's discovery);
- the execute (``run_migration`` without its closing reconciliation): deals/s and the target's
  API calls against the batch minimum (Salesforce one upsert per 200, HubSpot one batch create
  per 100, Pipedrive one call per deal);
- the reconciliation on its own (the target read back in batches), and a second execute that
  creates nothing.

    python bench/bench_migrate.py [--size 60000] [--time-scale 20] [--seed 5]

``--size`` is the world's deal records across the three CRMs (about a third land in each).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_pushback import BURST, Counting
from ruamel.yaml import YAML

from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.migrate.plan import make_migration
from pipesync.migrate.reconcile import reconcile
from pipesync.migrate.run import recorder
from pipesync.pushback.apply import run_changes
from pipesync.sync import run_sync
from pipesync_sandbox.demo import write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

PAIRS = (("hubspot", "salesforce"), ("pipedrive", "hubspot"))
CREATE_BATCH = {"salesforce": 200, "hubspot": 100, "pipedrive": 1}
SALESFORCE_WRITES = {"discovery": "Needs Analysis", "proposal": "Proposal/Price Quote"}
# The target pipeline with a stage for every shared one (the sandbox's HubSpot has on hold only there).
PIPELINE = {"hubspot": "75000000"}


def fix_target(folder: Path, boxes: Sandboxes, target: str, pipeline: str | None) -> None:
    """What the dry run asks a Salesforce admin for: landing stages and the currencies."""
    if target != "salesforce":
        return
    yaml, path = YAML(), folder / "mappings" / "salesforce.yaml"
    data = yaml.load(path.read_text())
    next(p for p in data["pipelines"] if str(p["id"]) == pipeline)["writes"] = SALESFORCE_WRITES
    with path.open("w") as f:
        yaml.dump(data, f)
    store = boxes["salesforce"].store
    store.currencies = sorted(set(store.currencies) | {d.currency for s in SYSTEMS for d in boxes[s].data.deals if d.currency})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=60_000)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    world = generate(args.seed, args.size)
    faults = {s: Faults(time_scale=1000.0) for s in SYSTEMS}  # set-up at full speed
    with Sandboxes(world, faults=faults) as boxes, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        options = {"pipedrive": {"burst_window_s": BURST["pipedrive"][1] / args.time_scale}}
        settings = write_project(folder, [sandbox_source(boxes[s], folder / ".secrets", options=options.get(s))
                                          for s in SYSTEMS])
        for s in SYSTEMS:
            ctx = map_context(settings, s)
            write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
        run_sync(settings, [source for source, _ in PAIRS])
        for f in faults.values():
            f.update(time_scale=args.time_scale)
        for source, target in PAIRS:
            pipeline = PIPELINE.get(target)
            fix_target(folder, boxes, target, make_migration(settings, source, target, pipeline_id=pipeline).target_pipeline)
            started = time.perf_counter()
            migration = make_migration(settings, source, target, pipeline_id=pipeline)
            plan_s = time.perf_counter() - started
            n = len(migration.changes)
            print(f"{source} → {target}: dry run {n:,} creates, {len(migration.skipped)} skipped, "
                  f"blockers {migration.blockers or 'none'} in {plan_s:.2f} s")

            counting = Counting()
            started = time.perf_counter()
            summary = run_changes(settings, f"migrate:{source}>{target}:bench", migration.migration_id, "migrate",
                                  migration.changes, opener=counting, on_results=recorder(target))
            seconds = time.perf_counter() - started
            least = -(-n // CREATE_BATCH[target])
            line = (f"  execute: {summary.counts} in {seconds:.2f} s = {n / seconds:,.0f} deals/s; "
                    f"{counting.calls[target]:,} API calls (batch minimum {least:,}, + discovery)")
            if target in BURST:
                limit, window = BURST[target]
                allowed = limit / window * args.time_scale
                line += f", {counting.calls[target] / seconds / allowed:.0%} of the allowed {allowed:.0f} req/s"
            print(line)

            counting = Counting()
            started = time.perf_counter()
            result = reconcile(settings, source, target, opener=counting)
            print(f"  reconcile: ok={result.ok}, {result.migrated:,} migrated, {len(result.stages)} stages, "
                  f"{counting.calls[target]:,} API calls in {time.perf_counter() - started:.2f} s")
            again = make_migration(settings, source, target, pipeline_id=pipeline)
            print(f"  again: {len(again.changes)} to create, {len(again.skipped):,} skipped as already migrated")


if __name__ == "__main__":
    main()

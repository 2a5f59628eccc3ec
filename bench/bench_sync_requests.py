"""Requests and wall time of `pipesync sync` against each CRM sandbox, as users run it.

Per CRM, with ``--deals`` deals (default 20,000) in its sandbox and the rate limits out of
the way (time_scale 1000): a first (full) sync with history as shipped (on where it is on by
default), then an incremental sync after 1% of the deals were edited, then one with nothing
edited. Requests are counted by the sandbox (sign-in included); mapping the stages before
the first sync is not counted. Each figure is the median of ``--repeats`` fresh runs; the
machine is shared, so expect noise in the times (the request counts are exact).

    python bench/bench_sync_requests.py [--deals 20000] [--repeats 3] [--systems salesforce,hubspot,pipedrive]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from bench_adapters import world_with
from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.sync import run_sync
from pipesync_sandbox.demo import write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

FAST = 1000.0  # time_scale that takes the rate limits out of the way


def served(faults: Faults) -> int:
    return sum(faults.injected.values())


def one_run(system: str, world, options: dict) -> dict[str, tuple[int, float, int]]:
    """{run: (requests, seconds, deals read)} for the full, 1% and unchanged syncs."""
    faults = Faults(time_scale=FAST)
    out = {}
    with Sandboxes(world, systems=(system,), faults={system: faults}) as boxes, tempfile.TemporaryDirectory() as tmp:
        box = boxes[system]
        settings = write_project(Path(tmp), [sandbox_source(box, Path(tmp) / ".secrets", options=options)])
        ctx = map_context(settings, system)
        write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
        for run in ("full", "1% edited", "unchanged"):
            if run == "1% edited":
                live = [d for d in box.data.deals if not d.is_deleted and not d.merged_into]
                open_share = sum(d.status == "open" for d in live) / len(live)
                # The Salesforce sandbox edits a share of the OPEN opportunities: scale it to 1% of all.
                box.store.touch_deals(min(1.0, 0.01 / open_share) if system == "salesforce" else 0.01)
            before, started = served(faults), time.perf_counter()
            result = run_sync(settings, quarantine_unmapped=True)
            counts = result.sources[system]
            if counts.error:
                raise SystemExit(f"{system} {run}: {counts.error}")
            out[run] = (served(faults) - before, time.perf_counter() - started, counts.read)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--history", choices=("default", "on", "off"), default="default",
                        help="the sources' history option (default: as shipped)")
    args = parser.parse_args()
    options = {} if args.history == "default" else {"history": args.history == "on"}
    print(f"bench_sync_requests: medians of {args.repeats}; requests counted by the sandbox; the machine is shared")
    print(f"{'CRM':<11} {'run':<10} {'requests':>8} {'seconds':>8} {'deals read':>10}")
    for system in args.systems.split(","):
        world = world_with(system, args.deals, args.seed)
        runs = [one_run(system, world, options) for _ in range(args.repeats)]
        for run in runs[0]:
            requests = statistics.median(r[run][0] for r in runs)
            seconds = statistics.median(r[run][1] for r in runs)
            print(f"{system:<11} {run:<10} {requests:>8.0f} {seconds:>8.2f} {runs[0][run][2]:>10}")


if __name__ == "__main__":
    main()

"""Benchmark the write side of the Salesforce, HubSpot and Pipedrive adapters against their sandboxes.

Per adapter, ``--changes`` field updates (default 1,000; name and a custom write-back field) handed
to ``write()`` in batches of ``write_batch_max``, as the push-back engine does:

- API calls used against the minimum (one re-read and one write call per batch on Salesforce and
  HubSpot; one re-read plus one call per deal on Pipedrive), after the run's one-time field
  discovery (describe, property list, dealFields);
- changes/s with the rate limits out of the way (time_scale 1000);
- every change applied, and the sandbox's write log holding exactly one write per deal.

    python bench/bench_writes.py [--changes 1000] [--systems salesforce,hubspot,pipedrive]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

from pipesync.adapters import open_adapter
from pipesync.config import Settings
from pipesync.model import Change, ChangeKind, ChangeOutcome, FieldChange
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

from bench_adapters import world_with  # type: ignore[import-not-found]  # beside this script

FAST = 1000.0  # time_scale that takes the rate limits out of the way


def golden(system: str, store, adapter) -> str:
    if system == "salesforce":
        store.add_custom_field("Opportunity", "Pipesync_Golden_Id__c", "string", "Pipesync Golden Id", length=255)
        return "Pipesync_Golden_Id__c"
    return adapter.create_field("pipesync_golden_id", "Pipesync golden id", "text").name


def run(system: str, changes: int, seed: int) -> None:
    world = world_with(system, math.ceil((changes + 1) * 1.2), seed)  # a sixth are deleted or merged away
    with Sandboxes(world, systems=(system,), faults={system: Faults(time_scale=FAST)}) as boxes, \
            tempfile.TemporaryDirectory() as tmp:
        box = boxes[system]
        source = sandbox_source(box, tmp)
        with open_adapter(source, Settings()) as adapter:
            field = f"custom:{golden(system, box.store, adapter)}"
            ids = sorted(str(d.id) for d in box.data.deals if not d.is_deleted and not d.merged_into)[:changes + 1]
            current = adapter.read_current(ids, ["name", field])
            plan = [Change(deal_key=f"{source.name}:{sid}", kind=ChangeKind.SET_FIELDS, rule="bench", reason="bench",
                           fields=[FieldChange(field="name", before=current[sid]["name"], after=f"{sid} (golden)"),
                                   FieldChange(field=field, before=None, after=f"g-{sid}")]) for sid in ids]
            adapter.write(plan[:1])  # the run's one-time discovery: not a cost of the batches
            box.store.write_log.clear()
            plan = plan[1:]
            size = adapter.write_batch_max
            calls, started = adapter.calls, time.perf_counter()
            results = [r for n in range(0, len(plan), size) for r in adapter.write(plan[n:n + size])]
            elapsed = time.perf_counter() - started
            used = adapter.calls - calls
        batches = math.ceil(len(plan) / size)
        minimum = 2 * batches if system != "pipedrive" else len(plan) + math.ceil(len(plan) / size)
        applied = sum(r.outcome is ChangeOutcome.APPLIED for r in results)
        logged = {w.record_id for w in box.store.write_log.entries}
        print(f"{system:10} {len(plan):6} changes in {batches:4} batches of ≤{size:3}: {used:5} calls "
              f"(minimum {minimum}, {used / batches:.2f} per batch), {len(plan) / elapsed:7.0f} changes/s, "
              f"{applied} applied, {len(box.store.write_log.entries)} writes logged for {len(logged)} deals")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    args = parser.parse_args()
    for system in args.systems.split(","):
        run(system, args.changes, args.seed)


if __name__ == "__main__":
    main()

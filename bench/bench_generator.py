"""How fast the sandbox generator builds a world, and how much memory it takes.

    python bench/bench_generator.py              # 1,000,000 deals (target: under 60 s)
    python bench/bench_generator.py --size 100000 --labels /tmp/labels.csv

Prints seconds (wall and CPU), deals per second and the process's peak RSS.
On a shared machine wall time is noisy; CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from pipesync_sandbox.generator import generate, write_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--labels", type=Path, help="also time writing the labels file here")
    args = parser.parse_args()

    wall, cpu = time.perf_counter(), time.process_time()
    world = generate(args.seed, args.size)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    deals = sum(len(d.deals) for d in world.systems.values())
    print(f"generate(seed={args.seed}, size={args.size:,}): {deals:,} deals")
    print(f"  wall {wall:.1f} s   cpu {cpu:.1f} s   {deals / wall:,.0f} deals/s (wall)   {deals / cpu:,.0f} deals/s (cpu)")
    for system, data in world.systems.items():
        print(f"  {system:<10} {len(data.deals):>9,} deals {len(data.accounts):>8,} accounts "
              f"{len(data.contacts):>8,} contacts {len(data.owners):>4} owners {len(data.pipelines)} pipelines")

    with tempfile.TemporaryDirectory() as tmp:
        path = args.labels or Path(tmp) / "labels.csv"
        started = time.perf_counter()
        rows = write_labels(world, path)
        print(f"  write_labels: {rows:,} rows in {time.perf_counter() - started:.1f} s")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"  peak RSS {peak_kib / 1024:,.0f} MiB")


if __name__ == "__main__":
    main()

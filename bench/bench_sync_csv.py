"""End-to-end `pipesync sync` of a 100,000-deal CSV export into SQLite: deals/s and peak RSS.

    python bench/bench_sync_csv.py [--rows 100000] [--runs 3]

Each run is a fresh warehouse and a fresh `pipesync sync` process (imports,
CSV decoding, normalization, hashing, SQLite writes: everything a user waits
for). Prints each run and the median; a second sync of the same file (all
unchanged) is measured too. Targets (issue 2): ≥ 25,000 deals/s, < 400 MB.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipesync.sandbox.csv_export import write_export

CONFIG = """\
warehouse: sqlite:///bench.db
reporting_currency: USD
fx_rates: {EUR: 1.1, GBP: 1.3}
mappings_dir: .
sources:
  - name: crm
    type: csv
    options: {path: crm.csv, format: pipedrive_export}
"""


def timed_sync(folder: Path) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `pipesync sync` child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pipesync", "sync", "--config", "pipesync.yaml", "--json"],
                          cwd=folder, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"sync failed: {proc.stderr}")
    # ru_maxrss of children is the max over all waited-for children; runs only grow it when they use more.
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return elapsed, peak


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "pipesync.yaml").write_text(CONFIG)
        write_export(folder / "crm.csv", args.rows)
        first, again, peaks = [], [], []
        for run in range(args.runs):
            for f in folder.glob("bench.db*"):
                f.unlink()
            secs, peak = timed_sync(folder)
            secs2, _ = timed_sync(folder)
            first.append(secs), again.append(secs2), peaks.append(peak)
            print(f"run {run + 1}: first sync {secs:.2f} s ({args.rows / secs:,.0f} deals/s), "
                  f"re-sync unchanged {secs2:.2f} s ({args.rows / secs2:,.0f} deals/s)")
        med = statistics.median(first)
        print(f"median first sync: {med:.2f} s = {args.rows / med:,.0f} deals/s end to end")
        print(f"median unchanged re-sync: {statistics.median(again):.2f} s = {args.rows / statistics.median(again):,.0f} deals/s")
        print(f"peak RSS of a sync process: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()

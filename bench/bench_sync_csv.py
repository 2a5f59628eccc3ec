"""End-to-end `pipesync sync` of a 100,000-deal CSV export into SQLite (and PostgreSQL): deals/s and peak memory.

    python bench/bench_sync_csv.py [--rows 100000] [--runs 3] [--pg-url postgresql+psycopg://…]

With a PostgreSQL server URL (``--pg-url``, else ``$PIPESYNC_TEST_PG_URL``) the same
runs go into a fresh database ``bench_sync_csv`` on that server too, and both
dialects are printed.

Each run is a fresh warehouse and a fresh `pipesync sync` process (imports,
CSV decoding, normalization, hashing, SQLite writes: everything a user waits
for). Prints each run and the median; a second sync of the same file (all
unchanged) is measured too. Targets (issue 2): ≥ 25,000 deals/s, < 400 MB.

A large file is read by one process per core (``--workers`` to choose), so
memory is the whole process tree's: its summed PSS (shared pages split
between the processes sharing them), sampled every 20 ms (Linux) in one more
first sync after the timed ones (sampling costs CPU). The peak RSS of the
largest single process is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipesync_sandbox.csv_export import write_export
from sqlalchemy import create_engine, make_url

CONFIG = """\
warehouse: {url}
reporting_currency: USD
fx_rates: {{EUR: 1.1, GBP: 1.3}}
mappings_dir: .
sources:
  - name: crm
    type: csv
    options: {{path: crm.csv, format: pipedrive_export}}
"""


def tree_pss_mb(pid: int) -> float:
    """Summed PSS of a process and its descendants, in MB (0 where /proc says nothing)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, StopIteration):
            continue
    return total / 1024


def timed_sync(folder: Path, workers: int | None, sample: bool = False) -> tuple[float, float, float]:
    """(seconds, peak summed PSS of the process tree when sampled, peak RSS of one process; MB) of one `pipesync sync`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    command = [sys.executable, "-m", "pipesync", "sync", "--config", "pipesync.yaml", "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(command + (["--workers", str(workers)] if workers else []), cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_tree = 0.0
    while sample and proc.poll() is None:
        peak_tree = max(peak_tree, tree_pss_mb(proc.pid))
        time.sleep(0.02)
    proc.wait()
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"sync failed: {proc.stderr.read()}")
    # ru_maxrss of children is the max over all waited-for descendants; runs only grow it when they use more.
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return elapsed, peak_tree, peak


def fresh_warehouse(folder: Path, server: str | None) -> str:
    """An empty warehouse: a new SQLite file in ``folder``, or database ``bench_sync_csv`` made anew on the server."""
    if server is None:
        for f in folder.glob("bench.db*"):
            f.unlink()
        return "sqlite:///bench.db"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS bench_sync_csv WITH (FORCE)")
        conn.exec_driver_sql("CREATE DATABASE bench_sync_csv")
    admin.dispose()
    return make_url(server).set(database="bench_sync_csv").render_as_string(hide_password=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--workers", type=int, help="processes reading the file (default: pipesync's, one per core)")
    ap.add_argument("--pg-url", default=os.environ.get("PIPESYNC_TEST_PG_URL"),
                    help="a PostgreSQL server to bench too (default: $PIPESYNC_TEST_PG_URL)")
    ap.add_argument("--only", choices=("sqlite", "postgresql"), help="bench one dialect")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_export(folder / "crm.csv", args.rows)
        servers = {"sqlite": None, "postgresql": args.pg_url}
        for dialect, server in servers.items():
            if args.only not in (None, dialect) or (dialect == "postgresql" and not server):
                continue
            print(f"-- {dialect}")
            bench(folder, server, args)


def bench(folder: Path, server: str | None, args: argparse.Namespace) -> None:
    """Times ``args.runs`` first syncs and unchanged re-syncs into fresh warehouses, then samples one first sync's memory."""
    first, again, peaks = [], [], []
    for run in range(args.runs + 1):
        (folder / "pipesync.yaml").write_text(CONFIG.format(url=fresh_warehouse(folder, server)))
        if run == args.runs:
            _, tree, _ = timed_sync(folder, args.workers, sample=True)
            break
        secs, _, peak = timed_sync(folder, args.workers)
        secs2, _, _ = timed_sync(folder, args.workers)
        first.append(secs), again.append(secs2), peaks.append(peak)
        print(f"run {run + 1}: first sync {secs:.2f} s ({args.rows / secs:,.0f} deals/s), "
              f"re-sync unchanged {secs2:.2f} s ({args.rows / secs2:,.0f} deals/s)")
    med = statistics.median(first)
    print(f"median first sync: {med:.2f} s = {args.rows / med:,.0f} deals/s end to end")
    print(f"median unchanged re-sync: {statistics.median(again):.2f} s = {args.rows / statistics.median(again):,.0f} deals/s")
    print(f"peak memory of a first sync (summed PSS of its processes): {tree:.0f} MB")
    print(f"peak RSS of the largest single process: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()

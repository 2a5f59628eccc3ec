"""Benchmark: `pipesync forecast --json` on 1,000,000 golden deals, end to end (target <= 10 s).

Builds (once, cached under /tmp) a SQLite warehouse from the sandbox's deal-flow generator
(pipesync_sandbox.deal_flow: three years of deals walking the shared pipeline, outcomes drawn from
stage- and age-dependent win rates), each record its own golden deal with its stage history. Then
runs the command as a subprocess, three times, and prints the median wall time, the CPU time and
the peak RSS of the child, and the forecast's own figures. The machine is shared: quote medians,
expect noise.

    python bench/bench_forecast.py [--deals 1000000] [--rebuild] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from bench_metrics import run  # type: ignore[import-not-found]  # beside this script
from pipesync_sandbox.deal_flow import FlowRules, simulate, write_warehouse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(f"/tmp/pipesync-bench-forecast-{args.deals}")
    work.mkdir(exist_ok=True)
    db = work / "warehouse.db"
    if args.rebuild or not db.exists():
        db.unlink(missing_ok=True)
        start = time.perf_counter()
        rules = FlowRules()
        write_warehouse(f"sqlite:///{db}", simulate(rules, 7, args.deals), rules, golden=True)
        print(f"built {db} in {time.perf_counter() - start:.1f} s")
    with sqlite3.connect(db) as conn:
        n_golden = conn.execute("SELECT count(*) FROM golden_deals").fetchone()[0]
        n_hist = conn.execute("SELECT count(*) FROM stage_history").fetchone()[0]
    (work / "pipesync.yaml").write_text(f"warehouse: sqlite:///{db}\n", encoding="utf-8")
    print(f"{n_golden:,} golden deals, {n_hist:,} stage changes")

    exe = [sys.executable, "-m", "pipesync"]
    runs = [run([*exe, "forecast", "--as-of", "2026-11-22", "--json"], work) for _ in range(args.runs)]
    walls, cpus = [w for w, _, _ in runs], [c for _, c, _ in runs]
    median = statistics.median(walls)
    print(
        f"pipesync forecast --json: median wall {median:.2f} s of {args.runs} ({', '.join(f'{w:.2f}' for w in walls)}), "
        f"median CPU {statistics.median(cpus):.2f} s, target <= 10 s, {n_golden / median:,.0f} deals/s"
    )
    result = json.loads(runs[-1][2])
    scores = {m["method"]: m["mape_pct"] for m in result["backtest"]["methods"]}
    print(f"deal set: {result['deal_set']}; default method: {result['method']}; backtest MAPE: "
          + ", ".join(f"{m} {v:.1f}%" for m, v in scores.items() if v is not None))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of any run: {peak:.0f} MiB")
    print("note: a shared 2-core machine; wall times are noisy (medians quoted), CPU time is the steadier figure")


if __name__ == "__main__":
    main()

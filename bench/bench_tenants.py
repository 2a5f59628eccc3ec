"""Many tenants on one PostgreSQL warehouse: N parallel `pipesync run` processes, one schema each.

    python bench/bench_tenants.py [--tenants 8] [--deals 50000] [--steps sync] [--overlap] [--url URL]

Each tenant is a project of its own (a CSV export of ``--deals`` deals, ``warehouse_schema: tenant_K``)
and runs `pipesync run --json --only STEP…` as its own process, all started at once against one fresh
database (``--url``: a server URL, default $PIPESYNC_TEST_PG_URL; the bench makes and drops its own
database). ``--overlap`` starts a second run of tenant 0 at the same moment with ``--wait``: it waits
on that source's run lock until the first finishes, and the bench shows that wait. Prints each run,
the wall time, the total deals/s (all tenants' deals over the wall time) and the lock wait.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text

from pipesync_sandbox.csv_export import write_export

CONFIG = """\
warehouse: {url}
warehouse_schema: {schema}
sync_workers: 1
reporting_currency: USD
fx_rates: {{EUR: 1.1, GBP: 1.3}}
mappings_dir: .
sources:
  - name: crm
    type: csv
    options: {{path: crm.csv, format: pipedrive_export}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tenants", type=int, default=8)
    ap.add_argument("--deals", type=int, default=50_000)
    ap.add_argument("--steps", default="sync", help="comma-separated steps of `pipesync run` (sync,consolidate,metrics)")
    ap.add_argument("--overlap", action="store_true", help="a second run of tenant 0 at once, waiting on its lock")
    ap.add_argument("--url", default=os.environ.get("PIPESYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = ap.parse_args()

    database = f"pipesync_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(args.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    url = args.url.rsplit("/", 1)[0] + "/" + database
    try:
        with tempfile.TemporaryDirectory() as tmp:
            projects = []
            for k in range(args.tenants):
                folder = Path(tmp) / f"tenant_{k}"
                write_export(folder / "crm.csv", args.deals, seed=100 + k)
                (folder / "pipesync.yaml").write_text(CONFIG.format(url=url, schema=f"tenant_{k}"), encoding="utf-8")
                projects.append(folder)
            steps = [arg for step in args.steps.split(",") for arg in ("--only", step.strip())]
            runs = [(f"tenant_{k}", folder, []) for k, folder in enumerate(projects)]
            if args.overlap:
                runs.append(("tenant_0 (again)", projects[0], ["--wait", "3600"]))
            started = time.perf_counter()
            procs = [(name, subprocess.Popen([sys.executable, "-m", "pipesync", "run", "--json", *steps, *extra],
                                             cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
                     for name, folder, extra in runs]
            results = [(name, proc.communicate()[0], proc.returncode) for name, proc in procs]
            wall = time.perf_counter() - started
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()

    total, waits = 0, []
    print(f"{args.tenants} tenants × {args.deals:,} deals, steps {args.steps}, one PostgreSQL database, a schema each")
    for name, out, code in results:
        result = json.loads(out)
        step_seconds = ", ".join(f"{s['step']} {s['seconds']:.1f}s" for s in result["steps"])
        sync = next((s for s in result["steps"] if s["step"] == "sync"), None)
        counts = sync["summary"]["sources"]["crm"] if sync else {}
        waits.append(counts.get("lock_wait_s", 0.0))
        if "again" not in name:  # the overlapping run finds its deals unchanged: not counted as work
            total += counts.get("read", 0)
        print(f"  {name:18} exit {code}  {step_seconds}  read {counts.get('read', 0):,}  "
              f"lock wait {counts.get('lock_wait_s', 0.0):.1f}s")
    print(f"wall {wall:.1f}s  total {total:,} deals  {total / wall:,.0f} deals/s  "
          f"lock wait total {sum(waits):.1f}s, longest {max(waits):.1f}s")


if __name__ == "__main__":
    main()

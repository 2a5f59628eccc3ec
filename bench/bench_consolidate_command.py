"""`pipesync consolidate` end to end, as a user runs it: a synced warehouse in, golden_deals and deal_links out.

    python bench/bench_consolidate_command.py                          # SQLite, 100,000 and 1,000,000 deals
    python bench/bench_consolidate_command.py --sizes 100000 --repeat 3 --warehouse sqlite postgresql

For each size, the labelled generator world of ``bench_consolidate.py`` (hard cases, seed 2027,
cached) is written once into a warehouse through ``Warehouse.write_page``, as a sync writes it,
and kept (SQLite: a file under the temp dir, copied afresh for each run; PostgreSQL: a database
on ``PIPESYNC_TEST_PG_URL``'s server, its consolidation tables emptied before each run). Then the
command itself runs in a fresh process, ``python -m pipesync consolidate --json``, twice in a row:

- **first**: nothing consolidated yet (the first run after a sync);
- **again**: the same warehouse re-consolidated (the previous golden ids read and kept).

Printed per run: the command's wall time (process start to exit: imports, read, match, write),
the split it reports (``seconds``: read, keys … ids, write), and the peak memory of the process
and its forked helpers, summed PSS (shared pages split between them), sampled every 0.1 s. The
machine may be shared: the median of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

from bench_consolidate import CACHE, HELD_OUT_SEED, cached, child, read_rows  # beside this script
from bench_sync_csv import tree_pss_mb

PG_URL = os.environ.get("PIPESYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PAGE = 20_000  # deals per write_page, as a sync writes a page


def load_warehouse(url: str, seed: int, size: int) -> None:
    """The generator's deals written into the warehouse at ``url`` as a sync writes them."""
    from pipesync.consolidate.records import Record
    from pipesync.model import Deal
    from pipesync.warehouse.store import DealRows, PageWrite, Warehouse

    fields = list(Deal.model_fields)
    at = {name: i for i, name in enumerate(Record._fields)}
    warehouse = Warehouse(url)
    try:
        rows = read_rows(cached(seed, size, "rows.pickle"))
        while page := list(islice(rows, PAGE)):
            columns = {f: [r[at[f]] for r in page] if f in at else [{}] * len(page) for f in fields}
            deals = DealRows(columns, [r[0] for r in page], ["bench"] * len(page))
            warehouse.write_page(PageWrite(source="bench", cursor=None, inserts=deals))
    finally:
        warehouse.close()


def sqlite_base(seed: int, size: int) -> Path:
    path = cached(seed, size, "warehouse.db")
    if not path.exists():
        partial = path.with_suffix(".partial.db")
        partial.unlink(missing_ok=True)
        load_warehouse(f"sqlite:///{partial}", seed, size)
        partial.replace(path)
    return path


def pg_database(seed: int, size: int) -> str:
    """A database holding the world's deals (created and loaded once; a complete load is marked by its name)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    server = make_url(PG_URL)
    name = f"pipesync_bench_consolidate_{seed}_{size}"
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = set(conn.scalars(text("SELECT datname FROM pg_database")))
        if name not in exists:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_partial"'))
            conn.execute(text(f'CREATE DATABASE "{name}_partial"'))
    admin.dispose()
    if name not in exists:
        load_warehouse(server.set(database=f"{name}_partial").render_as_string(hide_password=False), seed, size)
        admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}_partial" RENAME TO "{name}"'))
        admin.dispose()
    url = server.set(database=name).render_as_string(hide_password=False)
    return url


def reset_pg(url: str) -> None:
    """Nothing consolidated yet."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("TRUNCATE golden_deals, deal_links, golden_aliases"))
    engine.dispose()


def run_command(folder: Path) -> dict:
    """One ``pipesync consolidate --json`` in ``folder``: wall seconds, its reported split, peak summed PSS."""
    command = [sys.executable, "-m", "pipesync", "consolidate", "--config", "pipesync.yaml", "--json"]
    started = time.perf_counter()
    proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, tree_pss_mb(proc.pid))
        time.sleep(0.1)
    wall = time.perf_counter() - started
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.exit(f"pipesync consolidate: exit {proc.returncode}\n{err[-3000:]}")
    summary = json.loads(out)
    return {"wall": wall, "pss_mb": peak, "seconds": summary["seconds"], "deals": summary["deals"],
            "golden_deals": summary["golden_deals"], "conflicts": summary["conflicts"]}


def runs_on(kind: str, seed: int, size: int, folder: Path) -> dict[str, dict]:
    """(first run, run again) on a fresh copy of the loaded warehouse."""
    if kind == "sqlite":
        db = folder / "warehouse.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(sqlite_base(seed, size), db)
        url = f"sqlite:///{db}"
    else:
        url = pg_database(seed, size)
        reset_pg(url)
    (folder / "pipesync.yaml").write_text(f"warehouse: {json.dumps(url)}\n")
    return {"first": run_command(folder), "again": run_command(folder)}


def report(kind: str, size: int, runs: list[dict[str, dict]]) -> None:
    r0 = runs[0]["first"]
    print(f"\n== pipesync consolidate, {kind}, {r0['deals']:,} live deals → {r0['golden_deals']:,} golden deals "
          f"({size:,} generated), {len(runs)} run(s), medians; load average {os.getloadavg()[0]:.1f} ==")
    for which in ("first", "again"):
        med = lambda f: statistics.median(f(r[which]) for r in runs)  # noqa: E731
        stages = list(r0["seconds"])
        split = ", ".join(f"{s} {med(lambda x: x['seconds'][s]):.2f}" for s in stages)
        walls = ", ".join(f"{r[which]['wall']:.1f}" for r in runs)
        print(f"{which:6} wall {med(lambda x: x['wall']):6.2f} s (runs: {walls}); peak {med(lambda x: x['pss_mb']):,.0f} MB "
              f"summed PSS; split (s): {split}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED)
    parser.add_argument("--warehouse", nargs="+", choices=["sqlite", "postgresql"], default=["sqlite"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the median is printed")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    for size in args.sizes:
        if not cached(args.seed, size, "rows.pickle").exists():
            child(["--seed", str(args.seed), "--_prepare", str(size)])  # bench_consolidate's generator rows
        for kind in args.warehouse:
            with tempfile.TemporaryDirectory() as tmp:
                report(kind, size, [runs_on(kind, args.seed, size, Path(tmp)) for _ in range(args.repeat)])


if __name__ == "__main__":
    main()

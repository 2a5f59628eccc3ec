"""Benchmark: `pipesync metrics --json` and `pipesync report` on 1,000,000 deals.

Builds (once, cached under /tmp) a SQLite warehouse of synthetic deals with a
realistic stage history: four sources, 60 owners with their own typical deal
sizes, three years of created deals moving through the shared pipeline with
stage-dependent dwell times, some parked, a few amounts with a misplaced zero.
Then runs both commands as subprocesses, three times each, and prints the
median wall time and the peak RSS of the child. The machine is shared: quote
medians, expect noise.

With a PostgreSQL server (``--pg-url``, else ``$PIPESYNC_TEST_PG_URL``) the same
warehouse is copied (once, cached) into its database ``bench_metrics_<deals>`` and
both commands are timed there too, end to end (the warehouse read included).

    python bench/bench_metrics.py [--deals 1000000] [--rebuild] [--pg-url URL] [--only sqlite|postgresql]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, make_url

from pipesync.warehouse import version

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)
SOURCES = [("salesforce", 0.45), ("hubspot", 0.35), ("pipedrive", 0.15), ("csv", 0.05)]
OPEN_STAGES = ["prospecting", "qualification", "discovery", "proposal", "negotiation"]
MEAN_DWELL_DAYS = [12.0, 15.0, 20.0, 18.0, 14.0]
GO_ON = [0.70, 0.70, 0.65, 0.60, 0.55]  # chance to move to the next stage (else lost, parked or still open)
LOST_REASONS = ["Price", "No budget", "Chose competitor", "No decision", "Timing", None]
LEAD_SOURCES = ["Inbound", "Outbound", "Partner", "Event", "Referral", None]


def _timestamps(days: np.ndarray) -> np.ndarray:
    """Day numbers as SQLAlchemy's SQLite DATETIME text ('YYYY-MM-DD HH:MM:SS.ffffff')."""
    us = (days * 86_400_000_000).astype("int64").astype("datetime64[us]")
    return np.char.replace(np.datetime_as_string(us, unit="us"), "T", " ")


def build(path: Path, n: int, seed: int = 7) -> None:
    rng = np.random.default_rng(seed)
    now = NOW.timestamp() / 86400
    created = now - rng.uniform(0, 3 * 365, n)
    src_idx = rng.choice(len(SOURCES), n, p=[p for _, p in SOURCES])
    owner = rng.integers(0, 60, n)
    owner_base = np.exp(rng.normal(np.log(20000), 0.7, 60))
    amount = np.round(owner_base[owner] * np.exp(rng.normal(0, 0.5, n)), 2)
    typo = rng.random(n) < 0.002
    amount[typo] *= 10

    stage = np.zeros(n, dtype=np.int64)  # index into OPEN_STAGES while open
    status = np.zeros(n, dtype=np.int8)  # 0 open, 1 won, 2 lost, 3 parked
    t = created.copy()
    hist_deal, hist_stage, hist_at = [np.arange(n)], [np.zeros(n, dtype=np.int64)], [created.copy()]
    active = np.ones(n, dtype=bool)
    for i in range(len(OPEN_STAGES)):
        leave = t + rng.exponential(MEAN_DWELL_DAYS[i], n)
        moving = active & (stage == i) & (leave <= now)
        roll = rng.random(n)
        go_on = moving & (roll < GO_ON[i])
        parked = moving & (roll >= GO_ON[i]) & (roll < GO_ON[i] + 0.03)
        lost = moving & (roll >= GO_ON[i] + 0.03)
        status[lost], status[parked] = 2, 3
        t = np.where(moving, leave, t)
        last = i == len(OPEN_STAGES) - 1
        if last:
            status[go_on] = 1
        else:
            stage[go_on] = i + 1
        for mask, code in ((go_on, 5 if last else i + 1), (lost, 7), (parked, 6)):
            idx = np.flatnonzero(mask)
            hist_deal.append(idx)
            hist_stage.append(np.full(len(idx), code))
            hist_at.append(t[idx])
        active &= ~moving | go_on
        active &= ~(go_on & last)
    keys = ["prospecting", "qualification", "discovery", "proposal", "negotiation", "closed_won", "on_hold", "closed_lost"]
    stage_key = np.array(OPEN_STAGES, dtype=object)[stage]
    stage_key[status == 1], stage_key[status == 2], stage_key[status == 3] = "closed_won", "closed_lost", "on_hold"
    status_word = np.array(["open", "won", "lost", "open"], dtype=object)[status]
    closed = (status == 1) | (status == 2)
    close_date = np.where(closed, np.datetime_as_string(t.astype("int64").astype("datetime64[D]")), None)
    activity = np.minimum(now, t + rng.exponential(20, n))
    src_names = np.array([s for s, _ in SOURCES], dtype=object)[src_idx]
    ids = np.arange(1, n + 1).astype(str)
    key = np.char.add(np.char.add(src_names.astype(str), ":"), ids)
    lost_reason = np.array(LOST_REASONS, dtype=object)[rng.integers(0, len(LOST_REASONS), n)]
    lost_reason[status != 2] = None
    lead = np.array(LEAD_SOURCES, dtype=object)[rng.integers(0, len(LEAD_SOURCES), n)]
    created_s, t_s, act_s = _timestamps(created), _timestamps(t), _timestamps(activity)
    synced = NOW.strftime("%Y-%m-%d %H:%M:%S.000000")

    path.unlink(missing_ok=True)
    with create_engine(f"sqlite:///{path}").begin() as conn:
        version.create(conn)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    rows = (
        (key[i], src_names[i], ids[i], f"Deal {i}", "default", stage_key[i], stage_key[i], status_word[i],
         float(amount[i]), "USD", float(amount[i]), None, close_date[i], created_s[i], t_s[i], t_s[i], act_s[i],
         f"owner{owner[i]}@example.com", f"Owner {owner[i]}", "[]", lead[i], lost_reason[i], "[]", 0, "{}", "x", synced)
        for i in range(n)
    )
    db.executemany(
        "INSERT INTO deals (key, source, source_id, name, pipeline, source_stage, stage, status, amount, currency,"
        " amount_reporting, probability, close_date, created_at, updated_at, stage_entered_at, last_activity_at,"
        " owner_email, owner_name, contact_emails, lead_source, lost_reason, external_refs, is_deleted, raw,"
        " content_hash, synced_at) VALUES (" + ",".join("?" * 27) + ")",
        rows,
    )
    deal, code, at = np.concatenate(hist_deal), np.concatenate(hist_stage), np.concatenate(hist_at)
    at_s = _timestamps(at)
    db.executemany(
        "INSERT INTO stage_history (deal_key, from_stage, to_stage, changed_at, origin) VALUES (?, NULL, ?, ?, 'source_history')",
        ((key[d], keys[c], at_s[j]) for j, (d, c) in enumerate(zip(deal.tolist(), code.tolist()))),
    )
    db.commit()
    db.close()


def mirror_to_postgresql(db: Path, server: str, rebuild: bool) -> str:
    """The URL of a PostgreSQL database holding the SQLite warehouse's deals and stage history
    (copied with COPY the first time, or when ``rebuild``)."""
    name = f"bench_metrics_{db.parent.name.rsplit('-', 1)[-1]}"
    url = make_url(server).set(database=name).render_as_string(hide_password=False)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.exec_driver_sql("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).first()
        if exists and not rebuild:
            return url
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    start = time.perf_counter()
    engine = create_engine(url)
    with engine.begin() as conn:
        version.create(conn)
    source = sqlite3.connect(db)
    with engine.begin() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("SET TIME ZONE 'UTC'")  # SQLite's timestamps are UTC wall-clock text
        for table in ("deals", "stage_history"):
            columns = [r[1] for r in source.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
            names = ", ".join(columns)
            with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in source.execute(f"SELECT {names} FROM {table}"):
                    copy.write_row(row)
    source.close()
    engine.dispose()
    print(f"copied the warehouse into PostgreSQL database {name} in {time.perf_counter() - start:.1f} s")
    return url


def run(cmd: list[str], cwd: Path) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system) and stdout of one run of ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.stdout


def bench(work: Path, url: str, n_deals: int, runs: int) -> None:
    """Times both commands against the warehouse at ``url``."""
    (work / "pipesync.yaml").write_text(f"warehouse: {url}\n", encoding="utf-8")
    # The pipesync CLI with these two commands registered (importing a command module registers it).
    exe = [sys.executable, "-c", "import sys; from pipesync.cli import app; import pipesync.cli.metrics_cmd, pipesync.cli.report_cmd; app()"]
    for label, cmd, target in (
        ("pipesync metrics --json", [*exe, "metrics", "--json"], 10),
        ("pipesync report", [*exe, "report", "--out", str(work / "report.html")], 20),
    ):
        times = [run(cmd, work) for _ in range(runs)]
        walls, cpus = [w for w, _, _ in times], [c for _, c, _ in times]
        median = statistics.median(walls)
        print(
            f"{label}: median wall {median:.2f} s of {runs} ({', '.join(f'{w:.2f}' for w in walls)}), "
            f"median CPU {statistics.median(cpus):.2f} s, target <= {target} s, {n_deals / median:,.0f} deals/s"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pg-url", default=os.environ.get("PIPESYNC_TEST_PG_URL"),
                        help="a PostgreSQL server to bench too (default: $PIPESYNC_TEST_PG_URL)")
    parser.add_argument("--only", choices=("sqlite", "postgresql"), help="bench one dialect")
    args = parser.parse_args()
    work = Path(f"/tmp/pipesync-bench-metrics-{args.deals}")
    work.mkdir(exist_ok=True)
    db = work / "warehouse.db"
    if args.rebuild or not db.exists():
        start = time.perf_counter()
        build(db, args.deals)
        print(f"built {db} in {time.perf_counter() - start:.1f} s")
    with sqlite3.connect(db) as conn:
        n_deals = conn.execute("SELECT count(*) FROM deals").fetchone()[0]
        n_hist = conn.execute("SELECT count(*) FROM stage_history").fetchone()[0]
        conn.execute("DELETE FROM metric_snapshots")
    print(f"{n_deals:,} deals, {n_hist:,} stage changes")
    warehouses = {"sqlite": f"sqlite:///{db}"}
    if args.pg_url:
        warehouses["postgresql"] = mirror_to_postgresql(db, args.pg_url, args.rebuild)
    for dialect, url in warehouses.items():
        if args.only in (None, dialect):
            print(f"-- {dialect}")
            bench(work, url, n_deals, args.runs)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS of any run: {peak:.0f} MiB")
    print("note: a shared 2-core machine; wall times are noisy (medians quoted), CPU time is the steadier figure")


if __name__ == "__main__":
    main()

"""A sync killed at any point and re-run leaves the warehouse identical to one clean run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from pipesync.warehouse import schema as t
from pipesync_sandbox.csv_export import write_export

ROWS = 1_500  # three pages of 500
VOLATILE = {"synced_at", "first_seen", "last_seen", "updated_at", "id"}

CONFIG = """\
warehouse: {url}
sync_workers: {workers}
reporting_currency: USD
fx_rates: {{EUR: 1.1, GBP: 1.3}}
mappings_dir: .
sources:
  - name: crm
    type: csv
    options: {{path: crm.csv, format: pipedrive_export, page_size: 500}}
"""

# Runs `pipesync sync` in-process and dies (os._exit, like SIGKILL: no cleanup, no rollback by us)
# at the requested point of the requested page's transaction.
CRASH = """\
import os, sys
from pipesync.cli import app
from pipesync.warehouse import store
page, where = int(sys.argv[1]), sys.argv[2]
calls = {"n": 0}
original = store.Warehouse._save_cursor
def crashing(self, conn, source, cursor, stamp):
    calls["n"] += 1
    if calls["n"] == page and where == "inside":
        os._exit(137)  # deals written, cursor not yet, transaction open
    original(self, conn, source, cursor, stamp)
store.Warehouse._save_cursor = crashing
original_write = store.Warehouse.write_page
def write_then_die(self, page_write):
    original_write(self, page_write)
    if calls["n"] == page and where == "after":
        os._exit(137)  # page committed, next page not started
store.Warehouse.write_page = write_then_die
sys.argv = ["pipesync", "sync", "--config", "pipesync.yaml"]
app()
"""


# Two workers (three pages: the first here, two in a forked child); the child dies inside the
# transaction of its first page, as an out-of-memory kill would end it.
CRASH_IN_WORKER = """\
import os, sys
from pipesync.cli import app
from pipesync.warehouse import store
parent = os.getpid()
original = store.Warehouse._write_quarantine
def crashing(self, conn, page, stamp):
    if os.getpid() != parent:
        os._exit(137)  # deals written, transaction open
    original(self, conn, page, stamp)
store.Warehouse._write_quarantine = crashing
sys.argv = ["pipesync", "sync", "--config", "pipesync.yaml"]
app()
"""


def snapshot(url: str) -> dict[str, list]:
    engine = create_engine(url)
    out = {}
    with engine.connect() as conn:
        for table, key in [(t.deals, "key"), (t.stage_history, "deal_key"), (t.quarantine, "record"), (t.sync_state, "source")]:
            rows = [{k: v for k, v in r._mapping.items() if k not in VOLATILE} for r in conn.execute(select(table))]
            out[table.name] = sorted(rows, key=lambda r: (r[key], str(r)))
    engine.dispose()
    return out


def project(tmp_path: Path, name: str, url: str, workers: int = 1) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "pipesync.yaml").write_text(CONFIG.format(url=url, workers=workers))
    write_export(folder / "crm.csv", ROWS, version=1)
    return folder


def sync(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipesync", "sync", "--config", "pipesync.yaml"], cwd=folder, capture_output=True, text=True)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The reference: version 1 synced, then version 2 synced, no interruption; and how long that took."""
    tmp_path = tmp_path_factory.mktemp("clean")
    folder = project(tmp_path, "clean", f"sqlite:///{tmp_path / 'clean.db'}")
    assert sync(folder).returncode == 0
    write_export(folder / "crm.csv", ROWS, version=2)
    started = time.monotonic()
    assert sync(folder).returncode == 0
    return snapshot(f"sqlite:///{tmp_path / 'clean.db'}"), time.monotonic() - started


@pytest.mark.parametrize("page", [1, 2, 3])
@pytest.mark.parametrize("where", ["inside", "after"])
def test_crash_inside_or_between_page_transactions(tmp_path, clean, page, where):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    folder = project(tmp_path, "killed", url)
    assert sync(folder).returncode == 0
    write_export(folder / "crm.csv", ROWS, version=2)
    crashed = subprocess.run([sys.executable, "-c", CRASH, str(page), where], cwd=folder, capture_output=True, text=True)
    assert crashed.returncode == 137, crashed.stderr
    rerun = sync(folder)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(url) == clean[0]


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("fraction", [0.5, 0.85])
def test_sigkill_at_an_arbitrary_moment(tmp_path, clean, fraction, workers):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    folder = project(tmp_path, "killed", url, workers)
    assert sync(folder).returncode == 0
    write_export(folder / "crm.csv", ROWS, version=2)
    proc = subprocess.Popen([sys.executable, "-m", "pipesync", "sync", "--config", "pipesync.yaml"], cwd=folder,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(clean[1] * fraction)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sync(folder).returncode == 0
    assert snapshot(url) == clean[0]


def test_a_worker_killed_inside_its_page_transaction_fails_the_run_and_a_rerun_heals(tmp_path, clean):
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    folder = project(tmp_path, "killed", url, workers=2)
    assert sync(folder).returncode == 0
    write_export(folder / "crm.csv", ROWS, version=2)
    crashed = subprocess.run([sys.executable, "-c", CRASH_IN_WORKER], cwd=folder, capture_output=True, text=True)
    assert crashed.returncode == 1
    assert "part 2 of 2 (the rows on lines 502–end): the worker process exited with status 137" in " ".join(crashed.stdout.split())
    rerun = sync(folder)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(url) == clean[0]

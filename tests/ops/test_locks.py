"""Run locks: one run per warehouse and source; the next waits or stops saying who holds it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipesync.config import load_config
from pipesync.errors import RunInProgress
from pipesync.sync import run_sync
from pipesync.warehouse.browse import recent_runs
from pipesync.warehouse.locks import source_lock
from pipesync.warehouse.store import Warehouse

HOLD = """\
import sys
from pipesync.warehouse.store import Warehouse
from pipesync.warehouse.browse import recent_runs
from pipesync.warehouse.locks import source_lock
with source_lock(Warehouse(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    sys.stdin.read()
"""


@contextmanager
def held_elsewhere(url: str, source: str) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the lock of ``source`` until the block ends (or it is killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, url, source], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=os.environ)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        if proc.poll() is None:
            proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(timeout=30)


def test_a_second_run_of_a_source_stops_at_once_naming_the_holder(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    with held_elsewhere(warehouse_url, "crm") as holder:
        with pytest.raises(RunInProgress) as refused, source_lock(wh, "crm"):
            pass
    message = str(refused.value)
    assert "another run of crm is in progress since 20" in message
    assert f"pid {holder.pid} on host {socket.gethostname()[:24]}" in message and "--wait" in message
    with source_lock(wh, "crm") as waited:  # released: free again
        assert waited < 1
    wh.close()


def test_a_run_told_to_wait_takes_the_lock_when_the_holder_finishes(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    with held_elsewhere(warehouse_url, "crm") as holder:
        releaser = subprocess.Popen(["sh", "-c", f"sleep 1; kill -9 {holder.pid}"])
        with source_lock(wh, "crm", wait=20) as waited:
            assert 0.5 < waited < 20  # the killed holder's lock was free as soon as it died
        releaser.wait()
    wh.close()


def test_a_lock_left_by_a_killed_run_is_free(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    with held_elsewhere(warehouse_url, "crm") as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        with source_lock(wh, "crm", wait=5) as waited:
            assert waited < 5
    wh.close()


def test_different_sources_hold_their_locks_side_by_side(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    with held_elsewhere(warehouse_url, "hubspot"), source_lock(wh, "crm") as waited:
        assert waited < 1
    wh.close()


def test_sync_of_a_source_another_run_holds_fails_with_the_message_not_a_database_error(
    warehouse_url: str, example_project: Path
) -> None:
    config = example_project / "pipesync.yaml"
    settings = load_config(config)
    settings.warehouse = warehouse_url
    name = settings.sources[0].name
    with held_elsewhere(warehouse_url, name):
        result = run_sync(settings, [name])
    assert result.status == "failed" and result.exit_code == 1
    assert f"another run of {name} is in progress since" in (result.sources[name].error or "")
    again = run_sync(settings, [name])
    assert again.status == "ok" and again.sources[name].inserted > 0


def test_a_run_of_other_sources_does_not_mark_a_running_one_interrupted(warehouse_url: str) -> None:
    wh = Warehouse(warehouse_url)
    crm = wh.start_run(["crm"])
    hubspot = wh.start_run(["hubspot"])  # side by side: crm's run is alive
    again = wh.start_run(["crm", "files"])  # crm again: the first crm run can only have died
    runs = {r["run_id"]: r["status"] for r in recent_runs(wh)}
    assert runs[crm] == "interrupted" and runs[hubspot] == "running" and runs[again] == "running"
    wh.close()

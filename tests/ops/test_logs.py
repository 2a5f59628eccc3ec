"""Global options: the version, and logs a scheduler can read (text or one JSON object per line)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

from pipesync import logs


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "pipesync", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"pipesync {version('pipesync')}"


def test_json_lines_carry_the_fields_one_object_a_line() -> None:
    stream = io.StringIO()
    logs.configure(0, "json", stream)
    try:
        logs.event(logging.getLogger("pipesync.run"), "step done", run_id="r1", step="sync", source="crm",
                   counts={"read": 3}, seconds=1.5)
        logging.getLogger("pipesync.x").debug("hidden at the default level")
    finally:
        logs.configure(0, "text", io.StringIO())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "step done" and record["run_id"] == "r1" and record["counts"] == {"read": 3}


def test_progress_is_logged_at_a_steady_interval_not_per_record() -> None:
    stream = io.StringIO()
    logs.configure(0, "text", stream)
    ticks = iter([0.0, 1.0, 5.0, 10.0, 10.5, 21.0])
    try:
        advance = logs.progress_lines(logging.getLogger("pipesync.sync"), "sync", every=10, clock=lambda: next(ticks))
        for _ in range(6):
            advance("crm", 100)
    finally:
        logs.configure(0, "text", io.StringIO())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and "sync crm: 400 records" in lines[0] and "records=600" in lines[1]


def test_global_options_are_read_after_the_command_too() -> None:
    out = subprocess.run([sys.executable, "-m", "pipesync", "sync", "-c", "/nonexistent/pipesync.yaml", "--log-format", "json"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stdout == ""
    assert [json.loads(line)["exit_code"] for line in out.stderr.splitlines()] == [2]

"""Every failure is one message and the documented exit code: 1 failure, 2 usage/config, 3 drift found.

With ``--json`` the message is a JSON object on stdout (a scheduler parses stdout, whatever happened);
without it, a line on stderr. An error pipesync did not expect is no exception to that.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipesync.sync
from pipesync.cli import app

runner = CliRunner()

BROKEN_PIPELINE = "stages: [{key: a, label: A, category: nonsense}]\n"
BROKEN_MAPPING = "pipelines: [{id: x, stages: [{label: a, stage: nonsense}]}]\n"

# Every command that reads the shared pipeline (mappings/pipeline.yaml) …
READ_THE_PIPELINE = [
    ["sync"], ["map", "hubspot_export", "--yes"], ["map", "hubspot_export", "--check"],
    ["consolidate"], ["metrics"], ["report"],
]
# … and every one that reads a source's mapping file.
READ_THE_MAPPING = [["sync"], ["sync", "hubspot_export"], ["map", "hubspot_export", "--yes"], ["map", "hubspot_export", "--check"]]


def invoke(project: Path, command: list[str], *extra: str):
    return runner.invoke(app, [*command, "--config", str(project / "pipesync.yaml"), *extra])


def the_error(result) -> dict:
    """The one JSON error object on stdout (sync prints it beside the counts of the sources that did sync)."""
    return json.loads(result.stdout)["error"]


BROKEN = [
    *(pytest.param("pipeline.yaml", BROKEN_PIPELINE, command, "pipeline.yaml: 2 problem(s)", "line 1: stages.0.category",
                   id=f"pipeline.yaml-{' '.join(command)}") for command in READ_THE_PIPELINE),
    *(pytest.param("hubspot_export.yaml", BROKEN_MAPPING, command, "hubspot_export.yaml: 1 problem(s)",
                   "'nonsense' is not a stage", id=f"mapping-{' '.join(command)}") for command in READ_THE_MAPPING),
]


@pytest.mark.parametrize(("file", "text", "command", "problems", "detail"), BROKEN)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_broken_rules_file_exits_2_under_every_command_that_reads_it(example_project, file, text, command, problems, detail, as_json):
    (example_project / "mappings" / file).write_text(text, encoding="utf-8")
    result = invoke(example_project, command, *(["--json"] if as_json else []))
    assert result.exit_code == 2, result.output
    if as_json:
        error = the_error(result)
        assert error["exit_code"] == 2
        shown = words(error["message"])
    else:
        shown = words(result.stderr + result.stdout)
    assert problems in shown and detail in shown


def test_sync_goes_on_past_a_broken_source_and_says_so_under_json(example_project):
    (example_project / "mappings" / "hubspot_export.yaml").write_text(BROKEN_MAPPING, encoding="utf-8")
    result = invoke(example_project, ["sync"], "--json")
    assert result.exit_code == 2
    out = json.loads(result.stdout)
    assert out["status"] == "partial" and out["sources"]["sf_export"]["inserted"] == 11
    assert out["sources"]["hubspot_export"]["exit_code"] == 2
    assert out["error"]["type"] == "SourceFailed" and out["error"]["message"].startswith("hubspot_export: ")


def test_an_unexpected_error_under_json_is_a_json_error_object(example_project, monkeypatch):
    monkeypatch.setattr(pipesync.sync, "run_sync", boom)
    result = invoke(example_project, ["sync"], "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"error": {"type": "OSError", "message": "unexpected OSError: disk full", "exit_code": 1}}
    assert "Traceback" not in result.stderr


def test_an_unexpected_error_is_a_short_message_and_its_traceback_on_request(example_project, monkeypatch):
    monkeypatch.setattr(pipesync.sync, "run_sync", boom)
    result = invoke(example_project, ["sync"])
    assert result.exit_code == 1
    assert result.stderr == "error: unexpected OSError: disk full (set PIPESYNC_DEBUG=1 to see where)\n"

    monkeypatch.setenv("PIPESYNC_DEBUG", "1")
    result = invoke(example_project, ["sync"])
    assert result.exit_code == 1
    assert "Traceback" in result.stderr and 'raise OSError("disk full")' in result.stderr


def test_map_check_tells_drift_from_a_failure(example_project):
    (example_project / "mappings" / "hubspot_export.yaml").write_text("pipelines: []\n", encoding="utf-8")
    result = invoke(example_project, ["map", "hubspot_export", "--check"], "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["items"]
    assert "exit 3 on drift" in words(runner.invoke(app, ["map", "--help"]).stdout)


def words(text: str) -> str:
    """Text as words, whatever a terminal's wrapping and boxes did to it."""
    return " ".join(text.replace("│", " ").split())


def boom(*args, **kwargs):
    raise OSError("disk full")


def _not_a_file(project: Path, kind: str) -> str:
    """A path to something that is not a regular file: a device (endless zeros), a FIFO (no writer), a folder."""
    if kind == "device":
        return "/dev/zero"
    target = project / f"{kind}.csv"
    if kind == "fifo":
        os.mkfifo(target)
    else:
        target.mkdir()
    return str(target)


@pytest.mark.parametrize("kind", ["device", "fifo", "directory"])
@pytest.mark.parametrize("command", [["sync"], ["sync", "pipedrive_export"], ["config", "check"]])
def test_a_source_path_that_is_not_a_regular_file_exits_2_naming_source_and_path(example_project, kind, command):
    # Reading /dev/zero never ends (until memory does), a FIFO without a writer never starts.
    path = _not_a_file(example_project, kind)
    config = example_project / "pipesync.yaml"
    config.write_text(config.read_text().replace("path: exports/pipedrive_deals.csv", f"path: {path}"))
    result = invoke(example_project, command, "--json")
    assert result.exit_code == 2, result.output
    message = the_error(result)["message"] if command[0] == "sync" else " ".join(json.loads(result.stdout)["problems"])
    assert "pipedrive_export" in message and path in message and "not a regular file" in message, message


# What the command-line parser itself refuses, before any pipesync code runs.
USAGE_ERRORS = [
    pytest.param(["sync", "--bogus"], "No such option: --bogus", id="unknown-option"),
    pytest.param(["map"], "Missing argument", id="missing-argument"),
    pytest.param(["map", "hubspot_export", "--threshold", "2"], "--threshold", id="value-out-of-range"),
    pytest.param(["sync", "--workers", "many"], "Invalid value for '--workers'", id="bad-value"),
    pytest.param(["metrics", "--from", "yesterdayish"], "--from", id="bad-date"),
    pytest.param(["nonsense"], "No such command 'nonsense'", id="unknown-command"),
]


@pytest.mark.parametrize(("command", "detail"), USAGE_ERRORS)
def test_a_usage_error_under_json_is_one_json_error_object_exit_2(example_project, command, detail):
    result = invoke(example_project, command, "--json")
    assert result.exit_code == 2, result.output
    assert result.stderr == ""
    error = the_error(result)
    assert error["type"] == "UsageError" and error["exit_code"] == 2
    assert detail in error["message"] and "--help" in error["message"], error["message"]
    # without --json: the parser's own text on stderr, as before
    text = invoke(example_project, command)
    assert text.exit_code == 2 and text.stdout == "" and detail.split()[0] in text.stderr


def test_a_usage_error_under_json_is_json_from_the_installed_command(example_project):
    run = subprocess.run([sys.executable, "-m", "pipesync", "sync", "--bogus", "--json"], cwd=example_project,
                         capture_output=True, text=True)
    assert (run.returncode, run.stderr) == (2, "")
    error = json.loads(run.stdout)["error"]
    assert (error["type"], error["exit_code"]) == ("UsageError", 2) and "--bogus" in error["message"]

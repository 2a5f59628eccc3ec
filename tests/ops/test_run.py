"""`pipesync run`: the scheduled job — steps, exit codes, logs a scheduler can parse, and a kill -9 at any step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from pipesync.config import load_config
from pipesync.run import STEPS, run_job
from pipesync.warehouse import schema as t

VOLATILE = {"synced_at", "first_seen", "last_seen", "updated_at", "id", "taken_at", "recorded_at", "discovered_at"}
TABLES = (t.deals, t.stage_history, t.quarantine, t.sync_state, t.golden_deals, t.deal_links, t.metric_snapshots)


def pipesync(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipesync", *args], cwd=folder, capture_output=True, text=True,
                          env=os.environ, stdin=subprocess.DEVNULL, timeout=300)


def tables(folder: Path) -> dict[str, list]:
    engine = create_engine(f"sqlite:///{folder / 'pipesync-example.db'}")
    with engine.connect() as conn:
        out = {table.name: sorted(
            (json.dumps({k: v for k, v in r._mapping.items() if k not in VOLATILE}, sort_keys=True, default=str)
             for r in conn.execute(select(table))))
            for table in TABLES}
    engine.dispose()
    return out


def test_json_logs_under_a_non_terminal_are_json_lines_only(example_project: Path) -> None:
    done = pipesync(example_project, "run", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    records = [json.loads(line) for line in done.stderr.splitlines()]
    steps = {r["step"]: r for r in records if r.get("status")}
    assert list(steps) == list(STEPS)
    assert steps["sync"]["status"] == "ok" and steps["plan"]["status"] == "skipped"  # no push-back rules here
    assert len({r["run_id"] for r in records}) == 1
    assert {r["source"] for r in records if r.get("step") == "sync" and "read" in r} == {
        s.name for s in load_config(example_project / "pipesync.yaml").sources}


def test_only_and_skip_choose_the_steps_and_unknown_ones_are_a_usage_error(example_project: Path) -> None:
    settings = load_config(example_project / "pipesync.yaml")
    assert [s.step for s in run_job(settings, only=["sync", "consolidate"], skip=["consolidate"]).steps] == ["sync"]
    done = pipesync(example_project, "run", "--only", "sink", "--json")
    assert done.returncode == 2 and "the steps are sync, consolidate" in json.loads(done.stdout)["error"]["message"]


def test_a_failed_step_exits_1_and_the_other_steps_still_run(example_project: Path) -> None:
    first = load_config(example_project / "pipesync.yaml").sources[0]
    (example_project / first.options.path).unlink()  # type: ignore[attr-defined]
    done = pipesync(example_project, "run", "--json")
    assert done.returncode == 1
    steps = {s["step"]: s for s in json.loads(done.stdout)["steps"]}
    assert steps["sync"]["status"] == "failed" and first.name in steps["sync"]["error"]
    assert steps["sync"]["summary"]["sources"][first.name]["error"]
    assert steps["consolidate"]["status"] == "ok" and steps["metrics"]["status"] == "ok"


# Runs `pipesync run` in-process and dies like kill -9 (os._exit: no cleanup) in the middle of one step.
CRASH = """\
import os, sys
from pipesync.cli import app
step = sys.argv[1]
calls = {"n": 0}
def dying(original, at):
    def call(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == at:
            os._exit(137)
        return original(*args, **kwargs)
    return call
if step == "sync":  # inside the transaction of the second page: deals written, cursor not yet
    from pipesync.warehouse import store
    store.Warehouse._save_cursor = dying(store.Warehouse._save_cursor, 2)
elif step == "consolidate":  # golden deals replaced, links about to be written, transaction open
    from pipesync.consolidate import store
    store._column_batches = dying(store._column_batches, 2)
elif step == "metrics":  # while the snapshot is written
    from pipesync.metrics import snapshots
    snapshots.store = dying(snapshots.store, 1)
sys.argv = ["pipesync", "run"]
app()
"""


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    import shutil

    from tests.conftest import EXAMPLES

    folder = tmp_path_factory.mktemp("clean") / "project"
    shutil.copytree(EXAMPLES, folder, ignore=shutil.ignore_patterns("*.db", "*.db-*"))
    assert pipesync(folder, "run").returncode == 0
    return tables(folder)


@pytest.mark.parametrize("step", ["sync", "consolidate", "metrics"])
def test_a_run_killed_in_any_step_then_run_again_ends_as_one_clean_run(
    example_project: Path, clean_run: dict[str, list], step: str
) -> None:
    killed = subprocess.run([sys.executable, "-c", CRASH, step], cwd=example_project, capture_output=True, text=True,
                            env=os.environ, stdin=subprocess.DEVNULL, timeout=300)
    assert killed.returncode == 137, killed.stderr
    again = pipesync(example_project, "run")
    assert again.returncode == 0, again.stderr
    assert tables(example_project) == clean_run


def test_runs_and_quarantine_show_what_happened_without_sql(example_project: Path) -> None:
    assert pipesync(example_project, "run", "--only", "sync").returncode == 0
    runs = json.loads(pipesync(example_project, "runs", "--json").stdout)["runs"]
    assert runs[0]["status"] == "ok" and runs[0]["totals"]["read"] > 0 and runs[0]["seconds"] is not None
    everything = json.loads(pipesync(example_project, "quarantine", "--json").stdout)["quarantine"]
    assert everything and runs[0]["totals"]["quarantined"] == len(everything)
    source = everything[0]["source"]
    one = json.loads(pipesync(example_project, "quarantine", source, "--json").stdout)["quarantine"]
    assert one and {q["source"] for q in one} == {source} and all(q["reason"] and q["locator"] for q in one)
    text = pipesync(example_project, "quarantine", source)
    assert text.returncode == 0 and everything[0]["field"] in text.stdout
    assert pipesync(example_project, "quarantine", "nope", "--json").returncode == 2


def test_the_plan_is_written_to_a_file_and_nothing_is_sent_unless_the_config_says_so(example_project: Path) -> None:
    (example_project / "pushback.yaml").write_text("{}\n", encoding="utf-8")
    settings = load_config(example_project / "pipesync.yaml")
    result = run_job(settings, only=["plan", "apply"])
    plan, apply = result.steps
    assert plan.status == "ok" and Path(plan.summary["path"]).parent == example_project / "plans"
    assert json.loads(Path(plan.summary["path"]).read_text(encoding="utf-8"))["plan_id"] == plan.summary["plan_id"]
    assert apply.status == "skipped" and result.exit_code == 0  # run.apply is off by default

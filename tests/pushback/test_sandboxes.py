"""The push-back loop against the three sandboxes, over real HTTP: faults on, a kill -9 in the
middle of `pipesync apply`, every change applied exactly once, undo back to the exact prior state."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from pipesync.consolidate.store import run_consolidation
from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.pushback.plan import load_plan
from pipesync.sync import run_sync
from pipesync.warehouse import schema
from pipesync_sandbox.demo import ready_write_back_fields, write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

RULES = """\
max_changes: 5000
scope:
  owners: {deny: [nobody@example.com]}
write_back:
  enabled: true
  fields:
    salesforce: {golden_id: Pipesync_Golden_Id__c, duplicate_of: Pipesync_Duplicate_Of__c}
    hubspot: {golden_id: pipesync_golden_id, duplicate_of: pipesync_duplicate_of, also_in: pipesync_also_in}
    pipedrive: {golden_id: pipesync_golden_id, duplicate_of: pipesync_duplicate_of}
duplicates:
  enabled: true
  action: mark
"""
HARSH = dict(error_rate=0.04, burst_429_every=40, burst_429_len=2, burst_retry_after_s=0.2, drop_rate=0.02,
             partial_batch_failure_rate=0.05, drop_after_commit_rate=0.04, expire_token_after=25, time_scale=50.0)


def pipesync(*args: str, folder: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipesync", *args, "--config", str(folder / "pipesync.yaml"), "--json"],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(*args: str, folder: Path) -> tuple[int, dict, str]:
    proc = pipesync(*args, folder=folder)
    out, err = proc.communicate(timeout=600)
    return proc.returncode, json.loads(out) if out.strip() else {}, out + err


@pytest.fixture
def project(tmp_path):
    faults = {s: Faults(time_scale=1000.0, seed=11) for s in SYSTEMS}
    with Sandboxes(generate(23, 600), faults=faults) as boxes:
        folder = tmp_path / "project"
        settings = write_project(folder, [sandbox_source(boxes[s], folder / ".secrets") for s in SYSTEMS])
        for s in SYSTEMS:
            ctx = map_context(settings, s)
            write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
        run_sync(settings)
        run_consolidation(settings)
        (folder / "pushback.yaml").write_text(RULES)
        ready_write_back_fields(boxes, settings)
        yield folder, boxes, faults


def deal_writes(boxes) -> dict[str, list[str]]:
    return {s: [w.record_id for w in boxes[s].store.write_log.entries if "Fields" not in w.path] for s in SYSTEMS}


def test_apply_under_faults_and_a_kill_lands_every_change_once_and_undo_restores_every_record(project):
    folder, boxes, faults = project
    code, planned, output = finished("plan", "--out", "plan.json", folder=folder)
    assert code == 0, output
    plan = load_plan(folder / "plan.json")
    assert {c.source for c in plan.changes} == set(SYSTEMS) and len(plan.changes) > 300
    before = {s: boxes[s].store.snapshot() for s in SYSTEMS}
    for s in SYSTEMS:
        boxes[s].store.write_log.clear()
        faults[s].update(**HARSH)

    killed = pipesync("apply", "plan.json", folder=folder)
    delay = random.uniform(1.0, 3.0)
    time.sleep(delay)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    for attempt in range(8):  # failures (5xx, partial batches) are retried by running apply again
        code, summary, output = finished("apply", "plan.json", folder=folder)
        if code == 0:
            break
    assert code == 0, f"killed after {delay:.1f}s; {output[-3000:]}"
    assert summary["counts"] == {"applied": len(plan.changes)}

    writes = deal_writes(boxes)
    per_source = {s: sorted(c.source_id for c in plan.changes if c.source == s) for s in SYSTEMS}
    assert {s: sorted(w) for s, w in writes.items()} == per_source, f"each change written exactly once (kill at {delay:.1f}s)"

    for s in SYSTEMS:
        faults[s].update(**{k: 0.0 for k in HARSH if k.endswith("rate")}, burst_429_every=0, expire_token_after=None)
    code, undone, output = finished("undo", summary["run_id"], folder=folder)
    assert code == 0, output
    after = {s: boxes[s].store.snapshot() for s in SYSTEMS}
    assert after == before, "undo restores every record, field by field"

    code, journal, _ = finished("journal", folder=folder)
    assert [r["kind"] for r in journal] == ["undo", "apply"] and all(r["status"] == "done" for r in journal)


def test_no_secret_reaches_the_plan_the_journal_or_the_output(project):
    folder, boxes, faults = project
    secrets = [p.read_text().strip() for p in (folder / ".secrets").iterdir()]
    secrets = [s for s in secrets if len(s) >= 8]
    assert secrets
    code, _, output = finished("plan", "--out", "plan.json", "--html", "plan.html", folder=folder)
    assert code == 0
    faults["hubspot"].update(error_rate=1.0)  # a CRM failing every call: its errors go to the journal and output
    code, _, apply_output = finished("apply", "plan.json", folder=folder)
    assert code == 1
    engine = create_engine(f"sqlite:///{folder / 'pipesync-demo.db'}")
    with engine.connect() as conn:
        journal = json.dumps([list(map(str, row)) for row in conn.execute(select(schema.change_journal))])
    engine.dispose()
    texts = [output, apply_output, journal, (folder / "plan.json").read_text(), (folder / "plan.html").read_text()]
    assert not [s for s in secrets for t in texts if s in t]

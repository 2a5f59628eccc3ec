"""`pipesync migrate` against the sandboxes over real HTTP: HubSpot → Salesforce and Pipedrive →
HubSpot, a dry run that stops on what cannot land, a sample first, then the rest under faults
and a kill -9 — and every deal exactly once in the target, counted in the target sandbox."""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from sqlalchemy import create_engine, func, select

from pipesync.adapters import open_adapter
from pipesync.config import load_config
from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.migrate.plan import make_migration
from pipesync.migrate.reconcile import run_prefix
from pipesync.migrate.run import run_migration
from pipesync.pushback import journal
from pipesync.sync import run_sync
from pipesync.warehouse import schema
from pipesync.warehouse.store import Warehouse
from pipesync_sandbox.demo import write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS
from tests.pushback.test_sandboxes import finished, pipesync

HARSH = dict(error_rate=0.04, burst_429_every=40, burst_429_len=2, burst_retry_after_s=0.2, drop_rate=0.02,
             partial_batch_failure_rate=0.05, drop_after_commit_rate=0.04, expire_token_after=25, time_scale=50.0)
CALM = dict(error_rate=0.0, burst_429_every=0, drop_rate=0.0, partial_batch_failure_rate=0.0,
            drop_after_commit_rate=0.0, expire_token_after=None)




def project(tmp_path: Path, boxes: Sandboxes, source: str, target: str) -> Path:
    folder = tmp_path / "project"
    settings = write_project(folder, [sandbox_source(boxes[s], folder / ".secrets") for s in SYSTEMS])
    for s in (source, target):
        ctx = map_context(settings, s)
        write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
    run_sync(settings, [source])
    return folder


def warehouse_keys(folder: Path, source: str) -> set[str]:
    engine = create_engine(f"sqlite:///{folder / 'pipesync-demo.db'}")
    with engine.connect() as conn:
        d = schema.deals
        keys = set(conn.execute(select(d.c.key).where(d.c.source == source, d.c.is_deleted.is_(False))).scalars())
    engine.dispose()
    return keys


def journaled(folder: Path) -> int:
    engine = create_engine(f"sqlite:///{folder / 'pipesync-demo.db'}")
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(schema.change_journal)).scalar()
    engine.dispose()
    return n


def set_writes(path: Path, pipeline: str, writes: dict[str, str]) -> None:
    """What a user adds to the target's mapping where several of its stages map to one shared stage."""
    yaml = YAML()
    data = yaml.load(path.read_text())
    next(p for p in data["pipelines"] if str(p["id"]) == pipeline)["writes"] = writes
    with path.open("w") as f:
        yaml.dump(data, f)


def migrate_killed_then_resumed(folder: Path, source: str, target: str, *options: str) -> tuple[dict, float]:
    already = journaled(folder)
    killed = pipesync("migrate", "--from", source, "--to", target, "--execute", *options, folder=folder)
    started = time.monotonic()
    while journaled(folder) == already and killed.poll() is None and time.monotonic() - started < 60:
        time.sleep(0.05)  # killed once its first batch is journaled: in the middle of sending
    time.sleep(random.uniform(0.0, 0.2))
    delay = time.monotonic() - started
    if killed.poll() is None:  # a run that stopped on its own (a failed batch under faults) is resumed the same way
        os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    for _ in range(8):  # failures (5xx, partial batches) are retried by running the migration again
        code, result, output = finished("migrate", "--from", source, "--to", target, "--execute", *options, folder=folder)
        if code == 0:
            return result, delay
    raise AssertionError(f"killed after {delay:.1f}s; never completed: {output[-3000:]}")


def test_hubspot_to_salesforce_stops_on_what_cannot_land_then_migrates_each_deal_once(tmp_path):
    faults = {s: Faults(time_scale=1000.0, seed=5) for s in SYSTEMS}
    with Sandboxes(generate(31, 700), faults=faults) as boxes:
        folder = project(tmp_path, boxes, "hubspot", "salesforce")
        hubspot_deals = warehouse_keys(folder, "hubspot")

        code, dry, output = finished("migrate", "--from", "hubspot", "--to", "salesforce", folder=folder)
        assert code == 2, output
        assert any("no stage of salesforce to land in: discovery" in b for b in dry["blockers"]), dry["blockers"]
        assert any("currencies salesforce does not have" in b and "Setup" in b for b in dry["blockers"]), dry["blockers"]

        # the fixes the dry run names: a landing stage for each shared stage, the currencies enabled
        set_writes(folder / "mappings" / "salesforce.yaml", dry["target_pipeline"],
                   {"discovery": "Needs Analysis", "proposal": "Proposal/Price Quote"})
        store = boxes["salesforce"].store
        store.currencies = sorted(set(store.currencies) | {d.currency for d in boxes["hubspot"].data.deals if d.currency})
        code, dry, output = finished("migrate", "--from", "hubspot", "--to", "salesforce", folder=folder)
        assert code == 0 and dry["ok"] and dry["counts"]["create"] == len(hubspot_deals), output
        assert sum(dry["by_owner"].values()) == len(hubspot_deals) and dry["sample"]["create"]
        before = len(store.tables["Opportunity"])
        assert len(store.tables["Opportunity"]) == before, "a dry run sends nothing"

        code, sampled, output = finished("migrate", "--from", "hubspot", "--to", "salesforce", "--execute",
                                         "--limit", "25", folder=folder)
        assert code == 0 and sampled["run"]["counts"] == {"applied": 25}, output
        assert sampled["reconciliation"]["ok"] and sampled["reconciliation"]["not_migrated"] == len(hubspot_deals) - 25

        for s in SYSTEMS:
            faults[s].update(**HARSH)
        result, delay = migrate_killed_then_resumed(folder, "hubspot", "salesforce")
        assert result["reconciliation"]["ok"], result["reconciliation"]

        made = Counter(r.get("External_Id__c") for r in store.tables["Opportunity"].values()
                       if str(r.get("External_Id__c") or "").startswith("hubspot:") and not r.get("IsDeleted"))
        assert set(made) == hubspot_deals, f"kill at {delay:.1f}s"
        assert max(made.values()) == 1, f"no deal created twice (kill at {delay:.1f}s)"

        for s in SYSTEMS:
            faults[s].update(**CALM)
        code, again, output = finished("migrate", "--from", "hubspot", "--to", "salesforce", "--execute", folder=folder)
        assert code == 0 and again["run"]["counts"] == {} and again["counts"]["skip"] == len(hubspot_deals), output
        code, rec, output = finished("migrate", "--from", "hubspot", "--to", "salesforce", "--reconcile", folder=folder)
        assert code == 0 and rec["migrated"] == len(hubspot_deals), output
        stages = rec["stages"]
        assert all(side["source"] == side["target"] for side in stages.values()) and "closed_won" in stages


def test_pipedrive_to_hubspot_under_faults_and_a_kill_creates_each_deal_once_and_reconcile_sees_a_change(tmp_path):
    faults = {s: Faults(time_scale=1000.0, seed=7) for s in SYSTEMS}
    with Sandboxes(generate(37, 1500), faults=faults) as boxes:
        folder = project(tmp_path, boxes, "pipedrive", "hubspot")
        # the HubSpot pipeline with a stage for every shared one (on hold included)
        code, dry, output = finished("migrate", "--from", "pipedrive", "--to", "hubspot", "--pipeline", "75000000",
                                     folder=folder)
        assert code == 0, output
        planned = dry["counts"]["create"]
        assert planned > 100
        hubspot = boxes["hubspot"].store
        for s in SYSTEMS:
            faults[s].update(**HARSH)
        result, delay = migrate_killed_then_resumed(folder, "pipedrive", "hubspot", "--pipeline", "75000000")
        assert result["reconciliation"]["ok"], result["reconciliation"]

        origins = Counter((d.props.get("pipesync_origin") or "").split()[-1] for d in hubspot.deals.values()
                          if d.archived_at_ms is None and (d.props.get("pipesync_origin") or "").startswith("pipesync "))
        made = {k: n for k, n in origins.items() if k.startswith("pipedrive:")}
        assert len(made) == planned and max(made.values()) == 1, f"each deal exactly once (kill at {delay:.1f}s)"

        for s in SYSTEMS:
            faults[s].update(**CALM)
        some = next(d for d in hubspot.deals.values() if (d.props.get("pipesync_origin") or "").endswith(next(iter(made))))
        some.props["amount"] = str(float(some.props.get("amount") or 0) + 1000)  # a person edits a migrated deal
        code, rec, output = finished("migrate", "--from", "pipedrive", "--to", "hubspot", "--reconcile", folder=folder)
        assert code == 1 and not rec["ok"], output
        assert any(d["field"] == "amount" for d in rec["diffs"]) or any(
            s["source"] != s["target"] for s in rec["stages"].values())


@pytest.mark.parametrize("source,target", [("pipedrive", "hubspot"), ("hubspot", "pipedrive"), ("hubspot", "salesforce")])
def test_a_create_the_target_made_but_no_run_recorded_is_found_not_sent_again(tmp_path, source, target):
    with Sandboxes(generate(41, 450)) as boxes:
        folder = project(tmp_path, boxes, source, target)
        settings = load_config(folder / "pipesync.yaml")
        migration = make_migration(settings, source, target)
        first = [c for c in migration.changes][:30]
        run_id = run_prefix(source, target) + ":killed"
        warehouse = Warehouse(settings.warehouse_url())
        with warehouse.begin() as conn:  # journaled, sent, and killed before the outcome was recorded
            journal.start_run(conn, run_id, migration.migration_id, "migrate")
            journal.journal_batch(conn, run_id, 1, first)
        warehouse.close()
        with open_adapter(settings.source(target), settings) as adapter:
            sent = adapter.write([c.change() for c in first])
        assert {r.outcome.value for r in sent} == {"applied"}, sent
        writes_before = len(boxes[target].store.write_log.entries)

        done = run_migration(settings, migration.model_copy(update={"blockers": []}))
        assert done.recovered == len(first)
        assert len(boxes[target].store.write_log.entries) - writes_before == len(migration.changes) - len(first) or \
            target == "salesforce", "only the deals not created yet are sent"
        assert done.reconciliation.failed == [] and done.reconciliation.missing == []
        again = make_migration(settings, source, target)
        assert again.changes == [] or again.blockers

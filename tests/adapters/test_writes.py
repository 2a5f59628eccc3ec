"""What the push-back engine relies on from every API adapter, against its vendor sandbox.

The engine hands an adapter one batch of at most ``write_batch_max`` changes at a time; the adapter
re-reads, skips conflicts, sends, and reports each change. These tests hold each adapter to that,
with custom (write-back) fields, tasks for a deal's owner, field discovery and creation, and the
faults that make exactly-once writing hard; the sandbox's own write log is the judge.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from pipesync.adapters.changes import ALREADY_IN_PLACE
from pipesync.errors import ManualStepsRequired
from pipesync.model import Change, ChangeKind, ChangeOutcome, ChangeResult, FieldChange
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate

from .sandbox_env import SYSTEMS, SystemEnv, running

APPLIED, CONFLICT, FAILED = ChangeOutcome.APPLIED, ChangeOutcome.CONFLICT, ChangeOutcome.FAILED
BATCHED = ("salesforce", "hubspot")  # the CRMs with a batch update endpoint
CANARY = "canary-7f3a9c2e5b1d4e8f"


@pytest.fixture(scope="module")
def world():
    return generate(11, 300)


@pytest.fixture(scope="module")
def big_world():
    return generate(11, 700)  # enough live opportunities for a full Salesforce batch of 200


@pytest.fixture(params=SYSTEMS)
def env(request, world, tmp_path):
    with running(request.param, world, tmp_path) as e:
        yield e


def key(env: SystemEnv, sid: str) -> str:
    return f"{env.source.name}:{sid}"


def setting(env: SystemEnv, sid: str, field: str, before, after) -> Change:
    return Change(deal_key=key(env, sid), kind=ChangeKind.SET_FIELDS, rule="write_back", reason="test",
                  fields=[FieldChange(field=field, before=before, after=after)])


def live(env: SystemEnv, n: int) -> list[str]:
    ids = sorted(env.seeded_live_ids())[:n]
    assert len(ids) == n
    return ids


def golden_field(env: SystemEnv, adapter) -> str:
    """The write-back field, made the way each CRM allows: by an admin in Salesforce Setup, by the API elsewhere."""
    if env.system == "salesforce":
        env.store.add_custom_field("Opportunity", "Pipesync_Golden_Id__c", "string", "Pipesync Golden Id", length=255)
        return "Pipesync_Golden_Id__c"
    return adapter.create_field("pipesync_golden_id", "Pipesync golden id", "text").name


def writes_to(env: SystemEnv, record_id: str) -> list:
    return env.store.write_log.of(record_id)


def task_record(env: SystemEnv, task_id: str) -> str:
    return f"activity:{task_id}" if env.system == "pipedrive" else task_id


def outcomes(results: list[ChangeResult]) -> list[ChangeOutcome]:
    return [r.outcome for r in results]


# ---------------------------------------------------------------- custom fields

def test_a_custom_field_round_trips_through_read_current_and_write(env: SystemEnv):
    with env.adapter() as adapter:
        field = f"custom:{golden_field(env, adapter)}"
        ids = live(env, 3)
        before = adapter.read_current(ids, [field, "name"])
        assert set(before) == set(ids)
        assert all(v[field] is None and v["name"] and v["updated_at"] for v in before.values())
        results = adapter.write([setting(env, sid, field, None, f"golden-{sid}") for sid in ids])
        assert outcomes(results) == [APPLIED] * 3, [r.reason for r in results]
        after = adapter.read_current(ids, [field])
        if env.system == "pipedrive":  # a Pipedrive field may be named by its name as well as its key
            assert adapter.read_current(ids, ["custom:Pipesync golden id"])[ids[0]]["custom:Pipesync golden id"] \
                == f"golden-{ids[0]}"
    assert {sid: v[field] for sid, v in after.items()} == {sid: f"golden-{sid}" for sid in ids}
    assert all(len(writes_to(env, sid)) == 1 for sid in ids)


def test_a_stale_custom_field_is_a_conflict_and_nothing_is_written(env: SystemEnv):
    with env.adapter() as adapter:
        field = f"custom:{golden_field(env, adapter)}"
        [sid] = live(env, 1)
        assert outcomes(adapter.write([setting(env, sid, field, None, "first")])) == [APPLIED]
        logged = len(env.store.write_log.entries)
        [result] = adapter.write([setting(env, sid, field, None, "second")])  # planned when it was empty
        assert result.outcome is CONFLICT and field in (result.reason or "")
        assert adapter.read_current([sid], [field])[sid][field] == "first"
    assert len(env.store.write_log.entries) == logged


def test_an_unknown_custom_field_fails_naming_the_source_the_field_and_how_to_create_it(env: SystemEnv):
    with env.adapter() as adapter:
        [sid] = live(env, 1)
        [result] = adapter.write([setting(env, sid, "custom:nope_field", None, "x")])
    system = {"salesforce": "Salesforce", "hubspot": "HubSpot", "pipedrive": "Pipedrive"}[env.system]
    assert result.outcome is FAILED
    assert system in result.reason and "nope_field" in result.reason and "create" in result.reason.lower()
    assert not env.store.write_log.entries


# ---------------------------------------------------------------- batches and their cost

@pytest.mark.parametrize("system", SYSTEMS)
def test_a_full_batch_costs_one_reread_and_the_fewest_write_calls(system, big_world, tmp_path):
    with running(system, big_world, tmp_path) as env, env.adapter() as adapter:
        ids = live(env, adapter.write_batch_max + 1)
        names = {sid: v["name"] for sid, v in adapter.read_current(ids, ["name"]).items()}
        # The first write learns what it needs once per run (describe, the origin field): not per batch.
        assert outcomes(adapter.write([setting(env, ids[0], "name", names[ids[0]], "warm")])) == [APPLIED]
        batch = [setting(env, sid, "name", names[sid], f"renamed {sid}") for sid in ids[1:]]
        calls = adapter.calls
        results = adapter.write(batch)
        used = adapter.calls - calls
    assert outcomes(results) == [APPLIED] * len(batch)
    # one bulk call where the API has one; Pipedrive updates a deal per call
    expected = 1 + (len(batch) if system == "pipedrive" else 1)
    assert used == expected, f"{system}: {used} calls for a batch of {len(batch)}"
    assert all(len(writes_to(env, sid)) == 1 for sid in ids[1:])


@pytest.mark.parametrize("system", BATCHED)
def test_partial_batch_failures_are_reported_per_record_and_a_rerun_completes_them(system, world, tmp_path):
    faults = Faults(partial_batch_failure_rate=0.3, seed=3)
    with running(system, world, tmp_path, faults=faults) as env, env.adapter() as adapter:
        ids = live(env, 20)
        names = {sid: v["name"] for sid, v in adapter.read_current(ids, ["name"]).items()}
        batch = [setting(env, sid, "name", names[sid], f"renamed {sid}") for sid in ids]
        results = adapter.write(batch)
        assert APPLIED in outcomes(results) and FAILED in outcomes(results)
        assert all(r.reason for r in results if r.outcome is FAILED)
        now = adapter.read_current(ids, ["name"])
        assert all((now[sid]["name"] == f"renamed {sid}") == (r.outcome is APPLIED) for sid, r in zip(ids, results))
        faults.update(partial_batch_failure_rate=0.0)
        rerun = adapter.write(batch)  # the engine resumes: each change lands once
    assert outcomes(rerun) == [APPLIED] * len(ids)
    assert {r.reason for r, first in zip(rerun, results) if first.outcome is APPLIED} == {ALREADY_IN_PLACE}
    assert all(len(writes_to(env, sid)) == 1 for sid in ids)


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_write_whose_response_is_lost_lands_exactly_once_and_a_resend_changes_nothing(system, world, tmp_path):
    faults = Faults(drop_after_commit_rate=0.35, seed=4)
    with running(system, world, tmp_path, faults=faults, options={"retry_base_s": 0.01}) as env, \
            env.adapter() as adapter:
        ids = live(env, 12)
        names = {sid: v["name"] for sid, v in adapter.read_current(ids, ["name"]).items()}
        batch = [setting(env, sid, "name", names[sid], f"once {sid}") for sid in ids]
        results = adapter.write(batch)
        assert outcomes(results) == [APPLIED] * len(ids), [r.reason for r in results]
        resent = adapter.write(batch)  # a run killed after sending, before recording, runs again
    assert faults.injected.get("drop_after_commit"), "no response was lost"
    assert outcomes(resent) == [APPLIED] * len(ids) and {r.reason for r in resent} == {ALREADY_IN_PLACE}
    assert {sid: len(writes_to(env, sid)) for sid in ids} == {sid: 1 for sid in ids}


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_token_that_expires_mid_batch_is_renewed_and_the_batch_completes(system, world, tmp_path):
    with running(system, world, tmp_path, faults=Faults(expire_token_after=1), oauth=True) as env, \
            env.adapter() as adapter:
        ids = live(env, 4)
        names = {sid: v["name"] for sid, v in adapter.read_current(ids, ["name"]).items()}
        refreshes = adapter.api.policy.stats.refreshes
        results = adapter.write([setting(env, sid, "name", names[sid], f"fresh {sid}") for sid in ids])
        assert adapter.api.policy.stats.refreshes > refreshes
    assert outcomes(results) == [APPLIED] * len(ids)
    assert all(len(writes_to(env, sid)) == 1 for sid in ids)


@pytest.mark.parametrize("system", ["hubspot", "pipedrive"])
def test_a_merge_already_done_is_applied_not_repeated_and_a_new_one_is_made(system, world, tmp_path):
    with running(system, world, tmp_path) as env, env.adapter() as adapter:
        survivor, loser, other_survivor, other_loser = live(env, 4)
        done_by = env.store.merge_deals(survivor, loser)  # a run that merged, then died before recording it
        merge = Change(deal_key=key(env, loser), kind=ChangeKind.MERGE, rule="duplicates", reason="t",
                       merge_into=key(env, survivor))
        fresh = Change(deal_key=key(env, other_loser), kind=ChangeKind.MERGE, rule="duplicates", reason="t",
                       merge_into=key(env, other_survivor))
        again, made = adapter.write([merge, fresh])
    assert (again.outcome, again.reason, again.new_source_id) == (APPLIED, ALREADY_IN_PLACE, done_by)
    assert made.outcome is APPLIED and made.reason is None and made.new_source_id
    assert not [w for w in env.store.write_log.entries if w.record_id in (survivor, loser, done_by)]


# ---------------------------------------------------------------- tasks

def deal_owner(env: SystemEnv, sid: str) -> str:
    if env.system == "salesforce":
        return env.store.get("Opportunity", sid)["OwnerId"]
    if env.system == "hubspot":
        return env.store.resolve(sid).props["hubspot_owner_id"]
    return str(env.store.deals[int(sid)].owner_id)


def task_facts(env: SystemEnv, task_id: str) -> tuple[str, str, str]:
    """(deal id, assignee, subject) of a task as the CRM holds it."""
    if env.system == "salesforce":
        row = env.store.tables["Task"][task_id]
        return row["WhatId"], row["OwnerId"], row["Subject"]
    if env.system == "hubspot":
        task = env.store.tasks[task_id]
        return task.deal_ids[0], task.props["hubspot_owner_id"], task.props["hs_task_subject"]
    activity = env.store.activities[int(task_id)]
    assert activity.type == "task"
    return str(activity.deal_id), str(activity.owner_id), activity.subject


def test_a_task_for_the_deals_owner_is_created_once_and_deleted_by_its_undo(world, tmp_path):
    for system in SYSTEMS:
        with running(system, world, tmp_path / system, faults=Faults(drop_after_commit_rate=0.3, seed=2),
                     options={"retry_base_s": 0.01}) as env, env.adapter() as adapter:
            ids = live(env, 2)
            before = env.store.snapshot()
            create = [Change(deal_key=key(env, sid), kind=ChangeKind.CREATE_TASK, rule="suspicious_amount",
                             reason="amount 10x the pipeline's median", fields=[
                                 FieldChange(field="subject", after=f"Check the amount of {sid}"),
                                 FieldChange(field="body", after="pipesync found it suspicious"),
                                 FieldChange(field="due_date", after="2027-01-15")]) for sid in ids]
            made = adapter.write(create)
            assert outcomes(made) == [APPLIED, APPLIED], [r.reason for r in made]
            for sid, result in zip(ids, made):
                assert task_facts(env, result.new_source_id) == (sid, deal_owner(env, sid), f"Check the amount of {sid}")
            again = adapter.write(create)  # re-sent: found by the change key it carries, not made twice
            assert [r.new_source_id for r in again] == [r.new_source_id for r in made]
            assert {r.reason for r in again} == {ALREADY_IN_PLACE}
            assert all(len(writes_to(env, task_record(env, r.new_source_id))) == 1 for r in made)

            undo = [Change(deal_key=key(env, sid), kind=ChangeKind.DELETE_TASK, rule="undo", reason="undo",
                           fields=[FieldChange(field="task_id", before=r.new_source_id)]) for sid, r in zip(ids, made)]
            assert outcomes(adapter.write(undo)) == [APPLIED, APPLIED]
            assert outcomes(adapter.write(undo)) == [APPLIED, APPLIED]  # already gone: nothing to do
            assert env.store.snapshot() == before, system
            assert all(len(writes_to(env, task_record(env, r.new_source_id))) == 2 for r in made)  # create, delete


# ---------------------------------------------------------------- fields

@pytest.mark.parametrize("system", ["hubspot", "pipedrive"])
def test_fields_are_created_through_the_api_listed_and_written(system, world, tmp_path):
    with running(system, world, tmp_path) as env, env.adapter() as adapter:
        made = adapter.create_field("pipesync_days_in_stage", "Days in stage", "number")
        assert made.kind == "number" and made.writable and made.custom and made.label == "Days in stage"
        if system == "pipedrive":
            assert len(made.name) == 40, "Pipedrive answers with the field's hash key"
        assert made in adapter.deal_fields()
        assert adapter.create_field("pipesync_days_in_stage", "Days in stage", "number") == made  # not twice
        flag = adapter.create_field("pipesync_stale", "Stale", "boolean")
        [sid] = live(env, 1)
        change = Change(deal_key=key(env, sid), kind=ChangeKind.SET_FIELDS, rule="write_back", reason="t", fields=[
            FieldChange(field=f"custom:{made.name}", before=None, after=Decimal("42")),
            FieldChange(field=f"custom:{flag.name}", before=None, after=True)])
        assert outcomes(result := adapter.write([change])) == [APPLIED], result[0].reason
        now = adapter.read_current([sid], [f"custom:{made.name}", f"custom:{flag.name}"])[sid]
    assert Decimal(str(now[f"custom:{made.name}"])) == 42
    assert str(now[f"custom:{flag.name}"]).lower() in ("true", "yes")


def test_salesforce_fields_are_made_by_an_admin_following_the_steps_pipesync_gives(world, tmp_path):
    with running("salesforce", world, tmp_path) as env, env.adapter() as adapter:
        with pytest.raises(ManualStepsRequired) as steps:
            adapter.create_field("Pipesync_Days_In_Stage__c", "Days in stage", "number")
        env.store.add_custom_field("Opportunity", "Pipesync_Days_In_Stage__c", "double", "Days in stage")
        fields = {f.name: f for f in adapter.deal_fields()}
    message = str(steps.value)
    assert steps.value.exit_code == 2
    for step in ("Object Manager → Opportunity → Fields & Relationships → New", "Number", "Pipesync_Days_In_Stage__c",
                 "Days in stage"):
        assert step in message
    made = fields["Pipesync_Days_In_Stage__c"]
    assert made.kind == "number" and made.writable and made.custom
    assert not fields["IsClosed"].writable and not fields["IsClosed"].custom


# ---------------------------------------------------------------- secrets

def _plant_canary(env: SystemEnv) -> None:
    """The canary becomes the source's real secret, in the sandbox and in the secret file pipesync reads."""
    secret = {"salesforce": "client_secret", "hubspot": "access_token", "pipedrive": "api_token"}[env.system]
    if env.system == "salesforce":
        env.store.auth.credentials = replace(env.store.auth.credentials, client_secret=CANARY)
    elif env.system == "hubspot":
        env.store.auth.access_token = CANARY
    else:
        env.store.credentials.api_token = CANARY
    Path(env.source.secrets[secret].file).write_text(CANARY)


def test_no_secret_reaches_a_result_or_a_log_line(world, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    reasons: list[str] = []
    for system in SYSTEMS:
        faults = Faults(error_rate=0.2, drop_rate=0.1, drop_after_commit_rate=0.1, burst_429_every=5, burst_429_len=1,
                        burst_retry_after_s=0.01, partial_batch_failure_rate=0.2, seed=9)
        with running(system, world, tmp_path / system, faults=faults, options={"retry_base_s": 0.01}) as env:
            _plant_canary(env)
            with env.adapter() as adapter:
                ids = live(env, 6)
                names = {sid: v["name"] for sid, v in adapter.read_current(ids, ["name"]).items()}
                results = adapter.write(
                    [setting(env, sid, "name", names[sid], f"n {sid}") for sid in ids[:3]]
                    + [setting(env, ids[3], "name", "stale", "x"), setting(env, ids[4], "custom:nope", None, "x"),
                       setting(env, ids[5], "amount", None, "not a number")])
                reasons += [r.model_dump_json() for r in results]
    assert any(FAILED.value in r for r in reasons) and any(CONFLICT.value in r for r in reasons)
    assert not [r for r in reasons if CANARY in r]
    assert not [rec.getMessage() for rec in caplog.records if CANARY in rec.getMessage()]

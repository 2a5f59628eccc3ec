"""The push-back loop — plan, apply, journal, undo — specified against an in-memory CRM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, insert, update

from pipesync.config import Settings
from pipesync.errors import GuardrailError, UsageError
from pipesync.model import ChangeKind
from pipesync.pushback.apply import apply_plan, batches
from pipesync.pushback.journal import describe_run
from pipesync.pushback.plan import load_plan, save_plan
from pipesync.pushback.planner import make_plan
from pipesync.pushback.rules import PushbackRules
from pipesync.pushback.undo import undo_run
from pipesync.warehouse import schema
from tests.metrics.builders import NOW, DealRow, write_warehouse
from tests.pushback.fake_crm import FakeCRM, opener

MAPPING = """\
source: crm
pipelines:
  - id: default
    stages:
      - {id: s1, stage: prospecting}
      - {id: s2, stage: qualification}
      - {id: s3, stage: proposal}
      - {id: park, stage: on_hold}
      - {id: won, stage: closed_won}
      - {id: lost, stage: closed_lost}
"""


def deals() -> list[DealRow]:
    return [
        # one deal held twice in the CRM: A1 (older) survives, A2 is its duplicate
        DealRow("crm:A1", "proposal", "open", 10_000, "2026-09-01", last_activity="2026-11-20", history=[("proposal", "2026-11-01")]),
        DealRow("crm:A2", "proposal", "open", 10_000, "2026-09-03", last_activity="2026-11-19", history=[("proposal", "2026-11-01")]),
        # untouched since July: stale
        DealRow("crm:B1", "qualification", "open", 5_000, "2026-06-01", updated="2026-07-01", stage_entered="2026-06-01",
                history=[("qualification", "2026-06-01")]),
        # recent and alone
        DealRow("crm:C1", "prospecting", "open", 2_000, "2026-11-01", last_activity="2026-11-21", history=[("prospecting", "2026-11-01")]),
    ]


GOLDEN = [
    {"golden_id": "gd_a", "name": "A", "stage": "proposal", "status": "open", "amount": 10_000, "amount_reporting": 10_000,
     "currency": "USD", "created_at": NOW, "last_activity_at": NOW, "members": ["crm:A1", "crm:A2"], "pipeline": "default",
     "contact_emails": [], "external_refs": [], "is_deleted": False},
    {"golden_id": "gd_b", "name": "B", "stage": "qualification", "status": "open", "amount": 5_000, "amount_reporting": 5_000,
     "currency": "USD", "pipeline": "default", "members": ["crm:B1"], "contact_emails": [], "external_refs": [], "is_deleted": False},
    {"golden_id": "gd_c", "name": "C", "stage": "prospecting", "status": "open", "amount": 2_000, "amount_reporting": 2_000,
     "currency": "USD", "pipeline": "default", "members": ["crm:C1"], "contact_emails": [], "external_refs": [], "is_deleted": False},
]


def crm_records() -> dict[str, dict]:
    return {key: {"source_stage": stage, "lost_reason": None, "custom:Golden": None, "custom:DupOf": None,
                  "updated_at": NOW.replace(month=8)} for key, stage in (("A1", "s3"), ("A2", "s3"), ("B1", "s2"), ("C1", "s1"))}


@pytest.fixture
def project(tmp_path: Path, warehouse_url: str):
    write_warehouse(warehouse_url, deals(), [dict(g) for g in GOLDEN])
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:  # B's only touch is its stage entry, long ago
        conn.execute(update(schema.golden_deals).where(schema.golden_deals.c.golden_id == "gd_b")
                     .values(created_at=NOW.replace(month=6), updated_at=NOW.replace(month=7)))
    engine.dispose()
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "crm.yaml").write_text(MAPPING)
    settings = Settings(warehouse=warehouse_url, base_dir=tmp_path, sources=[{"name": "crm", "type": "hubspot", "options": {}}])
    crm = FakeCRM(crm_records())
    return settings, crm


def rules(top: dict | None = None, **enabled) -> PushbackRules:
    data = {"write_back": {"enabled": False, "fields": {"crm": {"golden_id": "Golden", "duplicate_of": "DupOf"}}},
            **(top or {})}
    for name, options in enabled.items():
        data.setdefault(name, {}).update({"enabled": True, **options})
    return PushbackRules.model_validate(data)


def plan_for(settings, crm, **enabled):
    return make_plan(settings, rules(**enabled), now=NOW, opener=opener({"crm": crm}))


def test_no_rule_enabled_plans_nothing(project):
    settings, crm = project
    assert plan_for(settings, crm).changes == []
    assert crm.write_log == []


def test_write_back_plans_each_record_its_golden_figures_with_the_values_it_holds_now(project):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})
    golden = {c.source_id: {f.field: (f.before, f.after) for f in c.fields} for c in made.changes}
    assert golden["A1"] == {"custom:Golden": (None, "gd_a")}
    assert golden["A2"] == {"custom:Golden": (None, "gd_a"), "custom:DupOf": (None, "crm:A1")}
    assert {c.rule for c in made.changes} == {"write_back"}
    assert crm.write_log == [], "planning never writes"


def test_stale_deals_close_into_the_stage_the_mapping_lands_lost_in(project):
    settings, crm = project
    made = plan_for(settings, crm, close_stale={"after_days": 90, "lost_reason": "Idle {days}d"})
    [close] = made.changes
    assert (close.source_id, close.kind) == ("B1", ChangeKind.CLOSE_LOST)
    assert {f.field: (f.before, f.after) for f in close.fields} == {
        "source_stage": ("s2", "lost"), "lost_reason": (None, "Idle 123d")}


def test_a_pipeline_without_one_lost_stage_is_refused_with_the_fix(project, tmp_path):
    settings, crm = project
    (tmp_path / "mappings" / "crm.yaml").write_text(MAPPING.replace("      - {id: lost, stage: closed_lost}\n", ""))
    made = plan_for(settings, crm, close_stale={"after_days": 90})
    assert made.changes == []
    assert "writes: {closed_lost: STAGE_ID}" in made.refused[0].reason


def test_duplicates_are_marked_on_the_one_that_does_not_survive(project):
    settings, crm = project
    made = plan_for(settings, crm, duplicates={"action": "mark"})
    [mark] = made.changes
    assert (mark.source_id, mark.kind, mark.fields[0].after) == ("A2", ChangeKind.MARK_DUPLICATE, "crm:A1")


def test_merge_is_refused_where_the_crm_cannot_merge(project):
    settings, crm = project
    made = plan_for(settings, crm, duplicates={"action": "merge"})
    assert made.changes == [] and "cannot merge" in made.refused[0].reason
    crm.merges = True
    [merge] = plan_for(settings, crm, duplicates={"action": "merge"}).changes
    assert (merge.kind, merge.merge_into) == (ChangeKind.MERGE, "crm:A1")


def test_a_cap_exceeded_refuses_the_whole_plan_naming_the_rule(project):
    settings, crm = project
    with pytest.raises(GuardrailError, match="rule write_back would make 4 changes, over its cap of 3"):
        plan_for(settings, crm, write_back={"cap": 3})
    with pytest.raises(GuardrailError, match="over max_changes 2"):
        make_plan(settings, rules({"max_changes": 2}, write_back={}), now=NOW, opener=opener({"crm": crm}))


def test_a_denied_pipeline_is_never_touched(project):
    settings, crm = project
    denied = rules({"scope": {"pipelines": {"deny": ["default"]}}}, write_back={})
    assert make_plan(settings, denied, now=NOW, opener=opener({"crm": crm})).changes == []


def test_apply_sends_batches_journaled_before_they_leave_and_a_second_apply_sends_nothing(project, tmp_path):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})
    save_plan(made, tmp_path / "plan.json")
    seen_in_journal = []

    def check_journal(changes):
        run, entries = describe_run(settings, "apply:" + made.plan_id)
        seen_in_journal.append({e.deal_key for e in entries} >= {c.deal_key for c in changes})

    crm.before_write = check_journal
    summary = apply_plan(settings, load_plan(tmp_path / "plan.json"), opener=opener({"crm": crm}))
    assert summary.ok and summary.counts == {"applied": 4}
    assert seen_in_journal == [True, True], "two batches of two, each journaled before it was sent"
    assert crm.records["A2"]["custom:DupOf"] == "crm:A1"
    writes = len(crm.write_log)
    again = apply_plan(settings, load_plan(tmp_path / "plan.json"), opener=opener({"crm": crm}))
    assert again.counts == {"applied": 4} and len(crm.write_log) == writes
    assert plan_for(settings, crm, write_back={}).changes == [], "a new plan finds everything in place"


def test_two_rules_on_one_record_make_one_write_under_the_stronger_rule(project):
    settings, crm = project
    made = plan_for(settings, crm, write_back={}, close_stale={"after_days": 90})
    [b1] = [c for c in made.changes if c.source_id == "B1"]
    assert (b1.kind, b1.rule) == (ChangeKind.CLOSE_LOST, "close_stale")
    assert {f.field for f in b1.fields} == {"source_stage", "lost_reason", "custom:Golden"}


def test_a_record_edited_after_planning_is_a_conflict_and_keeps_the_edit(project):
    settings, crm = project
    made = plan_for(settings, crm, close_stale={"after_days": 90})
    crm.edit("B1", source_stage="s3")
    summary = apply_plan(settings, made, opener=opener({"crm": crm}))
    assert not summary.ok and summary.counts == {"conflict": 1}
    assert "changed since the plan" in summary.problems[0]["reason"]
    assert crm.records["B1"]["source_stage"] == "s3"


def test_a_record_modified_in_any_field_after_planning_is_not_touched(project):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})
    crm.edit("C1", amount=2_500)  # a field the plan does not write
    summary = apply_plan(settings, made, opener=opener({"crm": crm}))
    assert summary.counts == {"applied": 3, "conflict": 1}
    assert "modified in the CRM" in summary.problems[0]["reason"] and crm.records["C1"]["custom:Golden"] is None


def test_a_run_killed_after_sending_resumes_and_applies_each_change_once(project):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})

    def killed(changes):
        crm.after_write = None
        raise KeyboardInterrupt  # the process dies after the CRM took the batch, before the journal heard back

    crm.after_write = killed
    with pytest.raises(KeyboardInterrupt):
        apply_plan(settings, made, opener=opener({"crm": crm}))
    summary = apply_plan(settings, made, opener=opener({"crm": crm}))
    assert summary.counts == {"applied": 4}
    written = [(sid, tuple(sorted(fields))) for _, sid, fields in crm.write_log]
    assert len(written) == len(set(written)) == 4, "every change reached the CRM exactly once"


def test_undo_restores_the_exact_prior_state_and_is_itself_undoable(project):
    settings, crm = project
    before = json.loads(json.dumps(crm.records, default=str))
    made = plan_for(settings, crm, write_back={}, close_stale={"after_days": 90})
    apply_plan(settings, made, opener=opener({"crm": crm}))
    undone = undo_run(settings, "apply:" + made.plan_id, opener=opener({"crm": crm}))
    assert undone.ok and undone.counts == {"applied": 4}
    after = {k: {f: v for f, v in r.items() if f != "updated_at"} for k, r in crm.records.items()}
    assert after == {k: {f: v for f, v in r.items() if f != "updated_at"} for k, r in before.items()}
    redone = undo_run(settings, "undo:apply:" + made.plan_id, opener=opener({"crm": crm}))
    assert redone.ok and crm.records["B1"]["source_stage"] == "lost"


def test_undo_leaves_a_field_a_person_changed_since_unless_forced(project):
    settings, crm = project
    made = plan_for(settings, crm, close_stale={"after_days": 90})
    apply_plan(settings, made, opener=opener({"crm": crm}))
    crm.edit("B1", lost_reason="Went with a competitor")
    undone = undo_run(settings, "apply:" + made.plan_id, opener=opener({"crm": crm}))
    assert undone.counts == {"conflict": 1} and crm.records["B1"]["lost_reason"] == "Went with a competitor"
    forced = undo_run(settings, "apply:" + made.plan_id, force=True, opener=opener({"crm": crm}))
    assert forced.ok and crm.records["B1"] | {"updated_at": None} == crm_records()["B1"] | {"updated_at": None}


def test_a_plan_made_before_a_reconsolidation_is_retargeted_through_the_alias(project):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})
    engine = create_engine(settings.warehouse)
    with engine.begin() as conn:  # consolidation renamed gd_a, and split C1 off into a cluster of its own
        conn.execute(update(schema.deal_links).where(schema.deal_links.c.golden_id == "gd_a").values(golden_id="gd_a2"))
        conn.execute(update(schema.deal_links).where(schema.deal_links.c.deal_key == "crm:C1").values(golden_id="gd_new"))
        conn.execute(insert(schema.golden_aliases).values(alias_id="gd_a", golden_id="gd_a2", recorded_at=NOW))
    engine.dispose()
    summary = apply_plan(settings, made, opener=opener({"crm": crm}))
    assert crm.records["A1"]["custom:Golden"] == "gd_a2"
    assert summary.counts == {"applied": 3, "conflict": 1}
    assert "its golden deal changed since the plan" in summary.problems[0]["reason"]


def test_a_plan_from_another_warehouse_or_version_is_refused(project, tmp_path):
    settings, crm = project
    made = plan_for(settings, crm, write_back={})
    with pytest.raises(UsageError, match="another warehouse"):
        apply_plan(settings.model_copy(update={"warehouse": "sqlite:///elsewhere.db"}), made, opener=opener({"crm": crm}))
    path = tmp_path / "old.json"
    path.write_text(json.dumps({**made.model_dump(mode="json"), "schema_version": 99}))
    with pytest.raises(UsageError, match="schema version 99"):
        load_plan(path)


def test_batches_never_hold_one_record_twice():
    from pipesync.pushback.plan import PlannedChange

    changes = [PlannedChange(seq=i, source="crm", source_id=k, deal_key=f"crm:{k}", kind=ChangeKind.SET_FIELDS,
                             rule="r", reason="") for i, k in enumerate("ABAC")]
    assert [[c.source_id for c in b] for b in batches(changes, 3)] == [["A", "B"], ["A", "C"]]


def test_a_missing_write_back_field_stops_the_plan_with_how_to_create_it(project):
    from pipesync.errors import ConfigError
    from pipesync.pushback.fields import create_fields

    settings, crm = project
    crm.fields.discard("DupOf")
    with pytest.raises(ConfigError, match=r"(?s)crm: there is no deal field 'DupOf'.*pipesync fields create crm"):
        plan_for(settings, crm, write_back={})
    created = create_fields(settings, "crm", rules(), opener=opener({"crm": crm}))
    assert [(c.field, c.kind) for c in created] == [("DupOf", "url")]
    assert plan_for(settings, crm, write_back={}).changes


def test_a_suspicious_amount_becomes_a_task_once_never_an_amount_change(project):
    settings, crm = project
    engine = create_engine(settings.warehouse)
    with engine.begin() as conn:  # one owner's deals in one stage, one of them 100× the rest
        rows = [DealRow(f"crm:S{i}", "proposal", "open", 1_000 + i, "2026-11-01", last_activity="2026-11-20").row()
                for i in range(12)] + [DealRow("crm:BIG", "proposal", "open", 100_000, "2026-11-01", last_activity="2026-11-20").row()]
        conn.execute(insert(schema.deals), rows)
        for r in rows:
            conn.execute(insert(schema.golden_deals).values(
                golden_id="g" + r["source_id"], **{k: v for k, v in r.items() if k in schema.golden_deals.c and k != "key"},
                members=[r["key"]], provenance={}, conflicts=[]))
            conn.execute(insert(schema.deal_links).values(deal_key=r["key"], golden_id="g" + r["source_id"]))
    engine.dispose()
    crm.records |= {r["source_id"]: {"source_stage": "s3"} for r in rows}
    made = plan_for(settings, crm, suspicious_amounts={})
    [task] = made.changes
    assert (task.source_id, task.kind) == ("BIG", ChangeKind.CREATE_TASK)
    assert "Check the amount" in task.fields[0].after
    apply_plan(settings, made, opener=opener({"crm": crm}))
    assert len(crm.tasks) == 1 and plan_for(settings, crm, suspicious_amounts={}).changes == []

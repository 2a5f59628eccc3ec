"""Drift between the live source and its mapping file: new, renamed, removed and unmapped stages."""

from __future__ import annotations

from pipesync.mapping import Mapping, check_mapping, unmapped_live_stages

from tests.mapper.helpers import discovery, stage


def mapping(*stages: dict, pipeline: str = "7", label: str = "Sales") -> Mapping:
    return Mapping.model_validate({"pipelines": [{"id": pipeline, "label": label, "stages": list(stages)}]})


FILE = mapping(
    {"id": "1", "label": "Lead In", "stage": "prospecting"},
    {"id": "2", "label": "Proposal Made", "stage": "proposal"},
    {"id": "3", "label": "Trial", "stage": "discovery"},
    {"id": "4", "label": "Frobnicate", "stage": None},
)


def live(*stages):
    d = discovery(("7", list(stages)), source="pd")
    d.pipelines[0].label = "Sales"
    return d


def test_a_source_matching_its_file_has_no_drift_but_its_undecided_stages():
    report = check_mapping(live(stage("Lead In", id="1"), stage("Proposal Made", id="2"), stage("Trial", id="3"),
                                stage("Frobnicate", id="4")), FILE)
    assert [(i.kind, i.label) for i in report.items] == [("unmapped", "Frobnicate")]
    assert "is not mapped yet (stage: null)" in report.items[0].message
    assert "its deals are quarantined" in report.items[0].message


def test_renamed_added_and_removed_stages_each_get_a_clear_message():
    report = check_mapping(live(
        stage("Lead In", id="1"),
        stage("Proposal Sent", id="2"),  # renamed in the CRM, same id
        stage("Contract Review", id="9"),  # added
        stage("Frobnicate", id="4"),
    ), mapping(*[s.model_dump() for s in FILE.pipelines[0].stages[:3]],
               {"id": "4", "label": "Frobnicate", "stage": "discovery"}))
    by_kind = {i.kind: i for i in report.items}
    assert set(by_kind) == {"renamed", "new", "removed"}
    assert by_kind["renamed"].message == (
        "stage 2 in pipeline 'Sales' (id 7) was renamed 'Proposal Made' → 'Proposal Sent' (mapped to proposal): "
        "check the mapping still fits, then update its label in the mapping file"
    )
    assert by_kind["new"].message == (
        "new stage 'Contract Review' in pipeline 'Sales' (id 7) is not in the mapping file: "
        "run `pipesync map pd` to map it; its deals are quarantined until then"
    )
    assert by_kind["removed"].message == (
        "stage 'Trial' in pipeline 'Sales' (id 7) is in the mapping file but no longer in the source: "
        "delete it from the file once no deal is left in it"
    )
    assert not report.ok


def test_a_file_source_renaming_a_value_is_one_rename_not_a_new_and_a_removed_stage():
    file = Mapping.model_validate({"pipelines": [{"id": "*", "stages": [
        {"label": "Demo", "stage": "discovery"}, {"label": "Won", "stage": "closed_won"}]}]})
    report = check_mapping(discovery(("*", [stage("Demo scheduled"), stage("Won")]), source="sheet"), file)
    (item,) = report.items
    assert (item.kind, item.previous_label, item.label, item.quarantines) == ("renamed", "Demo", "Demo scheduled", True)
    assert "seems renamed to 'Demo scheduled'" in item.message


def test_a_pipeline_gone_from_the_source_is_reported():
    report = check_mapping(discovery(("8", [stage("Lead In", id="1")]), source="pd"), FILE)
    removed = report.of("removed")
    assert len(removed) == 4
    assert "the source has no pipeline 'Sales' (id 7) any more" in removed[0].message


def test_unmapped_live_stages_are_those_whose_deals_cannot_be_placed():
    items = unmapped_live_stages(live(
        stage("Lead In", id="1"), stage("Proposal Sent", id="2"), stage("Brand new", id="10"), stage("Frobnicate", id="4"),
    ), FILE)
    # a CRM rename keeps its id, so its deals still map: only the new and the null stage block a sync
    assert sorted((i.kind, i.label) for i in items) == [("new", "Brand new"), ("unmapped", "Frobnicate")]

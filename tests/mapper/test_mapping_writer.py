"""The mapping file: valid for the normaliser, commented with the evidence, and kind to the user's edits."""

from __future__ import annotations

from pipesync.mapper.mapping_writer import write_mapping
from pipesync.mapper.propose import propose_mapping
from pipesync.mapping import load_mapping
from pipesync.pipeline import load_pipeline

from tests.mapper.helpers import discovery, ordered, stage

PIPELINE = load_pipeline()


def crm(*extra):
    return discovery(("12", [
        stage("Lead In", 0, 0.1, id="1", closed=False),
        stage("Angebot versendet", 1, 0.5, id="2", closed=False),
        stage("Frobnicate", 2, 0.6, id="3", closed=False),
        stage("Gewonnen", 3, 1.0, id="4", closed=True, won=True),
        *extra,
    ]), source="pd")


def write(path, d):
    existing = load_mapping(path, PIPELINE) if path.exists() else None
    return write_mapping(path, propose_mapping(d, PIPELINE, existing))


def test_the_file_maps_what_was_accepted_and_leaves_the_rest_null(tmp_path):
    path = write(tmp_path / "mappings" / "pd.yaml", crm())
    m = load_mapping(path, PIPELINE)
    assert m.source == "pd"
    assert m.find_stage("12", "1").stage == "prospecting"
    assert m.find_stage("12", "Angebot versendet").stage == "proposal"
    assert m.find_stage("12", "4").stage == "closed_won"
    assert m.find_stage("12", "3").stage is None


def test_each_stage_carries_its_label_and_the_reason(tmp_path):
    text = write(tmp_path / "pd.yaml", crm()).read_text(encoding="utf-8")
    assert "label: Angebot versendet\n        stage: proposal  # 0." in text
    assert "label ≈ 'Proposal' (de: Angebot versendet)" in text
    assert "stage: closed_won  # 0.99: closed+won flag" in text
    assert "stage: null  # undecided; best guesses: " in text
    assert "probability 0.6 between proposal and negotiation" in text
    assert text.startswith('# Stage mapping for source "pd"')


def test_rerunning_keeps_the_users_edits_and_adds_new_stages(tmp_path):
    path = write(tmp_path / "pd.yaml", crm())
    text = path.read_text(encoding="utf-8")
    text = text.replace("stage: prospecting  # ", "stage: qualification  # we qualify at intake; was: ")
    text = text.replace(
        "stage: null  # undecided", "stage: discovery  # our own stage name\n        # undecided"
    )
    text += "parse:\n  date_order: DMY  # EU exports\nfields:\n  amount: Deal value\n"
    path.write_text(text, encoding="utf-8")
    edited = path.read_text(encoding="utf-8")

    write(path, crm(stage("Verhandlung", 4, 0.8, id="5", closed=False)))
    after = path.read_text(encoding="utf-8")

    # every line the user had is untouched, byte for byte; the new stage comes after them
    assert after.startswith(edited.split("\nparse:")[0])
    assert "stage: qualification  # we qualify at intake; was: " in after
    assert "stage: discovery  # our own stage name" in after
    assert "date_order: DMY  # EU exports" in after
    m = load_mapping(path, PIPELINE)
    assert m.fields == {"amount": "Deal value"}
    assert m.find_stage("12", "1").stage == "qualification"
    assert m.find_stage("12", "5").stage == "negotiation"


def test_stages_gone_from_the_source_stay_in_the_file(tmp_path):
    path = write(tmp_path / "pd.yaml", crm())
    write(path, discovery(("12", [stage("Lead In", 0, 0.1, id="1", closed=False)]), source="pd"))
    assert load_mapping(path, PIPELINE).find_stage("12", "4").stage == "closed_won"


def test_an_undecided_stage_is_filled_in_once_it_can_be(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("pipelines:\n  - id: '*'\n    stages:\n      - label: Demo\n        stage: null\n", encoding="utf-8")
    write(path, discovery(("*", [stage("Demo")]), source="s"))
    assert load_mapping(path, PIPELINE).find_stage(None, "Demo").stage == "discovery"


def test_a_stage_decided_under_every_pipeline_is_not_repeated_per_pipeline(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("pipelines:\n  - id: '*'\n    stages:\n      - label: Demo\n        stage: discovery\n", encoding="utf-8")
    write(path, discovery(("Sales", ordered(("Demo", 0.3))), source="s"))
    assert path.read_text(encoding="utf-8").count("Demo") == 1

"""`pipesync map` end to end on a CSV source: propose and write, --yes, --json, --check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipesync.cli.map_cmd  # registers `map` on the app
from pipesync.cli import app
from pipesync.mapping import load_mapping
from pipesync.pipeline import load_pipeline

CONFIG = """\
sources:
  - name: sheet
    type: csv
    options: {path: deals.csv}
"""


def deals(*rows: tuple[str, str]) -> str:
    return "id,name,pipeline,stage,amount\n" + "".join(
        f"{n},Deal {n},{pipeline},{stage},100\n" for n, (pipeline, stage) in enumerate(rows, start=1)
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipesync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "deals.csv").write_text(deals(
        ("Sales", "Lead In"), ("Sales", "Demo"), ("Sales", "Proposal Made"), ("Sales", "Closed Won"),
        ("Ventas", "Propuesta enviada"), ("Ventas", "Negociación"),
    ), encoding="utf-8")
    return tmp_path


def run(project: Path, *args: str):
    return CliRunner().invoke(app, ["map", "sheet", "--config", str(project / "pipesync.yaml"), *args])


def test_yes_writes_the_mapping_when_every_stage_is_confident(project):
    result = run(project, "--yes")
    assert result.exit_code == 0, result.output
    m = load_mapping(project / "mappings" / "sheet.yaml", load_pipeline())
    assert m.find_stage("Sales", "Demo").stage == "discovery"
    assert m.find_stage("Ventas", "Negociación").stage == "negotiation"
    assert "6 of 6 stage(s) mapped" in result.stdout


def test_yes_fails_on_low_confidence_stages_listing_them(project):
    (project / "deals.csv").write_text(deals(("Sales", "Proposal"), ("Sales", "Frobnicate"),
                                             ("Sales", "Proposal & Negotiation")), encoding="utf-8")
    result = run(project, "--yes")
    assert result.exit_code == 1
    assert "2 stage(s) below confidence 0.8" in result.stderr
    assert "stage 'Frobnicate': no guess" in result.stderr
    assert "stage 'Proposal & Negotiation': best guess" in result.stderr
    m = load_mapping(project / "mappings" / "sheet.yaml", load_pipeline())
    assert m.find_stage("Sales", "Proposal").stage == "proposal"
    assert m.find_stage("Sales", "Frobnicate").stage is None


def test_a_lower_threshold_accepts_more(project):
    (project / "deals.csv").write_text(deals(("Sales", "Proposal & Negotiation")), encoding="utf-8")
    assert run(project, "--yes", "--threshold", "0.5").exit_code == 0


def test_json_prints_the_proposal_and_writes_nothing(project):
    result = run(project, "--json")
    assert result.exit_code == 0
    proposal = json.loads(result.stdout)
    stages = {s["label"]: s for p in proposal["pipelines"] for s in p["stages"]}
    assert stages["Propuesta enviada"]["stage"] == "proposal"
    assert stages["Propuesta enviada"]["reasons"][0] == "label ≈ 'Proposal' (es: Propuesta enviada)"
    assert not (project / "mappings" / "sheet.yaml").exists()


def test_without_a_terminal_it_asks_for_yes_or_json(project):
    result = run(project)
    assert result.exit_code == 2
    assert "pass --yes" in result.stderr


def test_check_without_a_mapping_file_says_how_to_write_one(project):
    result = run(project, "--check")
    assert result.exit_code == 2
    assert "run `pipesync map sheet` first" in result.stderr


def test_check_passes_when_the_file_matches_the_source(project):
    run(project, "--yes")
    result = run(project, "--check")
    assert result.exit_code == 0
    assert "no drift" in result.stdout


def test_check_catches_a_renamed_an_added_and_a_removed_stage(project):
    assert run(project, "--yes").exit_code == 0
    (project / "deals.csv").write_text(deals(
        ("Sales", "Lead In"), ("Sales", "Demo scheduled"),  # renamed from "Demo"
        ("Sales", "Proposal Made"), ("Sales", "Closed Won"), ("Sales", "Contract Review"),  # added
        ("Ventas", "Propuesta enviada"),  # "Negociación" removed
    ), encoding="utf-8")

    result = run(project, "--check", "--json")
    assert result.exit_code == 3  # drift found: neither a failure (1) nor a broken file (2)
    items = {i["kind"]: i for i in json.loads(result.stdout)["items"]}
    assert set(items) == {"renamed", "new", "removed"}
    assert items["renamed"]["message"].startswith("stage 'Demo' in pipeline 'Sales' seems renamed to 'Demo scheduled'")
    assert items["new"]["message"].startswith("new stage 'Contract Review' in pipeline 'Sales' is not in the mapping file")
    assert items["removed"]["message"].startswith(
        "stage 'Negociación' in pipeline 'Ventas' is in the mapping file but no longer in the source"
    )

    shown = run(project, "--check")
    assert shown.exit_code == 3
    assert "3 drift problem(s)" in shown.stdout


def test_in_a_terminal_the_user_reviews_before_anything_is_written(project, monkeypatch):
    monkeypatch.setattr(pipesync.cli.map_cmd, "stdin_is_terminal", lambda: True)
    # change stage 2 ("Demo" in pipeline Sales) to qualification, then accept all
    result = CliRunner().invoke(app, ["map", "sheet", "--config", str(project / "pipesync.yaml")],
                                input="c\n2\nqualification\na\n")
    assert result.exit_code == 0, result.output
    m = load_mapping(project / "mappings" / "sheet.yaml", load_pipeline())
    assert m.find_stage("Sales", "Demo").stage == "qualification"
    assert "chosen in review" in (project / "mappings" / "sheet.yaml").read_text(encoding="utf-8")


def test_quitting_the_review_writes_nothing(project, monkeypatch):
    monkeypatch.setattr(pipesync.cli.map_cmd, "stdin_is_terminal", lambda: True)
    result = CliRunner().invoke(app, ["map", "sheet", "--config", str(project / "pipesync.yaml")], input="q\n")
    assert result.exit_code == 0
    assert "Nothing written" in result.stdout
    assert not (project / "mappings").exists()


def dated(*close_dates: str) -> str:
    return "id,name,stage,close date\n" + "".join(f"{n},Deal {n},Qualified,{d}\n" for n, d in enumerate(close_dates, 1))


def test_yes_writes_the_date_order_the_file_proves_beside_the_proof(project):
    (project / "deals.csv").write_text(dated("03/04/2027", "15/04/2027", ""), encoding="utf-8")
    result = run(project, "--yes")
    assert result.exit_code == 0, result.output
    written = (project / "mappings" / "sheet.yaml").read_text(encoding="utf-8")
    assert "date_order: DMY  # '15/04/2027' in column 'close date', deals.csv row 3" in written
    assert load_mapping(project / "mappings" / "sheet.yaml", load_pipeline()).parse.date_order == "DMY"
    assert "dates are day first (DMY)" in result.stdout


def test_a_configured_date_order_is_kept_and_values_against_it_are_a_warning(project):
    (project / "deals.csv").write_text(dated("03/04/2027", "15/04/2027"), encoding="utf-8")
    (project / "mappings").mkdir()
    (project / "mappings" / "sheet.yaml").write_text("source: sheet\nparse: {date_order: MDY}\n", encoding="utf-8")
    result = run(project, "--yes")
    assert result.exit_code == 0, result.output
    assert load_mapping(project / "mappings" / "sheet.yaml", load_pipeline()).parse.date_order == "MDY"
    assert "parse.date_order is MDY (month first), but '15/04/2027' in column 'close date'" in result.stderr


def test_dates_that_prove_no_order_ask_for_one(project):
    (project / "deals.csv").write_text(dated("03/04/2027", "05/06/2027", "2027-01-31"), encoding="utf-8")
    result = run(project, "--yes")
    assert result.exit_code == 0, result.output
    assert load_mapping(project / "mappings" / "sheet.yaml", load_pipeline()).parse.date_order is None
    assert "2 date(s) read as well day first as month first" in result.stderr
    assert "set parse.date_order (DMY or MDY)" in result.stderr


def test_a_date_that_does_not_exist_proves_no_order(project):
    # 31/04 would be day first if it were a date; there is no 31 April, so the 03/04 stays unsettled
    (project / "deals.csv").write_text(dated("03/04/2027", "31/04/2027"), encoding="utf-8")
    result = run(project, "--yes")
    assert result.exit_code == 0, result.output
    assert load_mapping(project / "mappings" / "sheet.yaml", load_pipeline()).parse.date_order is None
    assert "set parse.date_order (DMY or MDY)" in result.stderr

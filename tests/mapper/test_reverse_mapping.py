"""`pipesync map SOURCE --for-writes`: where a write to each shared stage lands in a source, and why."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipesync.cli.map_cmd  # registers `map` on the app
from pipesync.cli import app
from pipesync.config import load_config
from pipesync.mapper import reverse_mapping
from pipesync.mapping import load_mapping
from pipesync.pipeline import load_pipeline

MAPPING = """\
source: crm
pipelines:
  - id: sales
    label: Sales
    stages:
      - {id: s1, label: New, stage: prospecting}
      - {id: s2, label: Demo, stage: discovery}
      - {id: s3, label: Proposal sent, stage: proposal}
      - {id: s4, label: Lost - no budget, stage: closed_lost}
      - {id: s5, label: Closed Lost, stage: closed_lost}
      - {id: s6, label: Won, stage: closed_won}
      - {id: s7, label: Won - upsell, stage: closed_won}
    writes: {closed_won: s7}  # the user's choice, kept whatever is alike
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipesync.yaml").write_text(
        "sources:\n  - name: crm\n    type: csv\n    options: {path: deals.csv}\n", encoding="utf-8")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "crm.yaml").write_text(MAPPING, encoding="utf-8")
    return tmp_path


def landings(project: Path) -> dict[str, tuple[str | None, str]]:
    found = reverse_mapping(load_config(project / "pipesync.yaml"), "crm")
    return {x.shared: (x.stage, x.origin) for x in found.landings}


def test_each_shared_stage_lands_in_the_written_the_only_or_the_most_alike_source_stage(project):
    found = landings(project)
    assert found["closed_won"] == ("s7", "written")
    assert found["proposal"] == ("s3", "only")
    assert found["closed_lost"] == ("s5", "chosen")  # "Closed Lost" is the shared stage's own label
    assert found["negotiation"] == (None, "none")
    assert found["on_hold"] == (None, "none")


def test_yes_writes_the_choices_into_writes_and_keeps_the_users_entries_and_comments(project):
    config = str(project / "pipesync.yaml")
    result = CliRunner().invoke(app, ["map", "crm", "--for-writes", "--yes", "--config", config])
    assert result.exit_code == 0, result.output
    text = (project / "mappings" / "crm.yaml").read_text(encoding="utf-8")
    assert "the user's choice, kept" in text
    rule = load_mapping(project / "mappings" / "crm.yaml", load_pipeline()).pipeline_rule("sales")
    assert rule.writes == {"closed_won": "s7", "closed_lost": "s5"}
    assert "Closed Lost; chosen over Lost - no budget (pipesync map --for-writes)" in text
    again = CliRunner().invoke(app, ["map", "crm", "--for-writes", "--yes", "--config", config])
    assert again.exit_code == 0 and (project / "mappings" / "crm.yaml").read_text(encoding="utf-8") == text


def test_without_yes_nothing_is_written_and_json_lists_every_landing(project):
    before = (project / "mappings" / "crm.yaml").read_text(encoding="utf-8")
    result = CliRunner().invoke(app, ["map", "crm", "--for-writes", "--json", "--config", str(project / "pipesync.yaml")])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["written"] == 0
    assert {(x["shared"], x["origin"]) for x in out["landings"]} >= {("closed_lost", "chosen"), ("on_hold", "none")}
    assert (project / "mappings" / "crm.yaml").read_text(encoding="utf-8") == before


def test_a_source_without_a_mapping_file_is_told_to_map_first(project):
    (project / "mappings" / "crm.yaml").unlink()
    result = CliRunner().invoke(app, ["map", "crm", "--for-writes", "--config", str(project / "pipesync.yaml")])
    assert result.exit_code == 2
    assert "run `pipesync map crm` first" in result.output

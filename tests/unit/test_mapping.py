"""Mapping files: stage lookup rules, and every problem in a file reported at once with its line."""

import textwrap

import pytest

from pipesync.errors import FileErrors
from pipesync.mapping import Mapping, load_mapping
from pipesync.pipeline import load_pipeline


@pytest.fixture
def pipeline():
    return load_pipeline()


def write(tmp_path, text):
    path = tmp_path / "m.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_stages_are_found_by_id_or_label_in_their_pipeline_first(tmp_path, pipeline):
    m = load_mapping(write(tmp_path, """
        pipelines:
          - id: "default"
            label: Sales Pipeline
            stages:
              - {id: contractsent, label: Contract Sent, stage: negotiation}
          - id: "*"
            stages:
              - {label: Contract Sent, stage: proposal}
              - {label: 商务谈判, stage: negotiation}
    """), pipeline)
    assert m.find_stage("default", "contractsent").stage == "negotiation"
    assert m.find_stage("Sales Pipeline", "contract  sent").stage == "negotiation"  # label, folded
    assert m.find_stage("other", "Contract Sent").stage == "proposal"  # falls back to "*"
    assert m.find_stage(None, "商务谈判").stage == "negotiation"
    assert m.find_stage("default", "Legal Review") is None


def test_numeric_ids_compare_as_text(tmp_path, pipeline):
    m = load_mapping(write(tmp_path, """
        pipelines:
          - id: 1
            stages:
              - {id: 7, label: Qualified, stage: qualification}
    """), pipeline)
    assert m.find_stage("1", "7").stage == "qualification"


def test_undecided_stage_is_kept_as_null(tmp_path, pipeline):
    m = load_mapping(write(tmp_path, """
        pipelines:
          - stages:
              - {label: Legal Review, stage: null}
    """), pipeline)
    assert m.find_stage(None, "Legal Review").stage is None


def test_every_error_is_reported_with_its_line(tmp_path, pipeline):
    path = write(tmp_path, """\
        pipelines:
          - id: "*"
            stages:
              - {label: Won, stage: closed_wonn}
              - {stage: proposal}
        parse:
          date_order: DD/MM
        colour: blue
    """)
    with pytest.raises(FileErrors) as info:
        load_mapping(path, pipeline)
    text = str(info.value)
    assert str(path) in text
    assert len(info.value.problems) == 4
    assert "line 4: pipelines.0.stages.0.stage" in text and "closed_wonn" in text
    assert "line 5: pipelines.0.stages.1" in text and "id or a label" in text
    assert "line 7: parse.date_order" in text
    assert "line 8: colour" in text


def test_yaml_syntax_errors_name_the_line(tmp_path, pipeline):
    from pipesync.errors import ConfigError

    with pytest.raises(ConfigError, match="line 2"):
        load_mapping(write(tmp_path, "source: x\n\tpipelines: []\n"), pipeline)


def test_shared_pipeline_in_repo_is_the_packaged_default():
    from pipesync.pipeline import default_pipeline_path
    from tests.conftest import REPO

    assert (REPO / "mappings" / "pipeline.yaml").read_text() == default_pipeline_path().read_text()


def test_mapping_without_context_skips_stage_key_check():
    assert Mapping.model_validate({"pipelines": [{"stages": [{"label": "x", "stage": "anything"}]}]})


def test_fields_name_a_column_or_a_list_of_columns_each_checked_on_its_line(tmp_path, pipeline):
    m = load_mapping(write(tmp_path, """
        fields:
          close_date: Expected closing
          actual_close_date: [Won time, Lost time]
        """), pipeline)
    assert (m.columns_of("close_date"), m.columns_of("actual_close_date"), m.columns_of("amount")) == (
        ["Expected closing"], ["Won time", "Lost time"], [])
    with pytest.raises(FileErrors) as e:
        load_mapping(write(tmp_path, """
            fields:
              closing_date: Closing Date
              actual_close_date: []
              created_at: [Created, " "]
            """), pipeline)
    problems = str(e.value)
    assert "line 3: fields.closing_date.[key]: Input should be 'source_id'" in problems
    assert "line 4: fields.actual_close_date: Value error, name a column, or a list of columns" in problems
    assert "line 5: fields.created_at: Value error" in problems

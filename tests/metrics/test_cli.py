"""``pipesync metrics``: a Rich table, or JSON with the documented stable keys."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import pipesync.cli.metrics_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from pipesync.metrics.definitions import HEADLINE

TOP_LEVEL_KEYS = {
    "period", "previous_period", "as_of", "view", "deal_set", "reporting_currency", "segments", "pipeline_by_stage",
    "funnel", "days_in_stage", "lost_reasons", "win_rate_by_lead_source", "stuck_deals", "stale_deals",
    "suspicious_amounts", "stage_conversion",
}


@pytest.fixture
def config(quarter_settings, tmp_path):
    path = tmp_path / "pipesync.yaml"
    path.write_text(f"warehouse: {quarter_settings.warehouse}\n", encoding="utf-8")
    return path


def test_json_output_has_the_stable_keys(config):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--json", "--from", "2026-10-01", "--to", "2026-12-31", "--by", "source", "--as-of", "2026-11-22"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["as_of"] == "2026-11-23T00:00:00Z"  # the end of the as-of day
    # 53 days into Q4, compared with the first 53 days of Q3
    assert data["period"] == {"start": "2026-10-01", "end": "2026-12-31", "to_date": True}
    assert data["previous_period"] == {"start": "2026-07-01", "end": "2026-08-22", "to_date": True}
    assert data["stage_conversion"] == "cohort"
    assert [s["segment"] for s in data["segments"]][0] == "all"
    assert {s["segment"] for s in data["segments"][1:]} == {"salesforce", "hubspot"}
    assert set(data["segments"][0]["metrics"]) == {m.key for m in HEADLINE}
    assert set(data["segments"][0]["metrics"]["win_rate"]) == {"value", "previous", "delta", "delta_pct"}
    assert set(data["stuck_deals"]) == {"count", "deals"}
    assert data["segments"][0]["metrics"]["won_count"]["value"] == 2


def test_the_table_shows_the_headline_figures(config):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--as-of", "2026-11-22"])
    assert result.exit_code == 0, result.output
    words = " ".join(result.stdout.split())  # the title wraps at the table's width
    assert "2026-10-01 to 2026-12-31, quarter to date (as of 2026-11-22; vs 2026-07-01 to 2026-08-22)" in words
    assert "Win rate" in result.stdout and "66.7%" in result.stdout
    assert "funnel (cohort)" in result.stdout


def test_a_finished_period_is_compared_with_the_whole_previous_one(config):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--as-of", "2026-11-22", "--from", "2026-07-01", "--to", "2026-09-30", "--json"])
    data = json.loads(result.stdout)
    assert data["period"] == {"start": "2026-07-01", "end": "2026-09-30", "to_date": False}
    assert data["previous_period"] == {"start": "2026-04-01", "end": "2026-06-30", "to_date": False}


def test_the_stage_conversion_flag_overrides_the_setting(config):
    config.write_text(config.read_text(encoding="utf-8") + "stage_conversion: cumulative\n", encoding="utf-8")
    as_set = json.loads(CliRunner().invoke(app, ["metrics", "-c", str(config), "--as-of", "2026-11-22", "--json"]).stdout)
    flagged = json.loads(CliRunner().invoke(app, ["metrics", "-c", str(config), "--as-of", "2026-11-22", "--json", "--stage-conversion", "cohort"]).stdout)
    assert (as_set["stage_conversion"], flagged["stage_conversion"]) == ("cumulative", "cohort")
    assert [s["reached"] for s in as_set["funnel"]] == [5, 5, 3, 3, 2, 2]


@pytest.mark.parametrize("args", [
    ["--by", "colour"],
    ["--from", "2026-12-31", "--to", "2026-10-01"],
    ["--stage-conversion", "furthest"],
    ["--from", "2027-01-01", "--as-of", "2026-11-22"],  # nothing to measure yet
])
def test_bad_options_are_usage_errors(config, args):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), *args])
    assert result.exit_code == 2

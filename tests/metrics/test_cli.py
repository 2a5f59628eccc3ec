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
    "suspicious_amounts",
}


@pytest.fixture
def config(quarter_settings, tmp_path):
    path = tmp_path / "pipesync.yaml"
    path.write_text(f"warehouse: {quarter_settings.warehouse}\n", encoding="utf-8")
    return path


def test_json_output_has_the_stable_keys(config):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--json", "--from", "2026-10-01", "--to", "2026-12-31", "--by", "source"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["period"] == {"start": "2026-10-01", "end": "2026-12-31"}
    assert data["previous_period"] == {"start": "2026-07-01", "end": "2026-09-30"}
    assert [s["segment"] for s in data["segments"]][0] == "all"
    assert {s["segment"] for s in data["segments"][1:]} == {"salesforce", "hubspot"}
    assert set(data["segments"][0]["metrics"]) == {m.key for m in HEADLINE}
    assert set(data["segments"][0]["metrics"]["win_rate"]) == {"value", "previous", "delta", "delta_pct"}
    assert set(data["stuck_deals"]) == {"count", "deals"}
    assert data["segments"][0]["metrics"]["won_count"]["value"] == 2


def test_the_table_shows_the_headline_figures(config):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), "--from", "2026-10-01", "--to", "2026-12-31"])
    assert result.exit_code == 0, result.output
    assert "Win rate" in result.stdout and "66.7%" in result.stdout
    assert "funnel" in result.stdout


@pytest.mark.parametrize("args", [["--by", "colour"], ["--from", "2026-12-31", "--to", "2026-10-01"]])
def test_bad_options_are_usage_errors(config, args):
    result = CliRunner().invoke(app, ["metrics", "-c", str(config), *args])
    assert result.exit_code == 2

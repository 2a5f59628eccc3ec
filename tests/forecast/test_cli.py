"""``pipesync forecast``: tables, --backtest, --json with stable keys; the forecast settings' errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import pipesync.cli.forecast_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from pipesync.config import load_config
from pipesync.errors import ConfigError
from tests.forecast.test_fixture import deals
from tests.metrics.builders import write_warehouse

TOP_LEVEL_KEYS = {"as_of", "period", "view", "deal_set", "reporting_currency", "method", "method_reason", "periods", "backtest", "history"}
SEGMENT_KEYS = {
    "segment", "won_so_far", "open_deals", "open_value", "stage_weighted", "history_weighted", "new_deals", "categories",
    "forecast", "target", "gap_to_target", "coverage",
}


@pytest.fixture
def config(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'warehouse.db'}", deals())
    path = tmp_path / "pipesync.yaml"
    path.write_text(
        f"warehouse: {settings.warehouse}\nforecast:\n  targets:\n    - period: 2026-Q4\n      amount: 100000\n"
        "    - {period: 2026-Q4, owner: Bob, amount: 20000}\n",
        encoding="utf-8",
    )
    return path


def run(*args: str):
    result = CliRunner().invoke(app, ["forecast", *args])
    assert result.exit_code == 0, result.output
    return result


def test_json_has_the_stable_keys(config):
    data = json.loads(run("-c", str(config), "--as-of", "2026-11-22", "--by", "owner", "--json").stdout)
    assert set(data) == TOP_LEVEL_KEYS
    assert data["as_of"] == "2026-11-23T00:00:00Z" and data["view"] == "owner" and data["method"] == "stage_weighted"
    q4 = data["periods"][0]
    assert set(q4) == {"label", "start", "end", "current", "segments"}
    assert all(set(s) == SEGMENT_KEYS for s in q4["segments"])
    targets = {s["segment"]: s["target"] for s in q4["segments"]}
    assert targets == {"all": 100000.0, "Ann": None, "Bob": 20000.0}  # an owner's target by the name --by owner shows
    assert set(data["backtest"]) == {"periods", "methods"}
    assert set(data["history"]) == {"min_sample", "instants", "observations", "deals_by_level", "rates"}


def test_tables_say_the_method_and_why_and_backtest_shows_each_methods_error(config):
    out = run("-c", str(config), "--as-of", "2026-11-22", "--period", "month", "--periods", "3", "--backtest").stdout
    assert "method: stage-weighted (lowest backtest error" in out
    assert "2026-11 (current)" in out and "2027-01" in out
    assert "backtest error per method" in out and "stage-weighted (default)" in out


def test_a_bad_period_or_view_is_a_usage_error(config):
    for args in (["--period", "year"], ["--by", "lead_source"]):
        result = CliRunner().invoke(app, ["forecast", "-c", str(config), "--json", *args])
        assert result.exit_code == 2
        assert json.loads(result.stdout)["error"]["type"] == "ConfigError"


@pytest.mark.parametrize("forecast, problem", [
    ("{targets: [{period: 2026-Q5, amount: 1}]}", "period"),
    ("{targets: [{period: 2026-Q4, amount: 1, owner: Ann, pipeline: default}]}", "not an owner and a pipeline"),
    ("{commit_from: 0.3, best_case_from: 0.5}", "best_case_from"),
])
def test_forecast_settings_are_checked_with_the_file_and_line(tmp_path, forecast, problem):
    path = tmp_path / "pipesync.yaml"
    path.write_text(f"warehouse: sqlite:///w.db\nforecast: {forecast}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert "pipesync.yaml" in str(e.value) and problem in str(e.value)

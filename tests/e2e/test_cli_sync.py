"""The command line as a user runs it: init, sync, exit codes, JSON."""

import json

from typer.testing import CliRunner

from pipesync.cli import app

runner = CliRunner()


def test_init_writes_a_commented_config_and_the_shared_pipeline(tmp_path):
    result = runner.invoke(app, ["init", str(tmp_path)])
    assert result.exit_code == 0, result.output
    config = (tmp_path / "pipesync.yaml").read_text()
    assert config.startswith("# pipesync configuration")
    assert "secrets:" in config and "{env: HUBSPOT_ACCESS_TOKEN}" in config
    assert (tmp_path / "mappings" / "pipeline.yaml").exists()
    again = runner.invoke(app, ["init", str(tmp_path)])
    assert again.exit_code == 2 and "--force" in again.output


def test_sync_prints_the_summary_and_strict_fails_on_quarantine(example_project):
    config = str(example_project / "pipesync.yaml")
    first = runner.invoke(app, ["sync", "--config", config])
    assert first.exit_code == 0, first.output
    assert "sf_export" in first.output and "6 record(s) quarantined" in first.output
    strict = runner.invoke(app, ["sync", "--config", config, "--strict"])
    assert strict.exit_code == 1


def test_sync_json_is_machine_readable(example_project):
    result = runner.invoke(app, ["sync", "hubspot_export", "--config", str(example_project / "pipesync.yaml"), "--json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["status"] == "ok"
    assert data["sources"]["hubspot_export"] == {
        "read": 11, "inserted": 10, "updated": 0, "unchanged": 0, "deleted": 0, "quarantined": 1,
        "dropped": 0, "first_dropped": None, "warnings": [], "lock_wait_s": 0.0, "api_calls": 0, "rate_limited": 0,
        "error": None, "exit_code": 0,
    }


def test_config_errors_exit_2_with_file_and_line(tmp_path):
    (tmp_path / "pipesync.yaml").write_text("warehouse: sqlite:///x.db\nsources:\n  - name: Bad Name\n    type: excel\n")
    result = runner.invoke(app, ["sync", "--config", str(tmp_path / "pipesync.yaml")])
    assert result.exit_code == 2
    assert "line 3: sources.0.name" in result.output and "line 4: sources.0.type" in result.output


def test_secrets_inline_in_options_are_refused(tmp_path):
    (tmp_path / "pipesync.yaml").write_text(
        "sources:\n  - name: hs\n    type: hubspot\n    options: {access_token: pat-123}\n"
    )
    result = runner.invoke(app, ["sync", "--config", str(tmp_path / "pipesync.yaml")])
    assert result.exit_code == 2
    assert "'access_token' is a credential: put it under secrets:" in result.output and "pat-123" not in result.output


def test_missing_config_says_how_to_start(tmp_path):
    result = runner.invoke(app, ["sync", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "pipesync init" in result.output

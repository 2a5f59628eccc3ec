"""`pipesync config check`: a project validated without running it, every problem listed with its file and line."""

from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

from pipesync.check import check_project
from pipesync.cli import app
from pipesync.consolidate.rules import default_rules_path

runner = CliRunner()
SECRET = "pat-na1-0000-very-secret"


def with_api_source(project, extra: str = "") -> str:
    """The example project plus a HubSpot source whose token comes from a file, and the default rules file."""
    (project / "hs-token").write_text(SECRET)
    shutil.copy(project / "mappings" / "hubspot_export.yaml", project / "mappings" / "hs.yaml")
    shutil.copy(default_rules_path(), project / "rules.yaml")
    config = project / "pipesync.yaml"
    config.write_text(
        config.read_text()
        + "  - name: hs\n    type: hubspot\n    secrets:\n"
        + f"      access_token: {{file: {project / 'hs-token'}}}\n"
        + extra
        + "consolidation: rules.yaml\n"
    )
    return str(config)


def test_a_sound_project_passes_and_nothing_runs(example_project):
    config = with_api_source(example_project)
    result = runner.invoke(app, ["config", "check", "--config", config, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] and report["problems"] == []
    assert any("secret 'access_token'" in c for c in report["checked"])
    assert any(c.endswith("rules.yaml") for c in report["checked"])
    assert SECRET not in result.output
    assert not (example_project / "pipesync-example.db").exists()  # nothing was synced
    human = runner.invoke(app, ["config", "check", "--config", config])
    assert human.exit_code == 0 and "ok" in human.output


def test_every_problem_is_listed_with_its_file_and_line(example_project, monkeypatch):
    monkeypatch.delenv("PIPESYNC_CHECK_MISSING", raising=False)
    config = with_api_source(example_project, "      client_secret: {env: PIPESYNC_CHECK_MISSING}\n")
    (example_project / "hs-token").unlink()
    mappings = example_project / "mappings"
    (mappings / "pipedrive_export.yaml").unlink()
    (mappings / "apac_sheet.yaml").write_text((mappings / "apac_sheet.yaml").read_text() + "surprise: 1\n")
    rules = example_project / "rules.yaml"
    rules.write_text(rules.read_text() + "not_a_rule: 1\n")

    result = check_project(config)
    assert not result.ok
    lines = open(config).read().splitlines()
    token_line = next(n for n, line in enumerate(lines, 1) if "access_token:" in line)
    problems = "\n".join(result.problems)
    assert f"{config}: line {token_line}: source 'hs': secret 'access_token': cannot read secrets file" in problems
    assert f"{config}: line {token_line + 1}: source 'hs': secret 'client_secret': environment variable " \
           "PIPESYNC_CHECK_MISSING is not set" in problems
    assert f"{mappings / 'pipedrive_export.yaml'}: source 'pipedrive_export' has no mapping file" in problems
    assert f"{mappings / 'apac_sheet.yaml'}: line " in problems and "surprise" in problems
    assert f"{rules}: line {len(rules.read_text().splitlines())}: not_a_rule" in problems
    assert len(result.problems) == 5

    cli = runner.invoke(app, ["config", "check", "--config", config, "--json"])
    assert cli.exit_code == 2
    assert json.loads(cli.stdout)["problems"] == result.problems


def test_a_source_without_the_secret_its_sign_in_needs_fails(tmp_path):
    (tmp_path / "pipesync.yaml").write_text("sources:\n  - name: pd\n    type: pipedrive\n    options: {auth: oauth}\n")
    (tmp_path / "mappings").mkdir()
    (tmp_path / "mappings" / "pd.yaml").write_text("pipelines: []\n")
    problems = check_project(tmp_path / "pipesync.yaml").problems
    assert problems == [
        f"{tmp_path / 'pipesync.yaml'}: line 3: source 'pd': its sign-in needs the secret '{name}' under secrets: "
        "(as {env: VAR})" for name in ("client_id", "client_secret")
    ]


def test_a_broken_config_is_reported_alone(tmp_path):
    (tmp_path / "pipesync.yaml").write_text("sources:\n  - name: crm\n    type: csv\n    options: {path: a.csv, delimter: ';'}\n")
    result = runner.invoke(app, ["config", "check", "--config", str(tmp_path / "pipesync.yaml")])
    assert result.exit_code == 2
    assert "line 4: sources.0.options.delimter (source 'crm'): Extra inputs are not permitted" in result.output


def test_the_push_back_rules_are_checked_with_file_and_line(example_project):
    config = str(example_project / "pipesync.yaml")
    pushback = example_project / "pushback.yaml"
    pushback.write_text("close_stale:\n  enabled: true\n  after_days: -3\n")
    problems = "\n".join(check_project(config).problems)
    assert f"{pushback}: line 3: close_stale.after_days" in problems

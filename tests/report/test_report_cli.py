"""``pipesync report`` writes the page and says where."""

from __future__ import annotations

import json

from typer.testing import CliRunner

import pipesync.cli.report_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from tests.metrics.builders import write_warehouse
from tests.metrics.conftest import quarter_deals


def test_report_command_writes_the_file(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", quarter_deals())
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {settings.warehouse}\n", encoding="utf-8")
    out = tmp_path / "out" / "report.html"
    out.parent.mkdir()
    result = CliRunner().invoke(app, ["report", "-c", str(config), "--out", str(out), "--from", "2026-10-01", "--to", "2026-12-31", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"report": str(out.resolve())}
    assert "Pipeline report" in out.read_text(encoding="utf-8")


def test_an_unwritable_destination_is_a_clear_error(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", quarter_deals())
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {settings.warehouse}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", "-c", str(config), "--out", str(tmp_path / "missing" / "r.html")])
    assert result.exit_code == 1
    assert "cannot write the report" in result.stderr

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


def test_a_quarter_in_progress_says_so_and_trends_over_the_last_four_quarters(tmp_path):
    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", quarter_deals())
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {settings.warehouse}\n", encoding="utf-8")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "-c", str(config), "--out", str(out), "--as-of", "2026-11-22"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert "<strong>quarter to date</strong> · compared with 2026-07-01 to 2026-08-22" in html
    assert "As of end of 2026-11-22" in html
    # computed from the deals on the first run: no snapshot of any earlier quarter exists
    for label in ("Q4 2025", "Q1 2026", "Q2 2026", "Q3 2026", "Q4 2026 QTD"):
        assert f">{label}</text>" in html


def test_win_rates_of_groups_with_too_few_closed_deals_are_withheld_and_said_so(tmp_path):
    from datetime import date

    from pipesync.metrics.periods import Period
    from pipesync.report.builder import build_report
    from tests.metrics.builders import NOW

    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", quarter_deals())
    page = build_report(settings, tmp_path / "report.html", Period(date(2026, 10, 1), date(2026, 12, 31)),
                        now=NOW).read_text(encoding="utf-8")
    lead_sources = page.split("<h2>Win rate by lead source</h2>", 1)[1].split("</section>", 1)[0]
    # Inbound (1 won, 1 lost) and Partner (1 won): counts shown, rates withheld, and the reason given
    assert lead_sources.count('title="fewer than 5 deals closed: too few for a rate">–</td>') == 2
    assert "–: fewer than 5 deals closed in the period, too few for a win rate." in lead_sources
    by_owner = page.split('id="by-owner"', 1)[1].split("</section>", 1)[0]
    assert "Win rate –: fewer than 5 deals closed in the period, too few for a rate." in by_owner

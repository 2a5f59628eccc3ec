"""`pipesync demo`, the README's main command, runs the whole flow against the sandboxes."""

import json

from typer.testing import CliRunner

from pipesync.cli import app


def test_demo_maps_syncs_consolidates_and_reports(tmp_path):
    folder = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--size", "600", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)

    assert all(done == total and total > 0 for done, total in out["mapped"].values()), out["mapped"]
    sources = out["sync"]["sources"]
    assert set(sources) == {"salesforce", "hubspot", "pipedrive", "spreadsheet"}
    assert all(c["error"] is None and c["quarantined"] == 0 and c["inserted"] > 0 for c in sources.values())
    consolidation = out["consolidation"]
    assert 0 < consolidation["golden_deals"] < consolidation["deals"], "the seeded duplicates are merged"
    report = folder / "report.html"
    assert out["report"] == str(report) and "Pipeline report" in report.read_text(encoding="utf-8")
    config = (folder / "pipesync.yaml").read_text(encoding="utf-8")
    secret = (folder / ".secrets" / "hubspot-access_token").read_text(encoding="utf-8")
    assert secret not in config, "secrets stay in their own files"

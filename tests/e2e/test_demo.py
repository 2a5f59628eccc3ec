"""`pipesync demo`, the README's main command, runs the whole flow against the sandboxes."""

import json

from typer.testing import CliRunner

from pipesync.cli import app
from pipesync.vocabulary import load_vocabularies
from pipesync_sandbox.demo import MARKER, fresh_folder


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
    assert (folder / MARKER).is_file(), "the next demo may replace this folder"
    plan = out["plan"]
    assert set(plan["counts"]) == {"write_back", "duplicates", "close_stale"}, "the demo ends with a plan of every kind"
    assert plan["changes"] == sum(n for per in plan["counts"].values() for n in per.values())
    assert secret not in (folder / "pipesync-plan.json").read_text(encoding="utf-8")
    assert "Push-back plan" in (folder / "plan.html").read_text(encoding="utf-8")

    # one vocabulary for lost reasons and lead sources, owners by name, across the four sources
    vocabularies = load_vocabularies()
    metrics = json.loads(CliRunner().invoke(app, ["metrics", "--config", str(folder / "pipesync.yaml"), "--by", "owner",
                                                  "--json"]).stdout)
    shared = {e.label for e in vocabularies.lost_reasons.values()} | {"(no reason given)"}
    assert {r["reason"] for r in metrics["lost_reasons"]} <= shared
    shared = {e.label for e in vocabularies.lead_sources.values()} | {"(no lead source)"}
    assert {r["lead_source"] for r in metrics["win_rate_by_lead_source"]} <= shared
    owners = [s["segment"] for s in metrics["segments"][1:]]
    assert owners and not any("@" in o or o.startswith("Owner ") for o in owners), owners


def test_demo_refuses_a_folder_holding_files_it_did_not_write_and_changes_nothing(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "forecast.xlsx").write_bytes(b"a user's file")
    result = CliRunner().invoke(app, ["demo", "--dir", str(folder), "--size", "100"])
    assert result.exit_code == 2
    assert "did not write" in result.stderr and "nothing was changed" in result.stderr
    assert [p.name for p in folder.iterdir()] == ["forecast.xlsx"]
    assert (folder / "forecast.xlsx").read_bytes() == b"a user's file"


def test_demo_refuses_a_file_given_as_its_folder(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("keep me", encoding="utf-8")
    result = CliRunner().invoke(app, ["demo", "--dir", str(target), "--size", "100"])
    assert result.exit_code == 2 and target.read_text(encoding="utf-8") == "keep me"


def test_a_demo_folder_is_marked_and_only_a_marked_or_empty_folder_is_reused(tmp_path):
    previous = tmp_path / "previous"
    fresh_folder(previous)
    (previous / "report.html").write_text("last run", encoding="utf-8")
    fresh_folder(previous)  # a previous demo's folder is replaced, marker and all
    assert [p.name for p in previous.iterdir()] == [MARKER]

    empty = tmp_path / "empty"
    empty.mkdir()
    fresh_folder(empty)
    assert (empty / MARKER).is_file()

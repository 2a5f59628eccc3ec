"""`pipesync consolidate` against a warehouse: golden_deals and deal_links, stable ids, --explain."""

from __future__ import annotations

import json
from datetime import date

import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

import pipesync.cli.consolidate_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from pipesync.consolidate.store import run_consolidation
from pipesync.config import load_config
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse, now
from tests.consolidate.conftest import make_deal

DEALS = [
    make_deal("salesforce", "006A", name="Acme - Renewal 2025"),
    make_deal("hubspot", "1", name="ACME renewal 2025", account_name="ACME, Inc", days=2, stage="negotiation"),
    make_deal("salesforce", "006B", name="Acme - Expansion", amount=120_000, close_date=date(2025, 9, 30), days=40),
    make_deal("pipedrive", "9", name="Old one", is_deleted=True),
]


def row(deal):
    stored = {c.name: getattr(deal, c.name) for c in t.deals.columns if hasattr(deal, c.name) and c.name != "raw"}
    return {**stored, "key": deal.key, "raw": {}, "content_hash": "-", "synced_at": now()}


def project_with(tmp_path, warehouse_url, deals) -> tuple:
    """A pipesync.yaml naming the warehouse, and the warehouse holding ``deals``."""
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {warehouse_url}\n", encoding="utf-8")
    warehouse = Warehouse(warehouse_url)
    with warehouse.begin() as conn:
        conn.execute(insert(t.deals), [row(d) for d in deals])
    return config, warehouse


@pytest.fixture
def project(tmp_path, warehouse_url):
    config, warehouse = project_with(tmp_path, warehouse_url, DEALS)
    yield config, warehouse
    warehouse.close()


def tables(warehouse):
    with warehouse.begin() as conn:
        golden = conn.execute(select(t.golden_deals).order_by(t.golden_deals.c.golden_id)).mappings().all()
        links = conn.execute(select(t.deal_links).order_by(t.deal_links.c.deal_key)).mappings().all()
    return [dict(g) for g in golden], [dict(link) for link in links]


def test_consolidation_writes_golden_deals_and_links_and_reruns_identically(project):
    config, warehouse = project
    summary = run_consolidation(load_config(config))
    assert (summary.deals, summary.golden_deals, summary.merged_clusters, summary.duplicates) == (3, 2, 1, 1)
    golden, links = tables(warehouse)
    assert [link["deal_key"] for link in links] == ["hubspot:1", "salesforce:006A", "salesforce:006B"]
    merged = next(g for g in golden if len(g["members"]) == 2)
    assert merged["members"] == ["hubspot:1", "salesforce:006A"]
    assert merged["stage"] == "negotiation" and merged["provenance"]["stage"]["deal_key"] == "hubspot:1"
    assert merged["conflicts"][0]["field"] == "stage"
    by_key = {link["deal_key"]: link for link in links}
    assert by_key["hubspot:1"]["golden_id"] == merged["golden_id"] == by_key["salesforce:006A"]["golden_id"]
    assert by_key["hubspot:1"]["linked_to"] == "salesforce:006A"
    assert by_key["salesforce:006B"]["rule"] == "no match" and by_key["salesforce:006B"]["score"] is None

    run_consolidation(load_config(config))
    assert tables(warehouse) == (golden, links)


def test_the_cli_prints_a_summary_as_json_and_explains_a_deal(project):
    config, _ = project
    runner = CliRunner()
    out = runner.invoke(app, ["consolidate", "--config", str(config), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["golden_deals"] == 2

    out = runner.invoke(app, ["consolidate", "--config", str(config), "--explain", "hubspot:1", "--json"])
    assert out.exit_code == 0, out.output
    explained = json.loads(out.stdout)
    assert [m["deal_key"] for m in explained["members"]] == ["hubspot:1", "salesforce:006A"]
    [pair] = explained["pairs"]
    assert pair["match"] and {c["comparison"] for c in pair["comparisons"]} >= {"account", "amount"}
    assert explained["fields"]["stage"] == {"value": "negotiation", "deal_key": "hubspot:1", "rule": "most_advanced"}

    out = runner.invoke(app, ["consolidate", "--config", str(config), "--explain", "hubspot:1"])
    assert out.exit_code == 0 and "most_advanced" in out.stdout


def test_explaining_an_unknown_deal_fails_with_a_clear_message(project):
    config, _ = project
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--explain", "hubspot:404"])
    assert out.exit_code == 1
    assert "no deal with key 'hubspot:404'" in out.output


def test_a_broken_rules_file_is_a_config_error(project, tmp_path):
    config, _ = project
    rules = tmp_path / "bad.yaml"
    rules.write_text("prior: x\n", encoding="utf-8")
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--rules", str(rules)])
    assert out.exit_code == 2
    assert "bad.yaml" in out.output

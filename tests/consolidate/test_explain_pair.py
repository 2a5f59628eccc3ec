"""`pipesync consolidate --explain KEY --with OTHER`: why two deals are not one golden deal."""

from __future__ import annotations

import json
from datetime import date

import pytest
from typer.testing import CliRunner

import pipesync.cli.consolidate_cmd  # noqa: F401 - registers the command
from pipesync.cli.app import app
from pipesync.config import load_config
from pipesync.consolidate.store import run_consolidation
from tests.consolidate.conftest import make_deal
from tests.consolidate.test_store_and_cli import project_with

DEALS = [
    make_deal("salesforce", "006A", name="Acme - Renewal FY24"),
    # this year's renewal, cloned from last year's with its Salesforce reference
    make_deal("hubspot", "1", name="Acme renewal 2025", days=1, external_refs=["salesforce:006A"]),
    make_deal("salesforce", "006B", name="Acme - Pilot", amount=4_000, close_date=date(2025, 2, 1), days=30,
              owner_email="sam@seller.example"),
    make_deal("pipedrive", "7", name="Initech services", account_name="Initech", account_domain="initech.com",
              contact_emails=[], close_date=date(2026, 1, 1), amount=9_000, days=200),
]


@pytest.fixture
def config(tmp_path, warehouse_url):
    path, warehouse = project_with(tmp_path, warehouse_url, DEALS)
    warehouse.close()
    run_consolidation(load_config(path))
    return path


def why(config, key, other):
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--explain", key, "--with", other, "--json"])
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def test_a_contradicting_year_vetoes_even_a_hard_link(config):
    verdict = why(config, "hubspot:1", "salesforce:006A")
    assert not verdict["joined"] and verdict["hard_link"]
    assert verdict["verdict"] == "vetoed" and verdict["pair"]["vetoed"] == "different year"
    assert "external_refs" in verdict["reason"]


def test_a_compared_pair_shows_each_level_and_the_total_against_the_threshold(config):
    verdict = why(config, "salesforce:006A", "salesforce:006B")
    assert verdict["verdict"] == "below threshold" and verdict["compared"]
    pair = verdict["pair"]
    levels = {c["comparison"]: c["level"] for c in pair["comparisons"]}
    assert levels["deal type"] == "different deal type" and levels["amount"] == "different amount"
    assert pair["probability"] < pair["threshold"] and str(pair["threshold"]) in verdict["reason"]


def test_a_pair_never_compared_says_no_blocking_pass_would_have(config):
    verdict = why(config, "pipedrive:7", "salesforce:006B")
    assert verdict["verdict"] == "never compared" and not verdict["compared"] and verdict["blocking"] == []
    assert "no blocking pass" in verdict["reason"]


def test_with_needs_explain_and_an_existing_deal(config):
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--with", "hubspot:1"])
    assert out.exit_code == 2
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--explain", "hubspot:1", "--with", "x:1"])
    assert out.exit_code == 1 and "no live deal with key 'x:1'" in out.output


def test_the_verdict_is_printed_for_people_too(config):
    out = CliRunner().invoke(app, ["consolidate", "--config", str(config), "--explain", "hubspot:1",
                                   "--with", "salesforce:006A"])
    assert out.exit_code == 0 and "vetoed" in out.stdout and "different year" in out.stdout

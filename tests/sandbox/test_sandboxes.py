"""Sandboxes: the three vendor apps running together, and ``pipesync sandbox`` on the command line."""

from __future__ import annotations

import csv
import json
import signal
import ssl
import subprocess
import sys

import httpx
import pytest
from typer.testing import CliRunner

from pipesync_sandbox.cli.sandbox_cmd import parse_faults, sandbox_app
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.mutations import DealMutations
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.world import SYSTEMS


def _page(box) -> httpx.Response:
    """One authenticated request for a few deals, the way each vendor's client makes it."""
    c = box.credentials
    if box.system == "salesforce":
        with httpx.Client(base_url=box.base_url, verify=ssl.create_default_context(cafile=box.ca_bundle)) as client:
            token = client.post("/services/oauth2/token", data={
                "grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
                "username": c["username"], "password": c["password"] + c["security_token"]})
            token.raise_for_status()
            return client.get("/services/data/v62.0/query", params={"q": "SELECT Id, Name FROM Opportunity LIMIT 5"},
                              headers={"Authorization": f"Bearer {token.json()['access_token']}"})
    if box.system == "hubspot":
        return httpx.get(f"{box.base_url}/crm/v3/objects/deals", params={"limit": 5},
                         headers={"Authorization": f"Bearer {c['access_token']}"})
    return httpx.get(f"{box.base_url}/api/v2/deals", params={"limit": 5}, headers={"x-api-token": c["api_token"]})


def test_all_three_sandboxes_serve_their_part_of_the_world(sandboxes):
    assert [box.system for box in sandboxes] == list(SYSTEMS)
    assert sandboxes["salesforce"].base_url.startswith("https://") and sandboxes["salesforce"].ca_bundle
    assert sandboxes["hubspot"].base_url.startswith("http://") and sandboxes["hubspot"].ca_bundle is None
    for box in sandboxes:
        response = _page(box)
        assert response.status_code == 200, (box.system, response.text)
        assert box.data is sandboxes.world.systems[box.system]


def test_every_vendor_store_takes_the_same_mutations(sandboxes):
    for box in sandboxes:
        assert isinstance(box.store, DealMutations), box.system
        live = {str(d.id) for d in box.data.deals if not d.is_deleted and not d.merged_into}
        touched = box.store.touch_deals(0.1, seed=4)
        assert touched and set(touched) <= live, box.system


def test_faults_switched_on_one_sandbox_show_in_that_vendors_own_words(sandboxes):
    hubspot = sandboxes["hubspot"]
    hubspot.faults.update(error_rate=1.0)
    try:
        failed = _page(hubspot)
        assert failed.status_code >= 500 and failed.json()["status"] == "error"
        assert _page(sandboxes["pipedrive"]).status_code == 200
    finally:
        hubspot.faults.update(error_rate=0.0)
    assert _page(hubspot).status_code == 200


def test_credentials_are_new_for_every_run_and_kept_out_of_reprs():
    with Sandboxes(seed=1, size=50, systems=("pipedrive",)) as first, \
            Sandboxes(seed=1, size=50, systems=("pipedrive",)) as second:
        token = first["pipedrive"].credentials["api_token"]
        assert token != second["pipedrive"].credentials["api_token"]
        assert token not in repr(first["pipedrive"])


def test_faults_given_at_start_are_in_place_from_the_first_request():
    with Sandboxes(seed=1, size=50, systems=("pipedrive",),
                   faults={"pipedrive": Faults(burst_429_every=1, burst_429_len=1)}) as boxes:
        box = boxes["pipedrive"]
        assert [_page(box).status_code for _ in range(4)] == [200, 429, 200, 429]


def test_unknown_systems_are_refused():
    with pytest.raises(ValueError, match="zoho"):
        Sandboxes(seed=1, size=10, systems=("zoho",))
    with pytest.raises(KeyError, match="not running"), Sandboxes(seed=1, size=10, systems=("hubspot",)) as boxes:
        boxes["pipedrive"]


def test_sandbox_seed_writes_the_labels_and_reports_the_counts(tmp_path):
    labels = tmp_path / "labels.csv"
    result = CliRunner().invoke(sandbox_app, ["seed", "--seed", "4", "--size", "300", "--labels", str(labels), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert sum(s["deals"] for s in summary["systems"].values()) == 300
    with open(labels, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 300 and len({r["truth_id"] for r in rows}) == summary["real_deals"]


def test_fault_options_parse_into_faults_per_system_and_bad_ones_are_usage_errors():
    faults = parse_faults(["hubspot.error_rate=0.05", "hubspot.burst_429_every=100", "salesforce.expire_token_after=3"])
    assert faults["hubspot"].error_rate == 0.05 and faults["hubspot"].burst_429_every == 100
    assert faults["salesforce"].expire_token_after == 3
    for bad in (["zoho.error_rate=1"], ["hubspot.error_rate"], ["hubspot.error_rate=lots"], ["hubspot.eror_rate=1"],
                ["hubspot.error_rate=2"]):
        result = CliRunner().invoke(sandbox_app, ["up", "--size", "10", *(x for b in bad for x in ("--fault", b))])
        assert result.exit_code == 2, (bad, result.output)


def test_sandbox_up_prints_urls_and_credentials_then_serves_until_interrupted():
    command = [sys.executable, "-c", "from pipesync_sandbox.cli.sandbox_cmd import sandbox_app; sandbox_app()",
               "up", "--size", "100", "--json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in process.stdout:  # the JSON document ends with a closing brace in column 0
            lines.append(line)
            if line.rstrip() == "}":
                break
        printed = json.loads("".join(lines))
        assert set(printed) == set(SYSTEMS)
        pipedrive = printed["pipedrive"]
        response = httpx.get(f"{pipedrive['base_url']}/api/v2/deals", params={"limit": 1},
                             headers={"x-api-token": pipedrive["credentials"]["api_token"]})
        assert response.status_code == 200
        assert printed["salesforce"]["ca_bundle"] and printed["hubspot"]["credentials"]["access_token"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0

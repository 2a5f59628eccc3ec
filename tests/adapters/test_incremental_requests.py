"""An incremental sync after a few edits costs the pages of changes plus at most 3 calls per CRM:
pipelines, stages, owners and fields ride in the cursor instead of being re-listed every run."""

from __future__ import annotations

import pytest

from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.sync import run_sync
from pipesync_sandbox.demo import write_project
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

# Pages an incremental read of ~1% (under one page of each kind) needs for the changed deals themselves:
# Salesforce the query, its contact roles and its history; HubSpot the search, two association reads,
# companies, contacts and history for deals whose stage dates do not chain; Pipedrive deals,
# organizations and persons by id.
CHANGE_PAGES = {"salesforce": 3, "hubspot": 6, "pipedrive": 3}


@pytest.fixture(scope="module")
def world():
    return generate(17, 2000)


@pytest.mark.parametrize("system", SYSTEMS)
def test_an_incremental_sync_after_1_percent_edits_is_the_change_pages_plus_3_calls(system, world, tmp_path):
    faults = Faults(time_scale=1000.0)
    with Sandboxes(world, systems=(system,), faults={system: faults}) as boxes:
        box = boxes[system]
        settings = write_project(tmp_path, [sandbox_source(box, tmp_path / ".secrets")])
        ctx = map_context(settings, system)
        write_mapping(ctx.path, accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8))
        assert run_sync(settings, quarantine_unmapped=True).sources[system].error is None
        box.store.touch_deals(0.01)
        before = sum(faults.injected.values())
        result = run_sync(settings, quarantine_unmapped=True).sources[system]
        requests = sum(faults.injected.values()) - before
        # Nothing changed since: nothing is read again (not even what the lookback window re-finds).
        again = run_sync(settings, quarantine_unmapped=True).sources[system]
    assert result.error is None and result.read > 0
    assert requests <= CHANGE_PAGES[system] + 3, requests
    assert again.error is None and again.read == 0

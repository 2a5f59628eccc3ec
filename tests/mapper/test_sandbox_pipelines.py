"""The sandboxes' seeded pipelines (multilingual, as real admins set them up) map without edits."""

from __future__ import annotations

import pytest

from pipesync.adapters import open_adapter
from pipesync.config import Settings
from pipesync.mapper.propose import propose_mapping
from pipesync.model import DiscoveredPipeline, DiscoveredStage, Discovery
from pipesync.pipeline import load_pipeline
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS, PipelineDef


def as_discovered(system: str, p: PipelineDef) -> DiscoveredPipeline:
    """A seeded pipeline as that vendor's adapter reports it: HubSpot marks won by probability 1.0
    rather than a flag; Pipedrive stages are never closed (won/lost is the deal's status)."""
    return DiscoveredPipeline(id=p.id, label=p.label, stages=[
        DiscoveredStage(
            id=s.id, label=s.label, order=s.order, probability=s.probability,
            is_closed=False if system == "pipedrive" else s.is_closed,
            is_won=s.is_won if system == "salesforce" else None,
        )
        for s in p.stages
    ])


@pytest.fixture(scope="module")
def world():
    return generate(7, 40)


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_seeded_stage_is_mapped_right_without_edits(world, system):
    data = world.systems[system]
    truth = {(p.id, s.id): s.shared for p in data.pipelines for s in p.stages}
    discovery = Discovery(source=system, pipelines=[as_discovered(system, p) for p in data.pipelines])
    proposal = propose_mapping(discovery, load_pipeline())

    wrong = [
        f"{pp.label} / {s.label}: proposed {s.stage} ({s.confidence:.2f}, accepted={s.accepted}), "
        f"truth {truth[(pp.id, s.id)]}; {'; '.join(s.reasons)}"
        for pp, s in proposal.stages()
        if not (s.accepted and s.stage == truth[(pp.id, s.id)])
    ]
    assert wrong == []
    assert len(truth) == sum(len(p.stages) for p in proposal.pipelines)


@pytest.mark.parametrize("system", SYSTEMS)
def test_discovered_through_the_real_adapter_every_stage_is_mapped_right(world, system, tmp_path):
    """The same, with the stages as the vendor's adapter discovers them from its sandbox over HTTP."""
    data = world.systems[system]
    truth = {(p.label, s.label): s.shared for p in data.pipelines for s in p.stages}
    with Sandboxes(world, systems=(system,)) as boxes:
        source = sandbox_source(boxes[system], tmp_path / "secrets")
        with open_adapter(source, Settings()) as adapter:
            discovery = adapter.discover()
    proposal = propose_mapping(discovery, load_pipeline())
    got = {(pp.label, s.label): (s.stage if s.accepted else None) for pp, s in proposal.stages()}
    assert got == truth

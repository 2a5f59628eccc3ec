"""The mapping file docs/mapping-files.md shows for Pipedrive is what `pipesync map` writes today."""

from __future__ import annotations

import re
from pathlib import Path

from pipesync.mapper.mapping_writer import write_mapping
from pipesync.mapper.propose import propose_mapping
from pipesync.model import DiscoveredPipeline, DiscoveredStage, Discovery
from pipesync.pipeline import load_pipeline

DOC = Path(__file__).resolve().parents[2] / "docs" / "mapping-files.md"
# Pipedrive's default pipeline, with "Frobnicate" added after "Proposal Made", as the docs describe it
STAGES = [("1", "Lead In", 0.1), ("2", "Contact Made", 0.2), ("3", "Needs Defined", 0.3), ("4", "Proposal Made", 0.5),
          ("9", "Frobnicate", 0.6), ("5", "Negotiations Started", 0.8)]


def test_the_pipedrive_example_is_what_map_proposes(tmp_path):
    discovery = Discovery(source="pd", pipelines=[DiscoveredPipeline(id="1", label="Sales", stages=[
        DiscoveredStage(id=i, label=label, order=n, probability=p) for n, (i, label, p) in enumerate(STAGES, 1)])])
    written = write_mapping(tmp_path / "pd.yaml", propose_mapping(discovery, load_pipeline())).read_text(encoding="utf-8")
    section = DOC.read_text(encoding="utf-8").split("### Pipedrive", 1)[1]
    shown = re.search(r"```yaml\n(.*?)parse:\n", section, re.S).group(1)
    assert shown in written

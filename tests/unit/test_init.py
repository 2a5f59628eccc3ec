"""`pipesync init` writes a config that loads, its option comments taken from the adapters' models."""

from __future__ import annotations

import re

from ruamel.yaml import YAML

from pipesync.config import SourceConfig, load_config
from pipesync.init import config_template, init_project
from pipesync.plugins import registered


def test_the_written_config_loads_with_its_csv_source(tmp_path):
    init_project(tmp_path)
    settings = load_config(tmp_path / "pipesync.yaml")
    assert [(s.name, s.type) for s in settings.sources] == [("sf_export", "csv")]
    assert settings.sources[0].options.format == "salesforce_report"


def test_every_option_is_described_and_each_api_example_is_a_valid_source_once_uncommented():
    text = config_template()
    unwrapped = re.sub(r"\n\s*#\s*#? ?", " ", text)
    for source_type, plugin in registered().items():
        assert all(o.description and o.description in unwrapped for o in plugin.options.model_fields.values())
        if source_type == "csv":
            continue
        start = text.index(f"  # - name: {source_type}\n")
        block = []
        for line in text[start:].splitlines():
            if block and not line.startswith("  #   "):
                break
            block.append(line.removeprefix("  # "))
        entry = YAML(typ="safe").load("\n".join(block))[0]
        assert SourceConfig(**entry).type == source_type

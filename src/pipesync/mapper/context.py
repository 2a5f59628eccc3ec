"""What mapping one configured source needs: its live stages, the shared pipeline, its mapping file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipesync.adapters import open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.mapping import Mapping, load_mapping
from pipesync.model import DateStyle, Discovery, SharedPipeline
from pipesync.pipeline import load_pipeline


@dataclass(slots=True)
class MapContext:
    source: SourceConfig
    discovery: Discovery
    pipeline: SharedPipeline
    path: Path  # the source's mapping file (mappings/<source>.yaml unless the config says otherwise)
    existing: Mapping | None  # the file as it stands, None when there is none yet
    dates: DateStyle | None  # how the source writes dates (files only)


def map_context(settings: Settings, source_name: str) -> MapContext:
    """Discovers ``source_name``'s pipelines and stages and loads its mapping file if it has one."""
    source = settings.source(source_name)
    pipeline = load_pipeline(settings.pipeline_path())
    path = settings.mapping_path(source)
    existing = load_mapping(path, pipeline) if path.exists() else None
    with open_adapter(source, settings) as adapter:
        discovery, dates = adapter.discover(), adapter.date_style()
    return MapContext(source, discovery, pipeline, path, existing, dates)

"""What mapping one configured source needs: its live stages and values, the shared pipeline and
vocabularies, its mapping file."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.mapping import Mapping, load_mapping
from pipesync.model import DateStyle, Discovery, SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.vocabulary import VALUE_FIELDS, Vocabularies, load_vocabularies

# An API lists its stages but not the values its deals hold: this many deals are read for them.
VALUE_SAMPLE = 5000


@dataclass(slots=True)
class MapContext:
    source: SourceConfig
    discovery: Discovery
    pipeline: SharedPipeline
    path: Path  # the source's mapping file (mappings/<source>.yaml unless the config says otherwise)
    existing: Mapping | None  # the file as it stands, None when there is none yet
    dates: DateStyle | None  # how the source writes dates (files only)
    vocabularies: Vocabularies | None = None  # the shared lost reasons and lead sources
    columns: dict[str, str | None] | None = None  # files: canonical field → the column read, or None


def map_context(settings: Settings, source_name: str) -> MapContext:
    """Discovers ``source_name``'s pipelines, stages and values and loads its mapping file if it has one."""
    source = settings.source(source_name)
    pipeline = load_pipeline(settings.pipeline_path())
    vocabularies = load_vocabularies(settings.vocabularies_path())
    path = settings.mapping_path(source)
    existing = load_mapping(path, pipeline, vocabularies) if path.exists() else None
    with open_adapter(source, settings) as adapter:
        discovery, dates, columns = adapter.discover(), adapter.date_style(), adapter.columns()
        if not discovery.values and columns is None:
            discovery.values = sample_values(adapter)
    return MapContext(source, discovery, pipeline, path, existing, dates, vocabularies, columns)


def sample_values(adapter: Adapter, most: int = VALUE_SAMPLE) -> dict[str, dict[str, int]]:
    """The lost reasons and lead sources of the first ``most`` deals an API gives (the common ones;
    a rarer one shows in ``pipesync map --check`` once a later sample holds it)."""
    counts: dict[str, Counter[str]] = {field: Counter() for field in VALUE_FIELDS}
    read = 0
    for page in adapter.read_deals(None):
        for deal in page.deals:
            for field, found in counts.items():
                value = deal.values.get(field)
                if isinstance(value, str) and value.strip():
                    found[value.strip()] += 1
        read += len(page.deals)
        if read >= most:
            break
    return {field: dict(found) for field, found in counts.items() if found}

"""The shared vocabularies: lost reasons and lead sources, as the shared pipeline is for stages.

Loaded from ``defaults/vocabularies.yaml``, extended or overridden entry by entry by the
project's ``mappings/vocabularies.yaml``. Mapping files map each source's own values onto
these keys (``lost_reasons:``, ``lead_sources:``); normalization stores the entry's label, so
"Price too high", "Preis zu hoch" and "Precio demasiado alto" count as one reason.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipesync.yamlfile import load_model

DEFAULT_VOCABULARIES_FILE = "vocabularies.yaml"
# Canonical field → the vocabulary (and the mapping file's section) its values map onto.
VALUE_FIELDS = {"lost_reason": "lost_reasons", "lead_source": "lead_sources"}


class Entry(BaseModel):
    """One shared value: the label shown, and the words teams write for it, per language."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1)
    terms: dict[str, list[str]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _languages_are_terms(cls, data: Any) -> Any:
        # In the file an entry lists its languages beside `label`, as the stage lexicon does.
        if isinstance(data, dict) and "terms" not in data:
            return {"label": data.get("label"), "terms": {k: v for k, v in data.items() if k != "label"}}
        return data


class Vocabularies(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lost_reasons: dict[str, Entry] = Field(default_factory=dict)
    lead_sources: dict[str, Entry] = Field(default_factory=dict)

    def of(self, field: str) -> dict[str, Entry]:
        """The entries a canonical field's values map onto (``lost_reason`` → ``lost_reasons``)."""
        return getattr(self, VALUE_FIELDS[field])

    def extended(self, other: Vocabularies) -> Vocabularies:
        """These entries with ``other``'s added, or replacing those of the same key."""
        return Vocabularies(**{name: {**getattr(self, name), **getattr(other, name)} for name in VALUE_FIELDS.values()})


def default_vocabularies_path() -> Path:
    return Path(str(resources.files("pipesync.defaults").joinpath(DEFAULT_VOCABULARIES_FILE)))


@functools.cache
def _shipped() -> Vocabularies:
    # Read once per process: `pipesync map` proposes values for every source (and the map bench per label).
    return load_model(default_vocabularies_path(), Vocabularies)


def load_vocabularies(path: str | Path | None = None) -> Vocabularies:
    """The shipped vocabularies, extended by the project's file at ``path`` (when given)."""
    return _shipped() if path is None else _shipped().extended(load_model(path, Vocabularies))

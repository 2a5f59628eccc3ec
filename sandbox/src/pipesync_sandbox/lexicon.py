"""The generator's word lists and CRM set-ups, read from ``sandbox/data/*.yaml``.

``pipelines.yaml`` holds each sandbox CRM's pipelines and stages with their
ground-truth shared stage; ``names.yaml`` the regions, name parts, deal kinds,
lead sources and lost reasons. Both are validated here so a bad edit is
reported with its file and line (:func:`pipesync.yamlfile.load_model`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pipesync.yamlfile import load_model
from pipesync_sandbox.world import SYSTEMS

DATA_DIR = Path(__file__).parent / "data"

SHARED_OPEN = ("prospecting", "qualification", "discovery", "proposal", "negotiation")
SHARED_KEYS = (*SHARED_OPEN, "on_hold", "closed_won", "closed_lost")
LANGUAGES = ("en", "de", "es", "zh", "ko", "ja", "ar")

Pair = tuple[str, str]  # (native script, latin)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageSpec(_Strict):
    id: str | None = None
    label: str
    probability: float = Field(ge=0, le=1)
    shared: Literal["prospecting", "qualification", "discovery", "proposal", "negotiation",
                    "on_hold", "closed_won", "closed_lost"]
    rot_days: int | None = Field(default=None, gt=0)


class PipelineSpec(_Strict):
    id: str | None = None
    label: str
    language: Literal["en", "de", "es", "zh", "ko", "ja", "ar"]
    regions: list[str]
    kinds: list[str] = Field(default_factory=list)
    currencies: dict[str, float]
    stages: list[StageSpec]

    @model_validator(mode="after")
    def _has_ladder(self) -> PipelineSpec:
        if not any(s.shared in SHARED_OPEN for s in self.stages):
            raise ValueError(f"pipeline {self.label!r} has no open stage")
        return self


class Catalog(_Strict):
    salesforce: list[PipelineSpec]
    hubspot: list[PipelineSpec]
    pipedrive: list[PipelineSpec]

    @model_validator(mode="after")
    def _closed_stages(self) -> Catalog:
        for system in SYSTEMS:
            for p in getattr(self, system):
                closed = {s.shared for s in p.stages} & {"closed_won", "closed_lost"}
                if system == "pipedrive" and closed:
                    raise ValueError(f"pipedrive pipeline {p.label!r}: won/lost is a status, not a stage")
                if system != "pipedrive" and closed != {"closed_won", "closed_lost"}:
                    raise ValueError(f"{system} pipeline {p.label!r} needs a closed-won and a closed-lost stage")
        # Salesforce stage values are one org-wide picklist: a value means the same in every sales process
        meaning: dict[str, tuple[str, float]] = {}
        for p in self.salesforce:
            for st in p.stages:
                if meaning.setdefault(st.label, (st.shared, st.probability)) != (st.shared, st.probability):
                    raise ValueError(f"salesforce stage {st.label!r} differs between pipelines; "
                                     "a picklist value has one meaning and probability")
        return self


class Region(_Strict):
    weight: float = Field(gt=0)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    tlds: list[str]
    style: Literal["latin", "zh", "ko", "ja", "ar"]
    people: str
    industries: str
    legal: list[list[str]]


class BrandParts(_Strict):
    first: list[Pair]
    second: list[Pair]
    cities: list[Pair]


class People(_Strict):
    first: list[str | Pair]
    last: list[str | Pair]


class Kind(_Strict):
    weight: float = Field(gt=0)
    median_usd: float = Field(gt=0)
    names: dict[str, list[str]]

    @field_validator("names")
    @classmethod
    def _every_language(cls, names: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = set(LANGUAGES) - names.keys()
        if missing:
            raise ValueError(f"name templates missing for {', '.join(sorted(missing))}")
        return names


class Names(_Strict):
    regions: dict[str, Region]
    brand_starts: list[str]
    brand_middles: list[str]
    brand_ends: list[str]
    brand_words_a: list[str]
    brand_words_b: list[str]
    qualifiers: dict[str, list[str | Pair]]
    industries: dict[str, list[str | Pair]]
    brand_parts: dict[str, BrandParts]
    people: dict[str, People]
    nicknames: dict[str, str]
    seller_domain: str
    products: list[str]
    kinds: dict[str, Kind]
    lead_sources: dict[str, dict[str, str]]
    lost_reasons: dict[str, dict[str, str]]
    next_steps: dict[str, list[str]]

    @model_validator(mode="after")
    def _references(self) -> Names:
        for code, region in self.regions.items():
            if region.people not in self.people:
                raise ValueError(f"region {code}: no people list {region.people!r}")
            if region.industries not in self.industries:
                raise ValueError(f"region {code}: no industry list {region.industries!r}")
            if region.style != "latin" and region.style not in self.brand_parts:
                raise ValueError(f"region {code}: no brand parts for style {region.style!r}")
            if region.style not in self.qualifiers:
                raise ValueError(f"region {code}: no qualifiers for style {region.style!r}")
        for source, spellings in self.lead_sources.items():
            if set(spellings) != set(SYSTEMS):
                raise ValueError(f"lead source {source}: needs a spelling for each of {', '.join(SYSTEMS)}")
        return self


@cache
def catalog() -> Catalog:
    return load_model(DATA_DIR / "pipelines.yaml", Catalog)


@cache
def names() -> Names:
    return load_model(DATA_DIR / "names.yaml", Names)

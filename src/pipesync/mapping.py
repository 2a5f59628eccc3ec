"""Mapping files (``mappings/<source>.yaml``): how one source's data becomes canonical.

A mapping says, for one source:

- ``pipelines``: each source pipeline (by id and/or label, ``"*"`` for any) and
  its stages (by id and/or label) → a shared stage key, or ``null`` for a stage
  the user has not decided yet (records in it are quarantined, never guessed);
- ``fields`` (files only): canonical field → column header, over the preset's;
- ``parse``: how values are written (date order, decimal separator, default
  currency, the timezone of naive timestamps, status words).

The format is documented in docs/mapping-files.md.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipesync.model import SharedPipeline
from pipesync.yamlfile import load_model

ANY = "*"


def fold(label: str) -> str:
    """A stage or pipeline label as compared: NFKC, case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


class StageRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    label: str | None = None
    stage: str | None = Field(description="shared stage key; null = not decided yet")

    @model_validator(mode="after")
    def _id_or_label(self) -> "StageRule":
        if self.id is None and self.label is None:
            raise ValueError("a stage needs an id or a label")
        return self

    @field_validator("id", "label", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        # Stage ids are often numbers in YAML (Pipedrive); they are compared as text.
        return str(v) if isinstance(v, (int, float)) else v

    @field_validator("stage")
    @classmethod
    def _known_stage(cls, v: str | None, info: ValidationInfo) -> str | None:
        pipeline: SharedPipeline | None = (info.context or {}).get("pipeline")
        if v is not None and pipeline is not None and v not in pipeline.keys:
            raise ValueError(f"{v!r} is not a stage of the shared pipeline ({', '.join(pipeline.keys)})")
        return v


class PipelineRule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = ANY
    label: str | None = None
    stages: list[StageRule] = Field(default_factory=list)

    @field_validator("id", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) else v


class StatusWords(BaseModel):
    """Words a source uses for a deal's status, when it has a status field (Pipedrive)."""

    model_config = ConfigDict(extra="forbid")

    # Exports write the status in the exporting user's language: the defaults cover the common ones.
    open: list[str] = Field(default_factory=lambda: [
        "open", "offen", "ouvert", "ouverte", "abierto", "abierta", "aberto", "aberta", "aperto", "进行中", "進行中",
        "진행 중", "진행중", "オープン", "مفتوح", "مفتوحة",
    ])
    won: list[str] = Field(default_factory=lambda: [
        "won", "closed won", "gewonnen", "gagné", "gagnée", "ganado", "ganada", "ganho", "ganha", "vinto", "vinta",
        "赢单", "贏單", "成交", "已成交", "수주", "受注", "成約", "فاز", "فازت", "مكسوب", "مكسوبة",
    ])
    lost: list[str] = Field(default_factory=lambda: [
        "lost", "closed lost", "verloren", "perdu", "perdue", "perdido", "perdida", "perso", "persa",
        "输单", "輸單", "丢单", "丟單", "실주", "失注", "خسر", "خسرت", "مفقود", "مفقودة",
    ])


class ParseRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # How to read an all-numeric date like 03/04/2024. ``None`` refuses to guess:
    # such a date is quarantined unless it is unambiguous (a day above 12).
    date_order: Literal["YMD", "DMY", "MDY"] | None = None
    # Exact strptime format(s), tried before anything else.
    date_formats: list[str] = Field(default_factory=list)
    decimal_separator: Literal[".", ","] | None = None
    default_currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    status: StatusWords = Field(default_factory=StatusWords)


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    pipelines: list[PipelineRule] = Field(default_factory=list)
    fields: dict[str, str] = Field(default_factory=dict)
    parse: ParseRules = Field(default_factory=ParseRules)

    def model_post_init(self, __context: object) -> None:
        # Lookup tables keyed by pipeline ("id:…", "label:…" or "*"), then by stage ("id:…"/"label:…").
        self._tables: dict[str, dict[str, StageRule]] = {}
        for p in self.pipelines:
            names = [ANY] if p.id == ANY else ["id:" + p.id] + (["label:" + fold(p.label)] if p.label else [])
            for name in names:
                table = self._tables.setdefault(name, {})
                for s in p.stages:
                    if s.id is not None:
                        table.setdefault("id:" + s.id, s)
                    if s.label is not None:
                        table.setdefault("label:" + fold(s.label), s)

    def find_stage(self, pipeline: str | None, source_stage: str) -> StageRule | None:
        """The rule for ``source_stage`` in ``pipeline`` (or in a ``"*"`` pipeline); None if absent."""
        names = [ANY] if pipeline is None else ["id:" + pipeline, "label:" + fold(pipeline), ANY]
        keys = ("id:" + source_stage, "label:" + fold(source_stage))
        for name in names:
            table = self._tables.get(name)
            if table:
                for k in keys:
                    if k in table:
                        return table[k]
        return None


def load_mapping(path: str | Path, pipeline: SharedPipeline) -> Mapping:
    return load_model(path, Mapping, context={"pipeline": pipeline})

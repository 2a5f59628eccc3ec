"""Mapping files (``mappings/<source>.yaml``): how one source's data becomes canonical.

A mapping says, for one source:

- ``pipelines``: each source pipeline (by id and/or label, ``"*"`` for any) and
  its stages (by id and/or label) → a shared stage key, or ``null`` for a stage
  the user has not decided yet (records in it are quarantined, never guessed);
- ``fields`` (files only): canonical field → column header, or a list of headers read as
  "the first one not blank in the row", over the preset's;
- ``parse``: how values are written (date order, decimal separator, default
  currency, the timezone of naive timestamps, status words);
- ``lost_reasons``, ``lead_sources``: the source's own values → a key of the shared
  vocabularies (``vocabulary.py``), or ``null`` while undecided (the value is kept as written);
- ``owners``: a source's owner (e-mail, name or id as the source writes it) → the person's name.

The format is documented in docs/mapping-files.md.

Drift is the live source's stages against its mapping file. ``pipesync map SOURCE
--check`` runs :func:`check_mapping` on a schedule so that a stage added, renamed or
removed in the CRM is caught before a sync quarantines (or worse, mis-maps) its deals;
``pipesync sync`` calls :func:`unmapped_live_stages` to refuse a source whose live
stages the mapping cannot place.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from pipesync.model import RAW_FIELDS, DiscoveredPipeline, DiscoveredStage, Discovery, SharedPipeline
from pipesync.yamlfile import load_model

ANY = "*"


def fold(label: str) -> str:
    """A stage or pipeline label as compared: NFKC, case-folded, inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


def _named_columns(columns: str | list[str]) -> str | list[str]:
    listed = [columns] if isinstance(columns, str) else columns
    if not listed or not all(c.strip() for c in listed):
        raise ValueError("name a column, or a list of columns (the first one not blank in a row is read)")
    return columns


ColumnNames = Annotated[str | list[str], AfterValidator(_named_columns)]


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
    # Reverse mapping, for writes: shared stage key → the source stage (id, else label) a write
    # that moves a deal to that shared stage lands in. Needed only where several source stages
    # map to one shared stage; a single one is found from ``stages``.
    writes: dict[str, str] = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _text(cls, v: object) -> object:
        return str(v) if isinstance(v, (int, float)) else v

    @field_validator("writes")
    @classmethod
    def _known_targets(cls, v: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        pipeline: SharedPipeline | None = (info.context or {}).get("pipeline")
        bad = [k for k in v if pipeline is not None and k not in pipeline.keys]
        if bad:
            raise ValueError(f"{', '.join(map(repr, bad))}: not a stage of the shared pipeline ({', '.join(pipeline.keys)})")  # type: ignore[union-attr]
        return v

    def landing_stage(self, shared: str) -> str | None:
        """The source stage a write to the shared stage ``shared`` lands in: the ``writes`` entry, else
        the one stage mapped to it; None when none is, or several are and ``writes`` does not choose."""
        if shared in self.writes:
            return self.writes[shared]
        found = [s for s in self.stages if s.stage == shared]
        return (found[0].id or found[0].label) if len(found) == 1 else None


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
    # A negative amount is a credit or a refund, or a typo: quarantined (reason negative_amount)
    # unless the source is known to hold credits.
    negative_amounts: Literal["quarantine", "accept"] = "quarantine"
    timezone: str = "UTC"
    status: StatusWords = Field(default_factory=StatusWords)


def _vocabulary_key(key: str | None, info: ValidationInfo) -> str | None:
    """A value map's key, checked against the shared vocabularies when loading gives them (each entry
    on its own, so an error names its line)."""
    vocabularies = (info.context or {}).get("vocabularies")
    if key is not None and vocabularies is not None:
        known = getattr(vocabularies, info.field_name)  # type: ignore[arg-type]
        if key not in known:
            raise ValueError(f"{key!r}: not in the shared {info.field_name} ({', '.join(known)})")
    return key


ValueMap = dict[str, Annotated[str | None, AfterValidator(_vocabulary_key)]]


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    pipelines: list[PipelineRule] = Field(default_factory=list)
    # canonical field → the column holding it, or a list of columns: the first one not blank in a row
    # (actual_close_date: [Won time, Lost time])
    fields: dict[Literal[RAW_FIELDS], ColumnNames] = Field(default_factory=dict)  # type: ignore[valid-type]
    parse: ParseRules = Field(default_factory=ParseRules)
    lost_reasons: ValueMap = Field(default_factory=dict, description="source value → shared lost reason; null = undecided")
    lead_sources: ValueMap = Field(default_factory=dict, description="source value → shared lead source; null = undecided")
    owners: dict[str, str] = Field(default_factory=dict, description="a source's owner (e-mail, name or id) → the person's name")

    @field_validator("lost_reasons", "lead_sources", "owners", mode="before")
    @classmethod
    def _text_keys(cls, v: object) -> object:
        # YAML reads a value like 404 or yes as a number or a flag: compared as text.
        return {str(k): val for k, val in v.items()} if isinstance(v, dict) else v

    def value_map(self, field: str) -> ValueMap:
        """The map of a canonical field's values (``lost_reason`` → ``lost_reasons``), keyed by the folded value."""
        return self._value_maps[field]

    def columns_of(self, name: str) -> list[str]:
        """The columns ``fields`` names for a canonical field, in the order they are tried."""
        columns = self.fields.get(name, [])
        return [columns] if isinstance(columns, str) else list(columns)

    def model_post_init(self, __context: object) -> None:
        self._value_maps = {
            "lost_reason": {fold(k): v for k, v in self.lost_reasons.items()},
            "lead_source": {fold(k): v for k, v in self.lead_sources.items()},
        }
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

    def pipeline_rule(self, pipeline: str | None) -> PipelineRule | None:
        """The rule for the source pipeline ``pipeline`` (by id, then label), else a ``"*"`` one."""
        folded = fold(pipeline) if pipeline is not None else None
        for p in self.pipelines:
            if pipeline is not None and (p.id == pipeline or (p.label is not None and fold(p.label) == folded)):
                return p
        return next((p for p in self.pipelines if p.id == ANY), None)

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


def load_mapping(path: str | Path, pipeline: SharedPipeline, vocabularies: object = None) -> Mapping:
    """The mapping file at ``path``, its stages checked against ``pipeline`` and its value maps
    against ``vocabularies`` (a :class:`~pipesync.vocabulary.Vocabularies`; unchecked when None)."""
    return load_model(path, Mapping, context={"pipeline": pipeline, "vocabularies": vocabularies})


# -- drift: the live source against the file ---------------------------------------------------

DriftKind = Literal["new", "renamed", "removed", "unmapped"]

# How alike two labels must be (rapidfuzz token set ratio) for a vanished label and a new one
# in the same pipeline to be reported as one renamed stage ("Demo" → "Demo scheduled").
RENAME_SIMILARITY = 80.0


class DriftItem(BaseModel):
    kind: DriftKind
    field: str = "stage"  # or a mapped value's field: lost_reason, lead_source
    pipeline_id: str = ""
    pipeline: str = ""  # as shown to the user
    stage_id: str | None = None
    label: str  # the live label (or value); for a removed stage, the file's
    previous_label: str | None = None  # renamed: the label in the file
    stage: str | None = None  # the shared stage the file maps it to
    quarantines: bool  # deals in this live stage cannot be mapped until the file is fixed
    message: str


class DriftReport(BaseModel):
    source: str
    items: list[DriftItem]

    @property
    def ok(self) -> bool:
        return not self.items

    def of(self, kind: DriftKind) -> list[DriftItem]:
        return [i for i in self.items if i.kind == kind]


def check_mapping(discovery: Discovery, mapping: Mapping) -> DriftReport:
    """New, renamed, removed and unmapped stages of ``discovery`` against ``mapping``."""
    source = discovery.source
    items: list[DriftItem] = []
    new: list[tuple[DiscoveredPipeline, DiscoveredStage]] = []
    for dp in discovery.pipelines:
        for s in dp.stages:
            rule = _rule_for(mapping, dp, s)
            if rule is None:
                new.append((dp, s))
                continue
            if rule.id == s.id and rule.label is not None and fold(rule.label) != fold(s.label):
                items.append(DriftItem(
                    kind="renamed", pipeline_id=dp.id, pipeline=_shown(dp.id, dp.label), stage_id=s.id,
                    label=s.label, previous_label=rule.label, stage=rule.stage, quarantines=False,
                    message=f"stage {s.id} in pipeline {_shown(dp.id, dp.label)} was renamed "
                            f"'{rule.label}' → '{s.label}' (mapped to {rule.stage or 'nothing yet'}): "
                            f"check the mapping still fits, then update its label in the mapping file",
                ))
            if rule.stage is None:
                items.append(DriftItem(
                    kind="unmapped", pipeline_id=dp.id, pipeline=_shown(dp.id, dp.label), stage_id=s.id,
                    label=s.label, quarantines=True,
                    message=f"stage '{s.label}' in pipeline {_shown(dp.id, dp.label)} is not mapped yet "
                            f"(stage: null): set its shared stage in the mapping file or run "
                            f"`pipesync map {source}`; its deals are quarantined until then",
                ))

    removed = _removed(discovery, mapping)
    for dp, s, pr, rule in _pair_renames(new, removed):
        old = rule.label or rule.id or ""
        items.append(DriftItem(
            kind="renamed", pipeline_id=dp.id, pipeline=_shown(dp.id, dp.label), stage_id=s.id, label=s.label,
            previous_label=old, stage=rule.stage, quarantines=True,
            message=f"stage '{old}' in pipeline {_shown(dp.id, dp.label)} seems renamed to '{s.label}': "
                    f"the mapping file maps '{old}' → {rule.stage or 'nothing yet'} but the source no longer "
                    f"has it; if it is the same stage, change its label in the mapping file to '{s.label}' "
                    f"(deals in '{s.label}' are quarantined until then)",
        ))
        new.remove((dp, s))
        removed.remove((pr, rule))
    for dp, s in new:
        items.append(DriftItem(
            kind="new", pipeline_id=dp.id, pipeline=_shown(dp.id, dp.label), stage_id=s.id, label=s.label,
            quarantines=True,
            message=f"new stage '{s.label}' in pipeline {_shown(dp.id, dp.label)} is not in the mapping file: "
                    f"run `pipesync map {source}` to map it; its deals are quarantined until then",
        ))
    items += _value_drift(discovery, mapping)
    live_pipelines = {id(pr) for pr in mapping.pipelines if _live_pipelines(discovery, pr)}
    for pr, rule in removed:
        where = _shown(pr.id, pr.label)
        gone = "" if id(pr) in live_pipelines else f" (the source has no pipeline {where} any more)"
        items.append(DriftItem(
            kind="removed", pipeline_id=pr.id, pipeline=where, stage_id=rule.id, label=rule.label or rule.id or "",
            stage=rule.stage, quarantines=False,
            message=f"stage '{rule.label or rule.id}' in pipeline {where} is in the mapping file but no longer "
                    f"in the source{gone}: delete it from the file once no deal is left in it",
        ))
    return DriftReport(source=source, items=items)


# How a mapped field is named to the user, and the mapping file's section for it.
_VALUE_NOUNS = {"lost_reason": ("lost reason", "lost_reasons"), "lead_source": ("lead source", "lead_sources")}


def _value_drift(discovery: Discovery, mapping: Mapping) -> list[DriftItem]:
    """Values the source holds that the mapping does not map yet: kept as written (never quarantined), but
    counted apart from the shared ones until mapped."""
    items = []
    source = discovery.source
    for field, counts in discovery.values.items():
        if field not in _VALUE_NOUNS:
            continue
        noun, section = _VALUE_NOUNS[field]
        table = mapping.value_map(field)
        for value, deals in counts.items():
            folded = fold(value)
            if folded not in table:
                items.append(DriftItem(
                    kind="new", field=field, label=value, quarantines=False,
                    message=f"new {noun} '{value}' ({deals} deal(s)) is not under {section}: in the mapping file: "
                            f"run `pipesync map {source}` to map it; until then it is counted as written, apart from "
                            f"the shared {section.replace('_', ' ')}",
                ))
            elif table[folded] is None:
                items.append(DriftItem(
                    kind="unmapped", field=field, label=value, quarantines=False,
                    message=f"{noun} '{value}' ({deals} deal(s)) is not mapped yet ({section}: null): set its shared "
                            f"key in the mapping file or run `pipesync map {source}`; until then it is counted as written",
                ))
    return items


def unmapped_live_stages(discovery: Discovery, mapping: Mapping) -> list[DriftItem]:
    """Live stages whose deals the mapping cannot place (no rule, or a null one), each with how to fix it."""
    return [i for i in check_mapping(discovery, mapping).items if i.quarantines]


def _rule_for(mapping: Mapping, dp: DiscoveredPipeline, s: DiscoveredStage) -> StageRule | None:
    for pipeline in (dp.id, dp.label):
        for name in (s.id, s.label):
            rule = mapping.find_stage(pipeline, name)
            if rule is not None:
                return rule
    return None


def _live_pipelines(discovery: Discovery, pr: PipelineRule) -> list[DiscoveredPipeline]:
    if pr.id == ANY:
        return list(discovery.pipelines)
    return [
        dp for dp in discovery.pipelines
        if dp.id == pr.id or (pr.label is not None and fold(pr.label) == fold(dp.label))
    ]


def _removed(discovery: Discovery, mapping: Mapping) -> list[tuple[PipelineRule, StageRule]]:
    out = []
    for pr in mapping.pipelines:
        live = [s for dp in _live_pipelines(discovery, pr) for s in dp.stages]
        ids = {s.id for s in live}
        labels = {fold(s.label) for s in live}
        for rule in pr.stages:
            if rule.id is not None and rule.id in ids:
                continue
            if rule.label is not None and fold(rule.label) in labels:
                continue
            out.append((pr, rule))
    return out


def _pair_renames(
    new: list[tuple[DiscoveredPipeline, DiscoveredStage]],
    removed: list[tuple[PipelineRule, StageRule]],
) -> list[tuple[DiscoveredPipeline, DiscoveredStage, PipelineRule, StageRule]]:
    """A new label and a vanished one in the same pipeline that read alike: one stage, renamed."""
    if not new or not removed:
        return []
    # Only here: `pipesync sync` checks drift on every run, and a stage both added and removed is rare.
    from rapidfuzz import fuzz

    scored = []
    for dp, s in new:
        for pr, rule in removed:
            applies = pr.id == ANY or pr.id == dp.id or (pr.label is not None and fold(pr.label) == fold(dp.label))
            if applies and rule.label is not None:
                score = fuzz.token_set_ratio(fold(s.label), fold(rule.label))
                if score >= RENAME_SIMILARITY:
                    scored.append((score, (dp, s), (pr, rule)))
    pairs, used_new, used_removed = [], set(), set()
    for _, (dp, s), (pr, rule) in sorted(scored, key=lambda t: -t[0]):
        if id(s) in used_new or id(rule) in used_removed:
            continue
        used_new.add(id(s))
        used_removed.add(id(rule))
        pairs.append((dp, s, pr, rule))
    return pairs


def _shown(pipeline_id: str, label: str | None) -> str:
    if pipeline_id == ANY:
        return "'*' (every pipeline)"
    if label and label != pipeline_id:
        return f"'{label}' (id {pipeline_id})"
    return f"'{pipeline_id}'"

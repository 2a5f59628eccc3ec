"""Drift: the live source's stages against its mapping file.

``pipesync map SOURCE --check`` runs this on a schedule so that a stage added,
renamed or removed in the CRM is caught before a sync quarantines (or worse,
mis-maps) its deals. ``pipesync sync`` calls :func:`unmapped_live_stages` to
refuse a source whose live stages the mapping cannot place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from pipesync.mapping import ANY, Mapping, PipelineRule, StageRule, fold
from pipesync.model import DiscoveredPipeline, DiscoveredStage, Discovery

DriftKind = Literal["new", "renamed", "removed", "unmapped"]

# How alike two labels must be (rapidfuzz token set ratio) for a vanished label and a new one
# in the same pipeline to be reported as one renamed stage ("Demo" → "Demo scheduled").
RENAME_SIMILARITY = 80.0


class DriftItem(BaseModel):
    kind: DriftKind
    pipeline_id: str
    pipeline: str  # as shown to the user
    stage_id: str | None
    label: str  # the live label; for a removed stage, the file's
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

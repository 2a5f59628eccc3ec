"""The reverse mapping ``pipesync map SOURCE --for-writes`` proposes: for every pipeline of a mapping
file and every shared stage, the source stage a write moving a deal to that shared stage lands in.

Reads map many source stages onto one shared stage ("Closed Lost" and "Lost – no budget" both
``closed_lost``); a write needs one. Where the file's ``writes:`` names it, that is kept; where one
source stage maps there, it is that one; where several do, the one whose label is most like the
shared stage's is proposed (the first in the file on a tie) for the user to confirm. A shared stage
no source stage maps to has no landing: a push-back change to it is left out of the plan, and a
migration into this source stops until it is mapped.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel
from rapidfuzz import fuzz

from pipesync.config import Settings
from pipesync.errors import MappingError
from pipesync.mapping import Mapping, PipelineRule, StageRule, fold, load_mapping
from pipesync.model import SharedPipeline, Stage
from pipesync.pipeline import load_pipeline
from pipesync.vocabulary import load_vocabularies

Origin = Literal["written", "only", "chosen", "none"]


class Landing(BaseModel):
    pipeline: str  # the pipeline rule's id ("*": any pipeline)
    pipeline_label: str | None = None
    shared: str  # the shared stage key
    stage: str | None  # the source stage (id, else label) a write lands in; None: none maps there
    stage_label: str | None = None  # its label, as the user knows it
    origin: Origin  # written: the file's writes: entry; only: the one stage mapped there; chosen: proposed
    candidates: list[str] = []  # every source stage mapped to ``shared``, in the file's order
    candidate_labels: list[str] = []

    def others(self) -> str:
        """The other candidates, as the user knows them."""
        return ", ".join(label for c, label in zip(self.candidates, self.candidate_labels) if c != self.stage)


class ReverseMapping(BaseModel):
    source: str
    path: str  # the mapping file
    landings: list[Landing]

    def unmapped(self) -> list[Landing]:
        return [x for x in self.landings if x.origin == "none"]

    def chosen(self) -> list[Landing]:
        return [x for x in self.landings if x.origin == "chosen"]


def reverse_mapping(settings: Settings, source_name: str) -> ReverseMapping:
    """The reverse mapping of ``source_name``'s mapping file (no call to the source: the file is the truth)."""
    source = settings.source(source_name)
    path = settings.mapping_path(source)
    if not path.exists():
        raise MappingError(f"{path}: no mapping file for source {source_name!r}: run `pipesync map {source_name}` first")
    pipeline = load_pipeline(settings.pipeline_path())
    mapping = load_mapping(path, pipeline, load_vocabularies(settings.vocabularies_path()))
    return ReverseMapping(source=source_name, path=str(path), landings=propose_writes(mapping, pipeline))


def propose_writes(mapping: Mapping, pipeline: SharedPipeline) -> list[Landing]:
    """Every pipeline × shared stage of ``mapping``, with where a write to it lands and why."""
    return [_landing(rule, stage) for rule in mapping.pipelines for stage in pipeline.stages]


def _landing(rule: PipelineRule, stage: Stage) -> Landing:
    mapped = [s for s in rule.stages if s.stage == stage.key]
    labels = {_name(s): s.label or _name(s) for s in mapped}
    base = {"pipeline": rule.id, "pipeline_label": rule.label, "shared": stage.key,
            "candidates": list(labels), "candidate_labels": list(labels.values())}
    if stage.key in rule.writes:
        written = rule.writes[stage.key]
        known = next((s.label for s in rule.stages if written in (s.id, s.label)), None)
        return Landing(**base, stage=written, stage_label=known or written, origin="written")
    if not mapped:
        return Landing(**base, stage=None, origin="none")
    best = max(enumerate(mapped), key=lambda pair: (_likeness(pair[1], stage), -pair[0]))[1]
    return Landing(**base, stage=_name(best), stage_label=labels[_name(best)],
                   origin="only" if len(mapped) == 1 else "chosen")


def _name(s: StageRule) -> str:
    return s.id or s.label  # type: ignore[return-value]  # a stage rule has one or the other


def _likeness(s: StageRule, stage: Stage) -> float:
    label = fold(s.label or s.id or "")
    return max(fuzz.token_set_ratio(label, fold(stage.label)), fuzz.token_set_ratio(label, fold(stage.key.replace("_", " "))))

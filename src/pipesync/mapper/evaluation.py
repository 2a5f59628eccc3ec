"""Measuring the proposal engine on a labelled list of CRM set-ups.

The list (YAML, see tests/mapper/stage_labels.yaml) holds pipelines as CRMs
discover them, each stage with the shared stage a RevOps admin would map it to.
Each set-up is proposed on its own, so no answer leaks from one to another.
Used by bench/map_accuracy.py, and by anyone extending the lexicon to see what
an edit gains or breaks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from pipesync.mapper.lexicon import Lexicon, load_lexicon
from pipesync.mapper.propose import DEFAULT_THRESHOLD, propose_mapping
from pipesync.model import DiscoveredPipeline, DiscoveredStage, Discovery, SharedPipeline
from pipesync.yamlfile import load_model


class LabelledStage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    probability: float | None = None
    closed: bool | None = None
    won: bool | None = None
    expect: str


class Setup(BaseModel):
    """One pipeline as a CRM holds it; stages in pipeline order."""

    model_config = ConfigDict(extra="forbid")

    system: Literal["salesforce", "hubspot", "pipedrive", "csv"]
    pipeline: str
    language: str
    stages: list[LabelledStage]

    def discovery(self) -> Discovery:
        """What the system's adapter would discover: a file has no order; HubSpot has no won flag."""
        ordered = self.system != "csv"
        stages = [
            DiscoveredStage(
                id=f"{n}", label=s.label, order=n if ordered else None, probability=s.probability,
                # CRMs say whether every stage is closed; a file says nothing.
                is_closed=s.closed if s.closed is not None or not ordered else False,
                is_won=s.won if self.system == "salesforce" else None,
            )
            for n, s in enumerate(self.stages)
        ]
        return Discovery(source=self.system, pipelines=[DiscoveredPipeline(id="p", label=self.pipeline, stages=stages)])


class LabelSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    setups: list[Setup]


class Miss(BaseModel):
    system: str
    pipeline: str
    label: str
    expected: str
    proposed: str | None
    confidence: float
    reasons: list[str]


class Evaluation(BaseModel):
    total: int
    correct: int  # the proposed stage is the expected one
    accepted: int  # proposals at or above the threshold (written without review)
    accepted_wrong: int  # of those, wrong: the errors that would pass silently
    by_language: dict[str, tuple[int, int]]  # language → (correct, total)
    misses: list[Miss]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    # What `pipesync map --yes` writes: accepted and right, accepted and wrong, left undecided (null).
    @property
    def right(self) -> int:
        return self.accepted - self.accepted_wrong

    @property
    def undecided(self) -> int:
        return self.total - self.accepted


def load_label_set(path: str | Path) -> LabelSet:
    return load_model(path, LabelSet)


def evaluate(
    labels: LabelSet, pipeline: SharedPipeline, *, threshold: float = DEFAULT_THRESHOLD, lexicon: Lexicon | None = None
) -> Evaluation:
    lexicon = lexicon or load_lexicon(pipeline)
    total = correct = accepted = accepted_wrong = 0
    by_language: dict[str, tuple[int, int]] = {}
    misses = []
    for setup in labels.setups:
        proposal = propose_mapping(setup.discovery(), pipeline, threshold=threshold, lexicon=lexicon)
        for (_, sp), expected in zip(proposal.stages(), setup.stages):
            ok = sp.stage == expected.expect
            total += 1
            correct += ok
            accepted += sp.accepted
            accepted_wrong += sp.accepted and not ok
            right, count = by_language.get(setup.language, (0, 0))
            by_language[setup.language] = (right + ok, count + 1)
            if not ok:
                misses.append(Miss(
                    system=setup.system, pipeline=setup.pipeline, label=sp.label, expected=expected.expect,
                    proposed=sp.stage, confidence=sp.confidence, reasons=sp.reasons,
                ))
    return Evaluation(
        total=total, correct=correct, accepted=accepted, accepted_wrong=accepted_wrong,
        by_language=by_language, misses=misses,
    )

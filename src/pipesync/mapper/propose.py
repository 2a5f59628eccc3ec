"""The proposal engine: a shared stage for every discovered source stage, with a confidence and reasons.

Evidence, in the order it is trusted:

1. a decision already in the mapping file (kept as is);
2. the system's closed/won flags (decisive for won and lost);
3. what the label means, read through the multilingual lexicon (exact term,
   term inside the label, compound word, close spelling);
4. the stage's probability and its position among its pipeline's open stages
   (agreement raises confidence, disagreement lowers it; alone they only guess).
   A label naming a stretch of the pipeline ("Contact made") is placed between
   the stages named firmly around it, by its probability read against theirs.
   A file's stages have a position only when their labels are numbered;
5. the same label already mapped in another pipeline.

A stage whose label says nothing the lexicon knows is never mapped on
probability or position alone: it stays undecided (``stage`` None) with the best
guesses listed for the user.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from pipesync.mapper import DEFAULT_THRESHOLD
from pipesync.mapper.lexicon import Hit, Lexicon, load_lexicon
from pipesync.mapper.values import ValueProposal, propose_values
from pipesync.mapping import Mapping, StageRule
from pipesync.model import Category, DateStyle, DiscoveredPipeline, DiscoveredStage, Discovery, SharedPipeline
from pipesync.vocabulary import Vocabularies, load_vocabularies

# Confidence of each kind of evidence (0..1), before agreement and disagreement adjust it.
EXACT_LABEL = 0.95
FLAGS = 0.99
SAME_LABEL_ELSEWHERE = 0.9
AMBIGUOUS_LABEL = 0.5
AMBIGUITY_PLACED = 0.1  # an ambiguous label whose probability or position picks one of its stages
PROBABILITY_AGREES = 0.05
POSITION_AGREES = 0.02
PROBABILITY_DISAGREES = 0.1
MAX_GUESSES = 3
# A label's leading number, "1. Lead" or "02 - Demo" (not a percentage, "60% Negotiation").
_NUMBER = re.compile(r"\s*(\d{1,2})\s*(?:[.):/_\-–—]\s*|\s+)(?=[^\d\s%])")
# Span terms: where a stage sits is its position (weighted so) and its probability (the rest);
# the confidence grows with how clearly that lands on one stage of the span.
POSITION_WEIGHT = 0.6
SPAN_BASE = 0.75
SPAN_MARGIN = 0.2
SPAN_MAX = 0.85
WEAK_IN_PART = 0.7  # a weak term ("Pending") beside words the lexicon does not know
ANCHOR = 0.8  # a label read less surely than this, or by its resemblance to a term, anchors nothing


class Guess(BaseModel):
    stage: str
    confidence: float
    reasons: list[str]


class StageProposal(DiscoveredStage):
    """One source stage, as discovered, with the shared stage proposed for it."""

    stage: str | None = Field(default=None, description="proposed shared stage key; None = no evidence")
    confidence: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    guesses: list[Guess] = Field(default_factory=list, description="other candidates, best first")
    origin: Literal["proposed", "kept", "reviewed"] = "proposed"
    accepted: bool = Field(default=False, description="written to the mapping file as decided")

    def candidates(self) -> list[Guess]:
        """What a reviewer picks from when the stage is not accepted: the proposal itself, then the guesses."""
        own = [Guess(stage=self.stage, confidence=self.confidence, reasons=self.reasons)] if self.stage else []
        return own + self.guesses

    def accept(self, stage: str | None, why: str) -> None:
        """A person's decision (review): ``stage`` None leaves it undecided."""
        if self.stage is not None and self.stage != stage:
            self.guesses.insert(0, Guess(stage=self.stage, confidence=self.confidence, reasons=self.reasons))
        self.stage, self.confidence, self.reasons = stage, 1.0 if stage else 0.0, [why]
        self.origin, self.accepted = "reviewed", stage is not None


class PipelineProposal(BaseModel):
    id: str
    label: str
    stages: list[StageProposal]


class Proposal(BaseModel):
    source: str
    threshold: float = DEFAULT_THRESHOLD
    pipelines: list[PipelineProposal]
    dates: DateStyle | None = Field(default=None, description="how the source writes dates (files), for parse.date_order")
    values: list[ValueProposal] = Field(default_factory=list, description="its lost reasons and lead sources")

    def stages(self) -> Iterator[tuple[PipelineProposal, StageProposal]]:
        for p in self.pipelines:
            for s in p.stages:
                yield p, s

    def undecided(self) -> list[tuple[PipelineProposal, StageProposal]]:
        """Stages that will be written as null (records in them are quarantined)."""
        return [(p, s) for p, s in self.stages() if not s.accepted]


def accept_confident(proposal: Proposal, threshold: float) -> Proposal:
    """Marks proposals at or above ``threshold`` (and kept or reviewed decisions) as accepted."""
    proposal.threshold = threshold
    for _, s in proposal.stages():
        if s.origin == "proposed":
            s.accepted = s.stage is not None and s.confidence >= threshold
    for v in proposal.values:
        if v.origin == "proposed":
            v.accepted = v.key is not None and v.confidence >= threshold
    return proposal


def propose_mapping(
    discovery: Discovery,
    pipeline: SharedPipeline,
    existing: Mapping | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    lexicon: Lexicon | None = None,
    dates: DateStyle | None = None,
    vocabularies: Vocabularies | None = None,
) -> Proposal:
    """A proposed mapping of every discovered stage onto ``pipeline``, and of its lost reasons and lead
    sources onto ``vocabularies`` (default: the shipped ones); decisions in ``existing`` are kept.

    ``dates`` (the adapter's :meth:`~pipesync.adapters.base.Adapter.date_style`) rides along for the writer.
    """
    engine = _Engine(pipeline, lexicon or load_lexicon(pipeline), existing)
    pipelines = [
        PipelineProposal(id=dp.id, label=dp.label, stages=engine.propose_pipeline(dp)) for dp in discovery.pipelines
    ]
    values = propose_values(discovery, vocabularies or load_vocabularies(), existing, threshold)
    proposal = Proposal(source=discovery.source, threshold=threshold, pipelines=pipelines, dates=dates, values=values)
    engine.share_between_pipelines(proposal, threshold)
    return accept_confident(proposal, threshold)


@dataclass(frozen=True, slots=True)
class _Anchor:
    step: int  # index in the progression
    label: str
    stage: str
    probability: float | None  # the source's own, when its probabilities say anything


@dataclass(slots=True)
class _LabelReading:
    stage: str | None
    confidence: float
    reasons: list[str]
    alternatives: list[str]  # other stages the label also names (ambiguous labels)
    span: list[str] = field(default_factory=list)  # stages a span term ("Contact made") leaves open
    resembles: bool = False  # read from a close spelling, which may be another language's word
    hint: bool = False  # a close spelling of one word among others


class _Engine:
    def __init__(self, pipeline: SharedPipeline, lexicon: Lexicon, existing: Mapping | None):
        self.pipeline = pipeline
        self.lexicon = lexicon
        self.existing = existing
        self.won = next(s.key for s in pipeline.stages if s.category is Category.WON)
        self.lost = next(s.key for s in pipeline.stages if s.category is Category.LOST)
        self.terminal = {s.key for s in pipeline.stages if s.category is not Category.OPEN}
        self.parked = {s.key for s in pipeline.stages if s.parked}
        # The open stages a deal moves through, in pipeline order: what probability and position point at.
        self.progression = [s for s in pipeline.stages if s.category is Category.OPEN and not s.parked]
        self.memory = self._memory_of(existing)

    # -- one pipeline ------------------------------------------------------------------------

    def propose_pipeline(self, dp: DiscoveredPipeline) -> list[StageProposal]:
        # Probabilities all alike (a CRM's untouched default) say nothing about a stage.
        informative = len({s.probability for s in dp.stages if s.probability is not None}) > 1
        readings = {s.id: self._read_label(s.label, self._allowed(self._flags(s)[0])) for s in dp.stages}
        # Position counts among the stages a deal moves through (not closed, not parked),
        # and only where the source orders its stages: a file's stage values have no order
        # (the order they first appear in follows its rows), unless their labels are numbered.
        order = {s.id: s.order for s in dp.stages if s.order is not None} or _numbered(dp.stages)
        moving = [
            s for s in sorted((s for s in dp.stages if s.id in order), key=lambda s: order[s.id])
            if s.is_closed is not True and readings[s.id].stage not in self.terminal | self.parked
        ]
        # Stages whose label names one stage firmly anchor the ones around them (span terms).
        anchors: dict[int, _Anchor] = {}
        for rank, s in enumerate(moving):
            r = readings[s.id]
            step = self._step(r.stage) if r.stage is not None and not r.alternatives else None
            if step is not None and r.confidence >= ANCHOR and not r.resembles:
                anchors[rank] = _Anchor(step, s.label, r.stage, s.probability if informative else None)  # type: ignore[arg-type]
        ranks = {s.id: rank for rank, s in enumerate(moving)}
        out = []
        for s in dp.stages:
            position = (ranks[s.id], len(moving)) if s.id in ranks else None
            out.append(self._stage(dp, s, readings[s.id], informative, position, anchors))
        return out

    def _stage(
        self,
        dp: DiscoveredPipeline,
        s: DiscoveredStage,
        label: _LabelReading,
        informative_probability: bool,
        position: tuple[int, int] | None,
        anchors: dict[int, _Anchor],
    ) -> StageProposal:
        p = StageProposal(**s.model_dump())
        kept = self._kept(dp, s)
        if kept is not None:
            p.stage, p.confidence, p.origin, p.accepted = kept.stage, 1.0, "kept", True
            p.reasons = ["kept from the mapping file"]
            return p

        probability = self._probability_guesses(s) if informative_probability else []
        positional = self._position_guess(position)
        flags, flag_reason = self._flags(s)

        if flags in (self.won, self.lost):
            p.stage, p.confidence, p.reasons = flags, FLAGS, [flag_reason]
            if label.stage is not None and label.stage != flags:
                p.confidence = 0.6
                p.reasons.append(f"but {label.reasons[0]} — check this stage")
            elif label.stage == flags:
                p.reasons += label.reasons
        elif label.span:
            self._resolve_span(p, label, s.probability if informative_probability else None, position, anchors)
        elif label.stage is not None and not label.alternatives:
            p.stage, p.confidence, p.reasons = label.stage, label.confidence, list(label.reasons)
            if label.stage not in self.terminal | self.parked:
                self._weigh_probability(p, probability)
                self._weigh_position(p, positional)
            if label.hint:  # agreement does not make a resemblance a reading
                p.confidence = min(p.confidence, label.confidence)
        elif label.stage is not None:
            self._resolve_ambiguous(p, label, probability, positional)
        else:
            p.reasons = label.reasons or ["the label matches no known stage name"]
        self._add_guesses(p, label, probability, positional)
        return p

    # -- evidence ------------------------------------------------------------------------------

    def _kept(self, dp: DiscoveredPipeline, s: DiscoveredStage) -> StageRule | None:
        if self.existing is None:
            return None
        for pipe in (dp.id, dp.label):
            for name in (s.id, s.label):
                rule = self.existing.find_stage(pipe, name)
                if rule is not None and rule.stage is not None:
                    return rule
        return None

    def _flags(self, s: DiscoveredStage) -> tuple[str | None, str]:
        """won/lost key, "open", "closed" (won or lost unknown) or None, with the reason."""
        if s.is_won:
            return self.won, "closed+won flag"
        if s.is_closed and s.is_won is False:
            return self.lost, "closed, not won flag"
        if s.is_closed:
            if s.probability == 1.0:
                return self.won, "closed flag, probability 1.0"
            if s.probability == 0.0:
                return self.lost, "closed flag, probability 0"
            return "closed", "closed"
        if s.is_closed is False:
            return "open", "open"
        return None, ""

    def _allowed(self, flags: str | None) -> set[str]:
        if flags in ("closed", self.won, self.lost):
            return self.terminal
        if flags == "open":
            return set(self.pipeline.keys) - self.terminal
        return set(self.pipeline.keys)

    def _read_label(self, label: str, allowed: set[str]) -> _LabelReading:
        """What the label says, among the stages the source's flags allow."""
        hits = self.lexicon.match(label)
        firm = [h for h in hits if not h.is_span]
        spans = [h for h in hits if h.is_span and any(k in allowed for k in h.term.keys)]
        usable = [h for h in firm if h.term.keys[0] in allowed]
        # A weak term names its stage only when nothing else does: "Waiting for signature" is negotiation.
        if spans or any(not h.term.weak for h in usable):
            usable = [h for h in usable if not h.term.weak]
        if firm and not usable and not spans:
            dropped = max(firm, key=lambda h: h.length)
            closed = "open" if dropped.term.keys[0] in self.terminal else "closed"
            return _LabelReading(None, 0.0, [f"{self._hit_reason(dropped)}, but the source flags the stage {closed}"], [])
        if not usable:
            if not spans:
                return _LabelReading(None, 0.0, [], [])
            span = max(spans, key=lambda h: h.length)
            keys = [k for k in span.term.keys if k in allowed]
            stretch = f"a step between {keys[0]} and {keys[-1]}"
            return _LabelReading(None, 0.0, [f"{self._hit_reason(span)}, {stretch}"], [], keys)
        by_key: dict[str, list[Hit]] = {}
        for h in usable:
            by_key.setdefault(h.term.keys[0], []).append(h)
        keys = list(by_key)
        outweighed = ""
        # An outcome outweighs a stage name ("Lost after proposal", "Unqualified lead"),
        # and parking outweighs the stage it parks ("Proposal on hold").
        for dominant in (self.terminal, self.parked):
            strong = [k for k in keys if k in dominant]
            dominated = [k for k in keys if k not in dominant]
            if strong and dominated:
                outweighed = ", ".join(f"'{by_key[k][0].term.text}'" for k in dominated)
                keys = strong
                break
        keys.sort(key=lambda k: -max(h.length for h in by_key[k]))
        best = keys[0]
        if len(keys) > 1:
            names = " and ".join(f"'{by_key[k][0].term.text}' ({k})" for k in keys)
            return _LabelReading(best, AMBIGUOUS_LABEL, [f"label names {names}"], keys[1:])
        # Words it outweighs are understood too: they count towards how much of the label is explained.
        confidence = self._label_confidence(label, by_key[best], covered=usable)
        reasons = [self._hit_reason(by_key[best][0])] + ([f"outweighs {outweighed}"] if outweighed else [])
        if outweighed:
            confidence = min(confidence, 0.85)
        longest = max(by_key[best], key=lambda h: h.length)
        whole = longest.length >= len(self.lexicon.normalize(label))
        if longest.term.weak and not whole:
            # "PO pending": waiting, but for what the lexicon does not know
            confidence = min(confidence, WEAK_IN_PART)
            reasons.append("the rest of the label may name the stage it waits in")
        fuzzy = longest.kind == "fuzzy"
        return _LabelReading(best, confidence, reasons, [], resembles=fuzzy, hint=fuzzy and not whole)

    def _label_confidence(self, label: str, hits: list[Hit], covered: list[Hit]) -> float:
        best = max(hits, key=lambda h: h.length)
        if best.kind == "exact":
            return EXACT_LABEL
        norm = self.lexicon.normalize(label)
        letters = len(norm.replace(" ", "")) or 1
        coverage = min(1.0, sum(len(norm[h.start:h.end].replace(" ", "")) for h in covered) / letters)
        if best.kind == "fuzzy":
            # A close spelling of the whole label is a typo; of one word, a weaker hint.
            return round(best.score / 100 - (0.08 if coverage >= 0.99 else 0.15), 3)
        base = 0.7 if best.kind == "word" else 0.65
        return round(base + 0.25 * coverage, 3)

    def _hit_reason(self, hit: Hit) -> str:
        term, name = hit.term, self.lexicon.display.get(hit.term.keys[0], hit.term.keys[0])
        if term.lang == "en":
            said = f"'{term.text}'"
        elif hit.is_span:  # it names no one stage to translate it by
            said = f"'{term.text}' ({term.lang})"
        else:
            said = f"'{name}' ({term.lang}: {term.text})"
        if hit.kind == "exact":
            return f"label ≈ {said}"
        if hit.kind == "fuzzy":
            return f"label resembles {said} ({hit.score:.0f}% alike)"
        return f"label contains {said}"

    def _probability_guesses(self, s: DiscoveredStage) -> list[Guess]:
        """The progression stages the stage's probability sits at or between."""
        p = s.probability
        if p is None or not 0 < p < 1 or not self.progression:
            return []
        stages = sorted(self.progression, key=lambda st: st.probability)
        near = [st for st in stages if abs(st.probability - p) <= 0.05]
        if near:
            return [Guess(stage=near[0].key, confidence=0.45, reasons=[f"probability {p:g} ≈ {near[0].key}"])]
        if p < stages[0].probability:
            return [Guess(stage=stages[0].key, confidence=0.35, reasons=[f"probability {p:g} below {stages[0].key}"])]
        if p > stages[-1].probability:
            return [Guess(stage=stages[-1].key, confidence=0.35, reasons=[f"probability {p:g} above {stages[-1].key}"])]
        for lo, hi in zip(stages, stages[1:]):
            if lo.probability < p < hi.probability:
                why = f"probability {p:g} between {lo.key} and {hi.key}"
                return [Guess(stage=lo.key, confidence=0.3, reasons=[why]), Guess(stage=hi.key, confidence=0.3, reasons=[why])]
        return []

    def _position_guess(self, position: tuple[int, int] | None) -> Guess | None:
        if position is None or not self.progression:
            return None
        rank, count = position
        steps = len(self.progression) - 1
        index = round(rank * steps / (count - 1)) if count > 1 else 0
        key = self.progression[index].key
        return Guess(stage=key, confidence=0.2, reasons=[f"position {rank + 1} of {count}"])

    def _step(self, key: str) -> int | None:
        keys = [s.key for s in self.progression]
        return keys.index(key) if key in keys else None

    def _weigh_probability(self, p: StageProposal, probability: list[Guess]) -> None:
        if not probability or p.stage is None:
            return
        step = self._step(p.stage)
        steps = [self._step(g.stage) for g in probability]
        if p.stage in {g.stage for g in probability}:
            p.confidence = min(0.99, p.confidence + PROBABILITY_AGREES)
            p.reasons.append(f"{probability[0].reasons[0]} agrees")
        elif step is not None and all(s is not None and abs(s - step) >= 2 for s in steps):
            p.confidence = max(0.0, p.confidence - PROBABILITY_DISAGREES)
            p.reasons.append(f"but {probability[0].reasons[0]}")

    def _weigh_position(self, p: StageProposal, positional: Guess | None) -> None:
        if positional is None or p.stage is None:
            return
        step, expected = self._step(p.stage), self._step(positional.stage)
        if step is not None and expected is not None and abs(step - expected) <= 1:
            p.confidence = min(0.99, p.confidence + POSITION_AGREES)
            p.reasons.append(f"{positional.reasons[0]} fits")

    def _resolve_ambiguous(
        self, p: StageProposal, label: _LabelReading, probability: list[Guess], positional: Guess | None
    ) -> None:
        """A label naming two stages: probability, then position, pick one; it still goes to review."""
        candidates = [k for k in [label.stage, *label.alternatives] if k is not None]
        pick, why, placed = candidates[0], "the longest name in it", False
        for g in [*probability, *([positional] if positional else [])]:
            if g.stage in candidates:
                pick, why, placed = g.stage, g.reasons[0], True
                break
        p.stage, p.confidence = pick, AMBIGUOUS_LABEL + (AMBIGUITY_PLACED if placed else 0.0)
        p.reasons = list(label.reasons) + [f"{pick} chosen by {why}"]

    def _expected_step(self, probability: float | None, position: tuple[int, int] | None) -> tuple[float | None, int]:
        """Where along the progression a stage sits, from its position and probability; and how many said."""
        steps = len(self.progression) - 1
        said: list[tuple[float, float]] = []
        if position is not None and position[1] > 1:
            said.append((POSITION_WEIGHT, position[0] * steps / (position[1] - 1)))
        if probability is not None and 0 < probability < 1:
            ladder = sorted((st.probability, i) for i, st in enumerate(self.progression))
            said.append((1 - POSITION_WEIGHT, _interpolate(probability, ladder)))
        if not said:
            return None, 0
        total = sum(w for w, _ in said)
        return sum(w * v for w, v in said) / total, len(said)

    def _resolve_span(
        self,
        p: StageProposal,
        label: _LabelReading,
        probability: float | None,
        position: tuple[int, int] | None,
        anchors: dict[int, _Anchor],
    ) -> None:
        """A span term ("Contact made"): the stage of the stretch nearest where the stage sits."""
        expected, how, certain, (lo, hi) = self._place(probability, position, anchors)
        # Stages come in pipeline order: the firmly named ones around it bound where it can be.
        span = [k for k in label.span if lo <= (self._step(k) or 0) <= hi] or label.span
        if expected is None or any(self._step(k) is None for k in span):
            p.stage, p.confidence = span[0], AMBIGUOUS_LABEL
            p.reasons = list(label.reasons) + [f"nothing places it: {span[0]} is a guess"]
            return
        # A tie goes to the earlier stage (still for review): a first contact comes before what follows it.
        distance = sorted((abs(self._step(k) - expected), n, k) for n, k in enumerate(span))  # type: ignore[operator]
        margin = distance[1][0] - distance[0][0] if len(distance) > 1 else 1.0
        p.stage = distance[0][2]
        confidence = SPAN_BASE + SPAN_MARGIN * min(1.0, margin / 0.5) - (0.0 if certain else 0.05)
        p.confidence = round(min(SPAN_MAX, confidence), 3)
        p.reasons = list(label.reasons) + [f"{how} place it at {p.stage}"]

    def _place(
        self, probability: float | None, position: tuple[int, int] | None, anchors: dict[int, _Anchor]
    ) -> tuple[float | None, str, bool, tuple[int, int]]:
        """Where along the progression a stage sits: between the firmly named stages around it, else
        from its position and probability. Returns (step, how it was placed, well placed, the range
        of steps the stages around it leave)."""
        last = len(self.progression) - 1
        rank = position[0] if position is not None else None
        before = max((r for r in anchors if r < rank), default=None) if rank is not None else None
        after = min((r for r in anchors if r > rank), default=None) if rank is not None else None
        if before is None and after is None:
            step, signals = self._expected_step(probability, position)
            said = []
            if position is not None:
                said.append(f"position {position[0] + 1} of {position[1]}")
            if probability is not None and 0 < probability < 1:
                said.append(f"probability {probability:g}")
            return step, " and ".join(said), signals > 1, (0, last)
        a, b = anchors.get(before), anchors.get(after)  # type: ignore[arg-type]
        if a is not None and b is not None:
            step = a.step + (b.step - a.step) * (rank - before) / (after - before)  # type: ignore[operator]
            how = f"'{a.label}' ({a.stage}) before it and '{b.label}' ({b.stage}) after it"
        elif b is not None:
            step = max(0.0, b.step - (after - rank))  # type: ignore[operator]
            how = f"'{b.label}' ({b.stage}) {after - rank} stage(s) after it"  # type: ignore[operator]
        else:
            step = min(last, a.step + (rank - before))  # type: ignore[operator,union-attr]
            how = f"'{a.label}' ({a.stage}) {rank - before} stage(s) before it"  # type: ignore[operator,union-attr]
        lo, hi = sorted((a.step if a else 0, b.step if b else last))
        # Its own probability, read against theirs, says more than how many stages lie between.
        relative = self._relative_step(probability, a, b)
        if relative is not None:
            step, how = min(hi, max(lo, relative)), f"{how}, and its probability {probability:g} against theirs,"
        return step, how, True, (lo, hi)

    def _relative_step(self, probability: float | None, a: _Anchor | None, b: _Anchor | None) -> float | None:
        """The step ``probability`` stands for on the scale of the anchors' own probabilities: sources
        weigh stages differently (HubSpot's default pipeline opens at 0.2, the shared one at 0.1)."""
        if probability is None or not 0 < probability < 1:
            return None
        if a and b and a.probability is not None and b.probability is not None and a.probability < b.probability:
            share = (probability - a.probability) / (b.probability - a.probability)
            return a.step + (b.step - a.step) * min(1.0, max(0.0, share))
        anchor = next((x for x in (b, a) if x is not None and x.probability), None)
        if anchor is None:
            return None
        ladder = sorted((st.probability, i) for i, st in enumerate(self.progression))
        return _interpolate(probability * self.progression[anchor.step].probability / anchor.probability, ladder)

    def _add_guesses(
        self, p: StageProposal, label: _LabelReading, probability: list[Guess], positional: Guess | None
    ) -> None:
        """The other candidates a reviewer should see, best first (the only candidates when undecided)."""
        score: dict[str, float] = {}
        reasons: dict[str, list[str]] = {}
        for key in [label.stage, *label.alternatives]:
            if key is not None:
                score[key] = score.get(key, 0) + AMBIGUOUS_LABEL
                reasons.setdefault(key, []).extend(label.reasons[:1])
        for g in [*probability, *([positional] if positional else [])]:
            score[g.stage] = score.get(g.stage, 0) + g.confidence
            reasons.setdefault(g.stage, []).extend(g.reasons)
        ranked = sorted((k for k in score if k != p.stage), key=lambda k: -score[k])
        p.guesses = [
            Guess(stage=k, confidence=round(min(score[k], 0.6), 2), reasons=reasons[k]) for k in ranked[:MAX_GUESSES]
        ]

    # -- across pipelines ----------------------------------------------------------------------

    def _memory_of(self, existing: Mapping | None) -> dict[str, tuple[str, str]]:
        memory: dict[str, tuple[str, str]] = {}
        for rule in existing.pipelines if existing else []:
            for s in rule.stages:
                if s.stage is not None and s.label:
                    memory.setdefault(self.lexicon.normalize(s.label), (s.stage, rule.label or rule.id))
        return memory

    def share_between_pipelines(self, proposal: Proposal, threshold: float) -> None:
        """Labels left unsure in one pipeline take the mapping the same label has in another."""
        memory = dict(self.memory)
        for pp, s in proposal.stages():
            if s.stage is not None and (s.origin == "kept" or s.confidence >= threshold):
                memory.setdefault(self.lexicon.normalize(s.label), (s.stage, pp.label or pp.id))
        for pp, s in proposal.stages():
            if s.origin != "proposed" or (s.stage is not None and s.confidence >= threshold):
                continue
            known = memory.get(self.lexicon.normalize(s.label))
            if known is None or known[1] == (pp.label or pp.id):
                continue
            flags, _ = self._flags(s)
            if flags in (self.won, self.lost) or known[0] not in self._allowed(flags):
                continue
            if s.stage is not None and s.stage != known[0]:
                s.guesses.insert(0, Guess(stage=s.stage, confidence=s.confidence, reasons=s.reasons))
            s.stage, s.confidence = known[0], SAME_LABEL_ELSEWHERE
            s.reasons = [f"same label is mapped to {known[0]} in pipeline '{known[1]}'"]
            s.guesses = [g for g in s.guesses if g.stage != known[0]]


def _numbered(stages: list[DiscoveredStage]) -> dict[str, int]:
    """The order a file's labels give themselves ("1. Lead", "02 - Demo", "3) Quote"), if they
    number at least three stages, each differently."""
    numbers = {s.id: int(m.group(1)) for s in stages if (m := _NUMBER.match(s.label))}
    return numbers if len(numbers) >= 3 and len(set(numbers.values())) == len(numbers) else {}


def _interpolate(probability: float, ladder: list[tuple[float, int]]) -> float:
    """The (fractional) step of ``probability`` on a ladder of (probability, step), clamped to its ends."""
    if probability <= ladder[0][0]:
        return float(ladder[0][1])
    for (p0, s0), (p1, s1) in zip(ladder, ladder[1:]):
        if probability <= p1:
            return s0 + (s1 - s0) * (probability - p0) / ((p1 - p0) or 1)
    return float(ladder[-1][1])

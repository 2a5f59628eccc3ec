"""Proposals for a source's lost reasons and lead sources: which shared vocabulary entry each value means.

The same machinery as stages: each value is read through a lexicon built from the
shared vocabularies' words (``defaults/vocabularies.yaml``, extended by the project's
``mappings/vocabularies.yaml``), with the stage lexicon's normalisation and matching (whole
value, words inside it, compounds, close spellings). A value read as one entry is proposed
with a confidence; one naming two entries, or only resembling a word, waits for a person.
A value decided in the mapping file already is kept. Unlike a stage, an undecided value is
never quarantined: its deals keep the value as written.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, Field

from pipesync.mapper.lexicon import Hit, Lexicon, LexiconFile
from pipesync.mapping import Mapping, fold
from pipesync.model import Discovery
from pipesync.vocabulary import VALUE_FIELDS, Vocabularies

WHOLE_VALUE = 0.95  # the value is one of the entry's words
WORD_IN_VALUE = 0.9  # the value holds one entry's words, and no other entry's
RESEMBLES = 0.7  # a close spelling only: shown, not accepted at the default threshold
AMBIGUOUS = 0.5
NOUNS = {"lost_reason": "lost reason", "lead_source": "lead source"}


class ValueGuess(BaseModel):
    key: str
    confidence: float
    reasons: list[str]


class ValueProposal(BaseModel):
    """One value of a source's field, as found, with the shared entry proposed for it."""

    field: Literal["lost_reason", "lead_source"]
    value: str
    deal_count: int | None = None
    key: str | None = Field(default=None, description="proposed vocabulary key; None = no evidence")
    confidence: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    guesses: list[ValueGuess] = Field(default_factory=list)
    origin: Literal["proposed", "kept"] = "proposed"
    accepted: bool = False


@cache
def _lexicon_of(vocabularies_json: str, field: str) -> Lexicon:
    vocabularies = Vocabularies.model_validate_json(vocabularies_json)
    entries = vocabularies.of(field)
    # Each entry's label and key are words for it too ("Product fit / missing features", "product fit").
    stages = {key: {**e.terms, "en": [*e.terms.get("en", []), e.label, key.replace("_", " ")]} for key, e in entries.items()}
    lexicon = Lexicon(LexiconFile(stages=stages))
    lexicon.display = {key: e.label for key, e in entries.items()}
    return lexicon


def value_lexicon(vocabularies: Vocabularies, field: str) -> Lexicon:
    """The lexicon ``field``'s values are read through (built once per vocabularies)."""
    return _lexicon_of(vocabularies.model_dump_json(), field)


def propose_values(
    discovery: Discovery, vocabularies: Vocabularies, existing: Mapping | None, threshold: float
) -> list[ValueProposal]:
    """A proposal for every lost reason and lead source the source holds, most frequent first."""
    out = []
    for field in VALUE_FIELDS:
        counts = discovery.values.get(field, {})
        decided = existing.value_map(field) if existing is not None else {}
        lexicon = value_lexicon(vocabularies, field)
        for value, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            kept = decided.get(fold(value))
            if kept is not None:
                out.append(ValueProposal(field=field, value=value, deal_count=n, key=kept, confidence=1.0,
                                         reasons=["in the mapping file"], origin="kept", accepted=True))
                continue
            proposal = read_value(lexicon, field, value)
            proposal.deal_count = n
            proposal.accepted = proposal.key is not None and proposal.confidence >= threshold
            out.append(proposal)
    return out


def read_value(lexicon: Lexicon, field: str, value: str) -> ValueProposal:
    """What ``value`` means in the vocabulary ``lexicon`` reads."""
    hits = lexicon.match(value)
    by_key: dict[str, list[Hit]] = {}
    for hit in hits:
        by_key.setdefault(hit.term.keys[0], []).append(hit)
    if not by_key:
        return ValueProposal(field=field, value=value, reasons=[f"names no shared {NOUNS[field]}"])
    if len(by_key) > 1:
        guesses = [ValueGuess(key=k, confidence=AMBIGUOUS, reasons=[_reason(lexicon, hs[0])]) for k, hs in by_key.items()]
        names = " and ".join(f"'{hs[0].term.text}' ({k})" for k, hs in by_key.items())
        return ValueProposal(field=field, value=value, reasons=[f"names {names}"], guesses=guesses)
    [(key, key_hits)] = by_key.items()
    hit = max(key_hits, key=lambda h: h.length)
    confidence = {"exact": WHOLE_VALUE, "fuzzy": RESEMBLES}.get(hit.kind, WORD_IN_VALUE)
    return ValueProposal(field=field, value=value, key=key, confidence=confidence, reasons=[_reason(lexicon, hit)])


def _reason(lexicon: Lexicon, hit: Hit) -> str:
    term = hit.term
    said = f"'{term.text}'" if term.lang == "en" else f"'{lexicon.display[term.keys[0]]}' ({term.lang}: {term.text})"
    if hit.kind == "exact":
        return f"≈ {said}"
    if hit.kind == "fuzzy":
        return f"resembles {said} ({hit.score:.0f}% alike)"
    return f"contains {said}"


def value_comment(p: ValueProposal) -> str:
    """The reason written beside a value in the mapping file."""
    if p.accepted and p.key is not None:
        return f"{p.confidence:.2f}: {'; '.join(p.reasons)}"
    own = [ValueGuess(key=p.key, confidence=p.confidence, reasons=p.reasons)] if p.key else []
    candidates = own + p.guesses
    if not candidates:
        return f"undecided: {'; '.join(p.reasons) or 'no evidence'}; kept as written"
    shown = ", ".join(f"{g.key} {g.confidence:.2f} ({'; '.join(g.reasons)})" for g in candidates[:3])
    return f"undecided, kept as written; best guesses: {shown}"

"""The stage lexicon: reading a CRM stage label, in any language, as a shared stage.

The vocabulary is data (``lexicon.yaml`` beside this module); this module
normalises labels and finds the lexicon's terms in them: the whole label
(``exact``), a term standing as words inside it (``word``), a German term
heading or ending a compound word ("Angebots|phase", "Vertrags|verhandlung":
``compound``), or, failing all that, a close spelling (``fuzzy``, rapidfuzz).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import opencc
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rapidfuzz import fuzz, process

from pipesync.model import SharedPipeline
from pipesync.yamlfile import load_model

DEFAULT_LEXICON_FILE = "lexicon.yaml"

# Traditional characters fold to simplified ones, so one list of Chinese terms covers both scripts.
_TO_SIMPLIFIED = opencc.OpenCC("t2s")
_PERCENT = re.compile(r"\d+(?:[.,]\d+)?\s*%")
_ARABIC_MARKS = re.compile("[\u064b-\u065f\u0670\u0640]")  # harakat, dagger alef, tatweel
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ة": "ه", "ى": "ي"})
_ARABIC_ARTICLES = ("وال", "ال")

# Scripts written without spaces between words: a term is found anywhere in a label.
_UNSPACED = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")

# Languages that glue words into compounds ("Vertrags|verhandlung"): only their terms are looked
# for inside a longer word, long enough not to occur inside unrelated ones.
COMPOUNDING_LANGUAGES = frozenset({"de"})
COMPOUND_MIN_LEN = 5
FUZZY_MIN_LEN = 5
FUZZY_CUTOFF = 86.0


def _strip_latin_accents(text: str) -> str:
    out = []
    for ch in text:
        if ord(ch) < 0x250:  # Latin letters: "négociation" and "negociation" are one word to a user
            out.append("".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn"))
        else:
            out.append(ch)
    return "".join(out)


def _arabic_token(token: str) -> str:
    # The definite article is glued to the word: "التفاوض" and "تفاوض" are the same stage.
    for article in _ARABIC_ARTICLES:
        if token.startswith(article) and len(token) - len(article) >= 3:
            return token[len(article):]
    return token


def normalize(label: str, filler: frozenset[str] = frozenset()) -> str:
    """``label`` as compared with the lexicon.

    NFKC and case folding, traditional → simplified Chinese, Latin accents and
    Arabic diacritics dropped, percentages ("(60%)"), digits and numbering
    ("1. ", "03 -"), punctuation and the ``filler`` words ("Stage", "阶段") removed.
    """
    text = unicodedata.normalize("NFKC", label).casefold()
    text = _TO_SIMPLIFIED.convert(text)
    text = _PERCENT.sub(" ", text)
    text = _strip_latin_accents(text)
    text = _ARABIC_MARKS.sub("", text).translate(_ARABIC_LETTERS)
    text = "".join(
        " " if ch.isdigit() or unicodedata.category(ch)[0] in "PSZC" else ch for ch in text
    )
    tokens = [_arabic_token(t) for t in text.split()]
    tokens = [t for t in tokens if t not in filler]
    text = " ".join(tokens)
    for word in filler:
        if _UNSPACED.search(word):
            text = text.replace(word, " ")
    return " ".join(text.split())


class Span(BaseModel):
    """Terms that place a stage among ``stages`` (shared stages, in pipeline order) without naming one."""

    model_config = ConfigDict(extra="forbid")

    stages: list[str] = Field(min_length=2)
    terms: dict[str, list[str]]

    @model_validator(mode="before")
    @classmethod
    def _languages_are_terms(cls, data: Any) -> Any:
        # In the file a span lists its languages beside `stages`, like a stage does.
        if isinstance(data, dict) and "terms" not in data:
            return {"stages": data.get("stages"), "terms": {k: v for k, v in data.items() if k != "stages"}}
        return data


class LexiconFile(BaseModel):
    """``lexicon.yaml`` as validated."""

    model_config = ConfigDict(extra="forbid")

    filler: dict[str, list[str]] = {}
    spans: list[Span] = []
    stages: dict[str, dict[str, list[str]]]
    weak: dict[str, dict[str, list[str]]] = {}

    def meanings(self) -> Iterator[tuple[tuple[str, ...], str, str, bool]]:
        """(shared stage keys, language, term, weak) for every term, firm ones first."""
        for key, languages in self.stages.items():
            for lang, terms in languages.items():
                for term in terms:
                    yield (key,), lang, term, False
        for span in self.spans:
            for lang, terms in span.terms.items():
                for term in terms:
                    yield tuple(span.stages), lang, term, False
        for key, languages in self.weak.items():
            for lang, terms in languages.items():
                for term in terms:
                    yield (key,), lang, term, True

    @model_validator(mode="after")
    def _one_meaning_per_term(self) -> "LexiconFile":
        filler = frozenset(normalize(w) for words in self.filler.values() for w in words)
        seen: dict[str, str] = {}
        clashes = []
        for keys, _, term, weak in self.meanings():
            norm = normalize(term, filler)
            meaning = "/".join(keys) + (" (weak)" if weak else "")
            if not norm:
                clashes.append(f"term {term!r} is empty once normalised")
            elif seen.setdefault(norm, meaning) != meaning:
                clashes.append(f"term {term!r} stands under both {seen[norm]} and {meaning}")
        for span in self.spans:
            unknown = [k for k in span.stages if k not in self.stages]
            if unknown:
                clashes.append(f"span {span.stages}: {', '.join(unknown)} is not a stage of this lexicon")
        clashes += [f"weak terms: {k} is not a stage of this lexicon" for k in self.weak if k not in self.stages]
        if clashes:
            raise ValueError("; ".join(clashes))
        return self


@dataclass(frozen=True, slots=True)
class Term:
    keys: tuple[str, ...]  # the shared stage it names; several for a span term
    lang: str
    text: str  # as written in the lexicon, for reasons shown to the user
    norm: str
    unspaced: bool
    weak: bool = False  # names its stage only when the label names no other ("Waiting" / "Waiting for PO")


MatchKind = Literal["exact", "word", "compound", "fuzzy"]


@dataclass(frozen=True, slots=True)
class Hit:
    term: Term
    kind: MatchKind
    start: int  # span in the normalised label
    end: int
    score: float = 100.0  # rapidfuzz similarity for fuzzy hits

    @property
    def length(self) -> int:
        return self.end - self.start

    @property
    def is_span(self) -> bool:
        return len(self.term.keys) > 1


class Lexicon:
    """Terms per shared stage, indexed for matching labels."""

    def __init__(self, data: LexiconFile, pipeline: SharedPipeline | None = None):
        self.filler = frozenset(normalize(w) for words in data.filler.values() for w in words)
        self.terms: list[Term] = []
        self._by_norm: dict[str, Term] = {}
        known = set(pipeline.keys) if pipeline is not None else None
        for keys, lang, word, weak in data.meanings():
            # A custom shared pipeline may lack some stages: terms keep the ones it has.
            keys = tuple(k for k in keys if known is None or k in known)
            if keys:
                self._add(Term(keys, lang, word, normalize(word, self.filler), False, weak))
        # Each shared stage's English name, for reasons shown to the user.
        self.display = {key: (langs.get("en") or [key])[0] for key, langs in data.stages.items()}
        if pipeline is not None:
            # A custom shared pipeline's own stage names are terms too ("Demo booked" → demo_booked).
            for stage in pipeline.stages:
                for word in (stage.label, stage.key.replace("_", " ")):
                    self._add(Term((stage.key,), "en", word, normalize(word, self.filler), False))
                self.display.setdefault(stage.key, stage.label)
        self._fuzzy_choices = [t.norm for t in self.terms]
        # Indexes for finding terms inside a label without scanning every term.
        self._by_first_word: dict[str, list[Term]] = {}
        self._compoundable: dict[str, Term] = {}
        self._unspaced: dict[str, Term] = {}
        for t in self.terms:
            if t.unspaced:
                # Korean spacing varies ("영업기회" / "영업 기회") and CJK needs none: spaces do not count.
                self._unspaced.setdefault(t.norm.replace(" ", ""), t)
            else:
                self._by_first_word.setdefault(t.norm.split(" ", 1)[0], []).append(t)
                if t.lang in COMPOUNDING_LANGUAGES and len(t.norm) >= COMPOUND_MIN_LEN and " " not in t.norm:
                    self._compoundable[t.norm] = t
        self._longest_unspaced = max((len(k) for k in self._unspaced), default=0)

    def _add(self, term: Term) -> None:
        if not term.norm or term.norm in self._by_norm:
            return
        term = replace(term, unspaced=bool(_UNSPACED.search(term.norm)))
        self._by_norm[term.norm] = term
        self.terms.append(term)

    def normalize(self, label: str) -> str:
        return normalize(label, self.filler)

    def match(self, label: str) -> list[Hit]:
        """The terms found in ``label``, none of them inside another one found."""
        norm = self.normalize(label)
        if not norm:
            return []
        exact = self._by_norm.get(norm)
        if exact is not None:
            return [Hit(exact, "exact", 0, len(norm))]
        hits = self._contained(norm)
        if not hits:
            hits = self._fuzzy(norm)
        return _outermost(hits)

    def _contained(self, norm: str) -> list[Hit]:
        hits = []
        tokens = [(m.start(), m.end()) for m in re.finditer(r"\S+", norm)]
        words = [norm[a:b] for a, b in tokens]
        for i, (a, b) in enumerate(tokens):
            for term in self._by_first_word.get(words[i], ()):
                n = term.norm.count(" ") + 1
                if " ".join(words[i:i + n]) == term.norm:
                    hits.append(Hit(term, "word", a, tokens[i + n - 1][1]))
            token = words[i]
            for k in range(COMPOUND_MIN_LEN, len(token)):
                head, tail = self._compoundable.get(token[:k]), self._compoundable.get(token[-k:])
                if head is not None:
                    hits.append(Hit(head, "compound", a, a + k))
                if tail is not None:
                    hits.append(Hit(tail, "compound", b - k, b))
        at = [i for i, ch in enumerate(norm) if ch != " "]  # where each letter of the unspaced label stands
        compact = norm.replace(" ", "")
        for start in range(len(compact)):
            for end in range(start + 1, min(len(compact), start + self._longest_unspaced) + 1):
                term = self._unspaced.get(compact[start:end])
                if term is not None:
                    hits.append(Hit(term, "word", at[start], at[end - 1] + 1))
        return hits

    def _fuzzy(self, norm: str) -> list[Hit]:
        """Close spellings of a term: the whole label, else one of its words or word pairs."""
        windows = [(0, len(norm))]
        words = [(m.start(), m.end()) for m in re.finditer(r"\S+", norm)]
        if len(words) > 1:
            windows += words + [(words[i][0], words[i + 1][1]) for i in range(len(words) - 1)]
        hits = []
        for a, b in windows:
            piece = norm[a:b]
            if len(piece) < FUZZY_MIN_LEN:
                continue
            found = process.extractOne(piece, self._fuzzy_choices, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF)
            if found is not None:
                choice, score, index = found
                hits.append(Hit(self.terms[index], "fuzzy", a, b, score))
        return hits


def _outermost(hits: list[Hit]) -> list[Hit]:
    """Hits not lying inside a longer hit: "unqualified lead" is lost, not "qualified" nor "lead"."""
    hits = sorted(hits, key=lambda h: (-h.length, h.kind != "word", -h.score))
    kept: list[Hit] = []
    for hit in hits:
        if not any(k.start <= hit.start and hit.end <= k.end for k in kept):
            kept.append(hit)
    return kept


def default_lexicon_path() -> Path:
    return Path(str(resources.files("pipesync.mapper").joinpath(DEFAULT_LEXICON_FILE)))


@cache
def _load(path: Path, pipeline_json: str | None) -> Lexicon:
    pipeline = SharedPipeline.model_validate_json(pipeline_json) if pipeline_json else None
    return Lexicon(load_model(path, LexiconFile), pipeline)


def load_lexicon(pipeline: SharedPipeline | None = None, path: str | Path | None = None) -> Lexicon:
    """The lexicon at ``path`` (default: the curated one shipped with pipesync), for ``pipeline``'s stages.

    Loaded once per file and pipeline: a Lexicon is read-only once built.
    """
    return _load(Path(path) if path else default_lexicon_path(), pipeline.model_dump_json() if pipeline else None)

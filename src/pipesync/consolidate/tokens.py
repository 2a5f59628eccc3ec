"""Distinguishing tokens: what in a deal name tells one account's deals apart, whatever else agrees.

"Acme – Renewal FY24" and "Acme renewal 2025" are two renewals; "+50 seats" is
not "+60 seats"; "Phase 1" is not "Phase II"; the EMEA roll-out is not the ANZ
one. A copy of a deal keeps these tokens (written in another form: 2025,
FY25, FY2025, '25), so two names that each state a token of one kind and
share none are two deals: the rules' ``vetoes`` (``rules.py``) forbid the
match, however strong the rest of the evidence, hard links included.

Read from the raw name (casefolded, width folded): an apostrophe or a "+"
matters here, and folding drops them. The words that introduce a seat count
or a phase, and the region names, are data (``lexicon.yaml``: ``seat_words``,
``phase_words``, ``regions``). Products are read from the subject
(``deal_names.py``) by ``product_words``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from pipesync.consolidate.keys import Lexicon, fold, fold_words

TOKEN_KINDS = ("year", "seats", "phase", "region", "product")
_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "x": 10}
# a year in full (2025, FY2025, 2025年) or in two digits after FY or an apostrophe (FY25, FY 25, '25)
_YEAR4 = re.compile(r"(?<![\d+])(20[0-4]\d)(?!\d)")
_DIGIT = re.compile(r"\d")
_YEAR2 = re.compile(r"(?:\bfy\s?|\bcy\s?|['\u2018\u2019])(\d{2})(?!\d)")


class TokenReader:
    """Reads the distinguishing tokens of deal names, one distinct name at a time."""

    def __init__(self, lexicon: Lexicon):
        seat = "|".join(sorted((re.escape(fold(w)) for w in lexicon.seat_words), key=len, reverse=True))
        phase = "|".join(sorted((re.escape(fold(w)) for w in lexicon.phase_words), key=len, reverse=True))
        # "+50 seats", "50 users", "(25 licences)", "+50"; "50席位", "50석"
        self._seats = re.compile(rf"\+\s?(\d+)|(\d+)\s?(?:{seat})" if seat else r"\+\s?(\d+)")
        numeral = r"(\d+|(?:viii|vii|vi|iv|ix|v|x|i{1,3})\b)"
        # "Phase 2", "Phase II", "Ph. 2", "Stufe 2"; a numeral after the phase word, or before it ("2期", "2단계")
        self._phase = re.compile(rf"(?:\b(?:{phase})\.?\s?{numeral})|(?:(\d+)\s?(?:{phase}))") if phase else None
        self._phase_word = re.compile(rf"(?i)\b(?:{phase})\b") if phase else None
        self._regions: dict[str, list[tuple[tuple[str, ...], str]]] = {}  # by first word, longest first
        for key, names in lexicon.regions.items():
            for phrase in filter(None, (tuple(fold(r).split()) for r in names)):
                self._regions.setdefault(phrase[0], []).append((phrase, key))
        for phrases in self._regions.values():
            phrases.sort(key=lambda e: -len(e[0]))

    def read(self, name: str, words: list[str] | None = None) -> dict[str, frozenset[str]]:
        """The tokens of one deal name by kind (only the kinds it names); ``words``: the name folded, if known."""
        words = fold_words(name) if words is None else words
        regions = self._read_regions(words)
        found: dict[str, frozenset[str]] = {"region": regions} if regions else {}
        if not _DIGIT.search(name) and not (self._phase_word and self._phase_word.search(name)):
            return found  # most names: no number, no phase
        text = unicodedata.normalize("NFKC", name).casefold()
        seats = {a or b for a, b in self._seats.findall(text)}
        rest = self._seats.sub(" ", text)  # "+2000 seats" is no year
        if seats:
            found["seats"] = frozenset(seats)
        phases = set()
        if self._phase is not None:
            for numeral, before in self._phase.findall(rest):
                value = numeral or before
                phases.add(str(_ROMAN.get(value, value)))
            rest = self._phase.sub(" ", rest)
        if phases:
            found["phase"] = frozenset(p.lstrip("0") or "0" for p in phases)
        years = set(_YEAR4.findall(rest)) | {f"20{yy}" for yy in _YEAR2.findall(rest)}
        if years:
            found["year"] = frozenset(years)
        return found

    def _read_regions(self, words: list[str]) -> frozenset[str]:
        found = set()
        i = 0
        while i < len(words):  # a phrase read is read whole: "Europe Middle East Africa" is not also MENA
            step = 1
            for phrase, key in self._regions.get(words[i], ()):
                if tuple(words[i:i + len(phrase)]) == phrase:
                    found.add(key)
                    step = len(phrase)
                    break
            i += step
        return frozenset(found)


def product_words(subjects: list[str], company_of_subject: Iterable[set[int]], companies: int) -> list[frozenset[str]]:
    """Each subject's product words: those seen with several accounts.

    A subject is what a name says beyond its account, its kind, numbers and
    filler; what one account's names alone say (a brand spelled apart from the
    account record, a transliteration) is no product. In a run of few
    accounts (an explanation, a test) every subject word counts. Only words
    in Latin letters: a product named in another script is a translation
    ("フリート分析" is "Fleet analytics"), no contradiction.
    """
    spread: dict[str, set[int]] = {}
    for subject, owners in zip(subjects, company_of_subject):
        for word in subject.split():
            spread.setdefault(word, set()).update(owners)
    if companies < 50:
        return [frozenset()] * len(subjects)
    least = 5
    product = {w for w, owners in spread.items() if len(owners) >= least and w.isascii()}
    return [frozenset(w for w in subject.split() if w in product) for subject in subjects]

"""What a deal name says beyond its account: the kind of deal, and what it is about.

Copies of one deal are renamed from system to system ("Acme - Renewal FY25",
"ACME renewal 2025"), so a name weighs little as a whole. Two parts of it
survive a rename, and they tell the deals of one account apart:

- the **deal type** it names: new business, renewal, expansion, pilot,
  services, partner ("Acme upsell – 20 seats" is an expansion in any system;
  an account's renewal is not its pilot);
- the **subject**: what is left once the account, the type words, numbers and
  filler ("deal", "seats") are gone, usually a product or project ("Team
  Plan" is not "Analytics Suite").

The vocabulary is data: ``deal_types`` and ``deal_name_filler`` in
``lexicon.yaml``. Entries of scripts written without spaces (Chinese,
Japanese, Korean) are found inside words ("…契約更新"); others as whole
words or word sequences. Names are read from the name key (folded, the
account's own words already gone), one word at a time from a cache: an
account's deals repeat a handful of words, so a million names cost little.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from rapidfuzz import process
from rapidfuzz.distance import OSA

from pipesync.consolidate.keys import Lexicon, fold

# A word this long one slip (a swapped, dropped or doubled letter) away from a vocabulary word is that word:
# "Renewl FY25" is a renewal, and its "renewl" no subject that would contradict another renewal's product.
_SLIP_FROM = 4
# Scripts whose words are not separated by spaces: a vocabulary entry in them is searched inside words.
_UNSPACED = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# "海康贸易analytics" → "海康贸易 analytics": where a rep glued a Latin product to a CJK account
_SCRIPT_CHANGE = re.compile(r"(?<=[a-z0-9])(?=[^\x00-\x7f])|(?<=[^\x00-\x7f])(?=[a-z0-9])")
FILLER = ""  # the "type" of a filler entry: recognised, then dropped


class DealNameReader:
    """Reads deal types and subjects out of name keys, caching per word."""

    def __init__(self, lexicon: Lexicon, company_words: Iterable[str] = ()):
        entries = [(fold(phrase), kind) for kind, phrases in lexicon.deal_types.items() for phrase in phrases]
        entries += [(fold(word), FILLER) for word in lexicon.deal_name_filler]
        self._single: dict[str, str] = {}
        self._sequences: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        inside: dict[str, str] = {}
        for phrase, kind in entries:
            words = tuple(phrase.split())
            if len(words) > 1:
                self._sequences.setdefault(words[0], []).append((words, kind))
            elif words and _UNSPACED.search(words[0]):
                inside.setdefault(words[0], kind)
            elif words:
                self._single.setdefault(words[0], kind)
        for sequences in self._sequences.values():
            sequences.sort(key=lambda s: -len(s[0]))  # longest first: "proof of concept" before "proof"
        self._inside = sorted(inside.items(), key=lambda e: -len(e[0]))  # "追加導入" before "導入"
        self._company = frozenset(company_words)
        self._words: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        known = {w for phrase, _ in entries for w in phrase.split()}
        self._vocabulary = sorted(w for w in known if len(w) >= _SLIP_FROM and w.isascii())
        self._known = frozenset(known)
        self._spelled: dict[str, str] = {w: w for w in known}
        # phrases written without their spaces, for slips across a word boundary ("Ne wBusiness", "Nwe Business")
        self._joined = {"".join(words): words for sequences in self._sequences.values() for words, _ in sequences
                        if all(w.isascii() for w in words) and len("".join(words)) >= _SLIP_FROM + 2}
        self._joined_lengths = {len(j) + d for j in self._joined for d in (-1, 0, 1)}
        self._rejoined: dict[str, tuple[str, ...] | None] = {}

    def read(self, name_key: str) -> tuple[tuple[str, ...], str]:
        """(the deal types named, sorted; the subject) of one name key."""
        words = self._rejoin([self._spelled.get(w) or self._spell(w) for w in name_key.split()])
        kinds: list[str] = []
        rest: list[str] = []
        i, count = 0, len(words)
        while i < count:
            word = words[i]
            sequence = self._sequence_at(words, i) if word in self._sequences else None
            if sequence is not None:
                kinds.append(sequence[1])
                i += sequence[0]
                continue
            word_kinds, parts = self._words.get(word) or self._word(word)
            kinds += word_kinds
            rest += parts
            i += 1
        types = tuple(sorted(set(kinds) - {FILLER})) if kinds else ()
        return types, " ".join(dict.fromkeys(rest) if len(rest) > 1 else rest)

    def _rejoin(self, words: list[str]) -> list[str]:
        """``words`` with two or three neighbours that are a slip of a vocabulary phrase read as that phrase."""
        out: list[str] = []
        i = 0
        while i < len(words):
            for width in (2, 3):
                part = words[i:i + width]
                if len(part) < width or all(w in self._known for w in part):
                    continue  # every word already known: nothing slipped
                joined = "".join(part)
                if len(joined) not in self._joined_lengths or not joined.isascii():
                    continue
                if joined not in self._rejoined:
                    best = process.extractOne(joined, list(self._joined), scorer=OSA.distance, score_cutoff=1)
                    self._rejoined[joined] = self._joined[best[0]] if best else None
                if self._rejoined[joined] is not None:
                    out += self._rejoined[joined]
                    i += width
                    break
            else:
                out.append(words[i])
                i += 1
        return out

    def _spell(self, word: str) -> str:
        """The vocabulary word ``word`` is a slip of, or ``word`` itself; cached."""
        spelled = word
        if len(word) >= _SLIP_FROM and word.isascii() and word not in self._company and not word.isdigit():
            best = process.extractOne(word, self._vocabulary, scorer=OSA.distance, score_cutoff=1)
            spelled = best[0] if best else word
        self._spelled[word] = spelled
        return spelled

    def _sequence_at(self, words: list[str], i: int) -> tuple[int, str] | None:
        """(length, kind) of the vocabulary sequence starting at ``words[i]``, if one does."""
        for sequence, kind in self._sequences[words[i]]:
            if tuple(words[i:i + len(sequence)]) == sequence:
                return len(sequence), kind
        return None

    def _word(self, word: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(kinds named in one word, what remains of it for the subject), cached."""
        kinds: list[str] = []
        parts: list[str] = []
        for part in _SCRIPT_CHANGE.sub(" ", word).split():
            if _UNSPACED.search(part):
                for entry, kind in self._inside:
                    if entry in part:
                        kinds.append(kind)
                        part = part.replace(entry, " ")
                parts += part.split()
            else:
                parts.append(part)
        rest = []
        for part in parts:
            kind = self._single.get(part)
            if kind is not None:
                kinds.append(kind)
            # numbers are the numbers key's; the account's words say nothing about which deal it is
            elif part not in self._company and not any(c.isdigit() for c in part):
                rest.append(part)
        known = self._words[word] = (tuple(kinds), tuple(rest))
        return known

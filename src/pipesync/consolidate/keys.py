"""Normalization keys: what makes two spellings of one company, domain or deal name equal.

Folding is the same for names and for the lexicon (``lexicon.yaml``, data, not
code): NFKC (full/half width), case folding, accents stripped from alphabetic
scripts, dots and apostrophes dropped ("S.p.A." = "SpA"), other punctuation and
symbols turned into spaces. Company names then lose their legal forms, in many
languages and scripts; domains come from account websites and contact emails,
free-mail providers ignored.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pipesync.yamlfile import load_model

LEXICON_FILE = "lexicon.yaml"

_ASCII_PUNCT = b"!\"#$%&()*+,-/:;<=>?@[\\]^_`{|}~\t\n\r\x0b\x0c"
# bytes.translate is a table lookup in C, many times faster than str.translate with a dict
_ASCII_TABLE = bytes.maketrans(_ASCII_PUNCT + b"ABCDEFGHIJKLMNOPQRSTUVWXYZ",
                               b" " * len(_ASCII_PUNCT) + b"abcdefghijklmnopqrstuvwxyz")
# The combining diacritics of Latin, Greek and Cyrillic; marks of other scripts
# (Japanese dakuten, Indic vowel signs) carry meaning and are kept.
_ACCENTS = re.compile("[\u0300-\u036f]+")
_DROPPED = re.compile("[.'\u2019\u02bc\u00b7]+")
_SEPARATORS = re.compile(r"[\W_]+")


def fold_words(text: str) -> list[str]:
    """``text`` folded for comparison (width, case, accents, punctuation), as words."""
    if not text.isascii():
        # office software types dashes and apostrophes as "–", "—", "’": written as the ASCII
        # ones, which fold alike, the plain text around them takes the fast path
        plain = text.replace("\u2013", "-").replace("\u2014", "-").replace("\u2019", "'")
        if plain.isascii() and plain.isprintable():  # (ASCII control characters fold differently)
            text = plain
    if text.isascii():
        return text.encode().translate(_ASCII_TABLE, b".'").decode().split()
    text = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    text = unicodedata.normalize("NFC", _ACCENTS.sub("", text))
    return _SEPARATORS.sub(" ", _DROPPED.sub("", text)).split()


def fold(text: str) -> str:
    """``text`` folded for comparison: width, case, accents, punctuation; single spaces."""
    return " ".join(fold_words(text))


class Lexicon(BaseModel):
    """The normalization data (``lexicon.yaml``); users may point to their own copy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    legal_forms: dict[str, list[str]]
    leading_legal_forms: list[str] = Field(default_factory=list)
    unspaced_legal_forms: list[str] = Field(default_factory=list)
    stop_words: list[str] = Field(default_factory=list)
    free_mail_domains: list[str] = Field(default_factory=list)
    multi_label_suffixes: list[str] = Field(default_factory=list)
    # what deal names say beyond the account (deal_names.py): deal type → its words, and filler words
    deal_types: dict[str, list[str]] = Field(default_factory=dict)
    deal_name_filler: list[str] = Field(default_factory=list)
    # distinguishing tokens (tokens.py): words a seat count or a phase number goes with, region names
    seat_words: list[str] = Field(default_factory=list)
    phase_words: list[str] = Field(default_factory=list)
    regions: dict[str, list[str]] = Field(default_factory=dict)

    @cached_property
    def trailing_forms(self) -> frozenset[tuple[str, ...]]:
        return frozenset(tuple(fold(f).split()) for forms in self.legal_forms.values() for f in forms if fold(f))

    @cached_property
    def _leading(self) -> frozenset[tuple[str, ...]]:
        return frozenset(tuple(fold(f).split()) for f in self.leading_legal_forms if fold(f))

    @cached_property
    def _unspaced(self) -> tuple[str, ...]:
        # longest first, so "股份有限公司" goes before "公司"
        return tuple(sorted({fold(f).replace(" ", "") for f in self.unspaced_legal_forms} - {""}, key=len, reverse=True))

    @cached_property
    def _stop(self) -> frozenset[str]:
        return frozenset(fold(w) for w in self.stop_words)

    @cached_property
    def free_mail(self) -> frozenset[str]:
        return frozenset(d.lower() for d in self.free_mail_domains)

    @cached_property
    def _suffixes(self) -> frozenset[str]:
        return frozenset(s.lower() for s in self.multi_label_suffixes)

    @cached_property
    def _form_ends(self) -> tuple[frozenset[str], frozenset[str]]:
        """The words trailing forms end with, and those leading forms start with: other names keep their ends."""
        return frozenset(form[-1] for form in self.trailing_forms), frozenset(form[0] for form in self._leading)

    @cached_property
    def _one_word_forms(self) -> frozenset[str]:
        return frozenset(form[0] for form in self.trailing_forms if len(form) == 1)

    def name_noise(self, account_words: list[str], company: tuple[str, ...]) -> frozenset[str]:
        """The words of a deal name that only repeat its account: company words, and the account's as spelled
        (``account_words``: its name folded).

        (Legal forms are noise too: ``name_key`` drops them itself, rather than
        every account's set holding a copy of them.)
        """
        return frozenset(company) | frozenset(account_words)

    def deal_name_key(self, name: str, noise: frozenset[str]) -> tuple[str, str]:
        """A deal name's words without its company's words, and the numbers it mentions.

        ("Acme Inc – Renewal 2025, 40 seats" → "renewal 2025 40 seats", "2025 40".)
        Deal names usually repeat the account (in whatever spelling the system
        holds), which says nothing about *which* deal of that account it is;
        ``noise`` is the account's words (``name_noise``); legal forms go too.
        When nothing else is left the name is kept whole. Numbers (a year, a
        quantity) often are all that tells two deals of one account apart.
        """
        words = fold_words(name)
        return self.name_key(words, noise), name_numbers(words)

    def name_key(self, words: list[str], noise: frozenset[str]) -> str:
        """The key of a deal name already folded into ``words`` (``deal_name_key``)."""
        return self.name_keys([words], [noise], [(0, 0)])[0]

    def name_keys(
        self, names: Sequence[list[str]], noise: Sequence[frozenset[str]], pairs: Iterable[tuple[int, int]]
    ) -> list[str]:
        """``name_key`` of each (name, account) pair: ``names`` folded into words, ``noise`` of each account.

        Legal forms are dropped once per name, however many accounts it appears with.
        """
        forms = self._one_word_forms
        kept = [[t for t in words if t not in forms] for words in names]
        return [" ".join([t for t in kept[n] if t not in noise[a]] or names[n]) for n, a in pairs]

    def company_tokens(self, name: str | None) -> tuple[str, ...]:
        """The words that name the company, legal forms and stop words removed."""
        return self.company_words(fold_words(name)) if name else ()

    def company_words(self, words: list[str]) -> tuple[str, ...]:
        """``company_tokens`` of a name already folded into ``words``."""
        tokens = [t for t in words if t not in self._stop]
        tokens = _strip_forms(tokens, self.trailing_forms, self._leading, self._form_ends)
        if tokens and not (tokens[0].isascii() and tokens[-1].isascii()):
            tokens = self._strip_unspaced(tokens)
        return tuple(tokens)

    def _strip_unspaced(self, tokens: list[str]) -> list[str]:
        first, last = tokens[0], tokens[-1]
        for form in self._unspaced:
            if last.endswith(form) and len(last) > len(form):
                tokens[-1] = last[: -len(form)]
                break
            if last == form and len(tokens) > 1:
                tokens.pop()
                break
        first = tokens[0]
        for form in self._unspaced:
            if first.startswith(form) and len(first) > len(form):
                tokens[0] = first[len(form):]
                break
            if first == form and len(tokens) > 1:
                tokens.pop(0)
                break
        return tokens

    def domain(self, value: str | None) -> str | None:
        """The registrable domain of a website, URL or bare domain ("https://www.eu.acme.co.uk/x" → "acme.co.uk")."""
        if not value:
            return None
        host = value.strip().lower()
        if "://" in host:
            host = host.split("://", 1)[1]
        host = host.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[-1].split(":", 1)[0]
        host = host.strip(".")
        labels = [label for label in host.split(".") if label]
        if len(labels) < 2:
            return None
        keep = 3 if ".".join(labels[-2:]) in self._suffixes else 2
        return ".".join(labels[-keep:])

    def email_domain(self, email: str | None) -> str | None:
        """The company domain of an email address; None for free-mail providers."""
        return self.email_domains([email])[0]

    def email_domains(self, emails: Iterable[str | None]) -> list[str | None]:
        """``email_domain`` of each address; each host is worked out once (a company's people share it)."""
        hosts: dict[str, str | None] = {}
        found = []
        for email in emails:
            if not email or "@" not in email:
                found.append(None)
                continue
            host = email.rsplit("@", 1)[1]
            if host not in hosts:
                hosts[host] = self._host_domain(host.strip().lower())
            found.append(hosts[host])
        return found

    def _host_domain(self, host: str) -> str | None:
        if host in self.free_mail:
            return None
        d = self.domain(host)
        return None if d is None or d in self.free_mail else d


def _strip_forms(
    tokens: list[str], trailing: frozenset[tuple[str, ...]], leading: frozenset[tuple[str, ...]],
    ends: tuple[frozenset[str], frozenset[str]],
) -> list[str]:
    """Removes stacked legal forms at the end and the start; never empties the name."""
    last_words, first_words = ends
    changed = True
    while changed and len(tokens) > 1 and tokens[-1] in last_words:
        changed = False
        for n in (4, 3, 2, 1):
            if len(tokens) > n and tuple(tokens[-n:]) in trailing:
                del tokens[-n:]
                changed = True
                break
    if len(tokens) > 1 and tokens[0] in first_words:
        for n in (2, 1):
            if len(tokens) > n and tuple(tokens[:n]) in leading:
                del tokens[:n]
                break
    return tokens


def default_lexicon_path() -> Path:
    return Path(str(resources.files("pipesync.consolidate").joinpath(LEXICON_FILE)))


@lru_cache(maxsize=8)
def load_lexicon(path: str | None = None) -> Lexicon:
    return load_model(path or default_lexicon_path(), Lexicon)


def name_numbers(words: list[str]) -> str:
    """The numbers among a folded deal name's ``words``, sorted (``Lexicon.deal_name_key``)."""
    numbers = [t for t in words if t.isdigit()]
    if len(numbers) > 1:
        numbers.sort()
    return " ".join(numbers)

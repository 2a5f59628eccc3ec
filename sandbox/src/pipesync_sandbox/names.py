"""Names for the sandbox world, and the ways real CRMs misspell them.

Companies carry a brand in their own script and in Latin letters, a legal-form
family and a web domain; people carry native and Latin spellings. The
``*_variant`` functions produce what a second system, or a second rep, typed
for the same company, person or deal: other legal suffixes, dropped words,
transliterations, nicknames, case changes and typos.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, replace
from functools import cache

from pipesync_sandbox.lexicon import Names

# German transliteration conventions come first: "Müller" is "Mueller", not "Muller".
_TRANSLIT = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


@cache  # names repeat: a few hundred first and last names across a million records
def ascii_fold(text: str) -> str:
    """``text`` in plain ASCII: umlauts spelled out, other accents dropped."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TRANSLIT))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).encode("ascii", "ignore").decode()


@cache
def slug(text: str, sep: str = "") -> str:
    return re.sub(r"[^a-z0-9]+", sep, ascii_fold(text).lower()).strip(sep)


def _is_ascii(text: str) -> bool:
    return text.isascii()


@dataclass(slots=True, frozen=True)
class Company:
    truth_id: str
    region: str
    country: str
    style: str  # latin | zh | ko | ja | ar
    brand: str  # Latin spelling ("Northwind", "Huaxin", "Al Noor")
    brand_native: str  # own script (same as brand for Latin-script companies)
    industry: str  # Latin/English industry word, may be ""
    industry_native: str
    city: str  # Latin, may be ""
    city_native: str
    legal: tuple[str, ...]  # legal-form family, canonical first
    domain: str

    def legal_native(self) -> str:
        return next((form for form in self.legal if not _is_ascii(form)), self.legal[0])

    def legal_latin(self) -> str:
        return next((form for form in self.legal if _is_ascii(form)), "")

    def latin_name(self, legal: str | None = None) -> str:
        """The English/Latin full name: "Shanghai Huaxin Technology Co., Ltd."."""
        legal = self.legal_latin() if legal is None else legal
        core = " ".join(p for p in (self.city, self.brand, self.industry) if p)
        if not legal:
            return core
        return f"{core}{legal}" if legal.startswith(",") else f"{core} {legal}"

    def native_name(self) -> str:
        """The registered name in the company's own script."""
        legal = self.legal_native()
        match self.style:
            case "latin":
                return self.latin_name()
            case "zh":
                return f"{self.city_native}{self.brand_native}{self.industry_native}{legal}"
            case "ko" | "ja":
                core = f"{self.brand_native}{self.industry_native}"
                glue = "" if legal.startswith("(") or self.style == "ja" else " "
                return f"{legal}{glue}{core}"
            case _:  # ar: "شركة النور الدولية للتجارة ذ.م.م"
                core = " ".join(p for p in ("شركة", self.brand_native, self.industry_native) if p)
                return f"{core} {legal}"

    def short_name(self, native: bool) -> str:
        """What a rep calls the account in a deal name."""
        if native and self.style != "latin":
            return self.brand_native + (self.industry_native if self.style in ("zh", "ko", "ja") else "")
        return self.brand


@dataclass(slots=True, frozen=True)
class Person:
    first: str
    last: str
    first_latin: str
    last_latin: str
    script: str  # latin | zh | ko | ja | ar

    def native_name(self) -> str:
        if self.script in ("zh", "ko", "ja"):  # family name first, no space: 王伟, 김민준, 山田翔
            return f"{self.last}{self.first}"
        return f"{self.first} {self.last}"

    def latin_name(self) -> str:
        return f"{self.first_latin} {self.last_latin}"


def _pick(rng: random.Random, items: list) -> object:
    return items[int(rng.random() * len(items))]


class NameMaker:
    """Draws companies and people from the word lists, never twice the same company name."""

    def __init__(self, lexicon: Names, rng: random.Random):
        self.lex = lexicon
        self.rng = rng
        self._taken: set[str] = set()
        self._regions = list(lexicon.regions)
        self._region_weights = [lexicon.regions[r].weight for r in self._regions]

    def region(self) -> str:
        return self.rng.choices(self._regions, self._region_weights)[0]

    def company(self, truth_id: str, region_code: str) -> Company:
        region = self.lex.regions[region_code]
        rng = self.rng
        for attempt in range(30):
            brand, brand_native, city, city_native = self._brand(region.style)
            industry, industry_native = self._industry(region.industries, region.style)
            if attempt >= 5:  # a crowded name space: a qualifier tells two companies apart ("… Holdings")
                qualifier = _pick(rng, self.lex.qualifiers[region.style])
                native_q, latin_q = (qualifier, qualifier) if isinstance(qualifier, str) else qualifier
                industry = f"{industry} {latin_q}".strip()
                glue = " " if region.style in ("latin", "ar") else ""
                industry_native = f"{industry_native}{glue}{native_q}".strip()
            key = f"{region.style}|{city}|{brand}|{industry}"
            if key not in self._taken:
                break
        else:  # every name of this shape is taken: number the branch, as registries do
            industry = f"{industry} {len(self._taken)}"
            industry_native = f"{industry_native} {len(self._taken)}"
            key = f"{region.style}|{city}|{brand}|{industry}"
        self._taken.add(key)
        tld = _pick(rng, region.tlds)
        domain_core = slug(brand) if rng.random() < 0.6 or not industry else f"{slug(brand)}-{slug(industry, '-')}"
        return Company(
            truth_id=truth_id, region=region_code, country=region.country, style=region.style,
            brand=brand, brand_native=brand_native, industry=industry, industry_native=industry_native,
            city=city, city_native=city_native, legal=tuple(_pick(rng, region.legal)),
            domain=f"{domain_core}.{tld}",
        )

    def _brand(self, style: str) -> tuple[str, str, str, str]:
        rng, lex = self.rng, self.lex
        if style == "latin":
            roll = rng.random()
            if roll < 0.45:
                brand = f"{_pick(rng, lex.brand_starts)}{_pick(rng, lex.brand_ends)}"
            elif roll < 0.7:
                brand = f"{_pick(rng, lex.brand_starts)}{_pick(rng, lex.brand_middles)}{_pick(rng, lex.brand_ends)}"
            else:
                brand = f"{_pick(rng, lex.brand_words_a)}{_pick(rng, lex.brand_words_b)}"
            brand = brand[0].upper() + brand[1:]
            return brand, brand, "", ""
        parts = lex.brand_parts[style]
        first, second = _pick(rng, parts.first), _pick(rng, parts.second)
        city, city_native = ("", "")
        if parts.cities and rng.random() < 0.4:
            city_native, city = _pick(rng, parts.cities)
        if style == "ar":
            native = " ".join(p for p in (first[0], second[0]) if p)
            latin = " ".join(p for p in (first[1], second[1]) if p)
        else:
            native = first[0] + second[0]
            latin = (first[1] + second[1]).capitalize()
        return latin, native, city, city_native

    def _industry(self, list_name: str, style: str) -> tuple[str, str]:
        rng = self.rng
        if style == "latin":
            if rng.random() < 0.25:
                return "", ""
            word = _pick(rng, self.lex.industries[list_name])
            return str(word), str(word)
        native, latin = _pick(rng, self.lex.industries[list_name])
        return latin, native

    def person(self, group: str) -> Person:
        people = self.lex.people[group]
        first, last = _pick(self.rng, people.first), _pick(self.rng, people.last)
        if isinstance(first, tuple):
            return Person(first[0], last[0], first[1], last[1], group)  # type: ignore[index]
        return Person(str(first), str(last), ascii_fold(str(first)), ascii_fold(str(last)), "latin")


# ----------------------------------------------------------------- drift: how other systems spell things


def typo(rng: random.Random, text: str) -> str:
    """One slip of the keyboard: a swapped, dropped or doubled letter."""
    positions = [i for i, c in enumerate(text) if c.isalpha()]
    if len(positions) < 4:
        return text
    i = positions[1 + int(rng.random() * (len(positions) - 2))]
    match int(rng.random() * 3):
        case 0 if i + 1 < len(text):
            return text[:i] + text[i + 1] + text[i] + text[i + 2:]
        case 1:
            return text[:i] + text[i + 1:]
        case _:
            return text[:i] + text[i] + text[i:]


def account_name_variant(rng: random.Random, company: Company, canonical: bool) -> str:
    """The account name as one system holds it; ``canonical`` for the best-kept record."""
    native = company.style != "latin" and rng.random() < 0.6
    if canonical:
        return company.native_name() if native else company.latin_name()
    roll = rng.random()
    if native and roll < 0.5:
        # same script, legal form dropped or abbreviated: "华信科技" / "(주)한빛테크"
        natives = [f for f in company.legal if not _is_ascii(f)]
        if len(natives) > 1 and rng.random() < 0.5:
            return replace(company, legal=(natives[1],)).native_name()
        return company.short_name(native=True)
    legal_forms = [f for f in company.legal if _is_ascii(f)] + [""]
    name = company.latin_name(_pick(rng, legal_forms))
    if rng.random() < 0.25 and company.industry:
        name = name.replace(f" {company.industry}", "", 1)
    roll = rng.random()
    if roll < 0.12:
        name = name.upper()
    elif roll < 0.3:
        name = typo(rng, name)
    elif roll < 0.38:
        name = ascii_fold(name)
    return name


def website_variant(rng: random.Random, domain: str) -> str | None:
    roll = rng.random()
    if roll < 0.08:
        return None
    if roll < 0.55:
        return f"https://www.{domain}"
    if roll < 0.75:
        return f"www.{domain}"
    if roll < 0.9:
        return domain
    return f"http://{domain}/"


def person_name_variant(rng: random.Random, person: Person, lexicon: Names, canonical: bool) -> str:
    """A colleague's display name as one system spells it."""
    if canonical:
        return person.native_name()
    roll = rng.random()
    if person.script != "latin":
        return person.latin_name() if roll < 0.7 else f"{person.last_latin} {person.first_latin}"
    first = person.first
    if roll < 0.3 and first in lexicon.nicknames:
        return f"{lexicon.nicknames[first]} {person.last}"
    if roll < 0.45:
        return f"{first[0]}. {person.last}"
    if roll < 0.6:
        return ascii_fold(person.native_name())
    if roll < 0.7:
        return f"{person.last}, {first}"
    return person.native_name()


def email_for(person: Person, domain: str, style: int) -> str:
    first, last = slug(person.first_latin), slug(person.last_latin)
    match style % 3:
        case 0:
            local = f"{first}.{last}"
        case 1:
            local = f"{first[:1]}{last}"
        case _:
            local = first
    return f"{local}@{domain}"

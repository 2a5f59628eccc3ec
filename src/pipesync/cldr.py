"""Locale data from CLDR, through Babel: currency codes, currency symbols and month names of every locale.

Kept by the Unicode consortium and updated with each Babel release, so a new currency
(XCG, ZWG) or a locale's spelling of a month arrives without a hand-kept list here. Only
the reading of that data (which symbol is read as which currency, which month prefix is
unambiguous) is pipesync's.

Each table is built once per process, when first needed: the codes from Babel's global
data (a millisecond); the symbols and month names in one pass over every locale file
(under half a second), which a sync pays only when it meets a currency sign or a month name. The
locale files are read directly rather than through ``babel.Locale``, whose cache would keep
every locale (some 160 MB) for the rest of the run.
"""

from __future__ import annotations

import pickle
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache

from babel import localedata
from babel.core import get_global

# A code in use on or after this day somewhere is a currency a deal may be in: CRMs keep
# deals for years (a 2022 Croatian deal is in HRK), and CLDR marks when each one ended.
IN_USE_SINCE = (2010, 1, 1)


@cache
def currency_codes() -> frozenset[str]:
    """ISO 4217 codes of the currencies that are or were legal tender somewhere since ``IN_USE_SINCE``.

    Funds and metals (XAU, XDR …) are never legal tender, so deals are never priced in them.
    """
    return frozenset(
        code
        for entries in get_global("territory_currencies").values()
        for code, _start, end, tender in entries
        if tender and (end is None or end >= IN_USE_SINCE)
    )


@dataclass(frozen=True, slots=True)
class _Locales:
    symbols: dict[str, tuple[str, ...]]
    months: dict[str, dict[int, frozenset[str]]]


def currency_symbols() -> dict[str, tuple[str, ...]]:
    """Each currency sign any locale writes (``$``, ``kr``, ``₾``) → the codes it stands for, the usual reading first.

    The usual reading is English's where English has one (``$`` is USD, ``¥`` JPY), then the
    currency more locales write so. Signs that are a bare ISO code, or a single Latin letter
    (which would take the ``k`` of ``12k`` for a currency), are left out.
    """
    return _locales().symbols


def month_names() -> dict[str, dict[int, frozenset[str]]]:
    """Every way a locale writes a month, in full and abbreviated (case-folded, NFC, without a final dot)
    → the month(s) it names → the languages that write it so (``"listopad"``: October in hr, November in cs, pl …)."""
    return _locales().months


@cache
def _locales() -> _Locales:
    uses: dict[str, Counter[str]] = {}  # symbol → code → how many locales write the code so
    english: dict[str, str] = {}
    months: dict[str, dict[int, set[str]]] = {}
    codes = currency_codes()
    for name in ("root", *localedata.locale_identifiers()):
        with open(localedata.resolve_locale_filename(name), "rb") as f:
            data = pickle.load(f)  # Babel's own locale file, as babel.localedata reads it
        for code, written in data.get("currency_symbols", {}).items():
            symbol = "".join(c for c in written if unicodedata.category(c) != "Cf").strip()  # no bidi marks
            if code in codes and _is_sign(symbol, code):
                uses.setdefault(symbol, Counter())[code] += 1
                if name == "en":
                    english[symbol] = code
        for context in data.get("months", {}).values():
            for width in ("wide", "abbreviated"):
                names = context.get(width) if isinstance(context, dict) else None
                for month, text in (names.items() if isinstance(names, dict) else ()):
                    spelling = unicodedata.normalize("NFC", text.casefold().rstrip("."))
                    if spelling.isalpha():
                        months.setdefault(spelling, {}).setdefault(month, set()).add(name.split("_")[0])
    symbols = {
        symbol: tuple(sorted(counts, key=lambda code: (code != english.get(symbol), -counts[code], code)))
        for symbol, counts in uses.items()
    }
    return _Locales(symbols, {s: {m: frozenset(langs) for m, langs in named.items()} for s, named in months.items()})


def _is_sign(symbol: str, code: str) -> bool:
    """Whether ``symbol`` is worth looking for in a written amount."""
    if symbol.isascii() and symbol.isalpha() and (len(symbol) == 1 or (len(symbol) == 3 and symbol.isupper())):
        return False  # "K" (kwacha) would take the k of 12k; "ABC" is read as a code already
    return bool(symbol) and symbol != code and not any(c.isdigit() for c in symbol)

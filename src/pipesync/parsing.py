"""Reading values as people and CRMs write them: amounts, dates, timestamps, percentages.

Each parser returns a typed value or raises ``ValueError`` with a reason the
user can act on; :mod:`pipesync.normalize` adds the field and record. Parsers
cache by input text because exports repeat the same dates and amounts a lot.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

from pipesync import cldr

# Currency signs as people write them that CLDR has not, or reads otherwise: Indian exports write
# "Rs" for rupees (CLDR: Pakistani, Sri Lankan …), Romanian ones "lei"; Arabic abbreviations
# without their final dot. These readings come first; every other sign is CLDR's (pipesync.cldr).
_WRITTEN_SIGNS: dict[str, tuple[str, ...]] = {
    "Rs": ("INR",), "Rs.": ("INR",), "SG$": ("SGD",), "lei": ("RON",), "R": ("ZAR",), "円": ("JPY",), "원": ("KRW",),
    "د.إ": ("AED",), "ر.س": ("SAR",), "﷼": ("SAR",),
}


@cache
def _signs() -> tuple[dict[str, tuple[str, ...]], re.Pattern[str]]:
    """Currency sign → ISO codes (the first is the reading when the source's default currency does not
    settle it: "$" is USD unless the source is CAD, AUD …), and a pattern finding any sign, longest first."""
    signs = dict(cldr.currency_symbols())
    for sign, codes in _WRITTEN_SIGNS.items():
        signs[sign] = codes + tuple(c for c in signs.get(sign, ()) if c not in codes)
    # Alternatives grouped by their first character: a search over 200 signs then costs about
    # what one over 40 did (0.25 us against 0.5 us ungrouped).
    rests: dict[str, list[str]] = {}
    for sign in sorted(signs, key=len, reverse=True):
        rests.setdefault(sign[0], []).append(re.escape(sign[1:]))
    return signs, re.compile("|".join(f"{re.escape(first)}(?:{'|'.join(r)})" for first, r in rests.items()))


_CODE_RE = re.compile(r"(?<![A-Za-z])([A-Z]{3})(?![A-Za-z])")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_NUMBER_CHARS = re.compile(r"[^0-9.,'\s\u00a0\u202f\u2009-]")
# Shorthand people type in sheets: 12k, $1.5M, 2bn.
_SCALES = {"k": 3, "m": 6, "mm": 6, "mn": 6, "b": 9, "bn": 9}
_SCALED = re.compile(r"\d\s*(k|mm|mn|m|bn|b)\.?$", re.IGNORECASE)
_NO_CENTS = re.compile(r"([.,])[-\u2013\u2014]{1,2}$")  # "1.000,-": whole units, as German and Swiss prices write them
_LAKH_GROUPS = re.compile(r"\d{1,2}(,\d{2})*,\d{3}(\.\d*)?")  # 1,00,000: Indian grouping (lakh, crore)


def _pick(symbol: str, default_currency: str | None) -> str:
    codes = _signs()[0][symbol]
    return default_currency if default_currency in codes else codes[0]


def parse_amount(text: str, decimal_separator: str | None = None, default_currency: str | None = None) -> tuple[Decimal, str | None]:
    """``"$1,234.50"`` → (Decimal("1234.50"), "USD"); ``"1.234,50 €"`` → (…, "EUR").

    The decimal separator is the configured one; otherwise the last of "." and
    "," when both appear, and a lone "," followed by exactly three digits is a
    thousands separator (money seldom has three decimals), as are dots when
    there are several (1.234.567). "(12.00)", "$(12.00)", "-12", "12-" and "−12" are negative;
    "1.000,-" is whole units; "12k", "1.5M" and "2bn" are scaled; "1,00,000" is
    Indian grouping.
    """
    if decimal_separator != "," and _PLAIN_NUMBER.fullmatch(text):
        # the common case, what APIs and most exports write: mostly distinct values, so not worth a cache
        return Decimal(text), None
    return _parse_written_amount(text.strip(), decimal_separator, default_currency)


@lru_cache(maxsize=65536)
def _parse_written_amount(s: str, decimal_separator: str | None, default_currency: str | None) -> tuple[Decimal, str | None]:
    if _PLAIN_NUMBER.fullmatch(s) and decimal_separator != ",":  # a plain number with blanks around it
        return Decimal(s), None
    if not s:
        raise ValueError("empty amount")
    negative = s.startswith("(") and s.endswith(")")
    if negative:
        s = s[1:-1].strip()
    currency = None
    m = _CODE_RE.search(s)
    if m:
        currency, s = m.group(1), s[: m.start()] + s[m.end():]
    if _NUMBER_CHARS.search(s):  # more than a number: a currency sign perhaps (the signs are loaded only then)
        m = _signs()[1].search(s)
        if m:
            currency = currency or _pick(m.group(0), default_currency)
            s = s[: m.start()] + s[m.end():]
    s = s.strip().replace("\u2212", "-")  # the typographic minus sign
    if not negative and s.startswith("(") and s.endswith(")"):  # $(4,500.00), EUR (4,500.00): inside the sign
        negative, s = True, s[1:-1].strip()
    scale = 0
    m = _SCALED.search(s)
    if m:
        scale, s = _SCALES[m.group(1).lower()], s[: m.start(1)].rstrip()
    dec = decimal_separator
    m = _NO_CENTS.search(s)
    if m:
        dec, s = dec or m.group(1), s[: m.start()]
    if _NUMBER_CHARS.search(s):
        raise ValueError("not an amount")
    if s.startswith("-"):
        negative, s = not negative, s[1:]
    elif s.endswith("-"):  # 12,345.67- as ERP exports write a credit
        negative, s = not negative, s[:-1]
    s = re.sub(r"[\s\u00a0\u202f\u2009']", "", s)
    if dec is None:
        if "." in s and "," in s:
            dec = "." if s.rfind(".") > s.rfind(",") else ","
        elif s.count(",") == 1 and not re.search(r",\d{3}$", s):
            dec = ","
        elif s.count(".") > 1:  # 1.234.567: dots that can only group thousands
            dec = ","
        else:
            dec = "."
    thousands = "," if dec == "." else "."
    if s.count(dec) > 1:
        raise ValueError(f"more than one decimal separator {dec!r}")
    if (
        thousands in s
        and not re.fullmatch(r"\d{1,3}(" + re.escape(thousands) + r"\d{3})+(" + re.escape(dec) + r"\d*)?", s)
        and not (thousands == "," and _LAKH_GROUPS.fullmatch(s))
    ):
        raise ValueError(f"misplaced thousands separator {thousands!r}")
    s = s.replace(thousands, "").replace(dec, ".")
    if not re.fullmatch(r"\d+(\.\d*)?|\.\d+", s):
        raise ValueError("not an amount")
    try:
        value = Decimal(s)
    except InvalidOperation:
        raise ValueError("not an amount") from None
    if scale:
        value *= 10**scale
        value = value.to_integral_value() if value == value.to_integral_value() else value  # 1500000, not 1500000.0
    return (-value if negative else value), currency


_MONTH_ABBREVIATIONS = {"mrz": 3}  # German for März, as exports write it; CLDR has "mär" only
# A month name is read when at least this share of the languages writing it mean the same month:
# "may" (or a name it begins) is May in 22 languages and another month in 3 (Basaa, Duala …);
# "listopad" is November in Czech, Polish and Silesian but October in Croatian, and is refused.
MONTH_CONSENSUS = 0.8


@cache
def _months() -> dict[str, int]:
    """Month names and abbreviations of every CLDR locale, with or without accents, and their prefixes
    of three letters or more ("Sept.", "janv.", "juil"), each read as the month the languages writing
    it agree on (``MONTH_CONSENSUS``); a prefix one language writes for two months ("jui") is not read."""
    votes: dict[str, dict[str, set[int]]] = {}  # text → language → the months it writes so
    for spelling, named in cldr.month_names().items():
        for month, languages in named.items():
            for form in {spelling, _unaccented(spelling)}:
                for end in range(3, len(form) + 1):
                    for language in languages:
                        votes.setdefault(form[:end], {}).setdefault(language, set()).add(month)
    readings = {}
    for text, by_language in votes.items():
        # A language that writes the text for two months (French "jui": juin, juillet) cannot vote.
        ballots = Counter(next(iter(months)) for months in by_language.values() if len(months) == 1)
        if ballots:
            month, n = ballots.most_common(1)[0]
            if n >= MONTH_CONSENSUS * len(by_language):
                readings[text] = month
    return readings | _MONTH_ABBREVIATIONS


def _unaccented(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_NUMERIC_DATE = re.compile(r"^(\d{1,4})[./\-](\d{1,2})[./\-](\d{1,4})\.?$")
_CJK_DATE = re.compile(r"^(\d{4})\s*[年./-]\s*(\d{1,2})\s*[月./-]\s*(\d{1,2})\s*[日일]?\.?$")
_KO_DATE = re.compile(r"^(\d{4})년\s*(\d{1,2})월\s*(\d{1,2})일$")
# "15 Dec 2026", "15. Dezember 2026", "15 de diciembre de 2026", "15/Dec/2026", "Dec 15th, 2026",
# each maybe after a weekday ("Tuesday, December 15, 2026").
_NAMED_DATE = re.compile(
    r"^(?:[^\W\d_]+\.?,?\s+)?"
    r"(?:(\d{1,2})\.?(?:\s+de)?[\s\-./]+([^\W\d_]+)\.?(?:\s+de)?[\s\-,./]+(\d{2,4})"
    r"|([^\W\d_]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4}))$"
)
_TIME_TAIL = re.compile(r"^(.*?\d)[T\s,]+(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?\s*([AaPp][Mm])?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})?$")


def _year(y: int) -> int:
    return y + 2000 if y < 70 else y + 1900 if y < 100 else y


@lru_cache(maxsize=65536)
def parse_date(text: str, order: str | None = None, formats: tuple[str, ...] = ()) -> date:
    """A calendar date from ISO, US, European, named-month and CJK forms, or a timestamp's day.

    An all-numeric date whose day and month could be swapped (03/04/2024) needs
    ``order`` ("DMY", "MDY" or "YMD"); without it, it is refused, never guessed.
    """
    s = text.strip()
    for fmt in formats:
        try:
            return datetime.strptime(s, fmt).date()
        except ValueError:
            pass
    m = _ISO_DATE.match(s) or _CJK_DATE.match(s) or _KO_DATE.match(s)
    if m:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = _NUMERIC_DATE.match(s)
    if m:
        a, b, c = (int(g) for g in m.groups())
        if len(m.group(1)) == 4:  # 2024/05/07 is always year-month-day
            return date(a, b, c)
        year = _year(c)
        if order == "DMY" or (order is None and a > 12 >= b):
            return date(year, b, a)
        if order == "MDY" or (order is None and b > 12 >= a):
            return date(year, a, b)
        if order == "YMD":
            return date(_year(a), b, c)
        if a == b:
            return date(year, a, b)
        raise ValueError("ambiguous date: day and month could be swapped; set parse.date_order (DMY or MDY)")
    m = _NAMED_DATE.match(s)
    if m:
        if m.group(1):
            day, month, year = m.group(1), m.group(2), m.group(3)
        else:
            month, day, year = m.group(4), m.group(5), m.group(6)
        mon = _months().get(unicodedata.normalize("NFC", month.casefold().rstrip(".")))
        if mon is None:
            raise ValueError(f"unknown month name {month!r}")
        return date(_year(int(year)), mon, int(day))
    m = _TIME_TAIL.match(s)
    if m:
        # A timestamp where a date belongs (HubSpot exports close dates as "2024-05-31 14:00"):
        # the day as written, never moved through a timezone, as the API adapters read it.
        return parse_date(m.group(1), order, formats)
    raise ValueError("not a date")


# Day 0 of a spreadsheet's serial dates (Excel's 1900 system and OpenDocument's alike; Excel's
# phantom 29 February 1900 puts its serials before March 1900 a day off, and no deal is that old).
SERIAL_EPOCH = datetime(1899, 12, 30)


def serial_datetime(text: str) -> datetime:
    """A spreadsheet's serial date-time (days since its epoch, the time as a fraction): naive, as written."""
    days = float(text)
    if not 0 < days < 2958466:  # 9999-12-31
        raise ValueError(f"{text} is no spreadsheet date (a serial day between 1 and 2958465)")
    return SERIAL_EPOCH + timedelta(days=days)


def numeric_date_order(text: str) -> Literal["DMY", "MDY", "ambiguous"] | None:
    """What an all-numeric date (or a timestamp's date) shows of its order.

    "DMY" for 15/12/2026, "MDY" for 12/15/2026, "ambiguous" for 03/04/2026,
    None when the order does not matter (ISO, 2024/05/07, 04/04/2026, named months).
    """
    s = text.strip()
    m = _TIME_TAIL.match(s)
    m = _NUMERIC_DATE.match(m.group(1) if m else s)
    if m is None or len(m.group(1)) == 4:
        return None
    a, b, year = int(m.group(1)), int(m.group(2)), _year(int(m.group(3)))
    # Only a date that exists proves an order: 31/04/2026 is no day at all, not a day-first date.
    if a > 12 >= b:
        return "DMY" if _exists(year, b, a) else None
    if b > 12 >= a:
        return "MDY" if _exists(year, a, b) else None
    return "ambiguous" if a != b and a <= 12 and b <= 12 else None


def _exists(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


@lru_cache(maxsize=65536)
def parse_datetime(text: str, tz: str = "UTC", order: str | None = None, formats: tuple[str, ...] = ()) -> datetime:
    """An aware UTC instant. Timestamps without an offset are read in ``tz`` (the source's zone)."""
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s.replace("+0000", "+00:00") if s.endswith("+0000") else s)
    except ValueError:
        dt = None
    if dt is None:
        for fmt in formats:
            try:
                dt = datetime.strptime(s, fmt)
                break
            except ValueError:
                pass
    if dt is None:
        m = _TIME_TAIL.match(s)
        if m:
            day = parse_date(m.group(1), order)
            hour, minute, sec = int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)
            micro = int((m.group(5) or "0").ljust(6, "0"))
            ampm = (m.group(6) or "").lower()
            if ampm:
                if not 1 <= hour <= 12:
                    raise ValueError("hour out of range for AM/PM")
                hour = hour % 12 + (12 if ampm == "pm" else 0)
            dt = datetime(day.year, day.month, day.day, hour, minute, sec, micro)
            offset = m.group(7)
            if offset and offset not in ("Z", "UTC", "GMT"):
                dt = datetime.fromisoformat(dt.isoformat() + offset[:3] + ":" + offset[-2:])
            elif offset:
                dt = dt.replace(tzinfo=timezone.utc)
        else:
            day = parse_date(s, order)
            dt = datetime(day.year, day.month, day.day)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=ZoneInfo(tz))
    return dt.astimezone(timezone.utc)


def parse_day(text: str, tz: str = "UTC", order: str | None = None, formats: tuple[str, ...] = ()) -> date:
    """The calendar day, in ``tz``, of a date or a timestamp ("2026-03-05", "2026-03-05 23:10:00Z").

    For the days things happened (a deal won at 23:10 UTC was won on the 6th in Berlin).
    """
    return parse_datetime(text, tz, order, formats).astimezone(ZoneInfo(tz)).date()


@lru_cache(maxsize=4096)
def parse_probability(text: str) -> float:
    """'60%', '60', '0.6' → 0.6. Whole numbers above 1 are percentages."""
    s = text.strip().rstrip("%").strip().replace(",", ".")
    value = float(s)
    if value > 1 or text.strip().endswith("%"):
        value /= 100
    if not 0 <= value <= 1:
        raise ValueError("probability outside 0–100%")
    return value


def parse_bool(text: str) -> bool:
    s = text.strip().casefold()
    if s in ("true", "1", "yes", "y", "t", "x", "deleted", "ja", "oui", "sí", "si", "是", "예"):
        return True
    if s in ("false", "0", "no", "n", "f", "", "nein", "non", "否", "아니오"):
        return False
    raise ValueError("not a yes/no value")


_DOMAIN_RE = re.compile(r"^(?:[a-z][a-z0-9+.\-]*://)?(?:[^@/]*@)?(?:www\d?\.)?([^/:?#\s]+)", re.I)


def domain_of(website_or_email: str | None) -> str | None:
    """'https://www.Acme.com/about' → 'acme.com'; 'jo@acme.co.uk' → 'acme.co.uk'; nothing → None."""
    s = (website_or_email or "").strip().lower()
    if not s:
        return None
    if "@" in s and "://" not in s:
        s = s.rsplit("@", 1)[1]
    m = _DOMAIN_RE.match(s)
    if not m:
        return None
    host = m.group(1).strip(".")
    return host if "." in host else None


_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def parse_email(text: str) -> str:
    s = text.strip().lower()
    if not _EMAIL_RE.match(s):
        raise ValueError("not an email address")
    return s


def split_list(text: str) -> list[str]:
    """A list cell: 'a@x.com; b@y.com' or 'a, b' → ['a@x.com', 'b@y.com']."""
    return [p.strip() for p in re.split(r"[;,\n|]", text) if p.strip()]

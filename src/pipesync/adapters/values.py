"""Turning API wire values into the typed values ``RawDeal.values`` carries.

Calendar dates stay calendar dates (a close date of 2024-03-31 is that day in every
timezone); instants become UTC-aware datetimes; money becomes Decimal, never float.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit


def decimal_or_none(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def instant(value: Any) -> datetime | None:
    """An aware UTC datetime from ISO 8601 / RFC 3339 text (``Z``, ``+0000``, ``+00:00``), epoch ms, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, tz=timezone.utc)
    text = str(value).strip().replace(" ", "T", 1) if "T" not in str(value) else str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit():  # Salesforce: +0000
        text = text[:-2] + ":" + text[-2:]
    dt = datetime.fromisoformat(text)
    # The vendors document their naive timestamps (Pipedrive v1) as UTC.
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def calendar_date(value: Any) -> date | None:
    """A date-only value: ``YYYY-MM-DD`` as written, or the date part of a datetime string.

    HubSpot stores date-only close dates as midnight UTC; taking the written date part
    (never converting through a local timezone) keeps the same calendar day.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, tz=timezone.utc).date()
    return date.fromisoformat(text[:10])


def boolean(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def domain_of(website: str | None) -> str | None:
    """``https://www.Acme.com/about`` → ``acme.com``."""
    if not website or not str(website).strip():
        return None
    text = str(website).strip()
    host = urlsplit(text if "//" in text else "//" + text).hostname or ""
    host = host.lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return host or None


def chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def wire(value: Any) -> Any:
    """A canonical value as the JSON the vendor APIs accept (dates as YYYY-MM-DD, money as text)."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


SALESFORCE_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_SALESFORCE_ID15 = re.compile(r"[a-zA-Z0-9]{15}")


def salesforce_suffix(id15: str) -> str:
    """The 3-character case-safety suffix Salesforce appends to a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5: chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += SALESFORCE_SUFFIX_CHARS[bits]
    return suffix


def salesforce_id18(record_id: str) -> str:
    """A Salesforce id in its 18-character form: reports export 15, the API and integrations write 18."""
    return record_id + salesforce_suffix(record_id) if _SALESFORCE_ID15.fullmatch(record_id) else record_id

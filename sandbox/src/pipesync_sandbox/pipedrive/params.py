"""Reading Pipedrive query parameters and cursors, refusing bad ones with the vendor's 400.

v2 cursors are opaque to clients; like Pipedrive's they are unpadded base64 of
``{"field", "fieldValue", "sortDirection", "id"}`` — the sort position of the
last record served — so a page boundary survives records being added or
changed in between (keyset paging, not offsets).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar

from pipesync_sandbox.pipedrive.envelope import invalid
from pipesync_sandbox.pipedrive.render import v2_time
from pipesync_sandbox.pipedrive.writes import parse_rfc3339

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
_TIME_FIELDS = ("update_time", "add_time")
T = TypeVar("T")


class Params:
    """One request's query parameters, read with the vendor's validation."""

    def __init__(self, query: Mapping[str, str]):
        self.query = query

    def get(self, name: str) -> str | None:
        value = self.query.get(name)
        return value if value not in (None, "") else None

    def integer(self, name: str, *, minimum: int | None = None) -> int | None:
        text = self.get(name)
        if text is None:
            return None
        try:
            value = int(text)
        except ValueError:
            raise invalid(name, f"'{text}' is not an integer") from None
        if minimum is not None and value < minimum:
            raise invalid(name, f"must be greater than or equal to {minimum}")
        return value

    def limit(self, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
        value = self.integer("limit", minimum=1)
        if value is None:
            return default
        if value > maximum:
            raise invalid("limit", f"must be less than or equal to {maximum}")
        return value

    def choice(self, name: str, options: Iterable[str], default: str) -> str:
        value = self.get(name) or default
        options = tuple(options)
        if value not in options:
            raise invalid(name, f"must be one of {', '.join(options)}")
        return value

    def choices(self, name: str, options: Iterable[str]) -> list[str] | None:
        """A comma-separated subset of ``options`` (None when absent)."""
        text = self.get(name)
        if text is None:
            return None
        options = tuple(options)
        values = [part.strip() for part in text.split(",") if part.strip()]
        for value in values:
            if value not in options:
                raise invalid(name, f"'{value}' is not one of {', '.join(options)}")
        return values

    def ids(self, name: str = "ids", maximum: int = 100) -> list[int] | None:
        text = self.get(name)
        if text is None:
            return None
        try:
            values = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise invalid(name, "must be a comma-separated list of integers") from None
        if len(values) > maximum:
            raise invalid(name, f"must contain at most {maximum} ids")
        return values

    def moment(self, name: str) -> datetime | None:
        text = self.get(name)
        return parse_rfc3339(name, text) if text is not None else None

    def boolean(self, name: str) -> bool:
        text = self.get(name)
        if text is None:
            return False
        if text not in ("true", "false", "1", "0"):
            raise invalid(name, "must be true or false")
        return text in ("true", "1")

    def sorting(self, fields: Iterable[str]) -> tuple[str, bool]:
        """``(sort_by, descending)``; id ascending unless asked otherwise."""
        sort_by = self.choice("sort_by", fields, "id")
        return sort_by, self.choice("sort_direction", ("asc", "desc"), "asc") == "desc"

    def cursor(self, sort_by: str, descending: bool) -> tuple[int, int] | None:
        text = self.get("cursor")
        return decode_cursor(text, sort_by, descending) if text is not None else None


def encode_cursor(sort_by: str, descending: bool, position: tuple[int, int]) -> str:
    key, record_id = position
    shown = v2_time(datetime.fromtimestamp(key, UTC)) if sort_by in _TIME_FIELDS else key
    payload = {"field": sort_by, "fieldValue": shown, "sortDirection": "desc" if descending else "asc",
               "id": record_id}
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(text: str, sort_by: str, descending: bool) -> tuple[int, int]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        field, shown, direction, record_id = (payload[k] for k in ("field", "fieldValue", "sortDirection", "id"))
        key = int(parse_rfc3339("cursor", shown).timestamp()) if field in _TIME_FIELDS else int(shown)
        record_id = int(record_id)
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise invalid("cursor", "is not a valid cursor") from None
    if field != sort_by or direction != ("desc" if descending else "asc"):
        raise invalid("cursor", "was issued for another sort_by/sort_direction")
    return key, record_id


def encode_offset(offset: int) -> str:
    """Cursor of the v1 changelog and v2 field lists: where the next page starts."""
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def decode_offset(text: str | None) -> int:
    if text is None:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))["offset"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise invalid("cursor", "is not a valid cursor") from None
    return offset


def offset_page(items: Sequence[T], params: Params) -> tuple[Sequence[T], str | None]:
    """A cursor-paged slice of a short list (change logs, field catalogues) and the next cursor, or None."""
    start, limit = decode_offset(params.get("cursor")), params.limit()
    more = start + limit < len(items)
    return items[start:start + limit], encode_offset(start + limit) if more else None


def start_page(items: Iterable[T], params: Params) -> tuple[list[T], dict[str, Any]]:
    """A v1 ``start``/``limit`` page of ``items`` (read only as far as needed) and its ``pagination`` block."""
    start = params.integer("start", minimum=0) or 0
    limit = params.limit()
    window = list(islice(items, start, start + limit + 1))  # one more than the page: is there a next one?
    more = len(window) > limit
    pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
    if more:
        pagination["next_start"] = start + limit
    return window[:limit], pagination

"""Where an incremental read resumes: the last modification stamp seen, and the records seen at it.

Reads filter ``modified >= stamp`` (inclusive: more records may share the last stamp than
fitted in the page), so records already read at exactly that stamp come back. They are
skipped only when unchanged: each is remembered with a digest of its content, because a
record edited again within the same second keeps its stamp (Salesforce and Pipedrive
stamps have one-second precision) and must not be lost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from typing import Any

import orjson


def digest(record: Any) -> str:
    return hashlib.blake2b(orjson.dumps(record, default=str, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


class Watermark:
    """``stamp`` is the vendor's own text for the stamp (ordered by ``order``); ``seen`` maps
    record id → content digest for the records read at exactly ``stamp``."""

    def __init__(self, stamp: Any = None, seen: dict[str, str] | None = None):
        self.stamp = stamp
        self.seen = dict(seen or {})

    @classmethod
    def load(cls, value: dict[str, Any] | None) -> "Watermark":
        value = value or {}
        return cls(value.get("stamp"), value.get("seen"))

    def dump(self) -> dict[str, Any]:
        return {"stamp": self.stamp, "seen": dict(self.seen)} if self.stamp is not None else {}

    def fresh(self, rows: Iterable[dict[str, Any]], id_of: Callable[[dict[str, Any]], str],
              stamp_of: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
        """The rows not already read, unchanged, at the watermark."""
        return [r for r in rows
                if not (stamp_of(r) == self.stamp and self.seen.get(id_of(r)) == digest(r))]

    def advance(self, rows: Iterable[dict[str, Any]], id_of: Callable[[dict[str, Any]], str],
                stamp_of: Callable[[dict[str, Any]], Any], order: Callable[[Any], Any] = lambda s: s) -> "Watermark":
        """The watermark after ``rows`` (read in stamp order)."""
        stamp, seen = self.stamp, dict(self.seen)
        for r in rows:
            s = stamp_of(r)
            if s is None:
                continue
            if stamp is None or order(s) > order(stamp):
                stamp, seen = s, {}
            if s == stamp:
                seen[id_of(r)] = digest(r)
        return Watermark(stamp, seen)

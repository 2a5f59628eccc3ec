"""Metadata (pipelines, stages, owners, field definitions) kept in the cursor between runs.

An incremental run after a few edits needs a handful of calls: re-listing pipelines, owners and
fields on every run would cost more than the changes. The lists an adapter fetched ride along in
its cursor (JSON in the warehouse's sync state) and the next run starts from them, re-reading a
list only when it is older than the source's ``metadata_refresh_hours``, when a page mentions an id
it does not hold (a new stage, owner or field: :meth:`Metadata.refresh`), or on a full sync.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from pipesync.model import Cursor, Page

KEY = "metadata"  # the cursor's entry
T = TypeVar("T")


class Metadata:
    def __init__(self, refresh_s: float):
        self.refresh_s = refresh_s
        self._lists: dict[str, Any] = {}
        self._at: dict[str, float] = {}
        self._refreshed = False

    def resume(self, since: Cursor | None) -> None:
        """Takes the lists an earlier run kept that are fresh enough."""
        kept = (since.value if since else {}).get(KEY) or {}
        now = time.time()
        for name, entry in kept.items():
            if now - float(entry.get("at", 0)) < self.refresh_s:
                self._lists[name], self._at[name] = entry["value"], float(entry["at"])

    def get(self, name: str, fetch: Callable[[], T]) -> T:
        if name not in self._lists:
            self._lists[name], self._at[name] = fetch(), time.time()
        return self._lists[name]

    def known(self, name: str) -> bool:
        return name in self._lists

    def forget(self, name: str) -> None:
        self._lists.pop(name, None)
        self._at.pop(name, None)

    def refresh(self) -> bool:
        """Drops the kept lists when a page found them stale (it names an id they lack), once per run:
        True if they will be re-read. An id the source itself no longer lists costs no call per page."""
        if self._refreshed:
            return False
        self._refreshed = True
        self._lists.clear()
        self._at.clear()
        return True

    def carried(self, pages: Iterable[Page]) -> Iterator[Page]:
        """The pages, each cursor keeping the lists fetched so far."""
        for page in pages:
            if page.cursor is not None and self._lists:
                kept = {name: {"at": self._at[name], "value": value} for name, value in self._lists.items()}
                page.cursor = Cursor(value={**page.cursor.value, KEY: kept})
            yield page

"""Every write a sandbox applied through its API, in order: what tests read in-process to prove a
change landed exactly once (a dropped response, a re-run) and nothing else was touched.

The vendor stores call :meth:`WriteLog.record` where they apply a write; the request it came with
(method and path) is known through :data:`REQUEST`, which the fault middleware (outermost layer of
every sandbox app) sets per request. Changes made by test helpers (``touch_deals`` …) are a user's
edits, not API writes, and are not logged.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

# (method, path) of the API request being handled, or None outside one.
REQUEST: ContextVar[tuple[str, str] | None] = ContextVar("pipesync_sandbox_request", default=None)


@dataclass(frozen=True, slots=True)
class Write:
    seq: int
    method: str
    path: str
    record_id: str
    fields: dict[str, Any]  # the fields the write set, as the API received them (deleted: {"deleted": True})


class WriteLog:
    def __init__(self) -> None:
        self._entries: list[Write] = []
        self._lock = threading.Lock()

    def record(self, record_id: str, fields: dict[str, Any]) -> None:
        request = REQUEST.get()
        if request is None:
            return
        with self._lock:
            self._entries.append(Write(len(self._entries) + 1, request[0], request[1], str(record_id), dict(fields)))

    @property
    def entries(self) -> list[Write]:
        with self._lock:
            return list(self._entries)

    def of(self, record_id: str) -> list[Write]:
        return [w for w in self.entries if w.record_id == str(record_id)]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

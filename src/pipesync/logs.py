"""pipesync's logging, configured once per process: how much (``-v``/``-q``) and in which form
(``--log-format text|json``), plus progress lines for runs nobody watches.

Modules log through ``logging.getLogger(__name__)`` (all under the ``pipesync`` logger) and
attach structured fields with :func:`event`. The command line calls :func:`configure`; a
library user (Airflow, Dagster) keeps their own logging and sees the same records. In JSON
form every line is one object — time, level, logger, event, and the fields (run id, step,
source, counts, durations, API calls and 429s) — and nothing else is written to the stream.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import IO, Any, Literal

ROOT = "pipesync"
LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
# Seconds between two progress lines of one source when no terminal shows a live bar.
PROGRESS_EVERY_ENV = "PIPESYNC_PROGRESS_EVERY"
PROGRESS_EVERY = 10.0

_format: LogFormat = "text"


def current_format() -> LogFormat:
    """The form :func:`configure` chose (text until it is called): errors follow it too."""
    return _format


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False, separators=(",", ":"))


class TextLines(logging.Formatter):
    """``2026-12-05T17:00:00Z INFO message key=value …``: one line a record, readable in a cron mail."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = " ".join(f"{k}={_compact(v)}" for k, v in getattr(record, "fields", {}).items())
        line = f"{stamp} {record.levelname} {record.getMessage()}" + (f" {fields}" if fields else "")
        return line + ("\n" + self.formatException(record.exc_info) if record.exc_info else "")


def _compact(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, separators=(",", ":"))
    return str(value)


def configure(verbosity: int = 0, fmt: LogFormat = "text", stream: IO[str] | None = None) -> None:
    """Sends pipesync's records to ``stream`` (stderr): INFO by default, DEBUG with ``-v``,
    WARNING with ``-q``, ERROR with ``-qq``. ``-vv`` adds the libraries' own records (HTTP calls)."""
    global _format
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose text or json")
    _format = fmt
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines() if fmt == "json" else TextLines())
    level = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO}.get(max(-2, min(verbosity, 1)), logging.DEBUG)
    ours, everyone = logging.getLogger(ROOT), logging.getLogger()
    ours.setLevel(level)
    if verbosity >= 2:  # one handler, at the root, for pipesync's records and the libraries'
        ours.handlers[:], ours.propagate = [], True
        everyone.handlers[:] = [handler]
        everyone.setLevel(level)
    else:
        ours.handlers[:], ours.propagate = [handler], False


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Logs ``message`` with structured ``fields`` (shown as key=value, or as keys of the JSON object)."""
    logger.log(level, message, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def progress_lines(logger: logging.Logger, step: str, every: float | None = None,
                   clock: Callable[[], float] = time.monotonic, **fields: Any) -> Callable[[str, int], None]:
    """A progress callback ``(source, n)`` that logs each source's total at most every ``every``
    seconds (``PIPESYNC_PROGRESS_EVERY``, default 10): what a long step says under cron, where
    a live bar would print nothing readable."""
    every = float(os.environ.get(PROGRESS_EVERY_ENV, PROGRESS_EVERY)) if every is None else every
    started: dict[str, float] = {}
    done: dict[str, int] = {}
    last: dict[str, float] = {}

    def advance(source: str, n: int) -> None:
        now = clock()
        started.setdefault(source, now)
        done[source] = done.get(source, 0) + n
        if now - last.setdefault(source, now) >= every:
            last[source] = now
            elapsed = now - started[source]
            event(logger, f"{step} {source}: {done[source]} records", step=step, source=source,
                  records=done[source], seconds=round(elapsed, 1),
                  per_second=round(done[source] / elapsed, 1) if elapsed else None, **fields)

    return advance

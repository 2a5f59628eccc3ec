"""One run at a time per warehouse and source: overlapping runs of a source wait or stop, saying who holds it.

PostgreSQL: a session-level advisory lock keyed from the warehouse's schema and the source, held
by a connection of its own; the holder's pid, host and start are in that session's
``application_name``, which a refused run reads from ``pg_stat_activity``. SQLite: an OS file
lock (filelock) in ``<database>.locks/``, the holder written beside it. Both locks belong to
the process: when it dies (even ``kill -9``) the server or the kernel releases them, so a
lock left by a killed run is simply free for the next one. Different sources never wait for
each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import Connection, text

from pipesync.errors import RunInProgress
from pipesync.warehouse.store import Warehouse

POLL_SECONDS = 0.25  # how often a waiting run tries again


def holder_tag() -> dict[str, str]:
    """Who takes a lock: this process, its host, since when."""
    return {"pid": str(os.getpid()), "host": socket.gethostname()[:24],
            "since": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def lock_keys(namespace: str, source: str) -> tuple[int, int]:
    """Two non-negative 31-bit keys for PostgreSQL's two-key advisory lock."""
    digest = hashlib.sha256(f"pipesync run\0{namespace}\0{source}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1, int.from_bytes(digest[4:8], "big") >> 1


@contextmanager
def source_lock(warehouse: Warehouse, source: str, wait: float = 0.0) -> Iterator[float]:
    """Holds the lock of ``source`` in ``warehouse`` for the block; yields the seconds spent waiting.

    ``wait``: how long to wait for a run that holds it (0: stop at once) before raising
    :class:`RunInProgress` with the holder's pid, host and start.
    """
    if not warehouse.shared_across_processes:  # an in-memory database: no other process can see it
        yield 0.0
        return
    take = _postgres_lock if warehouse.engine.dialect.name == "postgresql" else _file_lock
    with take(warehouse, source, wait) as waited:
        yield waited


def _busy(source: str, warehouse: Warehouse, holder: dict[str, str] | None, waited: float) -> RunInProgress:
    who = (f"since {holder.get('since', '?')}, pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
           if holder else "(its holder did not say who it is)")
    after = f"; waited {waited:.0f} s" if waited >= 1 else ""
    return RunInProgress(f"another run of {source} is in progress {who} (warehouse {warehouse.safe_url}){after}: "
                         f"let it finish, or give --wait SECONDS to wait for it")


def _waiting(wait: float) -> Iterator[float]:
    """Yields the seconds waited so far before each attempt, until ``wait`` has passed."""
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        yield waited
        if waited >= wait:
            return
        time.sleep(min(POLL_SECONDS, max(0.0, wait - waited)))


# -- PostgreSQL ----------------------------------------------------------------------------------

@contextmanager
def _postgres_lock(warehouse: Warehouse, source: str, wait: float) -> Iterator[float]:
    keys = dict(zip(("a", "b"), lock_keys(warehouse.lock_namespace, source)))
    tag = holder_tag()
    conn = warehouse.engine.connect()  # the lock lives as long as this session
    try:
        conn.execute(text("SELECT set_config('application_name', :tag, false)"),
                     {"tag": f"pipesync pid={tag['pid']} host={tag['host']} since={tag['since']}"[:63]})
        waited = 0.0
        for waited in _waiting(wait):
            got = conn.execute(text("SELECT pg_try_advisory_lock(:a, :b)"), keys).scalar()
            conn.commit()
            if got:
                break
        else:
            raise _busy(source, warehouse, _postgres_holder(conn, keys), waited)
        try:
            yield waited
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:a, :b)"), keys)
            conn.execute(text("SELECT set_config('application_name', '', false)"))
            conn.commit()
    finally:
        conn.close()


def _postgres_holder(conn: Connection, keys: dict[str, int]) -> dict[str, str] | None:
    name = conn.execute(text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 "
        "AND l.classid::bigint = :a AND l.objid::bigint = :b"), keys).scalar()
    conn.commit()
    if not name or not name.startswith("pipesync "):
        return None
    return dict(part.split("=", 1) for part in name.split()[1:] if "=" in part)


# -- SQLite: a file lock beside the database -----------------------------------------------------

@contextmanager
def _file_lock(warehouse: Warehouse, source: str, wait: float) -> Iterator[float]:
    from filelock import FileLock, Timeout

    database = Path(warehouse.engine.url.database or "")
    folder = database.with_name(database.name + ".locks")
    folder.mkdir(exist_ok=True)
    lock = FileLock(folder / f"{source}.lock")
    holder_file = folder / f"{source}.holder"
    started = time.monotonic()
    try:
        lock.acquire(timeout=wait, poll_interval=POLL_SECONDS)
    except Timeout:
        try:
            holder = json.loads(holder_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            holder = None
        raise _busy(source, warehouse, holder, time.monotonic() - started) from None
    try:
        holder_file.write_text(json.dumps(holder_tag()), encoding="utf-8")
        yield time.monotonic() - started
    finally:
        lock.release()

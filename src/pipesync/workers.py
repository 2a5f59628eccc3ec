"""Work done in forked child processes that report back over a pipe.

Used where a run splits into independent parts (a large file's row ranges) and
the machine's other cores would otherwise sit idle while Python works through
rows one core at a time. Fork, not spawn: a child starts with everything the
parent has already built (settings, mapping, normalizer, known deals) instead
of importing and rebuilding it. Where fork is not available, callers do the
work in-process.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from pipesync.errors import PipesyncError

Send = Callable[[Any], None]


class WorkerError(PipesyncError):
    """A worker process failed; the message says which and why."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def cpu_count() -> int:
    """The cores this process may run on (a container's or a scheduler's share, not the machine's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Worker:
    """``target(send)`` running in a forked child; what it sends and returns comes back here."""

    def __init__(self, name: str, target: Callable[[Send], Any]):
        self.name = name
        context = multiprocessing.get_context("fork")
        self._inbox, outbox = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(target, outbox, os.getpid()), name=name, daemon=True)
        self._process.start()
        outbox.close()  # only the child holds its end now: once it exits, reading hits end-of-file
        self._end: tuple[str, Any] | None = None

    def received(self, on_message: Callable[[Any], None]) -> None:
        """Hands over the messages that have arrived, without waiting for more."""
        while self._end is None and self._inbox.poll():
            self._take(on_message)

    def finish(self, on_message: Callable[[Any], None]) -> Any:
        """Waits for the worker, handing over its messages; returns what ``target`` returned."""
        while self._end is None:
            self._take(on_message)
        self._process.join()
        kind, payload = self._end
        if kind == "error":
            raise WorkerError(f"{self.name}: {payload}")
        return payload

    def stop(self) -> None:
        """Ends the worker now; a transaction it had open is rolled back by the database."""
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()

    def _take(self, on_message: Callable[[Any], None]) -> None:
        try:
            kind, payload = self._inbox.recv()
        except EOFError:
            self._process.join()
            code = self._process.exitcode or 0
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            kind, payload = "error", f"the worker process {how} before it finished"
        if kind == "message":
            on_message(payload)
        else:
            self._end = (kind, payload)


def _child(target: Callable[[Send], Any], outbox: Connection, parent: int) -> None:
    _die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent handles it and stops its workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        outbox.send(("result", target(lambda message: outbox.send(("message", message)))))
        status = 0
    except PipesyncError as e:
        outbox.send(("error", str(e)))
        status = 1
    except Exception as e:  # a bug: its type and message, as the in-process run would show them
        outbox.send(("error", f"{e.__class__.__name__}: {e}"))
        status = 1
    # Leave now: exiting normally flushes stdout, whose lock another of the parent's threads
    # (a progress bar's) may have held when it forked; nothing here wrote to it.
    os._exit(status)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this child when its parent dies, even by SIGKILL.

    Without it an orphaned worker would go on writing while a re-run of the
    sync starts from what the warehouse held.
    """
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # libc's, linked into the interpreter
    if os.getppid() != parent:  # the parent died before the kernel knew to tell us
        os._exit(1)

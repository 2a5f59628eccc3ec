"""The second core: numpy work in two threads, and Python work in a forked worker.

Consolidation is CPU-bound, in one process. numpy releases the GIL in its
loops, so independent numpy work (the passes of blocking, the comparisons of
scoring) overlaps in two threads (``thread_map``). Python code holds the GIL,
but some of it is independent too (the keys of deal names and those of the
other columns; which member wins each field of a golden deal, and the golden
rows of single deals): one part runs in a forked worker (``pipesync.workers``)
while this process does the other (``SideJob``). The worker sees this
process's memory as it was, so it is handed a million records for nothing; its
result comes back pickled, which is cheap for numpy arrays and a few strings,
and should be kept to them. The worker does copy every memory page whose
objects it reads (their reference counts are written), as does this process
for pages it reads while the worker lives: a side job costs about the memory
of what both read.

Where forking is unavailable, on one core, or for small inputs, the function
simply runs here when its result is asked for: the same result, on one core.
If the worker fails (killed, out of memory, or an error in the function), the
work is done again here, so a real error is raised as it would be in one
process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from pipesync.workers import Worker, WorkerError, can_fork, cpu_count

T = TypeVar("T")
R = TypeVar("R")

# Work on this many deals (or pairs) is worth a second core: below, a fork or a thread costs more than it saves.
PARALLEL_FROM = 20_000


def thread_map(fn: Callable[[T], R], items: Iterable[T], worth_it: bool = True) -> Iterator[R]:
    """``map(fn, items)``, two at a time in threads when ``worth_it`` and there are cores for it; in order."""
    items = list(items)
    if not worth_it or len(items) < 2 or cpu_count() < 2:
        yield from map(fn, items)
        return
    with ThreadPoolExecutor(max_workers=2) as pool:
        yield from pool.map(fn, items)


class SideJob(Generic[T]):
    """``fn(*args)``, computed in a forked worker when ``worth_it`` and there is a core for it, else here
    when its result is first asked for.

    A job whose result is never asked for is stopped when it is closed (as a
    context manager, or when it is dropped).
    """

    def __init__(self, fn: Callable[..., T], *args: Any, worth_it: bool = True):
        self._fn: Callable[..., T] | None = fn
        self._args = args
        self._value: T | None = None
        self._worker: Worker | None = None
        if worth_it and can_fork() and cpu_count() > 1:
            self._worker = Worker(getattr(fn, "__qualname__", "side job"), lambda send: fn(*args))

    def result(self) -> T:
        """The function's value (waiting for the worker), or its exception."""
        if self._fn is not None:
            self._value = self._from_worker(self._fn) if self._worker is not None else self._fn(*self._args)
            self._fn, self._args = None, ()  # done: the inputs are let go
        return self._value  # type: ignore[return-value]

    def _from_worker(self, fn: Callable[..., T]) -> T:
        worker, self._worker = self._worker, None
        assert worker is not None
        try:
            return worker.finish(lambda message: None)
        except WorkerError:  # killed, out of memory, or fn failed: done again here (a real error is raised here)
            return fn(*self._args)

    def close(self) -> None:
        """Stops a worker whose result was never asked for."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None

    def __enter__(self) -> SideJob[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

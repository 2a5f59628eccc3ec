"""Rate-limit accounting for the sandboxes: rolling windows and daily budgets.

Both answer ``try_acquire(cost) -> Decision`` and never block; the vendor app
turns a refused decision into its own 429/403 and its own headers.

``time_scale`` makes time pass faster for the limiter: a 10-second window with
``time_scale=100`` lasts 0.1 real seconds. Everything a limiter reports
(``reset_s``, ``retry_after_s``, ``interval_s``) is in *real* seconds, so a
client that paces itself by the response headers paces correctly at any
scale. ``time_scale`` may be a number or a zero-argument callable (e.g.
``lambda: faults.time_scale``) so a running server follows a change.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]
# An event leaves its window this close to the exact instant too: float sums of times are not exact.
_CLOCK_SLACK_S = 1e-9
TimeScale = float | Callable[[], float]


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    remaining: int  # what is left in the window/period after this request
    reset_s: float  # real seconds until the window/period frees capacity again
    retry_after_s: float | None  # real seconds to wait before this request can pass; None when allowed


def _scale_of(time_scale: TimeScale) -> float:
    scale = time_scale() if callable(time_scale) else time_scale
    if scale <= 0:
        raise ValueError(f"time_scale must be positive, got {scale}")
    return scale


class _Limiter:
    """What both limiters share: a limit over a span of limiter time, and that span in real seconds."""

    def __init__(self, limit: int, span_s: float, time_scale: TimeScale, clock: Clock):
        if limit <= 0 or span_s <= 0:
            raise ValueError("a limit and its time span must be positive")
        _scale_of(time_scale)
        self.limit = limit
        self._span_s = span_s
        self._time_scale = time_scale
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def interval_s(self) -> float:
        """The window or period in real seconds, as a vendor reports it in its headers."""
        return self._span_s / _scale_of(self._time_scale)

    def try_acquire(self, cost: int = 1) -> Decision:
        """Spend ``cost`` if it fits now; never blocks."""
        with self._lock:
            return self._decide(cost, self._clock(), self.interval_s)

    def _decide(self, cost: int, now: float, interval: float) -> Decision:
        raise NotImplementedError


class RollingWindow(_Limiter):
    """At most ``limit`` cost units in any rolling ``window_s`` seconds (HubSpot 10 s, Pipedrive 2 s)."""

    def __init__(self, limit: int, window_s: float, time_scale: TimeScale = 1.0, clock: Clock = time.monotonic):
        super().__init__(limit, window_s, time_scale, clock)
        self.window_s = window_s
        self._events: deque[tuple[float, int]] = deque()  # (real time, cost), oldest first
        self._used = 0

    def _decide(self, cost: int, now: float, interval: float) -> Decision:
        self._expire(now, interval)
        if self._used + cost <= self.limit:
            self._events.append((now, cost))
            self._used += cost
            return Decision(True, self.limit - self._used, self._reset_s(now, interval), None)
        return Decision(False, self.limit - self._used, self._reset_s(now, interval),
                        self._wait_for(cost, now, interval))

    def _expire(self, now: float, interval: float) -> None:
        while self._events and self._events[0][0] + interval <= now + _CLOCK_SLACK_S:
            self._used -= self._events.popleft()[1]

    def _reset_s(self, now: float, interval: float) -> float:
        return self._events[0][0] + interval - now if self._events else 0.0

    def _wait_for(self, cost: int, now: float, interval: float) -> float:
        """Real seconds until enough of the window has expired for ``cost`` to fit."""
        if cost > self.limit:
            return interval  # it never fits; say "a full window" rather than promise a time
        needed = self._used + cost - self.limit
        freed = 0
        for at, event_cost in self._events:
            freed += event_cost
            if freed >= needed:
                # whole milliseconds, rounded up, so that waiting exactly this long is always enough
                return math.ceil(round(max(at + interval - now, 0.0) * 1000, 6)) / 1000
        return interval


class DailyBudget(_Limiter):
    """At most ``limit`` cost units per period (a day by default), all restored when the period ends.

    Periods are counted from the budget's creation, not from midnight: a scaled
    clock has no midnight, and a fresh sandbox starting with a full budget is
    what tests and benchmarks want.
    """

    def __init__(self, limit: int, period_s: float = 86_400.0, time_scale: TimeScale = 1.0,
                 clock: Clock = time.monotonic):
        super().__init__(limit, period_s, time_scale, clock)
        self.period_s = period_s
        self._period_start = clock()
        self._used = 0

    @property
    def used(self) -> int:
        """Cost spent in the current period (a period that has ended counts as a fresh one)."""
        with self._lock:
            self._roll(self._clock(), self.interval_s)
            return self._used

    def _roll(self, now: float, interval: float) -> None:
        if now - self._period_start >= interval:
            self._period_start += math.floor((now - self._period_start) / interval) * interval
            self._used = 0

    def _decide(self, cost: int, now: float, interval: float) -> Decision:
        self._roll(now, interval)
        reset = self._period_start + interval - now
        if self._used + cost <= self.limit:
            self._used += cost
            return Decision(True, self.limit - self._used, reset, None)
        return Decision(False, self.limit - self._used, reset, reset)

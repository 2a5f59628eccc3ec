"""The one retry and rate-limit policy every API adapter shares.

Three small pieces, each usable alone:

- :class:`Pacer`: a client-side sliding window fed by the vendor's limit headers, so
  steady state never provokes a 429 (HubSpot ``X-HubSpot-RateLimit-*``, Pipedrive
  ``x-ratelimit-*``), plus a daily-quota reserve check (Salesforce ``Sforce-Limit-Info``).
- :class:`Policy`: tenacity retries of :class:`Transient` failures (429, 5xx, timeouts,
  dropped connections) honouring ``Retry-After``; one token refresh and replay on
  :class:`TokenExpired`; never a blind replay of a write whose fate is unknown.

Adapters classify their transport's outcomes into :class:`Transient`, :class:`TokenExpired`
or a final :mod:`pipesync.errors` error; the policy never sees vendor types. A transport
failure keeps its cause (``raise Transient(...) from exc``): a certificate that cannot be
verified is found there, whatever the transport, and stops the run at once with what is
wrong with it (:func:`certificate_error`).
"""

from __future__ import annotations

import logging
import random
import re
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Any, TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from pipesync.adapters.options import ApiOptions
from pipesync.errors import AuthError, CertificateError, QuotaReserveReached, RateLimitError, SourceError
from pipesync.redaction import scrub

log = logging.getLogger(__name__)
T = TypeVar("T")


# ---------------------------------------------------------------- failure kinds

class Transient(Exception):
    """A failure worth retrying.

    ``replay_safe`` says whether the request certainly had no effect (a 429, a refused
    connection): only then may a non-idempotent request be sent again.
    """

    def __init__(self, reason: str, *, retry_after: float | None = None, replay_safe: bool = False,
                 rate_limited: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.replay_safe = replay_safe
        self.rate_limited = rate_limited


class TokenExpired(Exception):
    """The access token expired: refresh once and replay."""


class AmbiguousWrite(SourceError):
    """A non-idempotent request failed in a way that leaves its effect unknown.

    The adapter resolves it by checking (external id, idempotency key) before any resend.
    """


# ---------------------------------------------------------------- certificates

_TRUST_IT = "set the source's ca_bundle option to the PEM file of the CA that signed it"
# OpenSSL's verify codes (x509_vfy.h): what is wrong with the certificate, and what fixes it.
_CERTIFICATE_PROBLEMS: dict[int, tuple[str, str]] = {
    18: ("it is self-signed", "set the source's ca_bundle option to a PEM file holding that certificate"),
    19: ("it was signed by an unknown CA (a self-signed root in its chain)", _TRUST_IT),
    2: ("it was signed by an unknown CA", _TRUST_IT),
    20: ("it was signed by an unknown CA", _TRUST_IT),
    21: ("it was signed by an unknown CA", _TRUST_IT),
    10: ("it has expired", "the server's certificate must be renewed (ca_bundle cannot make an expired certificate valid)"),
    9: ("it is not valid yet", "check this machine's clock (ca_bundle cannot help)"),
    62: ("it was issued for another host name",
         "point the source's URL at a name the certificate was issued for (ca_bundle cannot fix a name mismatch)"),
    64: ("it was issued for another host (not this IP address)",
         "point the source's URL at a name the certificate was issued for (ca_bundle cannot fix a name mismatch)"),
}


def certificate_error(exc: BaseException, system: str, what: str) -> CertificateError | None:
    """The error for a transport failure caused by a certificate that could not be verified, else None.

    httpx, urllib3 and requests each wrap the ``ssl`` error differently (cause, ``reason``,
    an argument): all of them are searched.
    """
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, ssl.SSLCertVerificationError):
            detail = str(e.verify_message or e.reason or "verification failed")
            problem, fix = _CERTIFICATE_PROBLEMS.get(
                e.verify_code, (detail, "if the server uses a private CA, " + _TRUST_IT))
            return CertificateError(f"{system}: the server's TLS certificate could not be verified ({what}): "
                                    f"{problem} ({detail}). Fix: {fix}.")
        todo.extend(x for x in (e.__cause__, e.__context__, getattr(e, "reason", None), *e.args)
                    if isinstance(x, BaseException))
    return None


# ---------------------------------------------------------------- limit headers

@dataclass(frozen=True, slots=True)
class Budget:
    """What a response's headers say about the caller's remaining allowance."""

    limit: int | None = None  # requests allowed per window
    remaining: int | None = None  # left in the current window
    window: float | None = None  # seconds
    reset: float | None = None  # seconds until the window resets
    daily_used: int | None = None
    daily_max: int | None = None

    @property
    def daily_remaining(self) -> int | None:
        if self.daily_max is None or self.daily_used is None:
            return None
        return self.daily_max - self.daily_used


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for k, v in headers.items():
        if k.lower() == name:
            return v
    return None


def _int(v: str | None) -> int | None:
    try:
        return None if v is None else int(float(v))
    except ValueError:
        return None


def hubspot_budget(headers: Mapping[str, str]) -> Budget:
    interval = _int(_header(headers, "x-hubspot-ratelimit-interval-milliseconds"))
    return Budget(
        limit=_int(_header(headers, "x-hubspot-ratelimit-max")),
        remaining=_int(_header(headers, "x-hubspot-ratelimit-remaining")),
        window=None if interval is None else interval / 1000,
        daily_max=_int(_header(headers, "x-hubspot-ratelimit-daily")),
        daily_used=(None if _header(headers, "x-hubspot-ratelimit-daily-remaining") is None
                    or _header(headers, "x-hubspot-ratelimit-daily") is None
                    else _int(_header(headers, "x-hubspot-ratelimit-daily"))
                    - _int(_header(headers, "x-hubspot-ratelimit-daily-remaining"))),  # type: ignore[operator]
    )


def pipedrive_budget(headers: Mapping[str, str]) -> Budget:
    # No window length is reported: pacing follows ``remaining`` and waits out ``reset`` at zero.
    reset = _header(headers, "x-ratelimit-reset")
    return Budget(
        limit=_int(_header(headers, "x-ratelimit-limit")),
        remaining=_int(_header(headers, "x-ratelimit-remaining")),
        reset=None if reset is None else float(reset),
    )


_SF_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


def salesforce_budget(headers: Mapping[str, str]) -> Budget:
    m = _SF_USAGE.search(_header(headers, "sforce-limit-info") or "")
    return Budget(daily_used=int(m.group(1)), daily_max=int(m.group(2))) if m else Budget()


def retry_after_seconds(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or HTTP date), else None."""
    value = _header(headers, "retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


# ---------------------------------------------------------------- pacing

class Pacer:
    """Keeps requests inside a rolling window learned from the vendor's headers.

    Where the window's length is known (HubSpot reports it; Pipedrive's is documented), the
    pacer remembers when each of the last ``limit`` requests was answered and waits, before
    the next one, until the oldest has left the window (plus a 1% slack).
    The server's ``remaining`` tells it how much of the window other clients used, which
    shrinks its share. Without a window, it stops at ``remaining`` 0 until the reset.
    """

    def __init__(self, *, limit: int | None = None, window: float | None = None, slack: float = 0.01,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.limit = limit
        self.window = window
        self.slack = slack
        self.clock = clock
        self.sleep = sleep
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._unseen = 0  # requests in the window that the server counted but we did not send
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds spent pacing, for benchmarks

    def acquire(self) -> float:
        """Wait for a free slot and take it; returns the slot's stamp for :meth:`done`."""
        with self._lock:
            wait = self._wait_needed(self.clock())
            if wait > 0:
                self.waited += wait
                self.sleep(wait)
            stamp = self.clock()
            self._sent.append(stamp)
            return stamp

    def done(self, stamp: float) -> None:
        """Move a slot's time to when its response arrived.

        The server counts a request when it handles it, which can be well after we sent
        it on a slow or busy connection; counting from the response is never early.
        """
        with self._lock:
            for i in range(len(self._sent) - 1, -1, -1):
                if self._sent[i] == stamp:
                    self._sent[i] = self.clock()
                    return

    def _wait_needed(self, now: float) -> float:
        wait = max(0.0, self._blocked_until - now)
        if self.limit and self.window:
            while self._sent and self._sent[0] <= now - self.window:
                self._sent.popleft()
            # Requests the server counted that we did not send (other clients) shrink our share.
            allowed = self.limit - self._unseen
            if self._sent and len(self._sent) >= allowed:
                oldest = self._sent[max(len(self._sent) - max(allowed, 1), 0)]
                wait = max(wait, oldest + self.window * (1 + self.slack) - now)
        return wait

    def observe(self, budget: Budget) -> None:
        """Learn the window from a response's headers."""
        with self._lock:
            if budget.limit and budget.limit > 0:
                self.limit = budget.limit
            if budget.window and budget.window > 0:
                self.window = budget.window
            if budget.remaining is None:
                return
            now = self.clock()
            if self.limit and self.window:
                # The sliding window paces precisely (the reset header has whole-second
                # precision); it only needs to know how much of the budget others used.
                ours = sum(1 for t in self._sent if t > now - self.window)
                self._unseen = max(0, self.limit - budget.remaining - ours)
            elif budget.remaining <= 0:
                pause = budget.reset if budget.reset is not None else self.window
                if pause:
                    self._blocked_until = max(self._blocked_until, now + pause)

    def back_off(self, seconds: float) -> None:
        """Hold every request for ``seconds`` (a 429 told us the window is full)."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self.clock() + seconds)


class DailyQuota:
    """Stops a run, resumably, before a daily API allocation falls under the reserve."""

    def __init__(self, reserve: int, system: str):
        self.reserve = reserve
        self.system = system
        self.used: int | None = None
        self.max: int | None = None

    def observe(self, budget: Budget) -> None:
        if budget.daily_max is not None:
            self.used, self.max = budget.daily_used, budget.daily_max

    def check(self) -> None:
        if self.max is None or self.used is None:
            return
        remaining = self.max - self.used
        if remaining < self.reserve:
            raise QuotaReserveReached(
                f"{self.system}: stopped to keep the daily API reserve ({remaining} of {self.max} calls left, "
                f"reserve {self.reserve}). The sync resumes from its last committed page on the next run; "
                f"lower the source's quota_reserve option to use more of the allocation."
            )


# ---------------------------------------------------------------- the policy

@dataclass(slots=True)
class CallStats:
    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    refreshes: int = 0


class Policy:
    """Runs one request with pacing, retries, one token refresh, and error translation.

    ``send`` performs exactly one request. It raises :class:`Transient` for what may be
    retried, :class:`TokenExpired` when the token expired, and a pipesync error for the rest.
    """

    def __init__(self, system: str, *, pacer: Pacer | None = None, quota: DailyQuota | None = None,
                 refresh: Callable[[], None] | None = None, max_attempts: int = 8,
                 base_delay: float = 0.5, max_delay: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.system = system
        self.pacer = pacer or Pacer()
        self.quota = quota
        self.refresh = refresh
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.sleep = sleep
        self.stats = CallStats()

    @classmethod
    def from_options(cls, system: str, options: ApiOptions, **kwargs: Any) -> "Policy":
        """A policy with a source's ``max_attempts``, ``retry_base_s`` and ``retry_max_s`` options."""
        return cls(system, max_attempts=options.max_attempts, base_delay=options.retry_base_s,
                   max_delay=options.retry_max_s, **kwargs)

    def call(self, send: Callable[[], T], *, what: str, idempotent: bool = True) -> T:
        refreshed = False

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, Transient) and (idempotent or exc.replay_safe)

        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(retryable),
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._before_sleep,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if self.quota is not None:
                        self.quota.check()
                    slot = self.pacer.acquire()
                    self.stats.calls += 1
                    try:
                        return send()
                    except TokenExpired:
                        if refreshed or self.refresh is None:
                            raise AuthError(
                                f"{self.system}: the access token was refused even after a refresh ({what}); "
                                f"check the source's credentials"
                            ) from None
                        refreshed = True
                        self.stats.refreshes += 1
                        self.refresh()
                        raise Transient("token refreshed", retry_after=0.0, replay_safe=True) from None
                    except Transient as exc:
                        refused = certificate_error(exc, self.system, what)
                        if refused is not None:
                            raise refused from None
                        if exc.rate_limited:
                            self.stats.rate_limited += 1
                            if exc.retry_after is not None:
                                if exc.retry_after > self.max_delay:
                                    # Waiting longer than the user allowed is a stop, resumable, not a silent hang.
                                    raise RateLimitError(
                                        f"{self.system}: the server asks to wait {exc.retry_after:.0f} s before the "
                                        f"next request ({what}), longer than retry_max_s ({self.max_delay:g} s); "
                                        f"stopped here, a re-run resumes where this one stopped") from None
                                # Hold every caller sharing this budget, not just this one.
                                self.pacer.back_off(exc.retry_after)
                        raise
                    finally:
                        self.pacer.done(slot)
        except Transient as exc:
            if not idempotent and not exc.replay_safe:
                raise AmbiguousWrite(f"{self.system}: {what} failed with an unknown outcome ({exc.reason})") from None
            if exc.rate_limited:
                raise RateLimitError(
                    f"{self.system}: rate limit still exceeded after {self.max_attempts} attempts ({what}); "
                    f"the run can be resumed later"
                ) from None
            raise SourceError(f"{self.system}: {what} failed after {self.max_attempts} attempts: {exc.reason}") from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity either returns or raises

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Transient) and exc.retry_after is not None:
            return min(self.max_delay, exc.retry_after)
        # Full jitter: spreads retries of many workers instead of synchronising them.
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (state.attempt_number - 1)))

    def _before_sleep(self, state: RetryCallState) -> None:
        self.stats.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        # a warning, not info: an unattended run that waits must say so, and for how long
        log.warning("%s: %s; waiting %.1f s before attempt %d of %d", self.system, getattr(exc, "reason", exc), state.upcoming_sleep,
                    state.attempt_number + 1, self.max_attempts)


def classify_status(status: int, headers: Mapping[str, str], body: str, system: str, what: str,
                    secrets: Iterable[str] = ()) -> Exception:
    """The exception for a failed HTTP status that the vendor did not give a specific meaning.

    429 and 5xx are transient (a 429 was not executed, so it is safe to replay; a 5xx may
    have been); 401/403 are auth errors; anything else is a final :class:`SourceError`.
    """
    detail = scrub(body[:300], secrets)
    if status == 429:
        return Transient(f"HTTP 429 ({detail})", retry_after=retry_after_seconds(headers), replay_safe=True,
                         rate_limited=True)
    if status >= 500:
        return Transient(f"HTTP {status}", retry_after=retry_after_seconds(headers))
    if status in (401, 403):
        return AuthError(f"{system}: {what} was refused (HTTP {status}): {detail}. Check the source's credentials and scopes.")
    return SourceError(f"{system}: {what} failed (HTTP {status}): {detail}")

"""Switchable faults for the sandboxes: what a flaky CRM does to a client.

One :class:`Faults` object per sandbox server, set at start and changeable
while it runs (``faults.update(error_rate=0.1)`` or plain attribute
assignment). All randomness is drawn from ``seed``, so the same sequence of
requests meets the same faults.

Applied to every request by :class:`FaultMiddleware` (outermost ASGI layer):

- ``burst_429_every`` N, ``burst_429_len`` L: after every N passing requests,
  the next L are answered 429 (the vendor's own body and headers, via the
  renderer), with a retry hint of ``burst_retry_after_s`` (scaled by
  ``time_scale``); the cycle restarts when ``update()`` changes N or L;
- ``drop_rate``: the connection is aborted with no response at all; the client
  sees a dropped connection (httpx ``RemoteProtocolError``, requests
  ``ConnectionError``), never a status. Needs :func:`pipesync_sandbox.server.serve`;
- ``error_rate``: answered by the vendor's 5xx;
- ``slow_rate``, ``slow_ms``: the request is delayed, then handled normally;
- ``drop_after_commit_rate``: the request is handled (a write is applied) and then the connection
  is aborted before the response: the client cannot tell whether its write happened, the case that
  makes exactly-once writing hard. Drawn from its own stream, so the other faults of a seed stay put.

It also tells the vendor stores which request they are serving
(:data:`pipesync_sandbox.writelog.REQUEST`), for their write logs.

Queried by the vendor apps, because only they know what a token or a batch is:

- ``faults.token_expired(token) -> bool``: call once per authenticated request
  with the access token it carried. Once a token has been used for
  ``expire_token_after`` requests it is expired for good: the app answers its
  own 401 (``INVALID_SESSION_ID``, ``EXPIRED_AUTHENTICATION``, …) until the
  client fetches a new token from the vendor's token endpoint — which must
  issue a new token string, whose count starts at zero.
- ``faults.batch_item_fails() -> bool``: call once per item of a batch write;
  True for a ``partial_batch_failure_rate`` share of items, which the app then
  reports as failed in its per-item results (207 for HubSpot, ``success:false``
  for Salesforce collections).
- ``faults.time_scale``: rate-limit windows run this many times faster; pass
  ``lambda: faults.time_scale`` as the ``time_scale`` of
  :mod:`pipesync_sandbox.ratelimit` windows so runtime changes apply.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field, fields
from enum import Enum
from typing import Any, Protocol

from starlette.responses import Response

from pipesync_sandbox.server import DROP_CONNECTION
from pipesync_sandbox.writelog import REQUEST

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Injected(Enum):
    NONE = "none"
    TOO_MANY_REQUESTS = "429"
    DROP = "drop"
    SERVER_ERROR = "5xx"
    DROP_AFTER_COMMIT = "drop_after_commit"


@dataclass(frozen=True, slots=True)
class RequestFault:
    """What the middleware does to one request."""

    injected: Injected
    delay_s: float = 0.0
    retry_after_s: float | None = None


_DISCONNECT_WAIT_S = 1.0
_RATES = ("error_rate", "slow_rate", "drop_rate", "partial_batch_failure_rate", "drop_after_commit_rate")


@dataclass
class Faults:
    error_rate: float = 0.0
    burst_429_every: int = 0
    burst_429_len: int = 0
    burst_retry_after_s: float = 1.0
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    drop_rate: float = 0.0
    expire_token_after: int | None = None
    partial_batch_failure_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    time_scale: float = 1.0
    seed: int = 0

    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)
    _request_rng: random.Random = field(init=False, repr=False, compare=False)
    _batch_rng: random.Random = field(init=False, repr=False, compare=False)
    _commit_rng: random.Random = field(init=False, repr=False, compare=False)
    _requests_since_burst_set: int = field(default=0, init=False, repr=False, compare=False)
    _token_uses: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check()
        # Separate streams: batch writes must not shift which requests get faults.
        self._request_rng = random.Random(self.seed)
        self._batch_rng = random.Random(self.seed ^ 0x5EED_BA7C)
        self._commit_rng = random.Random(self.seed ^ 0xC0_3317)

    def _check(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value}")
        for name in ("burst_429_every", "burst_429_len", "slow_ms", "burst_retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"Faults.{name} must not be negative, got {getattr(self, name)}")
        if self.expire_token_after is not None and self.expire_token_after < 1:
            raise ValueError(f"Faults.expire_token_after must be at least 1, got {self.expire_token_after}")
        if self.time_scale <= 0:
            raise ValueError(f"Faults.time_scale must be positive, got {self.time_scale}")

    def update(self, **changes: Any) -> None:
        """Switch faults on a running server; all changes apply together or not at all."""
        public = {f.name for f in fields(self) if f.init}
        unknown = set(changes) - public
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            before = {name: getattr(self, name) for name in changes}
            for name, value in changes.items():
                setattr(self, name, value)
            try:
                self._check()
            except ValueError:
                for name, value in before.items():
                    setattr(self, name, value)
                raise
            if "seed" in changes:
                self.__post_init__()
            if {"burst_429_every", "burst_429_len"} & changes.keys():
                self._requests_since_burst_set = 0

    def next_request(self) -> RequestFault:
        """Decide the fate of the next request (used by :class:`FaultMiddleware`)."""
        with self._lock:
            self._requests_since_burst_set += 1
            # Always draw the same number of values so request n meets the same faults for a seed.
            drop_draw, error_draw, slow_draw = (self._request_rng.random() for _ in range(3))
            commit_draw = self._commit_rng.random()
            delay = self.slow_ms / 1000.0 if slow_draw < self.slow_rate else 0.0
            cycle = self.burst_429_every + self.burst_429_len
            if self.burst_429_every and self.burst_429_len and (self._requests_since_burst_set - 1) % cycle >= self.burst_429_every:
                return RequestFault(Injected.TOO_MANY_REQUESTS, delay, self.burst_retry_after_s / self.time_scale)
            if drop_draw < self.drop_rate:
                return RequestFault(Injected.DROP, delay)
            if error_draw < self.error_rate:
                return RequestFault(Injected.SERVER_ERROR, delay)
            if commit_draw < self.drop_after_commit_rate:
                return RequestFault(Injected.DROP_AFTER_COMMIT, delay)
            return RequestFault(Injected.NONE, delay)

    def token_expired(self, token: str) -> bool:
        """Count one authenticated request made with ``token``; True once the token has expired."""
        with self._lock:
            uses = self._token_uses.get(token, 0) + 1
            self._token_uses[token] = uses
            return self.expire_token_after is not None and uses > self.expire_token_after

    def batch_item_fails(self) -> bool:
        """Draw for one item of a batch write: True if the app must report it as failed."""
        with self._lock:
            return self._batch_rng.random() < self.partial_batch_failure_rate


class FaultRenderer(Protocol):
    """How one vendor says "server error" and "too many requests", in its own format."""

    def server_error(self) -> Response: ...

    def too_many_requests(self, retry_after_s: float | None) -> Response: ...


class FaultMiddleware:
    """ASGI middleware that injects the :class:`Faults` into HTTP requests before the app sees them."""

    def __init__(self, app: ASGIApp, faults: Faults, renderer: FaultRenderer):
        self.app = app
        self.faults = faults
        self.renderer = renderer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        REQUEST.set((scope.get("method", ""), scope.get("path", "")))
        fault = self.faults.next_request()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        match fault.injected:
            case Injected.NONE:
                await self.app(scope, receive, send)
            case Injected.TOO_MANY_REQUESTS:
                await self.renderer.too_many_requests(fault.retry_after_s)(scope, receive, send)
            case Injected.SERVER_ERROR:
                await self.renderer.server_error()(scope, receive, send)
            case Injected.DROP:
                await _drop_connection(scope, receive)
            case Injected.DROP_AFTER_COMMIT:
                await self.app(scope, receive, _discard)
                await _drop_connection(scope, receive)


async def _discard(message: MutableMapping[str, Any]) -> None:
    """The app's response, never sent: the connection dies after the work is done."""


async def _drop_connection(scope: Scope, receive: Receive) -> None:
    abort = scope.get("state", {}).get(DROP_CONNECTION)
    if abort is None:
        raise RuntimeError("dropped-connection faults need the app served by pipesync_sandbox.server.serve")
    abort()
    # Return only once the server has seen the disconnect, so it neither logs
    # "returned without starting response" nor tries to send a 500.
    async with asyncio.timeout(_DISCONNECT_WAIT_S):
        while (await receive())["type"] != "http.disconnect":
            pass

"""Pipedrive's token-based rate limits: a daily token budget per company and a 2-second burst per token.

Every request costs the tokens its endpoint declares (``x-token-cost`` in the
vendor's OpenAPI documents, copied into ``token_costs.yaml``); the company may spend 30,000 × plan multiplier ×
seats tokens a day. Independently, each credential may send a plan-dependent
number of requests in any rolling 2 seconds (OAuth apps four times as many as
API tokens). Both answer 429 when exhausted, and every response reports the
burst window in ``x-ratelimit-*`` headers and, for API-token traffic, the
day's remaining tokens in ``x-daily-requests-left``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, PositiveInt

from pipesync.yamlfile import load_model
from pipesync_sandbox.ratelimit import DailyBudget, Decision, RollingWindow, TimeScale

TOKEN_COSTS_FILE = Path(__file__).with_name("token_costs.yaml")

DAILY_TOKENS_PER_SEAT = 30_000
BURST_WINDOW_S = 2.0
PLAN_MULTIPLIER = {"lite": 1, "growth": 2, "premium": 5, "ultimate": 7}
# Requests per rolling 2 s: (API token, OAuth app).
BURST_LIMIT = {"lite": (20, 80), "growth": (40, 160), "premium": (100, 400), "ultimate": (120, 480)}


class TokenCosts(BaseModel):
    """``token_costs.yaml``: per API version, ``"METHOD /path"`` (the path as the vendor's document writes it)
    → tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v1: dict[str, PositiveInt]
    v2: dict[str, PositiveInt]

    def of(self, version: str, method: str, spec_path: str) -> int:
        try:
            return getattr(self, version)[f"{method.upper()} {spec_path}"]
        except KeyError:
            raise KeyError(f"{TOKEN_COSTS_FILE.name} gives no {version} cost for {method.upper()} {spec_path}; "
                           "add the endpoint's x-token-cost from Pipedrive's OpenAPI document") from None


@cache
def token_costs() -> TokenCosts:
    return load_model(TOKEN_COSTS_FILE, TokenCosts)


def seconds_header(seconds: float) -> str:
    """Whole seconds as Pipedrive sends them; below one second (time-scaled windows) with millisecond precision."""
    if seconds >= 1 or seconds <= 0:
        return str(math.ceil(max(seconds, 0)))
    return f"{seconds:.3f}"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after_s: float | None


class TokenLimits:
    """The company's daily budget and one burst window per credential kind (``api_token`` or ``oauth``)."""

    def __init__(self, plan: str = "growth", seats: int = 1, time_scale: TimeScale = 1.0):
        if plan not in PLAN_MULTIPLIER:
            raise ValueError(f"unknown Pipedrive plan {plan!r}; expected one of {', '.join(PLAN_MULTIPLIER)}")
        if seats < 1:
            raise ValueError(f"seats must be at least 1, got {seats}")
        self.plan = plan
        self.daily = DailyBudget(DAILY_TOKENS_PER_SEAT * PLAN_MULTIPLIER[plan] * seats, time_scale=time_scale)
        api_limit, oauth_limit = BURST_LIMIT[plan]
        self.bursts = {
            "api_token": RollingWindow(api_limit, BURST_WINDOW_S, time_scale=time_scale),
            "oauth": RollingWindow(oauth_limit, BURST_WINDOW_S, time_scale=time_scale),
        }

    def charge(self, credential_kind: str, cost: int) -> Verdict:
        """Count one request of ``cost`` tokens; refused requests spend nothing from the daily budget."""
        window = self.bursts[credential_kind]
        burst = window.try_acquire(1)
        daily: Decision | None = None
        if burst.allowed:
            daily = self.daily.try_acquire(cost)
        headers = {
            "x-ratelimit-limit": str(window.limit),
            "x-ratelimit-remaining": str(max(burst.remaining, 0)),
            "x-ratelimit-reset": seconds_header(burst.reset_s),
        }
        if credential_kind == "api_token":
            left = daily.remaining if daily else self.daily.limit - self.daily.used
            headers["x-daily-requests-left"] = str(max(left, 0))
        if not burst.allowed:
            return Verdict(False, headers, burst.retry_after_s)
        assert daily is not None
        if not daily.allowed:
            return Verdict(False, headers, daily.retry_after_s)
        return Verdict(True, headers, None)

    def burst_headers(self, credential_kind: str, retry_after_s: float) -> dict[str, str]:
        """Headers for a 429 decided elsewhere (an injected fault): the window reported as full."""
        return {
            "x-ratelimit-limit": str(self.bursts[credential_kind].limit),
            "x-ratelimit-remaining": "0",
            "x-ratelimit-reset": seconds_header(retry_after_s),
        }

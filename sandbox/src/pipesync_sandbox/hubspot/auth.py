"""Who may call the HubSpot sandbox: a private-app token and an OAuth app with rotating refresh tokens.

- Private-app (static) tokens ``pat-…`` never expire, as in HubSpot.
- OAuth access tokens come from ``POST /oauth/v1/token``
  (``grant_type=refresh_token``) and live ``expires_in`` = 1800 s. They also
  expire early when :class:`~pipesync_sandbox.faults.Faults` says so
  (``expire_token_after`` requests). Each refresh issues a NEW refresh token
  and retires the one used, so a client that keeps a stale one fails loudly.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from enum import Enum

from pipesync_sandbox.faults import Faults

ACCESS_TOKEN_LIFETIME_S = 1800


class TokenKind(Enum):
    PRIVATE_APP = "private_app"
    OAUTH = "oauth"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: TokenKind


class TokenExpired(Exception):
    def __init__(self, seconds_ago: int, expired_at_ms: int):
        super().__init__(f"expired {seconds_ago} s ago")
        self.seconds_ago = seconds_ago
        self.expired_at_ms = expired_at_ms


class OAuthError(Exception):
    """A refused token request; ``status`` is HubSpot's code (BAD_REFRESH_TOKEN …)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class TokenGrant:
    access_token: str
    refresh_token: str
    expires_in: int


class HubSpotAuth:
    def __init__(self, faults: Faults, *, access_token: str | None = None, clock=time.time):
        self.access_token = access_token or f"pat-na1-{secrets.token_hex(4)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"
        self.client_id = secrets.token_hex(16)
        self.client_secret = secrets.token_hex(16)
        self.refresh_token = self._new_refresh_token()  # the current one; rotated on every refresh
        self._faults = faults
        self._clock = clock
        self._oauth_tokens: dict[str, float] = {}  # access token -> expiry (epoch s)
        self._lock = threading.Lock()

    def check(self, authorization: str | None) -> Caller | None:
        """The caller behind an ``Authorization`` header; None if unknown. Raises TokenExpired."""
        if not authorization or not authorization.startswith("Bearer "):
            return None
        token = authorization[len("Bearer "):].strip()
        if secrets.compare_digest(token, self.access_token):
            return Caller(TokenKind.PRIVATE_APP)
        with self._lock:
            expires_at = self._oauth_tokens.get(token)
        if expires_at is None:
            return None
        now = self._clock()
        if self._faults.token_expired(token) and expires_at > now:
            with self._lock:
                self._oauth_tokens[token] = expires_at = now  # the fault ends the token's life now
        if expires_at <= now:
            raise TokenExpired(int(now - expires_at), int(expires_at * 1000))
        return Caller(TokenKind.OAUTH)

    def refresh(self, form: dict[str, str]) -> TokenGrant:
        if form.get("grant_type") != "refresh_token":
            raise OAuthError("BAD_GRANT_TYPE", "grant_type must be refresh_token")
        if not secrets.compare_digest(form.get("client_id", ""), self.client_id):
            raise OAuthError("BAD_CLIENT_ID", "missing or invalid client_id")
        if not secrets.compare_digest(form.get("client_secret", ""), self.client_secret):
            raise OAuthError("BAD_CLIENT_SECRET", "missing or invalid client_secret")
        with self._lock:
            if not secrets.compare_digest(form.get("refresh_token", ""), self.refresh_token):
                raise OAuthError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            self.refresh_token = self._new_refresh_token()
            access = "CO" + secrets.token_urlsafe(96)
            self._oauth_tokens[access] = self._clock() + ACCESS_TOKEN_LIFETIME_S
            return TokenGrant(access, self.refresh_token, ACCESS_TOKEN_LIFETIME_S)

    @staticmethod
    def _new_refresh_token() -> str:
        return f"na1-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(2)}-{secrets.token_hex(6)}"

"""Who may call the sandbox: a personal API token, or OAuth access tokens refreshed at ``/oauth/token``.

API tokens travel in the ``x-api-token`` header or the legacy ``api_token``
query parameter and never expire. OAuth access tokens travel as
``Authorization: Bearer`` and live ``expires_in`` seconds — or fewer, when
the :class:`~pipesync_sandbox.faults.Faults` say a token expires after N
requests. Refresh tokens rotate: each refresh returns a new one and retires
the old.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.pipedrive.envelope import ApiError

ACCESS_TOKEN_LIFETIME_S = 3600
OAUTH_SCOPE = "base,deals:full,contacts:read,users:read,recents:read,admin"


@dataclass
class Credentials:
    """What a client needs to call this sandbox (generated unless given)."""

    api_token: str = field(default_factory=lambda: secrets.token_hex(20))
    client_id: str = field(default_factory=lambda: secrets.token_hex(8))
    client_secret: str = field(default_factory=lambda: secrets.token_hex(20))
    refresh_token: str = field(default_factory=lambda: f"{secrets.randbelow(10**8)}:{secrets.token_hex(24)}")

    def __repr__(self) -> str:  # never print secrets
        return f"Credentials(client_id={self.client_id!r}, api_token=…, client_secret=…, refresh_token=…)"


@dataclass(frozen=True, slots=True)
class Caller:
    kind: str  # "api_token" or "oauth": which burst window the request counts against


def _unauthorized(message: str = "unauthorized access") -> ApiError:
    return ApiError(401, message, error_code_field=True)


class OAuthError(Exception):
    """A refused token request; ``message`` is the vendor's wording."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Authenticator:
    def __init__(self, credentials: Credentials, faults: Faults, monotonic: Callable[[], float] = time.monotonic):
        self.credentials = credentials
        self.faults = faults
        self._monotonic = monotonic
        self._access: dict[str, float] = {}  # access token -> expiry (monotonic seconds)
        self._lock = threading.Lock()

    def authenticate(self, headers: dict[str, str] | object, query: dict[str, str] | object) -> Caller:
        token = query.get("api_token") or headers.get("x-api-token")  # type: ignore[attr-defined]
        if token:
            if secrets.compare_digest(token.encode(), self.credentials.api_token.encode()):
                return Caller("api_token")
            raise _unauthorized()
        scheme, _, bearer = (headers.get("authorization") or "").partition(" ")  # type: ignore[attr-defined]
        if scheme.lower() == "bearer" and bearer:
            with self._lock:
                expiry = self._access.get(bearer)
            if expiry is None:
                raise _unauthorized()
            if self._monotonic() >= expiry or self.faults.token_expired(bearer):
                raise _unauthorized("Invalid token: access token has expired")
            return Caller("oauth")
        raise _unauthorized()

    def refresh(self, authorization: str | None, form: dict[str, str]) -> dict[str, object]:
        """Answer ``POST /oauth/token``; raises :class:`OAuthError` with the vendor's messages."""
        if not self._client_matches(authorization):
            raise OAuthError(401, "Invalid client: client is invalid")
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "Missing parameter: grant_type")
        if grant == "authorization_code":
            raise OAuthError(400, "Invalid grant: authorization_code is invalid")  # the sandbox issues no codes
        if grant != "refresh_token":
            raise OAuthError(400, "Unsupported grant type: grant_type is invalid")
        offered = form.get("refresh_token", "")
        with self._lock:
            if not secrets.compare_digest(offered.encode(), self.credentials.refresh_token.encode()):
                raise OAuthError(400, "Invalid grant: refresh_token is invalid")
            access = f"v1u:{secrets.token_urlsafe(48)}"
            self.credentials.refresh_token = f"{secrets.randbelow(10**8)}:{secrets.token_hex(24)}"
            self._access[access] = self._monotonic() + ACCESS_TOKEN_LIFETIME_S
        return {
            "access_token": access,
            "token_type": "Bearer",
            "refresh_token": self.credentials.refresh_token,
            "scope": OAUTH_SCOPE,
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
        }

    def _client_matches(self, authorization: str | None) -> bool:
        scheme, _, encoded = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return secrets.compare_digest(client_id.encode(), self.credentials.client_id.encode()) and \
            secrets.compare_digest(secret.encode(), self.credentials.client_secret.encode())

"""OAuth pieces shared by the API adapters: the token request, the token store, the refresher.

Rotating refresh tokens (HubSpot, Pipedrive) are single-use: two refreshes racing each
other would revoke the grant, and a new refresh token lost in a crash locks the user out.
So :class:`Tokens` lets one refresh run at a time — across processes too, under the token
store's file lock, re-reading the store first so a refresh never spends a token another
process already rotated away — and :class:`TokenStore` writes the new token to disk
atomically before it is used.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from filelock import FileLock, Timeout
from pydantic import SecretStr

from pipesync.adapters.options import OAuthApiOptions
from pipesync.adapters.policy import Policy, Transient
from pipesync.config import Settings, SourceConfig, resolve_secret
from pipesync.errors import AuthError, ConfigError, SourceError
from pipesync.files import write_atomically
from pipesync.redaction import scrub


@dataclass(slots=True)
class Grant:
    """What a token endpoint returned."""

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # instance_url, api_domain, expires_in …


def tls_verify(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """What httpx's ``verify=`` needs: the configured CA bundle, or the system's trust store."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else True


def request_token(url: str, data: Mapping[str, str], *, system: str, policy: Policy,
                  auth: tuple[str, str] | None = None, verify: str | bool = True, timeout: float = 30.0) -> Grant:
    """POST a form-encoded token request and return the grant.

    A refused grant (``invalid_grant``, revoked refresh token, wrong client) is an
    :class:`AuthError`: a configuration problem, never retried.
    """
    secrets = [v for k, v in data.items() if k not in ("grant_type", "client_id", "username")]
    if auth:
        secrets.append(auth[1])

    def send() -> Grant:
        try:
            r = httpx.post(url, data=dict(data), auth=auth, timeout=timeout,
                           verify=tls_verify(verify) if isinstance(verify, str) else verify)
        except httpx.TimeoutException:
            raise Transient("token request timed out") from None
        except httpx.TransportError as e:  # the cause tells the policy about a certificate problem
            raise Transient(f"token request failed: {type(e).__name__}", replay_safe=isinstance(e, httpx.ConnectError)) from e
        if r.status_code == 429 or r.status_code >= 500:
            raise Transient(f"token endpoint answered HTTP {r.status_code}", replay_safe=r.status_code == 429,
                            rate_limited=r.status_code == 429)
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code == 403 and "REQUEST_LIMIT_EXCEEDED" in r.text:
            raise Transient("the token endpoint is over its request limit", replay_safe=True, rate_limited=True)
        if not isinstance(body, dict):
            body = {"error": r.text[:200]}
        if r.status_code >= 400 or "access_token" not in body:
            reason = body.get("error_description") or body.get("error") or body.get("message") or f"HTTP {r.status_code}"
            raise AuthError(
                f"{system}: the token request was refused ({scrub(str(reason), secrets)}). The grant is invalid, "
                f"expired or revoked: re-authorize the app and update the source's secrets."
            )
        return Grant(
            access_token=SecretStr(body.pop("access_token")),
            refresh_token=SecretStr(body.pop("refresh_token")) if body.get("refresh_token") else None,
            extra=body,
        )

    return policy.call(send, what="token request")


class TokenStore:
    """A small JSON file holding the latest refresh token, replaced atomically, with a lock file
    beside it that processes sharing the store take turns on while they refresh."""

    LOCK_WAIT_S = 300.0  # a refresh takes a token request (with its retries); longer means a stuck process

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = FileLock(self.path.with_name(self.path.name + ".lock"), timeout=self.LOCK_WAIT_S)

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store's cross-process lock (released by the OS if the holder dies)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._lock:
                yield
        except Timeout:
            raise SourceError(f"token store {self.path}: another process held its lock for {self.LOCK_WAIT_S:.0f} s "
                              f"while refreshing; try again when it has finished") from None

    def load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise ConfigError(f"token store {self.path}: cannot read it ({type(e).__name__}); delete it to start from the configured refresh token") from None
        return data if isinstance(data, dict) else {}

    def save(self, data: Mapping[str, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(self.path, json.dumps(dict(data)), mode=0o600, durable=True)


class Tokens:
    """The current access token of one source, refreshed one at a time.

    ``fetch(refresh_token)`` performs the grant (``refresh_token`` is None for flows that
    have none, such as the JWT bearer or password flows). ``on_grant`` lets the adapter
    pick up values that come with a grant (``instance_url``, ``api_domain``).
    """

    def __init__(self, fetch: Callable[[SecretStr | None], Grant], *, access_token: SecretStr | None = None,
                 refresh_token: SecretStr | None = None, store: TokenStore | None = None,
                 on_grant: Callable[[Grant], None] | None = None):
        self._fetch = fetch
        self._store = store
        self._on_grant = on_grant
        self._lock = threading.Lock()
        stored = store.load() if store else {}
        # The store holds the newest rotated token; the configured secret is only the first one.
        self._refresh = SecretStr(stored["refresh_token"]) if stored.get("refresh_token") else refresh_token
        self._access = access_token
        self.generation = 0

    @property
    def can_refresh(self) -> bool:
        return True

    def access_token(self) -> str:
        with self._lock:
            if self._access is None:
                self._renew()
            assert self._access is not None
            return self._access.get_secret_value()

    def refresh(self, seen_generation: int | None = None) -> None:
        """Get a new access token, unless another caller already did since ``seen_generation``."""
        with self._lock:
            if seen_generation is not None and seen_generation != self.generation:
                return
            self._renew()

    def _renew(self) -> None:
        if self._store is None:
            self._take(self._fetch(self._refresh))
            return
        with self._store.locked():
            # Another process sharing the store may have rotated the token since we read it.
            stored = self._store.load().get("refresh_token")
            if stored:
                self._refresh = SecretStr(stored)
            self._take(self._fetch(self._refresh))

    def _take(self, grant: Grant) -> None:
        if grant.refresh_token is not None:
            self._refresh = grant.refresh_token
            if self._store is not None:
                self._store.save({"refresh_token": grant.refresh_token.get_secret_value()})
        self._access = grant.access_token
        self.generation += 1
        if self._on_grant is not None:
            self._on_grant(grant)

    def secrets(self) -> list[str]:
        """Current secret values, for scrubbing messages."""
        return [s.get_secret_value() for s in (self._access, self._refresh) if s is not None]


class StaticToken(Tokens):
    """A token that cannot be refreshed (API token, private-app token, given session id)."""

    def __init__(self, token: SecretStr, system: str):
        self.system = system
        super().__init__(self._no_refresh, access_token=token)

    @property
    def can_refresh(self) -> bool:
        return False

    def _no_refresh(self, _: SecretStr | None) -> Grant:
        raise AuthError(f"{self.system}: the configured token is invalid or expired and cannot be refreshed; update it")


def require_secret(secrets: Mapping[str, SecretStr], name: str, system: str, mode: str) -> SecretStr:
    if name not in secrets:
        raise ConfigError(f"{system}: auth mode {mode!r} needs the secret {name!r} under the source's secrets:")
    return secrets[name]


def oauth_store_path(source: SourceConfig, options: OAuthApiOptions, settings: Settings) -> Path:
    """Where a source's rotated refresh token lives: the ``oauth_store`` option, else
    ``.pipesync/<source>-oauth.json`` next to the config (a rotated token must outlive the run)."""
    return settings.path(options.oauth_store or Path(".pipesync") / f"{source.name}-oauth.json")


def load_secrets(source: SourceConfig) -> dict[str, SecretStr]:
    """Every secret the source names, read now (each stays wrapped in SecretStr)."""
    return {k: resolve_secret(ref, f"source {source.name!r}: secret {k!r}") for k, ref in source.secrets.items()}

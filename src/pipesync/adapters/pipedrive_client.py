"""Pipedrive over httpx: auth (API token or OAuth with ``api_domain``), the shared policy,
cursor paging, and the translation of every failure into pipesync's errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from pipesync.adapters.auth import (
    Grant, StaticToken, TokenStore, Tokens, load_secrets, request_token, require_secret, tls_verify,
)
from pipesync.adapters.pipedrive_options import PAGE_MAX, PipedriveOptions
from pipesync.adapters.policy import DailyQuota, Pacer, Policy, TokenExpired, Transient, classify_status, pipedrive_budget
from pipesync.config import SourceConfig
from pipesync.errors import AuthError, SourceError
from pipesync.redaction import scrub

SYSTEM = "Pipedrive"
DEFAULT_TOKEN_URL = "https://oauth.pipedrive.com/oauth/token"
IDS_MAX = 100  # v2 ``ids=`` filter


class PipedriveClient:
    """One authenticated Pipedrive API session; every request goes through the shared policy."""

    def __init__(self, source: SourceConfig, opts: PipedriveOptions, oauth_store: Path):
        self.base_url = opts.base_url.rstrip("/")
        ca_bundle = opts.ca_bundle
        self.auth_mode = opts.auth
        # Pipedrive reports the burst limit but not its window: 2 s as documented, unless configured.
        self.pacer = Pacer(window=opts.burst_window_s)
        self.policy = Policy.from_options(SYSTEM, opts, pacer=self.pacer, refresh=self._refresh,
                                          quota=DailyQuota(opts.quota_reserve, SYSTEM))
        secrets = load_secrets(source)
        if self.auth_mode == "api_token":
            self.tokens: Tokens = StaticToken(require_secret(secrets, "api_token", SYSTEM, "api_token"), SYSTEM)
        else:
            client_id = require_secret(secrets, "client_id", SYSTEM, "oauth")
            client_secret = require_secret(secrets, "client_secret", SYSTEM, "oauth")
            token_url = opts.oauth_url or DEFAULT_TOKEN_URL
            token_policy = Policy.from_options(SYSTEM, opts)

            def fetch(refresh_token: SecretStr | None) -> Grant:
                if refresh_token is None:
                    raise AuthError(f"{SYSTEM}: OAuth needs a refresh_token secret (or an oauth_store file holding one)")
                return request_token(
                    token_url, {"grant_type": "refresh_token", "refresh_token": refresh_token.get_secret_value()},
                    system=SYSTEM, policy=token_policy, verify=ca_bundle or True,
                    auth=(client_id.get_secret_value(), client_secret.get_secret_value()),
                )

            store = TokenStore(oauth_store)
            self.tokens = Tokens(fetch, refresh_token=secrets.get("refresh_token"), store=store,
                                 access_token=secrets.get("access_token"), on_grant=self._on_grant)
        self._generation = 0
        self.http = httpx.Client(verify=tls_verify(ca_bundle), timeout=opts.timeout_s)

    def _on_grant(self, grant: Grant) -> None:
        # OAuth calls go to the company's own domain, which comes with each grant.
        if grant.extra.get("api_domain"):
            self.base_url = str(grant.extra["api_domain"]).rstrip("/")

    def _refresh(self) -> None:
        if not self.tokens.can_refresh:
            raise AuthError(f"{SYSTEM}: the API token was refused; check or replace the source's api_token secret")
        self.tokens.refresh(self._generation)

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------ one request

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None,
                json: Any = None, idempotent: bool = True) -> dict[str, Any]:
        what = f"{method} {path}"
        return self.policy.call(lambda: self._send(method, path, params, json, what), what=what,
                                idempotent=idempotent)

    def _send(self, method: str, path: str, params: dict[str, Any] | None, json: Any, what: str) -> dict[str, Any]:
        token = self.tokens.access_token()
        self._generation = self.tokens.generation
        headers = {"x-api-token": token} if self.auth_mode == "api_token" else {"Authorization": f"Bearer {token}"}
        try:
            r = self.http.request(method, self.base_url + path, params=params, json=json, headers=headers)
        except httpx.ConnectError as e:  # the cause tells the policy about a certificate problem
            raise Transient("could not connect", replay_safe=True) from e
        except httpx.TimeoutException:
            raise Transient("timed out") from None
        except httpx.TransportError as e:
            raise Transient(f"connection dropped ({type(e).__name__})") from None
        self.pacer.observe(pipedrive_budget(r.headers))
        if r.status_code == 401:
            if self.tokens.can_refresh:
                raise TokenExpired()
            raise AuthError(f"{SYSTEM}: the API token was refused ({what}); check the source's api_token secret")
        if r.status_code >= 400:
            raise classify_status(r.status_code, r.headers, r.text, SYSTEM, what, self.tokens.secrets())
        try:
            body = r.json()
        except ValueError:
            raise Transient(f"unreadable response to {what}") from None
        if isinstance(body, dict) and body.get("success") is False:
            raise SourceError(f"{SYSTEM}: {what} failed: {scrub(str(body.get('error')), self.tokens.secrets())}")
        return body

    # ------------------------------------------------------------ paging

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a v2 cursor-paginated list (at least one, possibly empty)."""
        params = {**params, "limit": params.get("limit", PAGE_MAX)}
        while True:
            body = self.request("GET", path, params=params)
            yield body.get("data") or []
            cursor = (body.get("additional_data") or {}).get("next_cursor")
            if not cursor:
                return
            params = {**params, "cursor": cursor}

    def all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [row for page in self.pages(path, params or {}) for row in page]

    def by_ids(self, path: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Records of a v2 list endpoint fetched by id (≤100 per call)."""
        rows = self.all(path, {"ids": ",".join(ids), "limit": IDS_MAX})
        return {str(r["id"]): r for r in rows}


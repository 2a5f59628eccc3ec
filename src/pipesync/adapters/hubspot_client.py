"""HubSpot through hubspot-api-client: auth (private-app token or rotating OAuth), the shared
policy with one pacer for the ten-second limit and one for search's own per-second limit,
and the translation of SDK and urllib3 failures into pipesync's errors.

Calls ask the SDK for the raw response (``_preload_content=False``): the rate-limit
headers pace the next call, and property values stay the strings HubSpot sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import urllib3
from hubspot import HubSpot
from pydantic import SecretStr

from pipesync.adapters.auth import Grant, StaticToken, TokenStore, Tokens, load_secrets, request_token, require_secret
from pipesync.adapters.hubspot_options import HubSpotOptions
from pipesync.adapters.policy import (
    DailyQuota, Pacer, Policy, TokenExpired, Transient, classify_status, hubspot_budget, retry_after_seconds, scrub,
)
from pipesync.config import SourceConfig
from pipesync.errors import AuthError, RateLimitError

SYSTEM = "HubSpot"


class HubSpotClient:
    def __init__(self, source: SourceConfig, opts: HubSpotOptions, oauth_store: Path):
        self.base_url = opts.base_url.rstrip("/")
        self.timeout = opts.timeout_s
        verify = opts.ca_bundle
        quota = DailyQuota(opts.quota_reserve, SYSTEM)
        self.policy = Policy.from_options(SYSTEM, opts, pacer=Pacer(limit=opts.burst_limit, window=10.0),
                                          quota=quota, refresh=self._refresh)
        self.search_policy = Policy.from_options(SYSTEM, opts, quota=quota, refresh=self._refresh,
                                                 pacer=Pacer(limit=opts.search_per_second, window=1.0))
        secrets = load_secrets(source)
        mode = opts.auth
        if mode == "private_app":
            self.tokens: Tokens = StaticToken(require_secret(secrets, "access_token", SYSTEM, mode), SYSTEM)
        else:
            client_id = require_secret(secrets, "client_id", SYSTEM, mode)
            client_secret = require_secret(secrets, "client_secret", SYSTEM, mode)
            token_url = opts.oauth_url or f"{self.base_url}/oauth/v1/token"
            token_policy = Policy.from_options(SYSTEM, opts)

            def fetch(refresh_token: SecretStr | None) -> Grant:
                if refresh_token is None:
                    raise AuthError(f"{SYSTEM}: OAuth needs a refresh_token secret (or an oauth_store file holding one)")
                return request_token(token_url, {
                    "grant_type": "refresh_token", "client_id": client_id.get_secret_value(),
                    "client_secret": client_secret.get_secret_value(),
                    "refresh_token": refresh_token.get_secret_value(),
                }, system=SYSTEM, policy=token_policy, verify=verify or True)

            store = TokenStore(oauth_store)
            self.tokens = Tokens(fetch, refresh_token=secrets.get("refresh_token"), store=store)
        kwargs: dict[str, Any] = {"host": self.base_url, "retry": urllib3.Retry(0, redirect=0, raise_on_status=False)}
        if verify:
            kwargs["ssl_ca_cert"] = verify
        # The SDK builds a new API client on every attribute access: build each once.
        hub = HubSpot(access_token="-", **kwargs)
        self.deals = hub.crm.deals.basic_api
        self.deals_search = hub.crm.deals.search_api
        self.deals_batch = hub.crm.deals.batch_api
        self.companies = hub.crm.companies.basic_api
        self.companies_batch = hub.crm.companies.batch_api
        self.contacts = hub.crm.contacts.basic_api
        self.contacts_batch = hub.crm.contacts.batch_api
        self.pipelines = hub.crm.pipelines.pipelines_api
        self.owners = hub.crm.owners.owners_api
        self.associations = hub.crm.associations.v4.batch_api
        self.tasks_batch = hub.crm.objects.tasks.batch_api
        self.properties = hub.crm.properties.core_api
        self.property_groups = hub.crm.properties.groups_api
        self._generation = 0

    @property
    def calls(self) -> int:
        return self.policy.stats.calls + self.search_policy.stats.calls

    @property
    def rate_limited(self) -> int:
        return self.policy.stats.rate_limited + self.search_policy.stats.rate_limited

    def _refresh(self) -> None:
        if not self.tokens.can_refresh:
            raise AuthError(f"{SYSTEM}: the private-app token was refused; check the source's access_token secret")
        self.tokens.refresh(self._generation)

    def call(self, method: Callable[..., Any], *args: Any, what: str, idempotent: bool = True,
             search: bool = False, **kwargs: Any) -> dict[str, Any]:
        """One SDK call through the policy; the parsed JSON body (``{}`` for 204)."""
        policy = self.search_policy if search else self.policy

        def send() -> dict[str, Any]:
            method.__self__.api_client.configuration.access_token = self.tokens.access_token()
            self._generation = self.tokens.generation
            try:
                r = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
            except urllib3.exceptions.MaxRetryError as e:  # the cause tells the policy about a certificate problem
                raise Transient("could not connect", replay_safe=isinstance(e.reason, urllib3.exceptions.NewConnectionError)) from e
            except urllib3.exceptions.NewConnectionError:
                raise Transient("could not connect", replay_safe=True) from None
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError, ConnectionError) as e:
                raise Transient(f"connection dropped ({type(e).__name__})") from None
            except Exception as e:  # every SDK module has its own ApiException class
                status = getattr(e, "status", None)
                if status is None or type(e).__module__.split(".")[0] != "hubspot":
                    raise
                raise self._classify(int(status), dict(getattr(e, "headers", None) or {}),
                                     _text(getattr(e, "body", b"")), what) from None
            policy.pacer.observe(hubspot_budget(r.headers))
            if policy.quota is not None:
                policy.quota.observe(hubspot_budget(r.headers))
            return json.loads(r.data) if r.data else {}

        return policy.call(send, what=what, idempotent=idempotent)

    def _classify(self, status: int, headers: dict[str, str], body: str, what: str) -> Exception:
        if status == 401:
            if self.tokens.can_refresh:
                return TokenExpired()
            return AuthError(f"{SYSTEM}: the private-app token was refused ({what}); check the source's access_token secret")
        if status == 403 and "MISSING_SCOPES" in body:
            return AuthError(f"{SYSTEM}: the app lacks a scope needed for {what} (crm.objects.deals.read/write, "
                             f"companies and contacts read); grant it and retry")
        if status == 429:
            if '"DAILY"' in body:
                return RateLimitError(f"{SYSTEM}: the account's daily API limit is reached; the sync resumes "
                                      f"from its last committed page tomorrow")
            # HubSpot rarely sends Retry-After; without it the policy backs off exponentially.
            return Transient(f"HTTP 429 ({'search' if 'SECONDLY' in body else 'burst'} limit)",
                             retry_after=retry_after_seconds(headers), replay_safe=True, rate_limited=True)
        return classify_status(status, headers, body, SYSTEM, what, self.tokens.secrets())

    def error_text(self, text: str) -> str:
        return scrub(text, self.tokens.secrets())


def _text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body or "")

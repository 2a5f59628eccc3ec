"""Salesforce through simple-salesforce: sign-in, the shared policy, quota reserve, error translation.

simple-salesforce only speaks https and re-logs in only when it did the login itself, so
pipesync runs the OAuth flow (``salesforce_auth``), hands the client a session id and
instance URL, and renews the session through the policy (refresh once, replay). A
``requests`` session with ``verify=<ca_bundle>`` reaches private CAs (and the sandboxes).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError, SalesforceExpiredSession, SalesforceGeneralError, SalesforceMalformedRequest,
    SalesforceRefusedRequest, SalesforceResourceNotFound,
)

from pipesync.adapters.auth import Grant, load_secrets
from pipesync.adapters.policy import (
    DailyQuota, Pacer, Policy, TokenExpired, Transient, classify_status, salesforce_budget,
)
from pipesync.adapters.salesforce_auth import SYSTEM, salesforce_tokens
from pipesync.adapters.salesforce_options import SalesforceOptions
from pipesync.config import SourceConfig
from pipesync.errors import AuthError, RateLimitError, SourceError
from pipesync.redaction import scrub

T = TypeVar("T")


class SalesforceClient:
    def __init__(self, source: SourceConfig, opts: SalesforceOptions):
        self.version = opts.api_version
        verify: str | bool = opts.ca_bundle or True
        self.quota = DailyQuota(opts.quota_reserve, SYSTEM)
        self.policy = Policy.from_options(SYSTEM, opts, pacer=Pacer(), quota=self.quota, refresh=self._refresh)
        self.tokens = salesforce_tokens(opts, load_secrets(source), verify=verify,
                                        policy=Policy.from_options(SYSTEM, opts), on_grant=self._on_grant)
        self.instance_url = (opts.instance_url or "").rstrip("/")
        self.session = requests.Session()
        if isinstance(verify, str):
            self.session.mount("https://", _PinnedCA(verify))
        self.timeout = opts.timeout_s
        self.session.hooks["response"].append(self._observe)
        self._last_headers: dict[str, str] = {}
        self._sf: Salesforce | None = None
        self._generation = -1

    def _on_grant(self, grant: Grant) -> None:
        if grant.extra.get("instance_url"):
            self.instance_url = str(grant.extra["instance_url"]).rstrip("/")

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_headers = dict(response.headers)
        self.quota.observe(salesforce_budget(response.headers))

    @property
    def calls(self) -> int:
        return self.policy.stats.calls

    @property
    def rate_limited(self) -> int:
        return self.policy.stats.rate_limited

    @property
    def sf(self) -> Salesforce:
        token = self.tokens.access_token()
        if self._sf is None or self._generation != self.tokens.generation:
            self._sf = Salesforce(session_id=token, instance_url=self.instance_url, session=self.session,
                                  version=self.version)
            self._generation = self.tokens.generation
        return self._sf

    def _refresh(self) -> None:
        if not self.tokens.can_refresh:
            raise AuthError(f"{SYSTEM}: the session id is expired or invalid and cannot be renewed; "
                            f"configure an OAuth flow (password, refresh_token or jwt) or a fresh session")
        self.tokens.refresh(self._generation)

    def call(self, fn: Callable[[Salesforce], T], *, what: str, idempotent: bool = True) -> T:
        """Run ``fn(sf)`` (one request) through the policy."""

        def send() -> T:
            try:
                return fn(self.sf)
            except SalesforceExpiredSession:
                raise TokenExpired() from None
            except SalesforceError as e:
                raise self._classify(e, what) from None
            except requests.exceptions.ConnectTimeout:
                raise Transient("could not connect", replay_safe=True) from None
            except requests.exceptions.Timeout:
                raise Transient("timed out") from None
            except requests.exceptions.ConnectionError as e:
                refused = "NewConnectionError" in repr(e) or "Connection refused" in repr(e)
                # the cause tells the policy about a certificate problem (requests' SSLError lands here)
                raise Transient("connection dropped" if not refused else "could not connect",
                                replay_safe=refused) from e

        return self.policy.call(send, what=what, idempotent=idempotent)

    def _classify(self, e: SalesforceError, what: str) -> Exception:
        status = int(getattr(e, "status", 0) or 0)
        content = e.content
        body = content if isinstance(content, str) else str(content)
        message = scrub(_message(content), self.tokens.secrets())
        if isinstance(e, SalesforceRefusedRequest):
            if "REQUEST_LIMIT_EXCEEDED" in body:
                if "ConcurrentPerOrgLongTxn" in body:
                    return Transient("too many concurrent long-running requests", replay_safe=True, rate_limited=True)
                return RateLimitError(f"{SYSTEM}: the org's daily API allocation is used up ({message}); "
                                      f"the sync resumes from its last committed page when the allocation recovers")
            return SourceError(f"{SYSTEM}: {what} was refused: {message}")
        if isinstance(e, (SalesforceMalformedRequest, SalesforceResourceNotFound)):
            return SourceError(f"{SYSTEM}: {what} failed: {message}")
        if isinstance(e, SalesforceGeneralError):
            return classify_status(status, self._last_headers, message, SYSTEM, what, self.tokens.secrets())
        return SourceError(f"{SYSTEM}: {what} failed (HTTP {status}): {message}")

    def close(self) -> None:
        self.session.close()


class _PinnedCA(HTTPAdapter):
    """Verifies against the configured CA bundle even when REQUESTS_CA_BUNDLE is set
    (requests lets that variable override ``Session.verify``)."""

    def __init__(self, ca_bundle: str):
        super().__init__()
        self.ca_bundle = ca_bundle

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["verify"] = self.ca_bundle
        return super().send(request, **kwargs)


def _message(content: Any) -> str:
    """Salesforce's error array ``[{message, errorCode}]`` as one line."""
    if isinstance(content, list):
        return "; ".join(f"{c.get('errorCode', '')}: {c.get('message', '')}" for c in content if isinstance(c, dict))[:400]
    return str(content)[:400]

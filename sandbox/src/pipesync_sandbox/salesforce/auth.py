"""The Salesforce sandbox's OAuth2: the org's connected app, its API user, and the sessions it hands out.

Flows of ``POST /services/oauth2/token`` (form-encoded), with Salesforce's
success and failure bodies:

- ``password``: client_id, client_secret, username, and the password with the
  security token appended;
- ``refresh_token``: client_id (client_secret checked when sent) and a refresh
  token; answers a new access token and, as Salesforce does without refresh
  token rotation, no new refresh token;
- ``urn:ietf:params:oauth:grant-type:jwt-bearer``: any well-formed assertion
  whose ``iss`` is the connected app, ``sub`` the API user, ``aud`` a login
  host and ``exp`` in the future. The signature is NOT verified: the sandbox
  holds no certificate. No refresh token, as in Salesforce;
- ``client_credentials``: client_id and client_secret, run as the API user.

Salesforce hands out refresh tokens only through interactive flows (web
server, user agent), which a sandbox cannot run; :meth:`OrgAuth.issue_refresh_token`
stands for the user having approved the app once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")


@dataclass(frozen=True, slots=True)
class SalesforceCredentials:
    """What an admin hands an integration: the API user's login and the connected app's keys."""

    username: str = "integration@pipesync.example"
    password: str = "sandbox-password"
    security_token: str = "SANDBOXTOKEN0000"
    client_id: str = "3MVG9sandbox.pipesync.consumer.key"
    client_secret: str = "sandbox-consumer-secret"


class OAuthError(Exception):
    """A refused token request: Salesforce's ``{"error", "error_description"}`` body with HTTP 400."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.body = {"error": error, "error_description": description}


class OrgAuth:
    """Issues and checks the org's access and refresh tokens (thread-safe)."""

    def __init__(self, credentials: SalesforceCredentials, org_id: str, user_id: str):
        self.credentials = credentials
        self.org_id = org_id
        self.user_id = user_id
        self._access: set[str] = set()
        self._refresh: set[str] = set()
        self._lock = threading.Lock()

    def _token(self) -> str:
        # The shape of a real session id: the 15-character org id, "!", then an opaque string.
        return f"{self.org_id[:15]}!AR" + secrets.token_urlsafe(72).replace("-", ".").replace("_", ".")

    def issue_access_token(self) -> str:
        token = self._token()
        with self._lock:
            self._access.add(token)
        return token

    def issue_refresh_token(self) -> str:
        """A refresh token for the API user, as if it had approved the connected app in a browser."""
        token = "5Aep861" + secrets.token_urlsafe(64).replace("-", ".").replace("_", ".")
        with self._lock:
            self._refresh.add(token)
        return token

    def is_valid(self, token: str) -> bool:
        return token in self._access

    def revoke(self, token: str) -> None:
        with self._lock:
            self._access.discard(token)
            self._refresh.discard(token)

    def token_response(self, form: dict[str, str], instance_url: str) -> dict[str, Any]:
        """Answer one token request, or raise :class:`OAuthError` with Salesforce's failure body."""
        grant = form.get("grant_type", "")
        creds = self.credentials
        if grant == "password":
            self._check_client(form, secret_required=True)
            if form.get("username") != creds.username or not hmac.compare_digest(
                    form.get("password", ""), creds.password + creds.security_token):
                raise OAuthError("invalid_grant", "authentication failure")
        elif grant == "refresh_token":
            self._check_client(form, secret_required=False)
            if form.get("refresh_token") not in self._refresh:
                raise OAuthError("invalid_grant", "expired access/refresh token")
        elif grant == JWT_BEARER:
            self._check_assertion(form.get("assertion", ""), instance_url)
        elif grant == "client_credentials":
            self._check_client(form, secret_required=True)
        else:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        issued_at = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{self.org_id}/{self.user_id}"
        signature = base64.b64encode(
            hmac.new(creds.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256).digest()).decode()
        # No flow served here returns a refresh token: Salesforce gives them only to interactive flows.
        return {"access_token": self.issue_access_token(), "signature": signature, "scope": "api refresh_token",
                "instance_url": instance_url, "id": identity, "token_type": "Bearer", "issued_at": issued_at}

    def _check_client(self, form: dict[str, str], *, secret_required: bool) -> None:
        if form.get("client_id") != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        secret = form.get("client_secret")
        if (secret_required or secret is not None) and not hmac.compare_digest(
                secret or "", self.credentials.client_secret):
            raise OAuthError("invalid_client", "invalid client credentials")

    def _check_assertion(self, assertion: str, instance_url: str) -> None:
        parts = assertion.split(".")
        try:
            if len(parts) != 3:
                raise ValueError
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            if not isinstance(claims, dict):
                raise ValueError
        except (ValueError, binascii.Error):
            raise OAuthError("invalid_grant", "invalid assertion") from None
        if claims.get("iss") != self.credentials.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if claims.get("aud") not in (*_LOGIN_AUDIENCES, instance_url):
            raise OAuthError("invalid_grant", "audience is invalid")
        if not isinstance(claims.get("exp"), (int, float)) or claims["exp"] < time.time():
            raise OAuthError("invalid_grant", "expired authorization code")
        if claims.get("sub") != self.credentials.username:
            raise OAuthError("invalid_grant", "user hasn't approved this consumer")

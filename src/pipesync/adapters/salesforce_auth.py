"""Salesforce sign-in: the OAuth token flows pipesync runs itself, against any login URL.

Modes (option ``auth``):

- ``password``: the OAuth username-password flow (connected app ``client_id`` /
  ``client_secret`` secrets, ``username`` option, ``password`` + ``security_token`` secrets);
- ``refresh_token``: ``client_id`` (+ optional ``client_secret``) and ``refresh_token`` secrets;
- ``jwt``: the JWT bearer flow, ``client_id`` and ``username`` options and a ``private_key``
  secret (PEM); no refresh token exists, so an expired session runs the flow again;
- ``session``: an existing ``session_id`` secret with the ``instance_url`` option; it cannot
  be renewed, so its expiry is reported as an auth error.

Every flow returns the ``instance_url`` the API calls go to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt
from pydantic import SecretStr

from pipesync.adapters.auth import Grant, StaticToken, Tokens, option, request_token, require_secret
from pipesync.adapters.policy import Policy
from pipesync.errors import ConfigError

SYSTEM = "Salesforce"
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MODES = ("password", "refresh_token", "jwt", "session")


def salesforce_tokens(opts: Mapping[str, Any], secrets: Mapping[str, SecretStr], *, verify: str | bool,
                      policy: Policy, on_grant: Callable[[Grant], None]) -> Tokens:
    """The token source for the configured auth mode; ``grant.extra['instance_url']`` comes with each grant."""
    mode = opts.get("auth", "password")
    login_url = str(opts.get("login_url", DEFAULT_LOGIN_URL)).rstrip("/")
    token_url = f"{login_url}/services/oauth2/token"

    def post(data: dict[str, str]) -> Grant:
        return request_token(token_url, data, system=SYSTEM, policy=policy, verify=verify)

    def client() -> dict[str, str]:
        form = {"client_id": _value(secrets, opts, "client_id", mode)}
        if "client_secret" in secrets:
            form["client_secret"] = secrets["client_secret"].get_secret_value()
        return form

    if mode == "session":
        option(opts, "instance_url", SYSTEM, "session mode calls the instance the session belongs to")
        return StaticToken(require_secret(secrets, "session_id", SYSTEM, mode), SYSTEM)
    if mode == "password":
        def fetch(_: SecretStr | None) -> Grant:
            password = require_secret(secrets, "password", SYSTEM, mode).get_secret_value()
            token = secrets["security_token"].get_secret_value() if "security_token" in secrets else ""
            return post({"grant_type": "password", **client(), "username": _value(secrets, opts, "username", mode),
                         "password": password + token})
        return Tokens(fetch, on_grant=on_grant)
    if mode == "refresh_token":
        def fetch(refresh: SecretStr | None) -> Grant:
            assert refresh is not None
            return post({"grant_type": "refresh_token", **client(), "refresh_token": refresh.get_secret_value()})
        return Tokens(fetch, refresh_token=require_secret(secrets, "refresh_token", SYSTEM, mode), on_grant=on_grant)
    if mode == "jwt":
        key = require_secret(secrets, "private_key", SYSTEM, mode)
        audience = str(opts.get("jwt_audience", login_url))

        def fetch(_: SecretStr | None) -> Grant:
            claims = {"iss": _value(secrets, opts, "client_id", mode), "sub": _value(secrets, opts, "username", mode),
                      "aud": audience, "exp": int(time.time()) + 180}
            try:
                assertion = jwt.encode(claims, key.get_secret_value(), algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError):
                raise ConfigError(f"{SYSTEM}: the private_key secret is not a usable RSA private key (PEM)") from None
            return post({"grant_type": JWT_BEARER, "assertion": assertion})
        return Tokens(fetch, on_grant=on_grant)
    raise ConfigError(f"{SYSTEM}: unknown auth mode {mode!r} (use one of {', '.join(MODES)})")


def _value(secrets: Mapping[str, SecretStr], opts: Mapping[str, Any], name: str, mode: str) -> str:
    """A non-secret credential part (client id, username), accepted as an option or a secret."""
    if name in secrets:
        return secrets[name].get_secret_value()
    if opts.get(name):
        return str(opts[name])
    raise ConfigError(f"{SYSTEM}: auth mode {mode!r} needs {name!r} (an option, or a secret)")

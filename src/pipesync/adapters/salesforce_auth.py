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

import jwt
from pydantic import SecretStr

from pipesync.adapters.auth import Grant, StaticToken, Tokens, request_token, require_secret
from pipesync.adapters.policy import Policy
from pipesync.adapters.salesforce_options import SalesforceOptions
from pipesync.errors import ConfigError

SYSTEM = "Salesforce"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def salesforce_tokens(opts: SalesforceOptions, secrets: Mapping[str, SecretStr], *, verify: str | bool,
                      policy: Policy, on_grant: Callable[[Grant], None]) -> Tokens:
    """The token source for the configured auth mode; ``grant.extra['instance_url']`` comes with each grant."""
    mode = opts.auth
    login_url = opts.login_url.rstrip("/")
    token_url = f"{login_url}/services/oauth2/token"

    def post(data: dict[str, str]) -> Grant:
        return request_token(token_url, data, system=SYSTEM, policy=policy, verify=verify)

    def client() -> dict[str, str]:
        form = {"client_id": _value(secrets, "client_id", opts.client_id, mode)}
        if "client_secret" in secrets:
            form["client_secret"] = secrets["client_secret"].get_secret_value()
        return form

    if mode == "session":  # the options require instance_url with it
        return StaticToken(require_secret(secrets, "session_id", SYSTEM, mode), SYSTEM)
    if mode == "password":
        def fetch(_: SecretStr | None) -> Grant:
            password = require_secret(secrets, "password", SYSTEM, mode).get_secret_value()
            token = secrets["security_token"].get_secret_value() if "security_token" in secrets else ""
            return post({"grant_type": "password", **client(), "username": _value(secrets, "username", opts.username, mode),
                         "password": password + token})
        return Tokens(fetch, on_grant=on_grant)
    if mode == "refresh_token":
        def fetch(refresh: SecretStr | None) -> Grant:
            assert refresh is not None
            return post({"grant_type": "refresh_token", **client(), "refresh_token": refresh.get_secret_value()})
        return Tokens(fetch, refresh_token=require_secret(secrets, "refresh_token", SYSTEM, mode), on_grant=on_grant)
    # jwt
    key = require_secret(secrets, "private_key", SYSTEM, mode)
    audience = opts.jwt_audience or login_url

    def fetch_jwt(_: SecretStr | None) -> Grant:
        claims = {"iss": _value(secrets, "client_id", opts.client_id, mode), "sub": _value(secrets, "username", opts.username, mode),
                  "aud": audience, "exp": int(time.time()) + 180}
        try:
            assertion = jwt.encode(claims, key.get_secret_value(), algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise ConfigError(f"{SYSTEM}: the private_key secret is not a usable RSA private key (PEM)") from None
        return post({"grant_type": JWT_BEARER, "assertion": assertion})
    return Tokens(fetch_jwt, on_grant=on_grant)


def _value(secrets: Mapping[str, SecretStr], name: str, option: str | None, mode: str) -> str:
    """A non-secret credential part (client id, username), accepted as an option or a secret."""
    if name in secrets:
        return secrets[name].get_secret_value()
    if option:
        return option
    raise ConfigError(f"{SYSTEM}: auth mode {mode!r} needs {name!r} (an option, or a secret)")

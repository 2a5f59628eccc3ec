"""Source configs that point the API adapters at running sandboxes (tests, benchmarks, ``pipesync demo``).

Secrets travel the way a user's do: each goes into its own file (mode 0600) that the
source config names, never into the config itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pipesync.config import SecretRef, SourceConfig
from pipesync_sandbox.sandboxes import RunningSandbox

# which sandbox credentials each auth mode needs, per system
_STATIC = {"salesforce": ("password", "security_token", "client_secret"), "hubspot": ("access_token",),
           "pipedrive": ("api_token",)}
_OAUTH = {"salesforce": ("password", "security_token", "client_secret"),
          "hubspot": ("client_id", "client_secret", "refresh_token"),
          "pipedrive": ("client_id", "client_secret", "refresh_token")}


def sandbox_source(sandbox: RunningSandbox, secrets_dir: str | Path, *, name: str | None = None, oauth: bool = False,
                   options: dict[str, Any] | None = None) -> SourceConfig:
    """A source config for ``sandbox``; ``oauth`` picks the refreshable auth mode (Salesforce always
    signs in through the OAuth password flow, so it can renew an expired session)."""
    system = sandbox.system
    directory = Path(secrets_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # secrets live here
    creds = sandbox.credentials
    if system == "salesforce":
        opts: dict[str, Any] = {"login_url": sandbox.base_url, "ca_bundle": sandbox.ca_bundle, "auth": "password",
                                "username": creds["username"], "client_id": creds["client_id"]}
    elif oauth:
        token_path = "/oauth/v1/token" if system == "hubspot" else "/oauth/token"
        opts = {"base_url": sandbox.base_url, "auth": "oauth", "oauth_url": sandbox.base_url + token_path,
                "oauth_store": str(directory / f"{system}-oauth.json")}
    else:
        opts = {"base_url": sandbox.base_url}
    if sandbox.ca_bundle and system != "salesforce":
        opts["ca_bundle"] = sandbox.ca_bundle
    wanted = (_OAUTH if oauth else _STATIC)[system]
    secrets = {key: _secret_file(directory / f"{system}-{key}", creds[key]) for key in wanted}
    return SourceConfig(name=name or system, type=system, options={**opts, **(options or {})}, secrets=secrets)  # type: ignore[arg-type]


def _secret_file(path: Path, value: str) -> SecretRef:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value)
    return SecretRef(file=str(path))

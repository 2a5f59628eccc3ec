"""A certificate the client cannot verify is named for what is wrong with it, with the fix.

Every API adapter reaches its vendor through one of three transports (httpx for token
requests and Pipedrive, urllib3 under the HubSpot SDK, requests under simple-salesforce);
each sandbox here presents a spoilt certificate over real TLS.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from pipesync.config import SecretRef
from pipesync.errors import CertificateError
from pipesync_sandbox.generator import generate

from .sandbox_env import SystemEnv, running


@pytest.fixture(scope="module")
def world():
    return generate(29, 60)


# (system, oauth, how the first request travels)
TRANSPORTS = [
    ("salesforce", True, "token request over httpx"),
    ("salesforce", False, "API call over requests (a given session)"),
    ("hubspot", True, "token request over httpx"),
    ("hubspot", False, "API call over urllib3 (private-app token)"),
    ("pipedrive", False, "API call over httpx (API token)"),
]

# certificate served, whether the client is given the sandbox CA, what the message must say
PROBLEMS = [
    ("valid", False, "unknown CA"),
    ("self_signed", False, "self-signed"),
    ("expired", True, "expired"),
    ("wrong_host", True, "another host"),
]


def _session_source(env: SystemEnv, tmp_path) -> Any:
    # A given session id: the first request is a REST call through simple-salesforce's requests session.
    secret = tmp_path / "session_id"
    secret.write_text("00D000000000001!AQ0AQ")
    options = {**env.source.options.model_dump(), "auth": "session", "instance_url": env.sandbox.base_url}
    return env.source.model_copy(update={"options": type(env.source.options).model_validate(options),
                                         "secrets": {"session_id": SecretRef(file=str(secret))}})


@pytest.mark.parametrize("certificate,trusted,problem", PROBLEMS)
@pytest.mark.parametrize("system,oauth,transport", TRANSPORTS)
def test_an_unverifiable_certificate_names_the_problem_and_ca_bundle_at_once(
        system, oauth, transport, certificate, trusted, problem, world, tmp_path, caplog):
    options = None if trusted else {"ca_bundle": None}
    with running(system, world, tmp_path, oauth=oauth, options=options, certificate=certificate) as env:
        if system == "salesforce" and not oauth:
            env.source = _session_source(env, tmp_path)
        with caplog.at_level(logging.WARNING), env.adapter() as adapter, pytest.raises(CertificateError) as error:
            list(adapter.read_deals(None))
    message = str(error.value)
    assert problem in message and "ca_bundle" in message, message
    assert "ConnectError" not in message
    assert error.value.exit_code == 2
    assert not [r for r in caplog.records if "waiting" in r.getMessage()], "a certificate problem is never retried"

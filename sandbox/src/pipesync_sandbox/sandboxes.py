"""All three CRM sandboxes running at once, filled from one seeded world.

    with Sandboxes(seed=1, size=10_000) as boxes:
        sf = boxes["salesforce"]
        sf.base_url, sf.ca_bundle, sf.credentials["username"], sf.store, sf.faults

Salesforce is served over TLS (simple-salesforce only speaks https; hand the
client ``ca_bundle``), HubSpot and Pipedrive over plain HTTP unless ``tls`` names them
(with the certificate each presents: see :data:`pipesync_sandbox.server.CERTIFICATES`). Credentials are
generated per run. Faults can be given per system at start and changed at any
time through ``boxes[system].faults``.
"""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import SYSTEMS, SystemData, World


@dataclass(slots=True)
class RunningSandbox:
    system: str
    base_url: str
    ca_bundle: str | None  # PEM of the CA to trust (TLS only)
    credentials: dict[str, str] = field(repr=False)  # secrets: keep out of logs
    store: Any = field(repr=False)  # the vendor app's live records
    faults: Faults = field(repr=False)
    data: SystemData = field(repr=False)


def _start(system: str, data: SystemData, faults: Faults, world: World) -> tuple[Any, Any, dict[str, str], bool]:
    """The vendor app for ``system``: (asgi app, store, credentials, needs TLS)."""
    if system == "salesforce":
        from pipesync_sandbox.salesforce.app import create_app as salesforce_app
        from pipesync_sandbox.salesforce.auth import SalesforceCredentials

        creds = SalesforceCredentials(
            username=f"integration.{secrets.token_hex(3)}@northwind-software.example",
            password=secrets.token_urlsafe(12), security_token=secrets.token_hex(12).upper(),
            client_id=f"3MVG9{secrets.token_urlsafe(60)}", client_secret=secrets.token_hex(32).upper(),
        )
        app, store = salesforce_app(data, faults, credentials=creds, as_of=world.as_of)
        return app, store, {"username": creds.username, "password": creds.password,
                            "security_token": creds.security_token, "client_id": creds.client_id,
                            "client_secret": creds.client_secret}, True
    if system == "hubspot":
        from pipesync_sandbox.hubspot.app import create_app as hubspot_app

        app, store = hubspot_app(data, faults)
        auth = store.auth
        return app, store, {"access_token": auth.access_token, "client_id": auth.client_id,
                            "client_secret": auth.client_secret, "refresh_token": auth.refresh_token}, False
    if system == "pipedrive":
        from pipesync_sandbox.pipedrive.app import create_app as pipedrive_app

        app, store = pipedrive_app(data, faults, as_of=world.as_of)
        c = store.credentials
        return app, store, {"api_token": c.api_token, "client_id": c.client_id,
                            "client_secret": c.client_secret, "refresh_token": c.refresh_token}, False
    raise ValueError(f"unknown sandbox {system!r}; choose from {', '.join(SYSTEMS)}")


class Sandboxes:
    """A context manager serving the three vendor sandboxes on loopback."""

    def __init__(self, world: World | None = None, *, seed: int = 1, size: int = 10_000,
                 faults: dict[str, Faults] | None = None, systems: tuple[str, ...] = SYSTEMS,
                 tls: dict[str, str] | None = None):
        unknown = set(systems) - set(SYSTEMS) | set(faults or {}) - set(SYSTEMS)
        if unknown:
            raise ValueError(f"unknown sandbox(es) {', '.join(sorted(unknown))}; choose from {', '.join(SYSTEMS)}")
        if world is None:
            from pipesync_sandbox.generator import generate

            world = generate(seed, size)
        self.world = world
        self.systems = systems
        self._faults = {s: (faults or {}).get(s) or Faults() for s in systems}
        self._tls = tls or {}
        self._running: dict[str, RunningSandbox] = {}
        self._stack = ExitStack()

    def __enter__(self) -> Sandboxes:
        try:
            for system in self.systems:
                data = self.world.systems[system]
                app, store, credentials, tls = _start(system, data, self._faults[system], self.world)
                served = self._stack.enter_context(serve(app, tls=tls or system in self._tls,
                                                         certificate=self._tls.get(system, "valid")))
                self._running[system] = RunningSandbox(system, served.base_url, served.ca_bundle, credentials,
                                                       store, self._faults[system], data)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._running.clear()
        self._stack.close()

    def __getitem__(self, system: str) -> RunningSandbox:
        try:
            return self._running[system]
        except KeyError:
            raise KeyError(f"sandbox {system!r} is not running (running: {', '.join(self._running) or 'none'})") \
                from None

    def __iter__(self):  # noqa: ANN204 — iterates the running sandboxes
        return iter(self._running.values())

"""Serve an ASGI app over real HTTP(S) on loopback, from a background thread.

``serve(app)`` is a context manager: it binds 127.0.0.1 on an ephemeral port,
runs the app with uvicorn in a daemon thread, returns once the server answers,
and shuts it down cleanly on exit. With ``tls=True`` the server presents a
certificate from a throwaway CA (trustme) — simple-salesforce only speaks
https — and ``Served.ca_bundle`` is the path of that CA's PEM, for
``httpx.Client(verify=...)`` or ``requests.Session.verify``. ``certificate=``
serves a spoilt one instead (self-signed, expired, for another host).

Each connection's scope carries a way to drop it without a response
(``scope["state"][DROP_CONNECTION]``), so the fault middleware can simulate a
connection that dies mid-request the way a broken proxy does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

# The scope["state"] key holding a zero-argument callable that aborts the connection.
DROP_CONNECTION = "pipesync.drop_connection"

_STARTUP_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Served:
    base_url: str  # e.g. "https://127.0.0.1:54321", no trailing slash
    ca_bundle: str | None  # PEM of the CA that signed the server certificate (TLS only)
    port: int


def _droppable(protocol_class: type[asyncio.Protocol]) -> type[asyncio.Protocol]:
    """The uvicorn protocol class, extended to put its transport's abort() into each request's state.

    Both uvicorn HTTP implementations copy ``self.app_state`` into every request
    scope, so one override covers them.
    """

    class Droppable(protocol_class):  # type: ignore[valid-type,misc]
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.app_state = {**self.app_state, DROP_CONNECTION: transport.abort}

    Droppable.__name__ = f"Droppable{protocol_class.__name__}"
    return Droppable


def _http_protocol() -> type[asyncio.Protocol]:
    # httptools parses several times faster than h11; the sandboxes must not dominate benchmarks.
    if importlib.util.find_spec("httptools") is not None:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

        return _droppable(HttpToolsProtocol)
    return _droppable(H11Protocol)


# What is wrong with the certificate a TLS sandbox presents, so clients' error messages can be tested.
CERTIFICATES = ("valid", "self_signed", "expired", "wrong_host")


def _write_tls_files(directory: Path, certificate: str = "valid") -> tuple[str, str, str]:
    """A fresh CA and a server certificate for 127.0.0.1/localhost: (ca, cert chain, key) paths.

    ``certificate`` spoils it on purpose: ``self_signed`` presents the CA's own certificate,
    ``expired`` one that expired yesterday, ``wrong_host`` one issued for another host name.
    """
    import trustme

    if certificate not in CERTIFICATES:
        raise ValueError(f"unknown certificate {certificate!r}; choose from {', '.join(CERTIFICATES)}")
    ca = trustme.CA(organization_name="pipesync sandbox CA")
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.pem"
    key_path = directory / "server.key"
    ca.cert_pem.write_to_path(str(ca_path))
    if certificate == "self_signed":
        ca.cert_pem.write_to_path(str(cert_path))
        ca.private_key_pem.write_to_path(str(key_path))
        return str(ca_path), str(cert_path), str(key_path)
    now = datetime.now(timezone.utc)
    if certificate == "expired":
        cert = ca.issue_cert("127.0.0.1", "localhost", not_before=now - timedelta(days=30),
                             not_after=now - timedelta(days=1))
    elif certificate == "wrong_host":
        cert = ca.issue_cert("crm.example.com")
    else:
        cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_path.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_path))
    return str(ca_path), str(cert_path), str(key_path)


@contextmanager
def serve(app: object, *, tls: bool = False, certificate: str = "valid") -> Iterator[Served]:
    """Run ``app`` on 127.0.0.1 (ephemeral port) until the block exits; ``certificate`` as in
    :func:`_write_tls_files` (TLS only)."""
    with tempfile.TemporaryDirectory(prefix="pipesync-sandbox-") as tmp:
        ca_bundle = cert_file = key_file = None
        if tls:
            ca_bundle, cert_file, key_file = _write_tls_files(Path(tmp), certificate)

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            http=_http_protocol(),
            log_level="warning",
            access_log=False,
            lifespan="auto",
            ssl_certfile=cert_file,
            ssl_keyfile=key_file,
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=_run, args=(server, sock), name=f"sandbox-server-{port}", daemon=True)
        thread.start()
        try:
            _wait_until_started(server, thread, port)
            scheme = "https" if tls else "http"
            yield Served(base_url=f"{scheme}://127.0.0.1:{port}", ca_bundle=ca_bundle, port=port)
        finally:
            server.should_exit = True
            thread.join(timeout=_STARTUP_TIMEOUT_S)
            sock.close()


def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits when the app's startup fails; the waiting caller reports it
        pass


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread, port: int) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError(f"the sandbox server on port {port} failed to start (see the log above)")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the sandbox server on port {port} did not start within {_STARTUP_TIMEOUT_S:.0f} s")
        time.sleep(0.002)
    # started means the listening socket is serving; a TCP connect proves it answers.
    with socket.create_connection(("127.0.0.1", port), timeout=_STARTUP_TIMEOUT_S):
        pass

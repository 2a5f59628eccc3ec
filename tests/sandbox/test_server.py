"""serve(): any ASGI app on real HTTP or HTTPS on loopback, for as long as a block runs."""

from __future__ import annotations

import socket
import ssl
from contextlib import asynccontextmanager

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pipesync_sandbox.server import serve


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"path": request.url.path, "scheme": request.url.scheme, "q": request.query_params.get("q")})


APP = Starlette(routes=[Route("/echo", _echo)])


def test_serves_plain_http_on_an_ephemeral_loopback_port():
    with serve(APP) as served:
        assert served.base_url == f"http://127.0.0.1:{served.port}"
        assert served.ca_bundle is None
        response = httpx.get(f"{served.base_url}/echo", params={"q": "ünïcode"})
    assert response.status_code == 200
    assert response.json() == {"path": "/echo", "scheme": "http", "q": "ünïcode"}


def test_serves_tls_that_verifies_against_the_throwaway_ca_only():
    with serve(APP, tls=True) as served:
        assert served.base_url.startswith("https://127.0.0.1:")
        with httpx.Client(verify=ssl.create_default_context(cafile=served.ca_bundle)) as client:
            assert client.get(f"{served.base_url}/echo").json()["scheme"] == "https"
        # the certificate is not trusted by default: only the handed-out bundle makes it valid
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{served.base_url}/echo", verify=ssl.create_default_context())


def test_two_servers_run_side_by_side_on_different_ports():
    with serve(APP) as first, serve(APP) as second:
        assert first.port != second.port
        assert httpx.get(f"{first.base_url}/echo").status_code == 200
        assert httpx.get(f"{second.base_url}/echo").status_code == 200


def test_the_port_is_closed_once_the_block_exits():
    with serve(APP) as served:
        port = served.port
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_keeps_serving_a_keep_alive_client_across_many_requests():
    with serve(APP) as served, httpx.Client(base_url=served.base_url) as client:
        statuses = {client.get("/echo").status_code for _ in range(50)}
    assert statuses == {200}


def test_an_app_that_cannot_start_is_an_error_not_a_hang():
    @asynccontextmanager
    async def broken_startup(app):
        raise RuntimeError("no database")
        yield

    with pytest.raises(RuntimeError, match="failed to start"), serve(Starlette(lifespan=broken_startup)):
        pass

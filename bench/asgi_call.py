"""Call an ASGI app in-process, with no server or socket: what the sandbox benchmarks time as "server time".

    status, body = asyncio.run(call(app, "GET", "/crm/v3/objects/deals", b"limit=100", {"authorization": "Bearer …"}))

Imported by the ``bench/*_sandbox_page.py`` scripts (run as ``python bench/<script>.py``, so ``bench/`` is on the path).
"""

from __future__ import annotations

from collections.abc import Mapping


async def call(app, method: str, path: str, query: bytes = b"", headers: Mapping[str, str] | None = None,
               body: bytes = b"") -> tuple[int, bytes]:
    """(status, body) of one HTTP request handled by ``app``."""
    raw_headers = [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": query, "root_path": "", "headers": raw_headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])

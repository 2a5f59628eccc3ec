"""Benchmark: how fast the Pipedrive sandbox serves a 100-deal page of ``GET /api/v2/deals`` (issue: "< 5 ms median").

Prints:
- server time, cold: the ASGI app alone (routing, auth, token-based rate limits,
  keyset paging, JSON), called in-process, on the first read of each page —
  every deal rendered afresh;
- server time, warm: the same pages again (each deal's JSON is cached until it changes);
- end to end: the real HTTP round trip over loopback with one keep-alive httpx
  client, median latency and requests/s.

Run: python bench/pipedrive_sandbox_page.py [--deals 10000] [--requests 300]
The machine may be shared: figures are medians, and noisy under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx
from asgi_call import call

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.pipedrive import create_app
from pipesync_sandbox.server import serve

PIPEDRIVE_SHARE = 0.22  # about this share of a generated world's deals are Pipedrive's


async def _call(app, token: str, query: bytes) -> tuple[int, bytes]:
    return await call(app, "GET", "/api/v2/deals", query, {"x-api-token": token})


def _timed_pages(loop, app, token: str, queries: list[bytes]) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for query in queries:
        started, started_cpu = time.perf_counter(), time.thread_time()
        status, _ = loop.run_until_complete(_call(app, token, query))
        cpu.append((time.thread_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started) * 1000)
        assert status == 200, status
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000, help="Pipedrive deals to seed (about)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    world = generate(1, round(args.deals / PIPEDRIVE_SHARE))
    # Ultimate plan and a high time scale keep the benchmark inside the scaled rate-limit windows.
    app, store = create_app(world.systems["pipedrive"], Faults(time_scale=1e6), plan="ultimate", seats=100,
                            as_of=world.as_of)
    token = store.credentials.api_token
    print(f"Pipedrive sandbox: {len(store.deals):,} deals")

    # Every page of the full listing, as a client walking next_cursor asks for them.
    loop = asyncio.new_event_loop()
    queries, cursor = [], None
    while True:
        query = b"limit=100" + (f"&cursor={cursor}".encode() if cursor else b"")
        queries.append(query)
        cursor = json.loads(loop.run_until_complete(_call(app, token, query))[1])["additional_data"]["next_cursor"]
        if cursor is None:
            break
    queries = queries[:-1]  # the last page is short

    app, store = create_app(world.systems["pipedrive"], Faults(time_scale=1e6), plan="ultimate", seats=100,
                            as_of=world.as_of, credentials=store.credentials)
    cold_wall, cold_cpu = _timed_pages(loop, app, token, queries)
    print(f"server time per 100-deal page, cold: median {statistics.median(cold_wall):.2f} ms wall, "
          f"{statistics.median(cold_cpu):.2f} ms CPU ({len(queries)} pages, each deal rendered afresh)")
    warm = [queries[n % len(queries)] for n in range(args.requests)]
    warm_wall, warm_cpu = _timed_pages(loop, app, token, warm)
    # CPU time is what the sandbox costs; wall time also counts waiting for a shared, busy CPU.
    print(f"server time per 100-deal page, warm: median {statistics.median(warm_wall):.2f} ms wall, "
          f"{statistics.median(warm_cpu):.2f} ms CPU ({args.requests} pages)")

    with serve(app) as served, httpx.Client(base_url=served.base_url, headers={"x-api-token": token}) as client:
        round_trips = []
        began = time.perf_counter()
        for query in warm:
            started = time.perf_counter()
            response = client.get("/api/v2/deals?" + query.decode())
            round_trips.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and len(response.json()["data"]) == 100
        elapsed = time.perf_counter() - began
    print(f"HTTP round trip per 100-deal page: median {statistics.median(round_trips):.2f} ms, "
          f"{len(warm) / elapsed:.0f} requests/s ({len(warm) / elapsed * 100:,.0f} deals/s), one client")


if __name__ == "__main__":
    main()

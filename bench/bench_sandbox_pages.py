"""How fast each CRM sandbox serves a 100-deal page over real HTTP on loopback.

    python bench/bench_sandbox_pages.py                  # 10,000-deal world, 500 requests per sandbox
    python bench/bench_sandbox_pages.py --requests 2000 --size 100000

For each vendor app: one keep-alive client asks for the same kind of 100-deal
page its adapter asks for (Salesforce SOQL query over TLS, HubSpot deals list,
Pipedrive v2 deals list), one request at a time. Prints median and p95 latency,
sequential requests/s, and the CPU time per request of client and server
together (both run in this process; the steadier figure on a busy machine). Rate limits run a million times faster than real
time so they never throttle the measurement. Target: a page in under 5 ms median.
On a shared machine the figures are noisy; run it twice and read the medians.
"""

from __future__ import annotations

import argparse
import json
import ssl
import statistics
import time
from collections import Counter
from collections.abc import Callable

import httpx

from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.server import serve
from pipesync_sandbox.world import SYSTEMS

SOQL = ("SELECT Id, Name, Amount, CurrencyIsoCode, StageName, CloseDate, OwnerId, AccountId, Account.Name, "
        "LastModifiedDate, SystemModstamp FROM Opportunity ORDER BY SystemModstamp LIMIT 100")


def _client(box) -> tuple[httpx.Client, Callable[[httpx.Client], httpx.Response]]:
    """A client for one sandbox, authenticated the vendor's way, and the page request to time."""
    c = box.credentials
    if box.system == "salesforce":
        client = httpx.Client(base_url=box.base_url, verify=ssl.create_default_context(cafile=box.ca_bundle))
        token = client.post("/services/oauth2/token", data={
            "grant_type": "password", "client_id": c["client_id"], "client_secret": c["client_secret"],
            "username": c["username"], "password": c["password"] + c["security_token"]})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        return client, lambda cl: cl.get("/services/data/v62.0/query", params={"q": SOQL})
    if box.system == "hubspot":
        client = httpx.Client(base_url=box.base_url, headers={"Authorization": f"Bearer {c['access_token']}"})
        props = "dealname,amount,deal_currency_code,dealstage,pipeline,closedate,hubspot_owner_id,hs_lastmodifieddate"
        return client, lambda cl: cl.get("/crm/v3/objects/deals", params={"limit": 100, "properties": props})
    client = httpx.Client(base_url=box.base_url, headers={"x-api-token": c["api_token"]})
    return client, lambda cl: cl.get("/api/v2/deals", params={"limit": 100})


def _floor_app(world):  # noqa: ANN202 — a Starlette app
    """A precomputed 100-deal JSON page behind serve() alone: the floor the vendor apps build on."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    deals = world.systems["hubspot"].deals[:100]
    body = json.dumps({"results": [{"id": d.id, "properties": {"dealname": d.name, "amount": str(d.amount),
                                                                "dealstage": d.stage_id, "pipeline": d.pipeline_id,
                                                                "closedate": d.close_date.isoformat()}}
                                   for d in deals]}).encode()

    async def page(request) -> Response:
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/page", page)])


def _measure(client: httpx.Client, page: Callable[[httpx.Client], httpx.Response], requests: int) -> dict[str, float]:
    try:
        for _ in range(20):  # warm up connections and caches
            page(client)
        latencies, statuses, sizes = [], Counter(), []
        started, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            t = time.perf_counter()
            response = page(client)
            latencies.append(time.perf_counter() - t)
            statuses[response.status_code] += 1
            sizes.append(len(response.content))
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        client.close()
    latencies.sort()
    return {"median_ms": statistics.median(latencies) * 1000, "p95_ms": latencies[int(0.95 * len(latencies))] * 1000,
            "req_per_s": requests / elapsed, "cpu_ms": cpu / requests * 1000, "bytes": statistics.median(sizes),
            "ok": statuses[200] / requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    world = generate(1, args.size)
    available = []
    for system in SYSTEMS:  # measure the vendor apps that exist
        module = {"salesforce": "salesforce", "hubspot": "hubspot", "pipedrive": "pipedrive.app"}[system]
        try:
            __import__(f"pipesync_sandbox.{module}")
            available.append(system)
        except ImportError as e:
            print(f"{system}: not measured ({e})")
    print(f"100-deal page, {args.requests} sequential requests per sandbox, world of {args.size:,} deals")
    with serve(_floor_app(world)) as served:
        _report("serve() floor", _measure(httpx.Client(base_url=served.base_url), lambda c: c.get("/page"),
                                          args.requests))
    unthrottled = {s: Faults(time_scale=1e6) for s in available}
    with Sandboxes(world, faults=unthrottled, systems=tuple(available)) as boxes:
        for box in boxes:
            client, page = _client(box)
            _report(box.system, _measure(client, page, args.requests))


def _report(name: str, r: dict[str, float]) -> None:
    print(f"  {name:<14} median {r['median_ms']:6.2f} ms   p95 {r['p95_ms']:6.2f} ms   {r['req_per_s']:7.0f} req/s   "
          f"cpu {r['cpu_ms']:5.2f} ms/req   {r['bytes'] / 1024:5.0f} KiB/page   {r['ok']:.0%} 200 OK")


if __name__ == "__main__":
    main()

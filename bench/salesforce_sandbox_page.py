"""Benchmark: how fast the Salesforce sandbox serves pages of opportunities (issue: "< 5 ms median" per 100 deals).

Prints, for the adapter's full field list (relationship fields included):
- server time of a follow-up page (``query/<cursor>-<offset>``): the ASGI app alone, called in-process.
  Salesforce's smallest batch is 200 records, so the figure is given per 200-record page and per 100 deals;
- server time of a first page: ``WHERE SystemModstamp > … ORDER BY SystemModstamp LIMIT 100``, once with
  a bound that every row passes (filter and sort the whole object) and once for the newest 1% (what an
  incremental sync asks; the SystemModstamp index narrows it);
- end to end: the real HTTPS round trip of a follow-up page with one keep-alive requests session.

Run: python bench/salesforce_sandbox_page.py [--deals 10000] [--requests 300]
(from the repository root: ``bench/asgi_call.py`` is imported from the script's folder).
The machine may be shared: figures are medians, and noisy under load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlencode

import requests
from asgi_call import call

from pipesync_sandbox.generator import generate
from pipesync_sandbox.salesforce.app import create_app
from pipesync_sandbox.server import serve

FIELDS = ("Id, Name, AccountId, Account.Name, Account.Website, Owner.Email, Owner.Name, Amount, CurrencyIsoCode, "
          "CloseDate, StageName, Probability, IsClosed, IsWon, ForecastCategoryName, LeadSource, NextStep, "
          "Loss_Reason__c, OwnerId, RecordTypeId, CreatedDate, LastModifiedDate, SystemModstamp, LastActivityDate, "
          "IsDeleted, Type, External_Id__c, HubSpot_Deal_Id__c")
QUERY = f"SELECT {FIELDS} FROM Opportunity ORDER BY SystemModstamp"
INCREMENTAL = f"SELECT {FIELDS} FROM Opportunity WHERE SystemModstamp > 2024-01-01T00:00:00Z " \
              "ORDER BY SystemModstamp LIMIT 100"
BATCH = 200


def timed(loop: asyncio.AbstractEventLoop, app, path: str, query: bytes, headers: dict) -> tuple[float, float, bytes]:
    started, started_cpu = time.perf_counter(), time.thread_time()
    status, body = loop.run_until_complete(call(app, "GET", path, query, headers))
    assert status == 200, body[:300]
    return (time.perf_counter() - started) * 1000, (time.thread_time() - started_cpu) * 1000, body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=10_000, help="Salesforce opportunities to seed (about)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    world = generate(1, args.deals * 3)  # the generator spreads deals over three systems
    started = time.perf_counter()
    app, store = create_app(world.systems["salesforce"], as_of=world.as_of, daily_limit=10_000_000)
    print(f"Salesforce sandbox: {len(store.tables['Opportunity']):,} opportunities, "
          f"{len(store.tables['OpportunityHistory']):,} history rows, loaded in {time.perf_counter() - started:.2f} s")

    token = store.auth.issue_access_token()
    headers = {"authorization": f"Bearer {token}", "sforce-query-options": f"batchSize={BATCH}"}
    base = "/services/data/v62.0"
    loop = asyncio.new_event_loop()
    _, _, first = timed(loop, app, f"{base}/query/", urlencode({"q": QUERY}).encode(), headers)
    next_url = json.loads(first)["nextRecordsUrl"]
    cursor = next_url.rsplit("-", 1)[0]
    total = json.loads(first)["totalSize"]
    offsets = list(range(BATCH, total - BATCH, BATCH))

    page_wall, page_cpu = [], []
    for n in range(args.requests):
        wall, cpu, _ = timed(loop, app, f"{cursor}-{offsets[n % len(offsets)]}", b"", headers)
        page_wall.append(wall)
        page_cpu.append(cpu)
    print(f"server time per {BATCH}-record follow-up page: median {statistics.median(page_wall):.2f} ms wall, "
          f"{statistics.median(page_cpu):.2f} ms CPU = {statistics.median(page_wall) / 2:.2f} ms wall per 100 deals "
          f"({args.requests} pages)")

    stamps = sorted(row["SystemModstamp"] for row in store.rows("Opportunity", include_deleted=False))
    recent = stamps[-len(stamps) // 100].replace(".000+0000", "Z")  # the newest 1%: a typical incremental sync
    for label, soql in (
            (f"a new 100-record query over all {total:,} live opportunities (filter + sort)", INCREMENTAL),
            ("a new incremental query for the 1% changed last (SystemModstamp index)",
             INCREMENTAL.replace("2024-01-01T00:00:00Z", recent))):
        first_wall, first_cpu = [], []
        for _ in range(max(args.requests // 10, 5)):
            wall, cpu, _ = timed(loop, app, f"{base}/query/", urlencode({"q": soql}).encode(), headers)
            first_wall.append(wall)
            first_cpu.append(cpu)
        print(f"server time of {label}: median {statistics.median(first_wall):.2f} ms wall, "
              f"{statistics.median(first_cpu):.2f} ms CPU")

    with serve(app, tls=True) as served, requests.Session() as session:
        session.verify = served.ca_bundle
        session.trust_env = False  # REQUESTS_CA_BUNDLE would override verify
        session.headers.update({"Authorization": f"Bearer {token}", "Sforce-Query-Options": f"batchSize={BATCH}"})
        round_trips = []
        began = time.perf_counter()
        for n in range(args.requests):
            at = time.perf_counter()
            response = session.get(f"{served.base_url}{cursor}-{offsets[n % len(offsets)]}")
            round_trips.append((time.perf_counter() - at) * 1000)
            assert response.status_code == 200 and len(response.json()["records"]) == BATCH
        elapsed = time.perf_counter() - began
    print(f"HTTPS round trip per {BATCH}-record page: median {statistics.median(round_trips):.2f} ms, "
          f"{args.requests / elapsed:.0f} requests/s ({args.requests / elapsed * BATCH:,.0f} deals/s), one client")


if __name__ == "__main__":
    main()

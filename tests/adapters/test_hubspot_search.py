"""HubSpot incremental search past the 10,000-result cap, against an in-memory search engine
that behaves like HubSpot's: GTE/EQ/GT filters, one sort, 200 per page, 400 past 10,000."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings, strategies as st

import pipesync.adapters.hubspot as hubspot
from pipesync.adapters.hubspot import HubSpotAdapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import SourceError


class FakeSearch:
    def __init__(self, stamps: dict[str, int], cap: int = 10_000):
        self.stamps = stamps  # deal id → hs_lastmodifieddate (ms)
        self.cap = cap
        self.requests = 0

    def __call__(self, filters, sort, properties, after):
        self.requests += 1
        offset = int(after or 0)
        if offset >= self.cap:
            raise SourceError("HubSpot: search failed (HTTP 400): paging past 10,000 results")
        rows = [(i, t) for i, t in self.stamps.items() if all(self._match(f, i, t) for f in filters)]
        rows.sort(key=(lambda r: r[1]) if sort == "hs_lastmodifieddate" else (lambda r: int(r[0])))
        page = rows[offset:offset + 200]
        body = {"total": len(rows), "results": [
            {"id": i, "properties": {"hs_lastmodifieddate": str(t)}} for i, t in page]}
        if offset + 200 < len(rows):
            body["paging"] = {"next": {"after": str(offset + 200)}}
        return body

    @staticmethod
    def _match(f, deal_id, stamp):
        value = int(deal_id) if f["propertyName"] == "hs_object_id" else stamp
        target = int(f["value"])
        return {"GTE": value >= target, "GT": value > target, "EQ": value == target}[f["operator"]]


@cache
def make_adapter() -> HubSpotAdapter:
    # The token is never sent: the search itself is replaced by FakeSearch.
    return HubSpotAdapter(SourceConfig(name="hs", type="hubspot", options={"base_url": "http://127.0.0.1:9"},
                                       secrets={"access_token": {"file": __file__}}), Settings())


@pytest.fixture
def adapter():
    return make_adapter()


def search_all(adapter, stamps, since=0, cap=10_000):
    fake = FakeSearch(stamps, cap)
    adapter._search = fake
    ids = [r["id"] for rows in adapter._search_since(since, []) for r in rows]
    return ids, fake


def test_more_than_ten_thousand_changes_are_all_read_once(adapter):
    stamps = {str(i): 1_000 + i // 3 for i in range(1, 25_001)}
    ids, fake = search_all(adapter, stamps)
    assert sorted(ids, key=int) == sorted(stamps, key=int)
    assert fake.requests <= 25_000 // 200 + 5


def test_ten_thousand_deals_sharing_one_instant_are_paged_by_id(adapter):
    # A pipeline edit touches every deal at once: 12,000 share one millisecond.
    stamps = {str(i): 5_000 for i in range(1, 12_001)} | {str(i): 5_000 + i for i in range(12_001, 12_500)}
    ids, _ = search_all(adapter, stamps)
    assert len(ids) == len(set(ids)) == len(stamps)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=900), st.integers(0, 30))
def test_every_deal_modified_since_the_watermark_is_read_exactly_once(offsets, since):
    # A cap of 600 (three pages) makes the time windows and the per-instant paging happen often.
    stamps = {str(i + 1): t for i, t in enumerate(offsets)}
    original = hubspot.SEARCH_CAP
    hubspot.SEARCH_CAP = 600
    try:
        ids, _ = search_all(make_adapter(), stamps, since, cap=600)
    finally:
        hubspot.SEARCH_CAP = original
    assert sorted(ids, key=int) == sorted((i for i, t in stamps.items() if t >= since), key=int)

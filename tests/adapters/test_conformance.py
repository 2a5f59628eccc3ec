"""The adapter conformance suite: every API adapter, against its vendor sandbox, meets one contract.

Each test names the property it checks; the parametrisation runs it for Salesforce,
HubSpot and Pipedrive. Ground truth is the generator's seeded world.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from pipesync.currency import FxTable
from pipesync.mapping import Mapping, PipelineRule, StageRule
from pipesync.model import RAW_FIELDS, Category, Change, ChangeKind, ChangeOutcome, Cursor, Discovery, FieldChange, Page
from pipesync.normalize import Normalizer
from pipesync.pipeline import load_pipeline
from pipesync_sandbox.faults import Faults
from pipesync_sandbox.generator import FX_TO_USD, generate

from .sandbox_env import SYSTEMS, SystemEnv, running

TRICKY_NAME = "O'Brien \\\\ \"Deal\" ' OR Name != '' LIMIT 1 -- SELECT Id FROM Opportunity; DROP"


@pytest.fixture(scope="module")
def world():
    return generate(11, 300)


@pytest.fixture(params=SYSTEMS)
def env(request, world, tmp_path):
    with running(request.param, world, tmp_path) as e:
        yield e


def mapping_from(found: Discovery) -> Mapping:
    """Every discovered stage mapped by its flags: won/lost stages to the shared won/lost stage, the rest to open."""
    def shared(stage) -> str:
        return "closed_won" if stage.is_won else "closed_lost" if stage.is_closed else "qualification"

    return Mapping(pipelines=[PipelineRule(id=p.id, stages=[StageRule(id=s.id, stage=shared(s)) for s in p.stages])
                              for p in found.pipelines])


def read_all(adapter, since: Cursor | None = None) -> list[Page]:
    return list(adapter.read_deals(since))


def live_ids(pages: list[Page]) -> list[str]:
    return [d.source_id for p in pages for d in p.deals if not d.values.get("is_deleted")]


def test_discovery_lists_pipelines_with_ordered_unique_stages(env: SystemEnv):
    with env.adapter() as adapter:
        found = adapter.discover()
    assert isinstance(found, Discovery) and found.pipelines
    assert len({p.id for p in found.pipelines}) == len(found.pipelines)
    for pipeline in found.pipelines:
        assert pipeline.label and pipeline.stages
        ids = [s.id for s in pipeline.stages]
        assert len(set(ids)) == len(ids)
        assert all(s.probability is None or 0 <= s.probability <= 1 for s in pipeline.stages)
    assert found.owners and all(o.id for o in found.owners)
    # Every stage a deal sits in is one the discovery reported, so a mapping built from it covers all deals.
    with env.adapter() as adapter:
        deals = [d for p in read_all(adapter) for d in p.deals]
    known = {(p.id, s.id) for p in found.pipelines for s in p.stages}
    assert {(d.values["pipeline"], d.values["source_stage"]) for d in deals} <= known


def test_full_read_returns_exactly_the_seeded_live_deals_with_typed_canonical_values(env: SystemEnv):
    with env.adapter() as adapter:
        pages = read_all(adapter)
    ids = live_ids(pages)
    assert len(ids) == len(set(ids)), "a deal was returned twice"
    assert set(ids) == env.seeded_live_ids()
    assert pages[-1].snapshot_complete
    with env.adapter() as adapter:
        found = adapter.discover()
    normalizer = Normalizer(env.source.name, mapping_from(found), load_pipeline(), FxTable("USD", {k: Decimal(str(v)) for k, v in FX_TO_USD.items()}), "test")
    for deal in (d for p in pages for d in p.deals):
        canonical = normalizer.normalize(deal)
        assert canonical.key == f"{env.source.name}:{deal.source_id}"
        if deal.values.get("status") in ("won", "lost"):  # Pipedrive: won/lost from the status, not the stage
            assert canonical.status is Category(deal.values["status"])
        assert set(deal.values) <= set(RAW_FIELDS)
        v = deal.values
        assert v["source_id"] == deal.source_id and deal.locator
        assert v["amount"] is None or isinstance(v["amount"], Decimal)
        assert v["close_date"] is None or (isinstance(v["close_date"], date) and not isinstance(v["close_date"], datetime))
        for key in ("created_at", "updated_at", "stage_entered_at", "last_activity_at"):
            assert v.get(key) is None or v[key].tzinfo is not None
        assert v.get("probability") is None or 0 <= v["probability"] <= 1
        assert "pipesync_own_write" in deal.raw


def test_close_dates_are_the_seeded_calendar_dates(env: SystemEnv):
    seeded = {str(d.id): d.close_date for d in env.sandbox.data.deals}
    with env.adapter() as adapter:
        deals = [d for p in read_all(adapter) for d in p.deals]
    wrong = {d.source_id: (d.values["close_date"], seeded[d.source_id]) for d in deals
             if d.values["close_date"] != seeded[d.source_id]}
    assert not wrong


def test_closed_deals_carry_the_day_they_closed_and_open_ones_none(env: SystemEnv):
    seeded = {str(d.id): d for d in env.sandbox.data.deals}
    with env.adapter() as adapter:
        deals = [d for p in read_all(adapter) for d in p.deals if not d.values["is_deleted"]]
    closed = 0
    for deal in deals:
        seed, actual = seeded[deal.source_id], deal.values["actual_close_date"]
        if seed.status == "open":
            assert actual is None, deal.source_id
            continue
        closed += 1
        if env.system == "pipedrive":  # won_time / lost_time: an instant, its day taken in the source's timezone
            assert isinstance(actual, datetime) and actual.tzinfo is not None, deal.source_id
        else:  # a closed opportunity's or deal's close date is the day it closed
            assert actual == seed.close_date, deal.source_id
    assert closed


def test_incremental_read_sees_changes_and_deletions_and_its_cursor_advances(env: SystemEnv):
    with env.adapter() as adapter:
        full = read_all(adapter)
        cursor = full[-1].cursor
        changed = set(env.store.touch_deals(0.1))
        victim = sorted(env.seeded_live_ids() - changed)[0]
        env.store.delete_deal(victim)
        incremental = read_all(adapter, cursor)
        again = read_all(adapter, incremental[-1].cursor)
    seen = set(live_ids(incremental))
    assert changed and changed <= seen
    assert seen <= changed | env.seeded_live_ids()
    assert victim in {i for p in incremental for i in p.deleted_ids}
    assert incremental[-1].cursor.value != cursor.value
    # Nothing changed since: at most what the lookback window re-reads on purpose, never new deals.
    assert set(live_ids(again)) <= changed


def test_each_page_carries_a_cursor_that_resumes_after_it(env: SystemEnv):
    with env.adapter() as adapter:
        cursor = read_all(adapter)[-1].cursor
        changed = set(env.store.touch_deals(0.2))
        pages = read_all(adapter, cursor)
        first = next(p for p in pages if p.deals)
        # A run killed after the first page resumes from its cursor and still sees every change.
        rest = read_all(adapter, first.cursor)
    assert changed <= {d.source_id for d in first.deals} | set(live_ids(rest))


def test_write_round_trip_tags_the_origin_and_keeps_a_tricky_name_intact(env: SystemEnv):
    with env.adapter() as adapter:
        deals = [d for p in read_all(adapter) for d in p.deals]
        target = next(d for d in deals if d.values["amount"] is not None and d.values.get("status") in (None, "open"))
        cursor_pages = read_all(adapter, Cursor(value={}))  # a fresh full read: the baseline cursor
        change = Change(
            deal_key=f"{env.source.name}:{target.source_id}", kind=ChangeKind.SET_FIELDS, rule="test", reason="round trip",
            fields=[FieldChange(field="name", before=target.values["name"], after=TRICKY_NAME),
                    FieldChange(field="amount", before=target.values["amount"], after=Decimal("12345.67")),
                    FieldChange(field="close_date", before=target.values["close_date"], after=date(2027, 1, 31))],
        )
        [result] = adapter.write([change])
        assert result.outcome is ChangeOutcome.APPLIED, result.reason
        after = {d.source_id: d for p in read_all(adapter, cursor_pages[-1].cursor) for d in p.deals}
    written = after[target.source_id]
    assert written.values["name"] == TRICKY_NAME
    assert written.values["amount"] == Decimal("12345.67")
    assert written.values["close_date"] == date(2027, 1, 31)
    assert written.raw["pipesync_own_write"] is True


def test_a_stale_before_image_is_a_conflict_and_nothing_is_written(env: SystemEnv):
    with env.adapter() as adapter:
        target = next(d for p in read_all(adapter) for d in p.deals)
        stale = Change(deal_key=f"{env.source.name}:{target.source_id}", kind=ChangeKind.SET_FIELDS, rule="t", reason="t",
                       fields=[FieldChange(field="name", before="not what it is", after="overwritten")])
        # An id crafted to widen a query must address nothing at all.
        injected = Change(deal_key=f"{env.source.name}:0' OR Name != '", kind=ChangeKind.SET_FIELDS, rule="t", reason="t",
                          fields=[FieldChange(field="name", before=None, after="overwritten")])
        results = adapter.write([stale, injected])
        names = {d.values["name"] for p in read_all(adapter) for d in p.deals}
    assert results[0].outcome is ChangeOutcome.CONFLICT
    assert results[1].outcome in (ChangeOutcome.CONFLICT, ChangeOutcome.FAILED)
    assert "overwritten" not in names


def test_a_full_read_survives_every_fault_at_once(world, tmp_path):
    rate_limited = 0
    for system in SYSTEMS:
        faults = Faults(error_rate=0.05, burst_429_every=6, burst_429_len=2, burst_retry_after_s=0.05,
                        slow_rate=0.05, slow_ms=30, drop_rate=0.05, expire_token_after=2, seed=5)
        (tmp_path / system).mkdir()
        # Small pages, so one read makes enough requests to meet every fault several times.
        small = {"retry_base_s": 0.02, **({"batch_size": 200} if system == "salesforce" else {"page_size": 20} if system == "pipedrive" else {})}
        with running(system, world, tmp_path / system, faults=faults, oauth=True, options=small) as env:
            with env.adapter() as adapter:
                pages = read_all(adapter)
                stats = adapter.api.policy.stats
            assert stats.retries and stats.refreshes, f"{system}: faults were not exercised"
            rate_limited += stats.rate_limited
            ids = live_ids(pages)
            assert len(ids) == len(set(ids)), f"{system}: duplicates under faults"
            assert set(ids) == env.seeded_live_ids(), f"{system}: missing or extra deals under faults"
    assert rate_limited, "no 429 burst was met"


def test_stage_history_ends_in_each_deals_current_stage(env: SystemEnv):
    with env.adapter() as adapter:
        deals = [d for p in read_all(adapter) for d in p.deals][:5]
        history = list(adapter.read_stage_history([d.source_id for d in deals]))
    last: dict[str, str] = {}
    for change in sorted(history, key=lambda c: c.changed_at):
        last[change.source_id] = change.to_stage
    assert last and all(last[d.source_id] == d.values["source_stage"] for d in deals if d.source_id in last)


def test_close_lost_and_create_round_trip(env: SystemEnv):
    with env.adapter() as adapter:
        full = read_all(adapter)
        target = next(d for p in full for d in p.deals if d.values.get("status") in (None, "open")
                      and d.values["source_stage"] not in ("closedwon", "closedlost"))
        pipeline = target.values["pipeline"]
        close = Change(deal_key=f"{env.source.name}:{target.source_id}", kind=ChangeKind.CLOSE_LOST, rule="t", reason="t")
        create = Change(deal_key="csv:new-1", kind=ChangeKind.CREATE, rule="migrate", reason="t", fields=[
            FieldChange(field="name", after="Created by pipesync"), FieldChange(field="amount", after=Decimal("500")),
            FieldChange(field="close_date", after=date(2027, 6, 30)),
            FieldChange(field="pipeline", after=pipeline), FieldChange(field="source_stage", after=target.values["source_stage"]),
        ])
        closed, created = adapter.write([close, create])
        assert closed.outcome is ChangeOutcome.APPLIED, closed.reason
        assert created.outcome is ChangeOutcome.APPLIED and created.new_source_id, created.reason
        after = {d.source_id: d for p in read_all(adapter, full[-1].cursor) for d in p.deals}
        found = adapter.discover()
    lost_stages = {s.id for p in found.pipelines for s in p.stages if s.is_closed and not s.is_won}
    closed_deal = after[target.source_id].values
    assert closed_deal.get("status") == "lost" or closed_deal["source_stage"] in lost_stages
    new = after[created.new_source_id].values
    assert new["name"] == "Created by pipesync" and new["amount"] == Decimal("500") and new["close_date"] == date(2027, 6, 30)


def test_a_full_read_stopped_after_its_first_page_resumes_to_every_deal(world, tmp_path):
    for system in SYSTEMS:
        small = {"salesforce": {"batch_size": 200}, "hubspot": {}, "pipedrive": {"page_size": 20}}[system]
        with running(system, world, tmp_path / system, options=small) as env, env.adapter() as adapter:
            pages = read_all(adapter)
            first = next(i for i, p in enumerate(pages) if p.deals)
            resumed = read_all(adapter, pages[first].cursor)
            ids = set(live_ids(pages[:first + 1])) | set(live_ids(resumed))
            assert ids == env.seeded_live_ids(), system

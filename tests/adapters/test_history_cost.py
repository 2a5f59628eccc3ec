"""Stage history at the vendor minimum: what each adapter's history costs beside the deal pages,
and that the cheap way gives the same history as the vendor's full record of it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from pipesync.adapters import open_adapter
from pipesync.adapters.hubspot import _stage_chain
from pipesync.config import Settings
from pipesync_sandbox.generator import generate

from .sandbox_env import running


@pytest.fixture(scope="module")
def world():
    return generate(13, 1500)


def history_per_page(adapter, cursor=None):
    """Sync's order: each page's history is asked for right after the page. (changes, calls of the whole read)."""
    before, changes = adapter.calls, []
    for page in adapter.read_deals(cursor):
        changes += adapter.read_stage_history([d.source_id for d in page.deals])
    return changes, adapter.calls - before


def calls_without_history(env, cursor=None):
    source = env.source.model_copy(update={"options": env.source.options.model_copy(update={"history": False})})
    with open_adapter(source, Settings()) as adapter:
        for _ in adapter.read_deals(cursor):
            pass
        return adapter.calls


def as_set(changes):
    return {(c.source_id, c.pipeline, c.from_stage, c.to_stage, c.changed_at) for c in changes}


def test_hubspot_history_comes_with_the_deal_pages_and_matches_the_property_history(world, tmp_path):
    with running("hubspot", world, tmp_path) as env:
        with env.adapter() as adapter:
            cheap, calls = history_per_page(adapter)
            ids = sorted({c.source_id for c in cheap})
        with env.adapter() as fresh:  # knows no deal pages: reads propertiesWithHistory for all
            full = list(fresh.read_stage_history(ids))
            full_calls = fresh.calls
        extra = calls - calls_without_history(env)
    assert as_set(cheap) == as_set(full)
    # Only deals that went back to a stage (their dates keep the last visit only) cost a history read,
    # in full batches of 50 gathered across pages.
    assert full_calls >= len(ids) // 50 and extra <= full_calls // 4, (extra, full_calls)


def test_hubspot_incremental_history_costs_nothing_for_a_field_edit(world, tmp_path):
    with running("hubspot", world, tmp_path) as env, env.adapter() as adapter:
        pages = list(adapter.read_deals(None))
        env.store.touch_deals(0.02)
        changes, calls = history_per_page(adapter, pages[-1].cursor)
        extra = calls - calls_without_history(env, pages[-1].cursor)
    assert changes and extra <= 1


T = ["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", "2026-01-03T00:00:00.000Z", "2026-01-04T00:00:00.000Z"]


def props(**values):
    return {"createdate": T[0], "pipeline": "default", **values}


def test_a_stage_chain_is_the_history_only_when_it_has_no_gap():
    chained = props(dealstage="b", hs_v2_date_entered_a=T[0], hs_v2_date_exited_a=T[1], hs_v2_date_entered_b=T[1])
    assert _stage_chain(chained, ["a", "b", "c"]) == ("default", [
        ("a", datetime(2026, 1, 1, tzinfo=timezone.utc)), ("b", datetime(2026, 1, 2, tzinfo=timezone.utc))])
    # a → b → a → c: a keeps only its second visit, so the chain starts after creation
    revisited = props(dealstage="c", hs_v2_date_entered_b=T[1], hs_v2_date_exited_b=T[2],
                      hs_v2_date_entered_a=T[2], hs_v2_date_exited_a=T[3], hs_v2_date_entered_c=T[3])
    assert _stage_chain(revisited, ["a", "b", "c"]) is None
    # a → b → a: the current stage was left once
    back = props(dealstage="a", hs_v2_date_entered_a=T[2], hs_v2_date_exited_a=T[1], hs_v2_date_entered_b=T[1],
                 hs_v2_date_exited_b=T[2])
    assert _stage_chain(back, ["a", "b"]) is None
    # a stage the pipelines no longer list (its dates were not asked for): a gap
    assert _stage_chain(props(dealstage="b", hs_v2_date_entered_b=T[1]), ["b"]) is None


def test_salesforce_history_is_listed_with_a_full_read_not_read_per_200_opportunities(world, tmp_path):
    with running("salesforce", world, tmp_path) as env:
        with env.adapter() as adapter:
            listed, calls = history_per_page(adapter)
            ids = sorted({c.source_id for c in listed})
        with env.adapter() as fresh:  # no full read: by id, 200 opportunities per query
            by_id = list(fresh.read_stage_history(ids))
            by_id_calls = fresh.calls
        extra = calls - calls_without_history(env)
    assert as_set(listed) == as_set(by_id)
    rows = sum(1 for _ in by_id)
    assert extra <= -(-rows // 2000) and by_id_calls >= len(ids) // 200, (extra, by_id_calls)

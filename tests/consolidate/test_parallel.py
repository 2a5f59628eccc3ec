"""The second core: a forked side job and threads give what one process alone gives."""

from __future__ import annotations

import os
import time
from datetime import date

import pytest

from pipesync.consolidate import blocking, engine, features, parallel, scoring
from pipesync.consolidate.parallel import SideJob, thread_map
from pipesync.workers import can_fork, cpu_count
from tests.consolidate.conftest import make_deal, records

needs_fork = pytest.mark.skipif(not can_fork() or cpu_count() < 2, reason="no second core to fork for")


def squares(n: int) -> list[int]:
    return [i * i for i in range(n)]


def fails() -> None:
    raise ValueError("bad input")


@pytest.mark.parametrize("worth_it", [True, False])
def test_a_side_job_gives_the_function_value_forked_or_not(worth_it):
    with SideJob(squares, 5, worth_it=worth_it) as job:
        assert job.result() == [0, 1, 4, 9, 16]
        assert job.result() == [0, 1, 4, 9, 16]  # asked again: the same value, not computed again


@pytest.mark.parametrize("worth_it", [True, False])
def test_a_side_job_raises_the_function_error(worth_it):
    with SideJob(fails, worth_it=worth_it) as job, pytest.raises(ValueError, match="bad input"):
        job.result()


@needs_fork
def test_the_work_of_a_worker_that_died_is_done_here():
    parent = os.getpid()

    def dies_in_the_child() -> str:
        if os.getpid() != parent:
            os._exit(3)
        return "done here"

    with SideJob(dies_in_the_child) as job:
        assert job.result() == "done here"


@needs_fork
def test_a_side_job_never_asked_for_is_stopped_when_closed(tmp_path):
    started = tmp_path / "pid"

    def waits() -> None:
        started.write_text(str(os.getpid()))
        time.sleep(60)

    with SideJob(waits):
        deadline = time.monotonic() + 10
        while not started.exists() or not started.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    with pytest.raises(ProcessLookupError):
        os.kill(int(started.read_text()), 0)


@pytest.mark.parametrize("worth_it", [True, False])
def test_thread_map_keeps_the_order_of_its_items(worth_it):
    assert list(thread_map(lambda n: n * 10, range(7), worth_it=worth_it)) == [0, 10, 20, 30, 40, 50, 60]


DEALS = [
    make_deal("salesforce", "006A", name="Acme - Renewal 2025"),
    make_deal("hubspot", "1", name="ACME renewal 2025", account_name="ACME, Inc", days=2, stage="negotiation"),
    make_deal("pipedrive", "9", name="Renewal 2025", account_name="Acme", days=1, amount=61_000),
    make_deal("salesforce", "006B", name="Acme - Expansion", amount=120_000, close_date=date(2025, 9, 30), days=40),
    make_deal("hubspot", "2", name="Acme upsell", amount=120_000, close_date=date(2025, 9, 30), days=41),
    make_deal("pipedrive", "4", name="Globex - New Business", account_name="Globex", account_domain="globex.com"),
]


def outcome(result):
    rows = sorted((row["golden_id"], sorted((k, repr(v)) for k, v in row.items())) for row in result.golden_rows())
    links = sorted((l.deal_key, l.golden_id, l.score, l.rule, l.linked_to) for l in result.links())
    return rows, links


def test_a_consolidation_on_two_cores_equals_one_on_one(monkeypatch, rules, pipeline):
    one_core = outcome(engine.consolidate(records(*DEALS), rules, pipeline))
    for module in (engine, features, blocking, scoring):  # every input counts as large
        monkeypatch.setattr(module, "PARALLEL_FROM", 0)
    assert outcome(engine.consolidate(records(*DEALS), rules, pipeline)) == one_core
    monkeypatch.setattr(parallel, "can_fork", lambda: False)  # threads, but no worker
    assert outcome(engine.consolidate(records(*DEALS), rules, pipeline)) == one_core

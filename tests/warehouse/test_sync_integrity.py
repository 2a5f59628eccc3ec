"""Issue 15: what an attack on sync found losing or corrupting data, each closed as a class (SQLite and PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timezone
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, func, select, text
from typer.testing import CliRunner

from pipesync import sync as sync_module
from pipesync.cli import app
from pipesync.errors import WarehouseError
from pipesync.model import StageChange
from pipesync.sync import run_sync
from pipesync.warehouse import schema as t
from pipesync.warehouse import version
from pipesync.warehouse.store import PageWrite, Warehouse, now
from pipesync.workers import can_fork
from tests.warehouse.test_migrations import make_first_release_warehouse
from tests.warehouse.integrity import HEADER, csv_text, deal_rows, deals, make_project, settings_of, tables, write

N = 30
WORKERS = [1, pytest.param(3, marks=pytest.mark.skipif(not can_fork(), reason="workers need fork"))]


@pytest.fixture
def project(tmp_path, warehouse_url):
    """A project whose 30 deals are synced once already."""
    make_project(tmp_path, warehouse_url)
    write(tmp_path, csv_text(deal_rows(N)))
    first = run_sync(settings_of(tmp_path, warehouse_url)).sources["crm"]
    assert (first.inserted, first.error) == (N, None)
    return tmp_path


def live(url: str) -> set[str]:
    return {k for k, d in deals(url).items() if not d["is_deleted"]}


# -- 1. a file the reader cannot split into rows deletes nothing ------------------------------------


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda rows: rows[2].__setitem__(1, '"Deal 3, the quote never closes'), id="quote-never-closes"),
        pytest.param(
            lambda rows: (rows[2].__setitem__(1, '"Deal 3'), rows[20].__setitem__(1, 'Monitor 27"')), id="quote-closes-rows-later"
        ),
        pytest.param(lambda rows: rows[2].__setitem__(1, '"Deal 3" and more'), id="quote-closes-mid-cell"),
    ],
)
def test_a_stray_quote_fails_the_read_naming_its_line_and_deletes_nothing(project, warehouse_url, break_it, workers):
    rows = deal_rows(N)
    break_it(rows)
    write(project, csv_text(rows))
    before = tables(warehouse_url)
    result = run_sync(settings_of(project, warehouse_url), workers=workers)
    crm = result.sources["crm"]
    assert result.status == "failed" and crm.deleted == 0
    assert crm.error.startswith("crm.csv line 4: a quote opened on this line"), crm.error  # the header is line 1
    assert "nothing was marked deleted" in crm.error
    assert tables(warehouse_url) == before


def test_a_cell_over_the_csv_field_limit_is_an_error_naming_file_and_line(project, warehouse_url):
    rows = deal_rows(N)
    rows[5][1] = '"' + "x" * 200_000 + '"'
    write(project, csv_text(rows))
    crm = run_sync(settings_of(project, warehouse_url)).sources["crm"]
    assert crm.error.startswith("crm.csv line 7: a cell longer than 131,072 characters"), crm.error
    assert len(live(warehouse_url)) == N


# -- 2. the deletion guard --------------------------------------------------------------------------


@pytest.mark.parametrize("workers", WORKERS)
def test_a_snapshot_that_would_delete_most_deals_is_held_back_until_allowed(project, warehouse_url, workers):
    settings = settings_of(project, warehouse_url)
    rows = deal_rows(N)[:10]  # truncated: 10 of 30 rows, one of them moved on
    rows[2][2] = "Negotiation"
    write(project, csv_text(rows))
    held = run_sync(settings, workers=workers)
    crm = held.sources["crm"]
    assert held.status == "failed" and crm.deleted == 0 and crm.updated == 1
    assert "leaves out 20 of the source's 30 live deals (67%)" in crm.error
    assert "Held back: those 20 deletions" in crm.error and "nothing else (written: 0 inserted, 1 updated" in crm.error
    assert "--allow-deletions 67%" in crm.error
    assert len(live(warehouse_url)) == N
    assert deals(warehouse_url)["crm:1003"]["stage"] == "negotiation", "the snapshot's other changes were written"

    allowed = run_sync(settings, workers=workers, allow_deletions=0.67).sources["crm"]
    assert (allowed.deleted, allowed.error) == (20, None)
    assert live(warehouse_url) == {f"crm:{1000 + i}" for i in range(1, 11)}


def test_a_header_only_export_deletes_nothing_and_a_few_deletions_need_no_permission(project, warehouse_url):
    settings = settings_of(project, warehouse_url)
    write(project, csv_text([]))
    assert "--allow-deletions 100%" in run_sync(settings).sources["crm"].error
    assert len(live(warehouse_url)) == N
    write(project, csv_text(deal_rows(N)[:-5]))  # 5 deals: no more than a handful
    assert run_sync(settings).sources["crm"].deleted == 5


def test_the_cli_asks_for_allow_deletions_and_accepts_it(project, warehouse_url):
    config = str(project / "pipesync.yaml")
    write(project, csv_text([]))
    refused = CliRunner().invoke(app, ["sync", "--config", config])
    assert refused.exit_code == 1
    assert "--allow-deletions 100%" in refused.output
    assert CliRunner().invoke(app, ["sync", "--config", config, "--allow-deletions", "lots"]).exit_code == 2
    allowed = CliRunner().invoke(app, ["sync", "--config", config, "--allow-deletions", "100%", "--json"])
    assert allowed.exit_code == 0, allowed.output
    assert live(warehouse_url) == set()


# -- 3. stage history is unique by construction --------------------------------------------------


def export(folder, edition: int, *, times: bool = True) -> None:
    """Edition 1 or 2 of the export, saved at a time of its own (without times: no column says when
    a deal last changed, so the file's own modification time dates what changed)."""
    rows = deal_rows(N, version=edition)
    write(folder, csv_text(rows) if times else csv_text([r[:-1] for r in rows], HEADER[:-1]))
    saved = EXPORTED[edition].timestamp()
    os.utime(folder / "crm.csv", (saved, saved))


EXPORTED = {1: datetime(2026, 11, 1, 9, 30, tzinfo=timezone.utc), 2: datetime(2026, 11, 2, 9, 30, tzinfo=timezone.utc)}


def without_the_run_lock(monkeypatch) -> None:
    """The run lock (pipesync.warehouse.locks) keeps two syncs of a source apart; these tests take it away,
    since the tables must equal one clean run's whatever the lock does (a lock can be lost with its session)."""
    monkeypatch.setattr(sync_module, "source_lock", lambda *args, **kwargs: contextlib.nullcontext(0.0))


@pytest.mark.parametrize("times", [True, False], ids=["rows-dated", "rows-undated"])
def test_two_syncs_of_a_source_at_once_leave_the_tables_of_one_clean_run(tmp_path, warehouse_url, monkeypatch, times):
    make_project(tmp_path, warehouse_url)
    settings = settings_of(tmp_path, warehouse_url)

    def clean() -> dict:
        for edition in (1, 2):
            export(tmp_path, edition, times=times)
            assert run_sync(settings).status == "ok"
        return tables(warehouse_url)

    expected = clean()
    assert len(expected["stage_history"]) == N // 3
    if not times:  # a change seen without a time of its own is dated by the export it was seen in
        assert {h["changed_at"] for h in expected["stage_history"]} == {EXPORTED[2]}
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:
        version.drop(conn)
    engine.dispose()

    export(tmp_path, 1, times=times)
    run_sync(settings)
    export(tmp_path, 2, times=times)
    # Both runs read what the warehouse holds before either writes: the interleaving that doubled history.
    both_read = threading.Barrier(2, timeout=30)
    write_page = Warehouse.write_page
    first_write: set[int] = set()

    def write_after_the_other_read(self, page):
        if threading.get_ident() not in first_write:
            first_write.add(threading.get_ident())
            both_read.wait()
        write_page(self, page)

    monkeypatch.setattr(Warehouse, "write_page", write_after_the_other_read)
    without_the_run_lock(monkeypatch)
    results = []
    threads = [threading.Thread(target=lambda: results.append(run_sync(settings, workers=1))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status for r in results] == ["ok", "ok"], [r.as_dict() for r in results]
    assert tables(warehouse_url) == expected


# `pipesync sync` whose first page waits, before it writes, until the other process has read too:
# both found the warehouse empty and insert every deal (argv: this run's flag, the other's, the config).
SYNC_AFTER_THE_OTHER_READ = """
import contextlib, os, sys, time
from pathlib import Path
from pipesync import sync
from pipesync.cli import app
from pipesync.warehouse import store
sync.source_lock = lambda *args, **kwargs: contextlib.nullcontext(0.0)  # the tables must hold without the lock
mine, theirs = Path(sys.argv[1]), Path(sys.argv[2])
write_page = store.Warehouse.write_page
waited = set()  # the processes of this run (a sync forks a worker per partition) that waited
def write_after_the_other_read(self, page):
    if os.getpid() not in waited:
        waited.add(os.getpid())
        mine.touch()
        deadline = time.monotonic() + 60
        while not theirs.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    write_page(self, page)
store.Warehouse.write_page = write_after_the_other_read
sys.argv = ["pipesync", "sync", "--config", sys.argv[3], "--json"]
app()
"""


def test_two_first_syncs_of_a_source_at_once_in_two_processes_end_as_one_clean_run(tmp_path, warehouse_url):
    config = make_project(tmp_path, warehouse_url)
    write(tmp_path, csv_text(deal_rows(N)))
    assert run_sync(settings_of(tmp_path, warehouse_url)).status == "ok"
    expected = every_table(warehouse_url)
    engine = create_engine(warehouse_url)
    with engine.begin() as conn:
        version.drop(conn)
    engine.dispose()

    flags = [tmp_path / "a-read", tmp_path / "b-read"]
    runs = [subprocess.Popen([sys.executable, "-c", SYNC_AFTER_THE_OTHER_READ, str(mine), str(theirs), str(config)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for mine, theirs in (flags, flags[::-1])]
    outputs = [run.communicate(timeout=120) for run in runs]
    for run, (out, err) in zip(runs, outputs):
        assert run.returncode == 0, out + err
        assert json.loads(out)["sources"]["crm"]["inserted"] == N
    assert every_table(warehouse_url) == expected


def every_table(url: str) -> dict[str, list[dict]]:
    """What a sync writes, but the times of writing."""
    rows = tables(url, (t.deals, t.stage_history, t.quarantine, t.sync_state, t.stage_catalog))
    for state in rows["sync_state"]:
        del state["updated_at"]
    return rows


def test_an_older_warehouse_loses_its_duplicate_history_and_gains_the_key(warehouse_url):
    make_first_release_warehouse(warehouse_url)
    engine = create_engine(warehouse_url)
    change = {"deal_key": "crm:1", "from_stage": None, "to_stage": "proposal", "changed_at": now(), "origin": "observed"}
    with engine.begin() as conn:
        conn.execute(t.stage_history.insert(), [change, change, {**change, "to_stage": "negotiation"}])
    version.upgrade(engine)
    engine.dispose()
    wh = Warehouse(warehouse_url)
    wh.write_page(PageWrite(source="crm", cursor=None, history=[StageChange(**change)]))
    with wh.begin() as conn:
        assert sorted(conn.scalars(select(t.stage_history.c.to_stage))) == ["negotiation", "proposal"]
    wh.close()


# -- 4. an id on two rows ---------------------------------------------------------------------------


@pytest.mark.parametrize("workers", WORKERS)
def test_an_id_on_two_rows_pages_apart_is_its_first_row_and_re_runs_write_nothing(tmp_path, warehouse_url, workers):
    make_project(tmp_path, warehouse_url)
    rows = deal_rows(N)
    rows[20] = [rows[2][0], "Deal 3 again", "Won", "1.00", "USD", "2026-11-30 10:00"]  # rows 4 and 22 of the file
    write(tmp_path, csv_text(rows))
    settings = settings_of(tmp_path, warehouse_url)
    first = run_sync(settings, workers=workers).sources["crm"]
    assert (first.inserted, first.quarantined) == (N - 1, 1)
    [entry] = tables(warehouse_url)["quarantine"]
    assert (entry["record"], entry["field"]) == ("crm.csv row 22", "source_id")
    assert "duplicate_id" in entry["reason"] and "crm.csv row 4" in entry["reason"]
    assert deals(warehouse_url)["crm:1003"]["name"] == "Deal 3 café"
    for _ in range(2):
        again = run_sync(settings, workers=workers).sources["crm"]
        assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, N - 1, 1)
    assert tables(warehouse_url)["stage_history"] == []


# -- 5. values the warehouse cannot hold --------------------------------------------------------


def test_values_the_warehouse_cannot_hold_are_quarantined_alone_on_every_dialect(project, warehouse_url):
    rows = deal_rows(N)
    rows[3][1] = "Deal\x004"
    rows[6][0] = "7" * 400
    rows[9][3] = "1" + "0" * 23
    rows[12][0] = "13\x00"
    write(project, csv_text(rows))
    result = run_sync(settings_of(project, warehouse_url))
    crm = result.sources["crm"]
    # (deals 1007 and 1013 are no longer in the file: their rows have other ids)
    assert (result.status, crm.quarantined, crm.updated, crm.deleted) == ("ok", 4, 0, 2)
    reasons = {q["locator"]: (q["record"], q["field"], q["reason"]) for q in tables(warehouse_url)["quarantine"]}
    assert {loc: (rec, field, reason.split(": ")[2]) for loc, (rec, field, reason) in reasons.items()} == {
        "crm.csv row 5": ("1004", "name", "nul_character"),
        "crm.csv row 8": ("crm.csv row 8", "source_id", "value_too_long"),
        "crm.csv row 11": ("1010", "amount", "amount_out_of_range"),
        "crm.csv row 14": ("crm.csv row 14", "source_id", "nul_character"),
    }
    assert deals(warehouse_url)["crm:1004"]["name"] == "Deal 4 café", "the stored deal stays as it was"


def test_amounts_are_stored_exactly(project, warehouse_url):
    rows = deal_rows(N)
    rows[0][3], rows[0][4] = "9999999999999.9999", "USD"
    rows[1][3], rows[1][4] = "0.0001", "USD"
    write(project, csv_text(rows))
    run_sync(settings_of(project, warehouse_url))
    stored = deals(warehouse_url)
    assert (stored["crm:1001"]["amount"], stored["crm:1001"]["amount_reporting"]) == (Decimal("9999999999999.9999"),) * 2
    assert stored["crm:1002"]["amount"] == Decimal("0.0001")


# -- 6. quarantine rows of a fixed file leave ---------------------------------------------------


def test_a_row_without_an_id_leaves_quarantine_once_the_file_is_fixed(project, warehouse_url):
    settings = settings_of(project, warehouse_url)
    rows = deal_rows(N)
    rows[4][0] = ""
    rows[7][2] = "Nowhere"  # a stage the mapping does not know: quarantined by its id
    write(project, csv_text(rows))
    assert run_sync(settings, quarantine_unmapped=True).sources["crm"].quarantined == 2
    assert {q["record"] for q in tables(warehouse_url)["quarantine"]} == {"crm.csv row 6", "1008"}
    write(project, csv_text(deal_rows(N)))
    assert run_sync(settings).sources["crm"].quarantined == 0
    assert tables(warehouse_url)["quarantine"] == []


# -- 7. counts are what was committed ----------------------------------------------------------------


def test_counts_are_those_of_the_pages_committed(tmp_path, warehouse_url, monkeypatch):
    make_project(tmp_path, warehouse_url)
    write(tmp_path, csv_text(deal_rows(N)))
    write_page = Warehouse.write_page
    pages = []

    def fail_on_the_third_page(self, page):
        pages.append(page)
        if len(pages) == 3:
            raise WarehouseError("the database went away")
        write_page(self, page)

    monkeypatch.setattr(Warehouse, "write_page", fail_on_the_third_page)
    crm = run_sync(settings_of(tmp_path, warehouse_url), workers=1).sources["crm"]
    assert crm.error == "the database went away"
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        stored = conn.scalar(select(func.count()).select_from(t.deals))
    engine.dispose()
    assert (crm.read, crm.inserted) == (stored, stored) == (10, 10)

"""A monday-style board synced from CSV and from Excel: only rows are deals, every problem row is one
quarantine row (as many stored as reported), the shared vocabularies apply, re-runs write nothing."""

from __future__ import annotations

import pytest

from pipesync.config import load_config
from pipesync.sync import run_sync
from tests.unit.test_board_layouts import HEADER as BOARD_HEADER
from tests.warehouse.integrity import tables

HEADER = [*BOARD_HEADER, "Source", "Lost Reason"]
GROUPS = {
    "Active": [["Acme", "101", "Proposal", "Marie Durand", "1000", "ORGANIC_SEARCH", ""],
               ["Globex", "102", "Nowhere", "Bob", "2000", "Web", ""],  # a stage the mapping does not know
               ["", "", "", "", "", "", ""]],
    "Won": [["Initech", "103", "Won", "Bob", "3000", "REFERRALS", ""],
            ["Initech again", "103", "Won", "Bob", "3000", "Referral", ""]],  # the id again
    "Lost": [["Umbrella", "104", "Lost", "Bob", "4000", "Website", "Preis zu hoch"],
             ["a note someone typed"],  # one cell no header follows: read, and quarantined
             ["Hooli", "105", "Lost", "Marie Durand", "", "Event", "Frobnicate"]],
}
MAPPING = """\
source: board
pipelines:
  - id: "*"
    stages: [{label: Proposal, stage: proposal}, {label: Won, stage: closed_won}, {label: Lost, stage: closed_lost}]
lost_reasons: {Preis zu hoch: price, Frobnicate: null}
lead_sources: {ORGANIC_SEARCH: website, Web: website, Website: website, REFERRALS: referral, Referral: referral}
"""


def board_rows() -> list[list[str]]:
    rows = [["Deals board"]]
    for name, items in GROUPS.items():
        rows += [[name], HEADER, *items, [""]]
    return rows


def write_board(folder, suffix: str) -> str:
    path = folder / f"board{suffix}"
    if suffix == ".csv":
        import csv

        with path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(board_rows())
    else:
        openpyxl = pytest.importorskip("openpyxl")
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "Deals"
        for row in board_rows():
            sheet.append([int(c) if c.isdigit() else c or None for c in row])
        book.save(path)
    return path.name


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_board_syncs_its_rows_and_quarantines_each_problem_row_once(tmp_path, warehouse_url, suffix):
    name = write_board(tmp_path, suffix)
    (tmp_path / "pipesync.yaml").write_text(
        f"warehouse: {warehouse_url}\nreporting_currency: USD\nmappings_dir: .\nsources:\n  - name: board\n    type: csv\n"
        f"    unmapped_stages: quarantine\n    options: {{path: {name}, format: monday_crm, page_size: 2}}\n")
    (tmp_path / "board.yaml").write_text(MAPPING)
    settings = load_config(tmp_path / "pipesync.yaml")
    result = run_sync(settings, quarantine_unmapped=True).sources["board"]
    assert (result.read, result.inserted, result.quarantined) == (7, 4, 3)
    quarantine = tables(warehouse_url)["quarantine"]
    assert len(quarantine) == result.quarantined
    where = "board.csv" if suffix == ".csv" else "board.xlsx sheet 'Deals'"
    note = "row" if suffix == ".csv" else "source_id"  # a sheet's row has every cell, blank ones too: no id
    assert {q["locator"]: q["field"] for q in quarantine} == {
        f"{where} row 5": "source_stage", f"{where} row 11": "source_id", f"{where} row 16": note}
    stored = {d["source_id"]: d for d in tables(warehouse_url)["deals"]}
    assert {k: (d["lead_source"], d["lost_reason"]) for k, d in stored.items()} == {
        "101": ("Website / organic", None), "103": ("Referral", None), "104": ("Website / organic", "Price"),
        "105": ("Event", "Frobnicate")}
    again = run_sync(settings, quarantine_unmapped=True).sources["board"]
    assert (again.inserted, again.updated, again.unchanged, again.quarantined) == (0, 0, 4, 3)
    assert len(tables(warehouse_url)["quarantine"]) == 3

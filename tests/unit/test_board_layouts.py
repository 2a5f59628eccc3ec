"""Board exports (monday CRM and the like): a title, then per group a title line, the header again,
rows and blank separators; other tools print the header again on every page. Only rows are data."""

import pytest

from tests.unit.test_csv_adapter import adapter, write_csv

HEADER = ["Name", "Item ID", "Deal Stage", "Owner", "Deal Value"]


def board(groups: dict[str, list[list[str]]], *, title: str = "Deals board", pad: bool = False) -> list[list[str]]:
    """A board as monday CRM exports it; ``pad`` writes title lines as full-width rows (as from a sheet)."""
    def line(text: str) -> list[str]:
        return [text] + [""] * (len(HEADER) - 1) if pad else [text]

    rows = [line(title)]
    for name, items in groups.items():
        rows += [line(name), HEADER, *items, [""] * (len(HEADER) if pad else 1)]
    return rows


GROUPS = {
    "Active deals": [["Acme renewal", "101", "Proposal", "Marie Durand", "1000"], ["Globex", "102", "Negotiation", "Bob", "2000"]],
    "Closed won": [["Initech", "103", "Won", "Bob", "3000"]],
    "Closed lost": [["Umbrella", "104", "Lost", "Bob", "4000"], ["Hooli", "105", "Lost", "Marie Durand", "500"]],
}


@pytest.mark.parametrize("pad", [False, True])
def test_group_titles_repeated_headers_and_separators_are_not_data(tmp_path, pad):
    a = adapter(tmp_path, write_csv(board(GROUPS, pad=pad)), format="monday_crm", page_size=2)
    deals = [d for p in a.read_deals(None) for d in p.deals]
    assert [d.source_id for d in deals] == ["101", "102", "103", "104", "105"]
    assert all(d.problem is None for d in deals)
    assert {s.label for p in a.discover().pipelines for s in p.stages} == {"Proposal", "Negotiation", "Won", "Lost"}


def test_a_header_printed_on_every_page_is_skipped_wherever_it_falls(tmp_path):
    rows = [HEADER] + [[f"Deal {i}", str(i), "Proposal", "Bob", "1"] for i in range(30)]
    for at in (26, 21, 11):  # the header again, pages of ten rows
        rows.insert(at, list(HEADER))
    a = adapter(tmp_path, write_csv(rows), format="monday_crm", page_size=4)
    whole = [d.source_id for p in a.read_deals(None) for d in p.deals]
    assert whole == [str(i) for i in range(30)]
    parts = a.partitions(3)
    assert [d.source_id for part in parts for p in a.read_partition(None, part) for d in p.deals] == whole


def test_a_header_with_other_spacing_or_case_is_still_the_header(tmp_path):
    rows = [HEADER, ["A", "1", "Proposal", "Bob", "1"], [" name ", "ITEM ID", "Deal  Stage", "owner", "Deal Value", ""],
            ["B", "2", "Won", "Bob", "1"]]
    deals = [d for p in adapter(tmp_path, write_csv(rows), format="monday_crm").read_deals(None) for d in p.deals]
    assert [d.source_id for d in deals] == ["1", "2"]


def test_a_lone_cell_no_header_follows_is_still_read_and_flagged_not_dropped(tmp_path):
    rows = [HEADER, ["A", "1", "Proposal", "Bob", "1"], ["stray note"], ["B", "2", "Won", "Bob", "1"], ["trailing note"]]
    deals = [d for p in adapter(tmp_path, write_csv(rows), format="monday_crm").read_deals(None) for d in p.deals]
    assert [(d.locator, d.problem and d.problem[0]) for d in deals] == [
        ("export.csv row 2", None), ("export.csv row 3", "row"), ("export.csv row 4", None), ("export.csv row 5", "row"),
    ]


def test_a_group_title_at_a_chunk_boundary_waits_for_the_row_after_it(tmp_path):
    # page_size 1: every row is read alone, so the title and the header after it come in different chunks
    rows = board({"G1": [["A", "1", "Proposal", "Bob", "1"]], "G2": [["B", "2", "Won", "Bob", "1"]]})
    rows.insert(-2, [""])  # blank rows between a title and its header
    a = adapter(tmp_path, write_csv(rows), format="monday_crm", page_size=1)
    assert [d.source_id for p in a.read_deals(None) for d in p.deals] == ["1", "2"]
    assert a._survey.page_ends == [4, 9]

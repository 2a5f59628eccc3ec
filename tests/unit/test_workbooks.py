"""Excel (and other workbook) exports are read directly: typed cells as the workbook stores them,
the sheet that holds the deals, locators naming the sheet, the same layouts as CSV."""

from datetime import date, datetime
from decimal import Decimal

import pytest

openpyxl = pytest.importorskip("openpyxl")

from pipesync.adapters.csv_file import CsvAdapter  # noqa: E402
from pipesync.config import Settings, SourceConfig  # noqa: E402
from pipesync.currency import FxTable  # noqa: E402
from pipesync.errors import SourceError  # noqa: E402
from pipesync.mapping import Mapping  # noqa: E402
from pipesync.normalize import Normalizer  # noqa: E402
from pipesync.pipeline import load_pipeline  # noqa: E402
from tests.unit.test_board_layouts import GROUPS, board  # noqa: E402

HEADER = ["Deal ID", "Deal Name", "Stage", "Amount", "Close Date", "Created"]


def workbook(path, sheets: dict[str, list[list]]) -> None:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)


def adapter(tmp_path, sheets: dict[str, list[list]], name: str = "deals.xlsx", **options) -> CsvAdapter:
    path = tmp_path / name
    workbook(path, sheets)
    source = SourceConfig(name="x", type="csv", options={"path": str(path), "format": "generic", **options})
    return CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path)))


def read(a: CsvAdapter):
    return [d for p in a.read_deals(None) for d in p.deals]


TYPED = [
    HEADER,
    [101, "Acme", "Proposal", 1234.5, date(2026, 3, 1), datetime(2026, 1, 5, 14, 30)],
    [102, "Globex", "Won", 20000, 46100, "2026-01-06"],  # a close date left as a serial number (General format)
    ["0103", "Initech", "Lost", "1.234,50 €", "15/04/2026", None],  # text cells stay text
]


def test_typed_cells_are_read_as_the_workbook_stores_them(tmp_path):
    deals = read(adapter(tmp_path, {"Deals": TYPED}))
    assert [d.source_id for d in deals] == ["101", "102", "0103"]
    assert [d.values["amount"] for d in deals] == ["1234.5", "20000", "1.234,50 €"]
    assert [d.values["close_date"] for d in deals] == ["2026-03-01", "46100", "15/04/2026"]
    assert deals[0].values["created_at"] == "2026-01-05 14:30:00"
    assert deals[0].locator == "deals.xlsx sheet 'Deals' row 2"


def test_typed_numbers_and_serial_dates_need_no_locale(tmp_path):
    """A German mapping (decimal comma) still reads the workbook's number cells as the numbers they are."""
    deals = read(adapter(tmp_path, {"Deals": TYPED}))
    mapping = Mapping.model_validate({
        "pipelines": [{"id": "*", "stages": [{"label": "Proposal", "stage": "proposal"}, {"label": "Won", "stage": "closed_won"},
                                             {"label": "Lost", "stage": "closed_lost"}]}],
        "parse": {"decimal_separator": ",", "date_order": "DMY", "default_currency": "EUR", "timezone": "Europe/Berlin"},
    })
    normalizer = Normalizer("x", mapping, load_pipeline(None), FxTable("EUR", {}), "x.yaml")
    out = [normalizer.normalize(d) for d in deals]
    assert [d.amount for d in out] == [Decimal("1234.5"), Decimal("20000"), Decimal("1234.50")]
    assert [d.close_date for d in out] == [date(2026, 3, 1), date(2026, 3, 19), date(2026, 4, 15)]
    assert out[0].created_at == datetime.fromisoformat("2026-01-05T13:30:00+00:00")  # Berlin wall clock


def test_the_first_sheet_with_a_recognized_header_is_read(tmp_path):
    a = adapter(tmp_path, {"Summary": [["Pipeline summary"], ["Total", 3]], "Deals": TYPED, "Other": [HEADER]})
    assert [d.locator for d in read(a)] == [f"deals.xlsx sheet 'Deals' row {n}" for n in (2, 3, 4)]
    assert {s.label for p in a.discover().pipelines for s in p.stages} == {"Proposal", "Won", "Lost"}


def test_a_sheet_can_be_named_and_a_missing_one_lists_the_sheets(tmp_path):
    sheets = {"Deals": TYPED, "Archive": [HEADER, [9, "Old", "Won", 1, None, None]]}
    assert [d.source_id for d in read(adapter(tmp_path, sheets, sheet="Archive"))] == ["9"]
    with pytest.raises(SourceError, match=r"no sheet 'Nope' \(sheets: Deals, Archive\)"):
        read(adapter(tmp_path, sheets, sheet="Nope"))


def test_a_workbook_without_a_deals_sheet_says_so(tmp_path):
    with pytest.raises(SourceError, match=r"no sheet has a header with the columns needed \(A, B\)"):
        read(adapter(tmp_path, {"A": [["x", "y"]], "B": [["nothing"]]}))


def test_a_board_exported_to_excel_reads_like_its_csv(tmp_path):
    path = tmp_path / "board.xlsx"
    workbook(path, {"Deals": board(GROUPS)})
    source = SourceConfig(name="m", type="csv", options={"path": str(path), "format": "monday_crm", "page_size": 2})
    a = CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path)))
    deals = read(a)
    assert [(d.source_id, d.values["amount"]) for d in deals] == [("101", "1000"), ("102", "2000"), ("103", "3000"), ("104", "4000"), ("105", "500")]
    assert all(d.problem is None for d in deals)
    parts = a.partitions(2)
    assert [d.source_id for part in parts for p in a.read_partition(None, part) for d in p.deals] == [d.source_id for d in deals]


def test_dates_in_a_workbook_prove_nothing_about_day_and_month_order(tmp_path):
    style = adapter(tmp_path, {"Deals": TYPED[:3]}).date_style()
    assert style == adapter(tmp_path, {"Deals": [HEADER]}).date_style()


def test_a_repeated_id_in_a_workbook_is_flagged_by_its_sheet_row(tmp_path):
    rows = [HEADER, [1, "A", "Won", 1, None, None], [1, "B", "Won", 2, None, None]]
    flagged = [d for d in read(adapter(tmp_path, {"Deals": rows})) if d.problem]
    assert [d.locator for d in flagged] == ["deals.xlsx sheet 'Deals' row 3"]
    assert "is on deals.xlsx sheet 'Deals' row 2 already" in flagged[0].problem[1]


def test_rows_keep_the_sheet_s_numbers_when_the_table_starts_lower_and_further_right(tmp_path):
    path = tmp_path / "offset.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Deals"
    sheet["B3"], sheet["C3"], sheet["B4"], sheet["C4"], sheet["B6"], sheet["C6"] = "Deal ID", "Stage", 1, "Won", 2, "Lost"
    book.save(path)
    source = SourceConfig(name="x", type="csv", options={"path": str(path)})
    deals = read(CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path))))
    assert [(d.source_id, d.locator) for d in deals] == [("1", "offset.xlsx sheet 'Deals' row 4"), ("2", "offset.xlsx sheet 'Deals' row 6")]

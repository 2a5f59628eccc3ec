"""The CSV adapter reads the exports people actually have."""

import codecs

import pytest

from pipesync.adapters.csv_file import CsvAdapter, decode, sniff_delimiter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, SourceError

ROWS = [["Deal - ID", "Deal - Title", "Deal - Stage", "Deal - Value"], ["1", "Müller Straße café", "Qualified", "1.000,00"], ["2", "商务 deal", "Lead In", "5"]]


def adapter(tmp_path, data: bytes, **options) -> CsvAdapter:
    path = tmp_path / "export.csv"
    path.write_bytes(data)
    source = SourceConfig(name="pd", type="csv", options={"path": str(path), "format": "pipedrive_export", **options})
    return CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path)))


def render(delim: str) -> str:
    return "\r\n".join(delim.join(r) for r in ROWS) + "\r\n"


@pytest.mark.parametrize(
    "encode",
    [
        lambda s: s.encode("utf-8"),
        lambda s: codecs.BOM_UTF8 + s.encode("utf-8"),
        lambda s: codecs.BOM_UTF16_LE + s.encode("utf-16-le"),  # Excel "Unicode text"
        lambda s: s.encode("utf-16-be"),
    ],
)
@pytest.mark.parametrize("delim", [",", ";", "\t"])
def test_encodings_and_delimiters_are_detected(tmp_path, encode, delim):
    pages = list(adapter(tmp_path, encode(render(delim))).read_deals(None))
    deals = [d for p in pages for d in p.deals]
    assert [d.values["name"] for d in deals] == ["Müller Straße café", "商务 deal"]
    assert deals[0].locator == "export.csv row 2"
    assert pages[-1].snapshot_complete


def test_cp1252_when_not_utf8(tmp_path):
    text = render(";").replace("商务 deal", "Deal for €")
    deals = list(adapter(tmp_path, text.encode("cp1252")).read_deals(None))[0].deals
    assert deals[1].values["name"] == "Deal for €"


@pytest.mark.parametrize(
    ("codec", "rows"),
    [
        ("cp932", [["1", "東京の案件、更新", "見込み客"], ["2", "大阪支店", "受注"], ["3", "名古屋", "失注"]]),
        ("gb18030", [["1", "北京项目", "初步接洽"], ["2", "上海续约", "赢单"], ["3", "广州", "输单"]]),
        ("cp949", [["1", "서울 프로젝트", "초기 접촉"], ["2", "부산 갱신", "수주"], ["3", "대구", "실주"]]),
        ("big5", [["1", "台北專案", "初步接洽"], ["2", "高雄續約", "贏單"], ["3", "台中", "輸單"]]),
    ],
)
def test_east_asian_code_pages_excel_saves_csv_in(tmp_path, codec, rows):
    text = "Deal - ID,Deal - Title,Deal - Stage\r\n" + "".join(",".join(r) + "\r\n" for r in rows)
    deals = list(adapter(tmp_path, text.encode(codec)).read_deals(None))[0].deals
    assert [[d.source_id, d.values["name"], d.values["source_stage"]] for d in deals] == rows


@pytest.mark.parametrize("text", ["id,name,amount\n1,x,£100\n", "id,name\n1,Müller\n2,Zoë\n", "id;amount\n1;1.000 €\n"])
def test_a_western_file_with_few_symbols_stays_windows_1252(text):
    assert decode(text.encode("cp1252")) == text


def test_delimiter_can_be_forced(tmp_path):
    deals = list(adapter(tmp_path, render("|").encode(), delimiter="|").read_deals(None))[0].deals
    assert deals[0].values["amount"] == "1.000,00"


def test_sniffer_falls_back_to_the_header():
    assert sniff_delimiter("a;b;c\n1;2\n") == ";"


def test_salesforce_footer_lines_are_not_deals(tmp_path):
    text = (
        '"Opportunity ID","Opportunity Name","Stage"\n"006A","X","Prospecting"\n""\n'
        '"Confidential Information - Do Not Distribute"\n"Copyright (c) 2000-2026 salesforce.com, inc. All rights reserved."\n'
    )
    deals = list(adapter(tmp_path, text.encode(), format="salesforce_report").read_deals(None))[0].deals
    assert [d.source_id for d in deals] == ["006A"]


def test_a_row_with_extra_cells_is_flagged(tmp_path):
    deals = list(adapter(tmp_path, (render(",") + "3,x,Lead In,5,extra\r\n").encode()).read_deals(None))[0].deals
    assert deals[-1].problem == ("row", "5 cells where the header has 4 (a stray delimiter or quote?)")


def test_excel_sep_line_names_the_delimiter(tmp_path):
    deals = list(adapter(tmp_path, b"sep=;\r\n" + render(";").encode()).read_deals(None))[0].deals
    assert [(d.source_id, d.locator) for d in deals] == [("1", "export.csv row 3"), ("2", "export.csv row 4")]
    assert deals[0].values["amount"] == "1.000,00"


def test_a_title_above_the_header_is_skipped_and_rows_keep_their_line_numbers(tmp_path):
    text = "Deals by stage\r\nFilter: all owners,,\r\n\r\n" + render(",")
    a = adapter(tmp_path, text.encode())
    deals = list(a.read_deals(None))[0].deals
    assert [(d.source_id, d.locator) for d in deals] == [("1", "export.csv row 5"), ("2", "export.csv row 6")]
    assert [s.label for s in a.discover().pipelines[0].stages] == ["Qualified", "Lead In"]


@pytest.mark.parametrize("delim", [";", "\t"])
def test_a_title_that_misleads_the_sniffer_does_not_hide_the_header(tmp_path, delim):
    text = "Report: deals, all owners\r\n\r\n" + render(delim)
    deals = list(adapter(tmp_path, text.encode()).read_deals(None))[0].deals
    assert [(d.source_id, d.values["source_stage"]) for d in deals] == [("1", "Qualified"), ("2", "Lead In")]


def test_no_header_in_the_first_rows_is_reported_for_the_first_row(tmp_path):
    with pytest.raises(SourceError, match=r"no column for source_id.*columns in the file: Deals by stage\)"):
        list(adapter(tmp_path, b"Deals by stage\nnothing,else\n").read_deals(None))


def test_columns_without_a_name_at_the_end_may_be_short_or_blank(tmp_path):
    text = (
        "Deal - ID,Deal - Title,Deal - Stage,Deal - Value,,\n"
        "1,a,Qualified,5,,\n2,b,Qualified,6\n3,c,Qualified,7,,,\n4,d,Qualified,8,,x\n"
    )
    deals = list(adapter(tmp_path, text.encode()).read_deals(None))[0].deals
    assert [d.problem for d in deals[:3]] == [None, None, None]
    assert deals[1].raw == {"Deal - ID": "2", "Deal - Title": "b", "Deal - Stage": "Qualified", "Deal - Value": "6"}
    assert deals[3].problem is None and deals[3].raw["column 6"] == "x"  # kept, under the column's number
    assert "column 5" not in deals[3].raw


def test_salesforce_report_ids_are_read_in_their_18_character_form(tmp_path):
    text = '"Opportunity ID","Opportunity Name","Stage"\n"0065g00000A1bCd","X","Prospecting"\n"0065g00000A1bCfAAJ","Y","Prospecting"\n'
    deals = list(adapter(tmp_path, text.encode(), format="salesforce_report").read_deals(None))[0].deals
    assert [d.source_id for d in deals] == ["0065g00000A1bCdAAJ", "0065g00000A1bCfAAJ"]


def refs_adapter(tmp_path, refs: dict) -> CsvAdapter:
    path = tmp_path / "hubspot.csv"
    path.write_text("Record ID,Deal Stage,Salesforce Opportunity ID,Pipedrive ID\n1,Won,0065g00000A1bCd,\n2,Won,,17; 18\n")
    sources = [
        SourceConfig(name="hs", type="csv", options={"path": str(path), "format": "hubspot_export", "external_refs": refs}),
        SourceConfig(name="sf", type="salesforce", options={}),
        SourceConfig(name="pd", type="csv", options={"path": "pd.csv", "format": "pipedrive_export"}),
    ]
    settings = Settings(base_dir=tmp_path, mappings_dir=str(tmp_path), sources=sources)
    return CsvAdapter(sources[0], settings)


def test_external_refs_name_the_deal_in_the_other_source_by_its_key(tmp_path):
    a = refs_adapter(tmp_path, {"Salesforce Opportunity ID": "sf", "pipedrive id": "pd"})
    deals = list(a.read_deals(None))[0].deals
    assert [d.values["external_refs"] for d in deals] == [["sf:0065g00000A1bCdAAJ"], ["pd:17", "pd:18"]]


def test_an_external_ref_already_written_as_a_key_is_not_prefixed_twice(tmp_path):
    path = tmp_path / "hubspot.csv"
    a = refs_adapter(tmp_path, {"Salesforce Opportunity ID": "sf"})
    path.write_text("Record ID,Deal Stage,Salesforce Opportunity ID,Pipedrive ID\n1,Won,sf:0065g00000A1bCd,\n")
    [deal] = list(a.read_deals(None))[0].deals
    assert deal.values["external_refs"] == ["sf:0065g00000A1bCdAAJ"]


def test_external_refs_must_name_a_column_and_a_source(tmp_path):
    with pytest.raises(SourceError, match="external_refs names column 'SF ID', but the file has no such column"):
        list(refs_adapter(tmp_path, {"SF ID": "sf"}).read_deals(None))
    with pytest.raises(ConfigError, match="no source named 'crm'"):
        list(refs_adapter(tmp_path, {"Salesforce Opportunity ID": "crm"}).read_deals(None))


def test_missing_id_column_says_which_columns_exist(tmp_path):
    with pytest.raises(SourceError, match="no column for source_id.*Title"):
        list(adapter(tmp_path, b"Title,Stage\nx,y\n", format="generic").read_deals(None))


def test_mapping_fields_override_the_preset(tmp_path):
    (tmp_path / "pd.yaml").write_text("fields:\n  name: Deal - Stage\n")
    deals = list(adapter(tmp_path, render(",").encode()).read_deals(None))[0].deals
    assert deals[0].values["name"] == "Qualified"


def test_discovery_lists_distinct_stages_with_counts(tmp_path):
    d = adapter(tmp_path, render(",").encode()).discover()
    assert [(s.label, s.deal_count) for s in d.pipelines[0].stages] == [("Qualified", 1), ("Lead In", 1)]


def test_date_style_names_the_first_value_that_proves_each_order(tmp_path):
    data = (
        "Deal - ID,Deal - Stage,Deal - Expected close date,Deal - Deal created,Deal - Title\n"
        "1,Lead In,03/04/2027,2026-11-02 10:00,\"two\nlines\"\n"
        "2,Lead In,15/04/2027,03/04/2026 09:00,x\n"
        "3,Lead In,04/16/2027,,x\n"
    ).encode()
    style = adapter(tmp_path, data).date_style()
    assert style.order is None  # both orders proven: no one order reads the file
    assert style.proof == {
        "DMY": "'15/04/2027' in column 'Deal - Expected close date', export.csv row 4",
        "MDY": "'04/16/2027' in column 'Deal - Expected close date', export.csv row 5",
    }
    assert style.ambiguous == 2


def test_decode_refuses_nothing_it_can_read():
    assert decode("naïve".encode("cp1252")) == "naïve"


# -- partitions: a large file read side by side ------------------------------------------------

def export_rows(n: int, *, first_id: int = 1) -> list[list[str]]:
    header = ["Deal - ID", "Deal - Title", "Deal - Stage", "Deal - Value"]
    # every third title spans two lines inside quotes: physical lines and rows differ
    return [header] + [[str(first_id + i), f"Deal {i}\nsecond line" if i % 3 == 0 else f"Deal {i}", "Qualified", "5"] for i in range(n)]


def write_csv(rows: list[list[str]]) -> bytes:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def read_ids(pages) -> list[str]:
    return [d.source_id for p in pages for d in p.deals]


def test_partitions_split_the_pages_and_read_every_row_once_in_file_order(tmp_path):
    a = adapter(tmp_path, write_csv(export_rows(23)), page_size=5)
    parts = a.partitions(2)
    assert len(parts) == 2
    pages = [list(a.read_partition(None, p)) for p in parts]
    assert read_ids(pages[0]) + read_ids(pages[1]) == read_ids(a.read_deals(None))
    assert [len(p.deals) for p in pages[0]] == [5, 5]  # whole pages: the same pages as a read in order
    assert not any(p.snapshot_complete for p in pages[0])
    assert pages[1][-1].snapshot_complete and pages[1][-1].cursor == list(a.read_deals(None))[-1].cursor
    # locators still name the file's physical row numbers
    first_of_second = pages[1][0].deals[0]
    assert first_of_second.locator == next(d for p in a.read_deals(None) for d in p.deals if d.source_id == first_of_second.source_id).locator


def test_partitions_never_exceed_what_is_asked_or_split_a_page(tmp_path):
    a = adapter(tmp_path, write_csv(export_rows(23)), page_size=5)
    assert len(a.partitions(8)) == 5  # 5 pages
    assert a.partitions(1) == []
    assert adapter(tmp_path, write_csv(export_rows(5)), page_size=5).partitions(4) == []  # one page


def test_an_id_on_two_rows_pages_apart_is_the_first_row_and_the_other_is_flagged_in_pages_and_partitions(tmp_path):
    rows = export_rows(20)
    rows[15][0] = rows[2][0]
    a = adapter(tmp_path, write_csv(rows), page_size=5)
    whole = [d for p in a.read_deals(None) for d in p.deals]
    assert [d for part in a.partitions(2) for p in a.read_partition(None, part) for d in p.deals] == whole
    flagged = [d for d in whole if d.problem]
    assert [(d.source_id, d.locator, d.problem[0]) for d in flagged] == [(None, "export.csv row 21", "source_id")]
    assert flagged[0].problem[1].startswith("duplicate_id:") and "row 4" in flagged[0].problem[1]
    assert flagged[0].raw["Deal - ID"] == "2", "the row is kept as it was read"
    assert [d.source_id for d in whole].count("2") == 1


def test_discovery_counts_the_stages_of_every_row(tmp_path):
    rows = export_rows(12)
    rows[4][2] = "Lead In"
    found = adapter(tmp_path, write_csv(rows), page_size=5).discover()
    assert {(s.label, s.deal_count) for p in found.pipelines for s in p.stages} == {("Qualified", 11), ("Lead In", 1)}


def test_locators_and_cursors_name_the_line_each_row_ends_on(tmp_path):
    text = (
        "Deal - ID,Deal - Title,Deal - Stage\r\n"
        '1,"two\r\nlines",Lead In\r\n'  # lines 2-3
        "\r\n"  # a blank row: line 4
        '2,"lone\rreturn and\nnewline",Lead In\r\n'  # lines 5-7
        '3,"ends with a return\r",Lead In\r\n'  # lines 8-9: the \r inside the quotes ends a line of its own
        ",,\r\n"  # nothing filled: line 10
        "4,plain,Lead In\r\n"  # line 11
    )
    a = adapter(tmp_path, text.encode(), page_size=3)
    pages = list(a.read_deals(None))
    assert [d.locator for p in pages for d in p.deals] == ["export.csv row 3", "export.csv row 7", "export.csv row 9", "export.csv row 11"]
    assert pages[0].cursor.value["row"] == 9
    assert a._survey.page_ends == [9, 11]


def test_blank_rows_and_footers_do_not_count_towards_pages(tmp_path):
    rows = export_rows(12)
    rows[3:3] = [["", "", "", ""], ["  ", "", " ", ""]]
    a = adapter(tmp_path, write_csv(rows), page_size=5)
    parts = a.partitions(2)
    assert [len(p.deals) for p in a.read_deals(None)] == [5, 5, 2]
    assert read_ids(p for part in parts for p in a.read_partition(None, part)) == read_ids(a.read_deals(None))


def test_ids_are_compared_trimmed_and_blank_ids_repeat_nothing(tmp_path):
    rows = export_rows(20)
    rows[15][0] = f" {rows[2][0]} "
    rows[5][0] = rows[9][0] = " "
    deals = [d for p in adapter(tmp_path, write_csv(rows), page_size=5).read_deals(None) for d in p.deals]
    assert [d.problem[1][:13] for d in deals if d.problem] == ["duplicate_id:"]


def test_discovery_trims_cells_and_counts_short_rows_as_blank(tmp_path):
    text = "Deal - ID,Deal - Pipeline,Deal - Stage\n1,Sales,Won\n2, Sales , Won \n3,,Won\n4,Sales\n5,Sales,  \n"
    found = adapter(tmp_path, text.encode()).discover()
    assert [(p.id, [(s.label, s.deal_count) for s in p.stages]) for p in found.pipelines] == [("*", [("Won", 1)]), ("Sales", [("Won", 2)])]


def test_a_large_file_reads_the_same_in_pages_and_in_partitions(tmp_path):
    rows = export_rows(2500)
    rows[700:700] = [[""], [" ", "", "", ""]]
    rows[1500].append("extra")
    a = adapter(tmp_path, write_csv(rows), page_size=300)
    whole = [d for p in a.read_deals(None) for d in p.deals]
    assert len(whole) == 2500 and sum(d.problem is not None for d in whole) == 1
    parts = [d for part in a.partitions(2) for p in a.read_partition(None, part) for d in p.deals]
    assert parts == whole


def test_a_pipedrive_export_reads_won_time_else_lost_time_as_the_actual_close_date(tmp_path):
    text = ("Deal - ID,Deal - Stage,Deal - Status,Deal - Expected close date,Deal - Lost time,Deal - Won time\r\n"
            "1,Qualified,won,2026-12-15,,2026-09-30 17:45:12\r\n"
            "2,Qualified,lost,2026-08-31,2026-11-03 16:20:00,\r\n"
            "3,Qualified,open,2026-11-30,,\r\n"
            "4,Qualified,won,2026-10-31,2026-10-30\r\n")  # a short row (quarantined): what it has is still read
    deals = list(adapter(tmp_path, text.encode()).read_deals(None))[0].deals
    assert [(d.values["close_date"], d.values["actual_close_date"]) for d in deals] == [
        ("2026-12-15", "2026-09-30 17:45:12"), ("2026-08-31", "2026-11-03 16:20:00"), ("2026-11-30", ""),
        ("2026-10-31", "2026-10-30"),
    ]
    assert deals[3].problem[0] == "row"


def test_a_mapping_names_a_list_of_columns_for_any_field_and_every_one_must_exist(tmp_path):
    (tmp_path / "pd.yaml").write_text("fields:\n  source_stage: [Phase, Deal - Stage]\n  actual_close_date: [Won on, Lost on]\n")
    text = "Deal - ID,Deal - Stage,Phase,Won on,Lost on\r\n1,Qualified,,31/12/2026,\r\n2,Qualified,Demo,,13/11/2026\r\n"
    a = adapter(tmp_path, text.encode())
    deals = list(a.read_deals(None))[0].deals
    assert [(d.values["source_stage"], d.values["actual_close_date"]) for d in deals] == [
        ("Qualified", "31/12/2026"), ("Demo", "13/11/2026")]
    assert {(s.id, s.deal_count) for p in a.discover().pipelines for s in p.stages} == {("Qualified", 1), ("Demo", 1)}
    assert a.date_style().order == "DMY"  # every listed column's dates are evidence
    (tmp_path / "pd.yaml").write_text("fields:\n  actual_close_date: [Won on, Closed on]\n")
    with pytest.raises(SourceError, match="the mapping names column 'Closed on' for actual_close_date, but the file has no such column"):
        list(adapter(tmp_path, text.encode()).read_deals(None))

"""Every preset reads an export written with its system's own headers into canonical fields."""

from __future__ import annotations

import csv
import io

import pytest

from pipesync.adapters.csv_file import CsvAdapter, load_presets
from pipesync.config import Settings, SourceConfig

PRESETS = load_presets()
SAMPLE = {
    "source_id": "D-1", "name": "Acme renewal", "source_stage": "Proposal", "amount": "12,500.00",
    "close_date": "2026-12-15", "owner_name": "Marie Durand", "account_name": "Acme GmbH",
}


def read_one(tmp_path, preset: str, header: dict[str, str]) -> dict:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header.values())
    writer.writerow(SAMPLE[field] for field in header)
    path = tmp_path / "export.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    source = SourceConfig(name="x", type="csv", options={"path": str(path), "format": preset})
    pages = list(CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path))).read_deals(None))
    (deal,) = [d for p in pages for d in p.deals]
    return deal.values


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("choice", [0, -1], ids=["first-header", "last-header"])
def test_a_preset_reads_its_own_headers(tmp_path, preset: str, choice: int) -> None:
    columns = PRESETS[preset].columns
    header = {field: columns[field][choice] for field in SAMPLE if field in columns}
    values = read_one(tmp_path, preset, header)
    for field in header:
        assert values[field] == SAMPLE[field], (preset, field)


def test_the_generic_preset_never_takes_a_column_named_source_for_the_lead_source(tmp_path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("id,name,stage,source\n1,Deal,Proposal,hubspot\n", encoding="utf-8")
    source = SourceConfig(name="x", type="csv", options={"path": str(path)})
    pages = list(CsvAdapter(source, Settings(base_dir=tmp_path, mappings_dir=str(tmp_path))).read_deals(None))
    (deal,) = [d for p in pages for d in p.deals]
    assert deal.values.get("lead_source") is None

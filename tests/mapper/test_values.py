"""One vocabulary for lost reasons and lead sources: `pipesync map` proposes each source value's shared
entry (any language), writes it beside the stages, keeps decisions, and `--check` reports values it
does not map; sync stores the shared label and keeps unmapped values as written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipesync.cli.map_cmd  # noqa: F401  registers `map` on the app
from pipesync.cli import app
from pipesync.currency import FxTable
from pipesync.errors import FileErrors
from pipesync.mapper import propose_mapping
from pipesync.mapper.values import propose_values
from pipesync.mapping import Mapping, load_mapping
from pipesync.model import RawDeal
from pipesync.normalize import Normalizer
from pipesync.pipeline import load_pipeline
from pipesync.vocabulary import load_vocabularies
from tests.mapper.helpers import labels_only

VOCABULARIES = load_vocabularies()


def proposed(field: str, *values: str) -> dict[str, str | None]:
    found = labels_only("Proposal")
    found.values = {field: {v: 1 for v in values}}
    return {p.value: p.key if p.accepted else None for p in propose_values(found, VOCABULARIES, None, 0.8)}


def test_one_lost_reason_whatever_the_language():
    reasons = ["Price too high", "Preis zu hoch", "Precio demasiado alto", "Prix trop élevé", "Preço muito alto",
               "价格过高", "價格過高", "価格が高い", "가격 부담", "السعر مرتفع"]
    assert set(proposed("lost_reason", *reasons).values()) == {"price"}


def test_one_lead_source_whatever_the_system_spells_it():
    assert proposed("lead_source", "ORGANIC_SEARCH", "Web", "Website", "Sitio web", "官网") == dict.fromkeys(
        ["ORGANIC_SEARCH", "Web", "Website", "Sitio web", "官网"], "website")
    assert set(proposed("lead_source", "Referral", "REFERRALS", "Empfehlung", "紹介").values()) == {"referral"}
    assert proposed("lead_source", "Partner Referral")["Partner Referral"] == "partner"  # the longest words win


def test_a_value_naming_nothing_or_two_entries_or_only_resembling_one_waits():
    assert proposed("lost_reason", "Frobnicate", "Competitor price lower", "Pricee too hihg") == dict.fromkeys(
        ["Frobnicate", "Competitor price lower", "Pricee too hihg"])


def mapping_with(**sections) -> Mapping:
    return Mapping.model_validate({"pipelines": [{"id": "*", "stages": [{"label": "Lost", "stage": "closed_lost"}]}], **sections})


def normalized(mapping: Mapping, **values):
    normalizer = Normalizer("crm", mapping, load_pipeline(), FxTable("USD", {}), "crm.yaml", VOCABULARIES)
    return normalizer.normalize(RawDeal("1", "crm.csv row 2", {"source_stage": "Lost", **values}))


def test_sync_stores_the_shared_label_and_keeps_an_unmapped_value_as_written():
    mapping = mapping_with(lost_reasons={"preis zu HOCH": "price", "Sonstwas": None}, lead_sources={"ORGANIC_SEARCH": "website"})
    assert normalized(mapping, lost_reason=" Preis zu hoch ", lead_source="organic_search").lost_reason == "Price"
    assert normalized(mapping, lead_source="ORGANIC_SEARCH").lead_source == "Website / organic"
    assert normalized(mapping, lost_reason="Sonstwas").lost_reason == "Sonstwas"
    assert normalized(mapping, lost_reason="Never seen").lost_reason == "Never seen"


def test_an_owners_map_names_the_person_behind_a_source_s_owner():
    mapping = mapping_with(owners={"Owner 4": "Marie Durand", "md@acme.example": "Marie Durand"})
    assert normalized(mapping, owner_name="owner 4").owner_name == "Marie Durand"
    assert normalized(mapping, owner_email="MD@acme.example", owner_name="M").owner_name == "Marie Durand"
    assert normalized(mapping, owner_name="Bob").owner_name == "Bob"


def test_a_mapping_naming_an_unknown_entry_is_refused_with_its_file_and_line(tmp_path):
    path = tmp_path / "crm.yaml"
    path.write_text("lost_reasons:\n  Too pricey: expensive\n", encoding="utf-8")
    with pytest.raises(FileErrors, match=r"(?s)crm.yaml.*line 2.*'expensive': not in the shared lost_reasons"):
        load_mapping(path, load_pipeline(), VOCABULARIES)


def test_a_project_extends_and_overrides_the_shared_vocabularies(tmp_path):
    path = tmp_path / "vocabularies.yaml"
    path.write_text("lost_reasons:\n  legal:\n    label: Legal / procurement\n    en: [Legal review failed]\n"
                    "  price:\n    label: Pricing\n    en: [Too pricey]\n", encoding="utf-8")
    mine = load_vocabularies(path)
    assert mine.lost_reasons["legal"].label == "Legal / procurement"
    assert mine.lost_reasons["price"].terms == {"en": ["Too pricey"]}
    assert "competitor" in mine.lost_reasons and mine.lead_sources == VOCABULARIES.lead_sources
    found = labels_only("Lost")
    found.values = {"lost_reason": {"Legal review failed": 2, "Too pricey": 1}}
    assert {p.value: p.key for p in propose_mapping(found, load_pipeline(), vocabularies=mine).values} == {
        "Legal review failed": "legal", "Too pricey": "price"}


# -- `pipesync map` on a file ------------------------------------------------------------------------

CONFIG = "sources:\n  - name: sheet\n    type: csv\n    options: {path: deals.csv}\n"
FILE = ("id,name,stage,closing date,lost reason,lead source\n"
        "1,A,Lost,2026-01-05,Preis zu hoch,ORGANIC_SEARCH\n2,B,Lost,2026-01-06,Precio demasiado alto,Web\n"
        "3,C,Lost,2026-01-07,Frobnicate,REFERRALS\n")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pipesync.yaml").write_text(CONFIG, encoding="utf-8")
    (tmp_path / "deals.csv").write_text(FILE, encoding="utf-8")
    return tmp_path


def run(project: Path, *args: str):
    return CliRunner().invoke(app, ["map", "sheet", "--config", str(project / "pipesync.yaml"), *args])


def test_map_writes_value_maps_beside_the_stages_and_keeps_decisions(project):
    assert run(project, "--yes").exit_code == 0
    path = project / "mappings" / "sheet.yaml"
    mapping = load_mapping(path, load_pipeline(), VOCABULARIES)
    assert mapping.lost_reasons == {"Preis zu hoch": "price", "Precio demasiado alto": "price", "Frobnicate": None}
    assert mapping.lead_sources == {"ORGANIC_SEARCH": "website", "Web": "website", "REFERRALS": "referral"}
    text = path.read_text(encoding="utf-8")
    assert "Preis zu hoch: price  # 0.95: ≈ 'Price' (de: Preis zu hoch)" in text.replace("price # ", "price  # ")
    # the user decides; a re-run keeps it and maps a value new to the file
    path.write_text(text.replace("Frobnicate: null", "Frobnicate: other").replace("Web: website", "Web: paid"), encoding="utf-8")
    (project / "deals.csv").write_text(FILE + "4,D,Lost,2026-01-08,Kein Budget,Messe\n", encoding="utf-8")
    assert run(project, "--yes").exit_code == 0
    mapping = load_mapping(path, load_pipeline(), VOCABULARIES)
    assert mapping.lost_reasons["Frobnicate"] == "other" and mapping.lead_sources["Web"] == "paid"
    assert (mapping.lost_reasons["Kein Budget"], mapping.lead_sources["Messe"]) == ("budget", "event")


def test_map_check_reports_values_the_mapping_does_not_place_as_drift(project):
    assert run(project, "--yes").exit_code == 0
    (project / "deals.csv").write_text(FILE + "4,D,Lost,2026-01-08,Kein Budget,Web\n", encoding="utf-8")
    result = run(project, "--check", "--json")
    assert result.exit_code == 3
    items = {(i["kind"], i["field"], i["label"]): i["quarantines"] for i in json.loads(result.stdout)["items"]}
    assert items == {("unmapped", "lost_reason", "Frobnicate"): False, ("new", "lost_reason", "Kein Budget"): False}


def test_map_reports_the_column_each_field_is_read_from_or_none(project):
    result = run(project, "--json")
    columns = json.loads(result.stdout)["columns"]
    assert (columns["source_id"], columns["lost_reason"], columns["close_date"]) == ("id", "lost reason", "closing date")
    assert columns["owner_email"] is None and columns["amount"] is None
    text = run(project, "--yes").stdout
    assert "Columns of sheet" in text and "none found" in text
    yes_json = json.loads(run(project, "--yes", "--json").stdout)
    assert yes_json["columns"]["lead_source"] == "lead source"

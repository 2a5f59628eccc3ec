"""`pipesync sync` into the warehouse, on SQLite and PostgreSQL."""

from pathlib import Path

import pytest

from sqlalchemy import create_engine, select

from pipesync.config import load_config
from pipesync.sync import run_sync
from pipesync.warehouse import schema as t
from pipesync.warehouse import version

BROKEN = {
    ("sf_export", "0065g00000A1bCnAAJ"): ("source_stage", "salesforce_opportunities.csv row 12", "'Legal Review' is not in sf_export.yaml"),
    ("sf_export", "0065g00000A1bCoAAJ"): ("close_date", "salesforce_opportunities.csv row 13", "month must be in 1..12"),
    ("hubspot_export", "9001234510"): ("currency", "hubspot_deals.csv row 11", "not an ISO 4217 currency code"),
    ("pipedrive_export", "4107"): ("amount", "pipedrive_deals.csv row 8", "not an amount"),
    ("pipedrive_export", "4109"): ("row", "pipedrive_deals.csv row 10", "16 cells where the header has 15"),
    ("apac_sheet", "AP-003"): ("currency", "apac_pipeline_unicode.txt row 4", "no exchange rate from TWD to USD"),
}


def settings_for(project: Path, url: str):
    settings = load_config(project / "pipesync.yaml")
    settings.warehouse = url
    return settings


def rows(url: str, table, order_by) -> list[dict]:
    engine = create_engine(url)
    with engine.connect() as conn:
        out = [dict(r._mapping) for r in conn.execute(select(table).order_by(*order_by))]
    engine.dispose()
    return out


def test_examples_store_every_good_row_and_quarantine_each_broken_one(example_project, warehouse_url):
    result = run_sync(settings_for(example_project, warehouse_url))
    assert result.status == "ok"
    counts = {n: (c.read, c.inserted, c.quarantined) for n, c in result.sources.items()}
    assert counts == {"sf_export": (13, 11, 2), "hubspot_export": (11, 10, 1), "pipedrive_export": (9, 7, 2), "apac_sheet": (4, 3, 1)}

    quarantined = {(r["source"], r["record"]): r for r in rows(warehouse_url, t.quarantine, [t.quarantine.c.record])}
    assert set(quarantined) == set(BROKEN)
    for key, (field, locator, reason) in BROKEN.items():
        q = quarantined[key]
        assert (q["field"], q["locator"]) == (field, locator)
        assert locator in q["reason"] and field in q["reason"] and reason in q["reason"]
        assert q["raw"], "the source record is kept so nothing is lost"

    deals = {r["key"]: r for r in rows(warehouse_url, t.deals, [t.deals.c.key])}
    assert len(deals) == 31
    won = deals["pipedrive_export:4103"]
    assert (won["stage"], won["status"], won["source_stage"]) == ("closed_won", "won", "Negotiations Started")
    assert deals["hubspot_export:9001234506"]["stage"] == "proposal"  # 方案报价
    assert deals["pipedrive_export:4105"]["stage"] == "negotiation"  # التفاوض
    # options.external_refs: the Salesforce id becomes the sf_export deal's key, so consolidation links them
    assert deals["hubspot_export:9001234501"]["external_refs"] == ["sf_export:0065g00000A1bCdAAJ"]
    assert deals["sf_export:0065g00000A1bCdAAJ"]["created_at"].tzinfo is not None


def test_second_run_changes_nothing(example_project, warehouse_url):
    settings = settings_for(example_project, warehouse_url)
    run_sync(settings)
    before = rows(warehouse_url, t.deals, [t.deals.c.key])
    again = run_sync(settings)
    assert {n: (c.inserted, c.updated, c.deleted) for n, c in again.sources.items()} == {n: (0, 0, 0) for n in again.sources}
    assert rows(warehouse_url, t.deals, [t.deals.c.key]) == before
    runs = rows(warehouse_url, t.sync_runs, [t.sync_runs.c.id])
    assert [r["status"] for r in runs] == ["ok", "ok"]
    assert runs[1]["counts"]["sf_export"]["unchanged"] == 11


def test_stage_moves_are_recorded_and_vanished_rows_marked_deleted(example_project, warehouse_url):
    settings = settings_for(example_project, warehouse_url)
    run_sync(settings)
    export = example_project / "exports" / "hubspot_deals.csv"
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    moved = [l.replace("Qualified To Buy", "Contract Sent").replace("2026-10-01 11:00", "2026-11-21 09:30") for l in lines if "Pied Piper" not in l]
    export.write_text("".join(moved), encoding="utf-8")

    result = run_sync(settings, ["hubspot_export"]).sources["hubspot_export"]
    assert (result.updated, result.deleted) == (1, 1)
    history = rows(warehouse_url, t.stage_history, [t.stage_history.c.id])
    assert [(h["deal_key"], h["from_stage"], h["to_stage"], h["origin"]) for h in history] == [
        ("hubspot_export:9001234503", "qualification", "negotiation", "observed")
    ]
    assert history[0]["changed_at"].isoformat() == "2026-11-21T09:30:00+00:00"
    deals = {r["key"]: r for r in rows(warehouse_url, t.deals, [t.deals.c.key])}
    assert deals["hubspot_export:9001234504"]["is_deleted"] is True


def test_fixing_the_mapping_releases_quarantined_records(example_project, warehouse_url):
    settings = settings_for(example_project, warehouse_url)
    run_sync(settings)
    mapping = example_project / "mappings" / "sf_export.yaml"
    mapping.write_text(mapping.read_text() + "      - {label: Legal Review, stage: negotiation}\n")
    result = run_sync(settings, ["sf_export"]).sources["sf_export"]
    assert (result.inserted, result.quarantined) == (1, 1)
    left = rows(warehouse_url, t.quarantine, [t.quarantine.c.record])
    assert [(q["source"], q["record"]) for q in left if q["source"] == "sf_export"] == [("sf_export", "0065g00000A1bCoAAJ")]


def test_a_failing_source_does_not_stop_the_others(example_project, warehouse_url):
    (example_project / "exports" / "pipedrive_deals.csv").unlink()
    result = run_sync(settings_for(example_project, warehouse_url))
    assert result.status == "partial"
    assert "pipedrive_deals.csv: cannot read the file" in result.sources["pipedrive_export"].error
    assert result.sources["sf_export"].inserted == 11


def test_unmapped_live_stages_refuse_the_source_unless_told_to_quarantine(example_project, warehouse_url):
    config = example_project / "pipesync.yaml"
    config.write_text(config.read_text().replace("    unmapped_stages: quarantine\n", ""))
    settings = settings_for(example_project, warehouse_url)
    refused = run_sync(settings, ["sf_export"]).sources["sf_export"]
    assert refused.read == 0
    assert "cannot place 1 live stage(s) of sf_export" in refused.error
    assert "Legal Review" in refused.error and "--quarantine-unmapped" in refused.error
    allowed = run_sync(settings, ["sf_export"], quarantine_unmapped=True).sources["sf_export"]
    assert (allowed.inserted, allowed.quarantined, allowed.error) == (11, 2, None)


def test_stage_catalog_is_versioned_only_when_stages_change(example_project, warehouse_url):
    settings = settings_for(example_project, warehouse_url)
    run_sync(settings, ["hubspot_export"])
    run_sync(settings, ["hubspot_export"])
    export = example_project / "exports" / "hubspot_deals.csv"
    export.write_text(export.read_text(encoding="utf-8").replace("Contract Sent", "Contract Out"), encoding="utf-8")
    run_sync(settings, ["hubspot_export"], quarantine_unmapped=True)
    catalog = rows(warehouse_url, t.stage_catalog, [t.stage_catalog.c.version])
    assert [c["version"] for c in catalog] == [1, 2]
    labels = {s["label"] for p in catalog[1]["catalog"]["pipelines"] for s in p["stages"]}
    assert "Contract Out" in labels and "Contract Sent" not in labels


def test_a_deal_listed_twice_in_one_export_is_its_first_row(example_project, warehouse_url):
    settings = settings_for(example_project, warehouse_url)
    export = example_project / "exports" / "hubspot_deals.csv"
    lines = export.read_text(encoding="utf-8").splitlines(keepends=True)
    copy = next(line for line in lines if line.startswith("9001234503,"))
    export.write_text("".join(lines) + copy.replace("Qualified To Buy", "Contract Sent"), encoding="utf-8")
    first = run_sync(settings, ["hubspot_export"]).sources["hubspot_export"]
    assert (first.inserted, first.updated, first.quarantined) == (10, 0, 2)
    again = run_sync(settings, ["hubspot_export"]).sources["hubspot_export"]
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 10)
    deals = {r["key"]: r for r in rows(warehouse_url, t.deals, [t.deals.c.key])}
    assert deals["hubspot_export:9001234503"]["stage"] == "qualification"
    duplicate = next(q for q in rows(warehouse_url, t.quarantine, [t.quarantine.c.record]) if q["record"] == "hubspot_deals.csv row 13")
    assert "duplicate_id" in duplicate["reason"] and "hubspot_deals.csv row 4" in duplicate["reason"]


def test_a_large_file_read_by_parallel_workers_ends_as_one_read_in_order(tmp_path, warehouse_url):
    """Partitions written side by side by forked workers: same rows, counts, history and deletions."""
    from pipesync.workers import can_fork
    from pipesync_sandbox.csv_export import write_export

    if not can_fork():
        pytest.skip("workers need fork")
    (tmp_path / "pipesync.yaml").write_text(
        "reporting_currency: USD\nfx_rates: {EUR: 1.1, GBP: 1.3}\nmappings_dir: .\n"
        "sources:\n  - name: crm\n    type: csv\n    options: {path: crm.csv, format: pipedrive_export, page_size: 50}\n"
    )
    settings = settings_for(tmp_path, warehouse_url)

    def export(version: int, dropped: range) -> None:
        write_export(tmp_path / "crm.csv", 400, version=version)
        lines = (tmp_path / "crm.csv").read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line.replace(",EUR,", ",XXX,") if i % 97 == 0 else line for i, line in enumerate(lines) if i not in dropped]
        (tmp_path / "crm.csv").write_text("".join(kept), encoding="utf-8")

    def sync_twice(workers: int) -> tuple[list, dict]:
        export(1, range(0))
        first = run_sync(settings, workers=workers).sources["crm"]
        export(2, range(120, 140))  # stages move, twenty rows vanish
        second = run_sync(settings, workers=workers).sources["crm"]
        volatile = {"synced_at", "id", "first_seen", "last_seen"}  # and the cursor's updated_at
        tables = {
            table.name: sorted(
                (
                    {k: v for k, v in r.items() if k not in volatile and (table is not t.sync_state or k != "updated_at")}
                    for r in rows(warehouse_url, table, list(table.primary_key))
                ),
                key=repr,
            )
            for table in (t.deals, t.stage_history, t.quarantine, t.sync_state)
        }
        engine = create_engine(warehouse_url)
        with engine.begin() as conn:
            version.drop(conn)
        engine.dispose()
        return [first, second], tables

    in_order = sync_twice(1)
    side_by_side = sync_twice(3)
    assert side_by_side[0] == in_order[0]
    first, second = side_by_side[0]
    assert first.quarantined > 0 and second.deleted == 20 and second.updated > 0
    assert side_by_side[1]["stage_history"], "stage moves were observed"
    assert side_by_side[1] == in_order[1]


def test_a_malformed_contact_email_is_counted_and_the_deal_kept(example_project, tmp_path):
    settings = settings_for(example_project, f"sqlite:///{tmp_path / 'w.db'}")
    export = example_project / "exports" / "hubspot_deals.csv"
    header, *lines = export.read_text(encoding="utf-8").splitlines()
    emails = {"9001234501": "jo@acme.com; jo at acme", "9001234502": "kim@@globex", "9001234503": "ann@initech.com"}
    export.write_text("\n".join([header + ",Contact email", *(f"{line},{emails.get(line[:10], '')}" for line in lines)]) + "\n",
                      encoding="utf-8")
    counts = run_sync(settings, ["hubspot_export"]).sources["hubspot_export"]
    assert (counts.inserted, counts.quarantined, counts.dropped) == (10, 1, 2)
    assert counts.first_dropped == "hubspot_deals.csv row 2: contact_emails: 1 malformed address(es) dropped (got 'jo at acme')"
    deals = {r["key"]: r for r in rows(settings.warehouse, t.deals, [t.deals.c.key])}
    assert deals["hubspot_export:9001234501"]["contact_emails"] == ["jo@acme.com"]
    assert deals["hubspot_export:9001234502"]["contact_emails"] == []

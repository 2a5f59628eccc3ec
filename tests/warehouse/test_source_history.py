"""Stage history the CRM keeps is stored in shared stage keys, once, however often it is re-read."""

from datetime import datetime, timezone

from sqlalchemy import create_engine, select

from pipesync.adapters.base import Adapter
from pipesync.config import Settings, SourceConfig
from pipesync.model import Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, Page, RawDeal, RawStageChange
from pipesync.plugins import AdapterOptions, AdapterPlugin, registered
from pipesync.sync import run_sync
from pipesync.warehouse import schema as t


def at(day: int) -> datetime:
    return datetime(2026, 3, day, tzinfo=timezone.utc)


class HistoryCRM(Adapter):
    """A CRM that keeps stage history, with one deal whose stage moved on in the second read."""

    reads = 0

    def discover(self):
        stages = [DiscoveredStage(id=s, label=s) for s in ("lead", "pitch", "won")]
        return Discovery(source=self.name, pipelines=[DiscoveredPipeline(id="*", label="*", stages=stages)])

    def read_deals(self, since):
        HistoryCRM.reads += 1
        stage = "won" if HistoryCRM.reads > 1 else "pitch"
        yield Page(
            deals=[
                RawDeal(source_id="1", locator="deal 1", values={"source_stage": stage, "updated_at": at(10 if stage == "won" else 9)}),
                RawDeal(source_id="2", locator="deal 2", values={"source_stage": "lead"}),
            ],
            cursor=Cursor(value={"n": HistoryCRM.reads}),
        )

    def read_stage_history(self, source_ids):
        for sid in source_ids:
            yield RawStageChange(source_id=sid, from_stage=None, to_stage="lead", changed_at=at(1))
            if sid == "1":
                yield RawStageChange(source_id=sid, from_stage="lead", to_stage="pitch", changed_at=at(5))
                yield RawStageChange(source_id=sid, from_stage="pitch", to_stage="mystery", changed_at=at(6))
                if HistoryCRM.reads > 1:
                    yield RawStageChange(source_id=sid, from_stage="pitch", to_stage="won", changed_at=at(11))


def test_source_history_is_mapped_and_replaced_not_duplicated(tmp_path, monkeypatch, warehouse_url):
    monkeypatch.setitem(registered(), "history_crm", AdapterPlugin(AdapterOptions, f"{__name__}:HistoryCRM"))
    HistoryCRM.reads = 0
    (tmp_path / "crm.yaml").write_text(
        "pipelines:\n  - stages:\n"
        "      - {label: lead, stage: prospecting}\n      - {label: pitch, stage: proposal}\n      - {label: won, stage: closed_won}\n"
    )
    settings = Settings(warehouse=warehouse_url, mappings_dir=str(tmp_path), sources=[SourceConfig(name="crm", type="history_crm")])
    run_sync(settings)
    run_sync(settings)
    run_sync(settings)  # nothing changed: history not read again, not duplicated

    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        rows = conn.execute(select(t.stage_history).order_by(t.stage_history.c.deal_key, t.stage_history.c.changed_at)).all()
    engine.dispose()
    got = [(r.deal_key, r.from_stage, r.to_stage, r.changed_at.day, r.origin) for r in rows]
    assert got == [
        ("crm:1", None, "prospecting", 1, "source_history"),
        ("crm:1", "prospecting", "proposal", 5, "source_history"),
        ("crm:1", "proposal", "closed_won", 10, "observed"),
        ("crm:1", "proposal", "closed_won", 11, "source_history"),
        ("crm:2", None, "prospecting", 1, "source_history"),
    ]

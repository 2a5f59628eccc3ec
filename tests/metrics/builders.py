"""Small warehouses written row by row, for tests whose expected figures are worked out by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import create_engine, insert

from pipesync.config import Settings
from pipesync.warehouse import schema, version

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=timezone.utc)


def at(day: str) -> datetime:
    """Midnight UTC of an ISO day, so hand-counted durations are whole days."""
    return datetime.fromisoformat(day).replace(tzinfo=timezone.utc)


@dataclass
class DealRow:
    key: str
    stage: str
    status: str
    amount: float | None
    created: str
    close: str | None = None  # expected close date
    actual_close: str | None = None  # the day it was won or lost
    owner: str = "ann@example.com"
    lead_source: str | None = None
    lost_reason: str | None = None
    stage_entered: str | None = None
    last_activity: str | None = None
    updated: str | None = None
    name: str | None = None
    deleted: bool = False
    history: list[tuple[str, str]] = field(default_factory=list)  # (to_stage, day)

    def row(self) -> dict[str, Any]:
        source, _, source_id = self.key.partition(":")
        return {
            "key": self.key, "source": source, "source_id": source_id, "name": self.name or f"Deal {self.key}",
            "stage": self.stage, "status": self.status, "amount": self.amount, "currency": "USD",
            "amount_reporting": self.amount, "close_date": date.fromisoformat(self.close) if self.close else None,
            "actual_close_date": date.fromisoformat(self.actual_close) if self.actual_close else None,
            "created_at": at(self.created), "updated_at": at(self.updated) if self.updated else None,
            "stage_entered_at": at(self.stage_entered) if self.stage_entered else None,
            "last_activity_at": at(self.last_activity) if self.last_activity else None,
            "owner_email": self.owner, "owner_name": self.owner.split("@")[0].title(), "pipeline": "default",
            "lead_source": self.lead_source, "lost_reason": self.lost_reason, "contact_emails": [],
            "external_refs": [], "is_deleted": self.deleted, "raw": {}, "content_hash": "x", "synced_at": NOW,
        }


def write_warehouse(url: str, deals: list[DealRow], golden: list[dict[str, Any]] | None = None) -> Settings:
    """The warehouse at ``url`` holding ``deals`` (and golden records with their links); its Settings."""
    engine = create_engine(url)
    with engine.begin() as conn:
        version.create(conn)
        if deals:
            conn.execute(insert(schema.deals), [d.row() for d in deals])
        history = [
            {"deal_key": d.key, "from_stage": None, "to_stage": stage, "changed_at": at(day), "origin": "source_history"}
            for d in deals
            for stage, day in d.history
        ]
        if history:
            conn.execute(insert(schema.stage_history), history)
        for g in golden or []:
            members = g.pop("members")
            conn.execute(insert(schema.golden_deals), g | {"members": members, "provenance": {}, "conflicts": []})
            conn.execute(insert(schema.deal_links), [{"deal_key": k, "golden_id": g["golden_id"], "score": 1.0, "rule": "test"} for k in members])
    engine.dispose()
    return Settings(warehouse=url, stale_after_days=30)

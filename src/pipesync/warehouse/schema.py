"""The warehouse tables (docs/architecture.md, "The warehouse"): stable names, columns as in the model.

SQLAlchemy Core, so the same schema serves SQLite, PostgreSQL and any other
dialect. JSON columns hold lists and source payloads; amounts are exact decimals
(:class:`ExactAmount`).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    func,
)

metadata = MetaData()


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime written to the warehouse")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if getattr(dialect, "name", "") == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class ExactAmount(TypeDecorator[Decimal]):
    """Amounts with 4 decimals, exact on every dialect: NUMERIC(20, 4) on a server, text on SQLite.

    SQLite keeps a NUMERIC column's values as 8-byte floats (15 significant digits), so
    1e23 or 12345678901234.5678 would come back changed; a TEXT column keeps the digits
    as written. (Warehouses created before this keep their NUMERIC column, and SQLite
    turns the text back into a float there, as it always did.)
    """

    impl = Numeric(20, 4)
    cache_ok = True
    SCALE = Decimal("0.0001")
    LIMIT = Decimal(10) ** 16  # 20 digits, 4 of them decimals: sync quarantines larger amounts

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(Text() if dialect.name == "sqlite" else Numeric(20, 4))

    def process_bind_param(self, value: Decimal | None, dialect: Any) -> Any:
        if value is None:
            return None
        value = (value if isinstance(value, Decimal) else Decimal(value)).quantize(self.SCALE, ROUND_HALF_UP)
        return str(value) if dialect.name == "sqlite" else value  # 4 decimals: str() never writes an exponent

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None or isinstance(value, Decimal):
            return value
        # text (SQLite), or a float from a warehouse whose column is still NUMERIC
        return Decimal(value if isinstance(value, str) else f"{value:.4f}").quantize(self.SCALE)


Amount = ExactAmount()
Instant = UTCDateTime()

def deal_columns() -> list[Column]:
    """The canonical deal fields, shared by ``deals`` and ``golden_deals``."""
    return [
        Column("name", Text, nullable=False, default=""),
        Column("pipeline", String(200)),
        Column("source_stage", String(300)),
        Column("stage", String(64), nullable=False),
        Column("status", String(8), nullable=False),
        Column("amount", Amount),
        Column("currency", String(3)),
        Column("amount_reporting", Amount),
        Column("probability", Float),
        Column("close_date", Date),
        Column("actual_close_date", Date),
        Column("created_at", Instant),
        Column("updated_at", Instant),
        Column("stage_entered_at", Instant),
        Column("last_activity_at", Instant),
        Column("owner_email", String(320)),
        Column("owner_name", String(200)),
        Column("account_name", Text),
        Column("account_domain", String(255)),
        Column("contact_emails", JSON, nullable=False),
        Column("lead_source", String(200)),
        Column("lost_reason", Text),
        Column("next_step", Text),
        Column("external_refs", JSON, nullable=False),
        Column("is_deleted", Boolean, nullable=False, default=False),
    ]


deals = Table(
    "deals",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("source_id", String(200), nullable=False),
    *deal_columns(),
    Column("raw", JSON, nullable=False),
    # Hash of the canonical record: a re-read that changes nothing writes nothing.
    Column("content_hash", String(32), nullable=False),
    Column("synced_at", Instant, nullable=False),
    # No secondary index: every sync writes each of its deals, and an index on a column of a
    # handful of values (source, stage) cost a tenth of that write while serving no query here.
)

stage_history = Table(
    "stage_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("deal_key", String(300), nullable=False),
    Column("from_stage", String(64)),
    Column("to_stage", String(64), nullable=False),
    Column("changed_at", Instant, nullable=False),
    Column("origin", String(16), nullable=False),
    # to_stage included: metrics read (deal, time, stage) straight from the index
    Index("ix_stage_history_deal", "deal_key", "changed_at", "to_stage"),
)
# One row per change: syncs insert with ON CONFLICT DO NOTHING, so two syncs of a source at
# once (or a re-read) cannot record a change twice. NULLs are distinct in a unique index,
# hence the coalesce for a first stage (no from_stage).
HISTORY_KEY = Index(
    "uq_stage_history_change",
    stage_history.c.deal_key, func.coalesce(stage_history.c.from_stage, ""), stage_history.c.to_stage,
    stage_history.c.changed_at, stage_history.c.origin,
    unique=True,
)

golden_deals = Table(
    "golden_deals",
    metadata,
    Column("golden_id", String(64), primary_key=True),
    # the source of the member that won the most fields (for "by source" views)
    Column("source", String(100)),
    *deal_columns(),
    Column("members", JSON, nullable=False),
    Column("confidence", Float),
    # field → {"value", "deal_key", "rule"}
    Column("provenance", JSON, nullable=False),
    # [{"field", "values": {deal_key: value}}]
    Column("conflicts", JSON, nullable=False),
)

deal_links = Table(
    "deal_links",
    metadata,
    Column("deal_key", String(300), primary_key=True),
    Column("golden_id", String(64), nullable=False),
    Column("score", Float),
    Column("rule", String(200)),
    # the member the deal's strongest accepted link goes to (None for a one-deal cluster)
    Column("linked_to", String(300)),
    Index("ix_deal_links_golden", "golden_id"),
)

metric_snapshots = Table(
    "metric_snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("taken_at", Instant, nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("view", String(32), nullable=False),
    Column("segment", String(300), nullable=False),
    Column("metric", String(100), nullable=False),
    Column("value", Float),
    Index("ix_metric_snapshots_metric", "metric", "taken_at"),
)

sync_state = Table(
    "sync_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("cursor", JSON, nullable=False),
    Column("updated_at", Instant, nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", Instant, nullable=False),
    Column("finished_at", Instant),
    Column("status", String(16), nullable=False),
    Column("sources", JSON, nullable=False),
    # per source: sync.SourceCounts ({read, inserted, updated, unchanged, deleted, quarantined, dropped, error …})
    Column("counts", JSON, nullable=False),
    Column("error", Text),
)

# One row per push-back run (apply or undo of a plan).
write_runs = Table(
    "write_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("plan_id", String(100), nullable=False),
    Column("kind", String(8), nullable=False),  # apply | undo
    Column("undo_of", String(64)),
    Column("started_at", Instant, nullable=False),
    Column("finished_at", Instant),
    Column("status", String(16), nullable=False),  # running | done | failed
    Column("counts", JSON, nullable=False),
)

# Every change of a run, written before its batch is sent (outcome NULL: sent or about to be,
# result unknown), then given its outcome: a re-run re-sends only what has none.
change_journal = Table(
    "change_journal",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(64), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("deal_key", String(300), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("before", JSON, nullable=False),
    Column("after", JSON, nullable=False),
    Column("rule", String(200)),
    Column("reason", Text),
    Column("outcome", String(16)),
    Column("result_reason", Text),
    Column("journaled_at", Instant, nullable=False),
    Column("source", String(100)),
    Column("batch", Integer),
    Column("merge_into", String(300)),
    Column("new_source_id", String(200)),
    Column("finished_at", Instant),
    Index("ix_change_journal_run", "run_id", "seq"),
)

id_map = Table(
    "id_map",
    metadata,
    Column("source_key", String(300), primary_key=True),
    Column("target", String(100), primary_key=True),
    Column("target_id", String(200), nullable=False),
    Column("created_at", Instant, nullable=False),
)

# Golden ids a re-consolidation retired (merged into another cluster, or split) → the id that
# took most of their deals: a plan made before it is re-targeted, never silently stale.
golden_aliases = Table(
    "golden_aliases",
    metadata,
    Column("alias_id", String(64), primary_key=True),
    Column("golden_id", String(64), nullable=False),
    Column("recorded_at", Instant, nullable=False),
)

deal_aliases = Table(
    "deal_aliases",
    metadata,
    Column("alias_key", String(300), primary_key=True),
    Column("survivor_key", String(300), nullable=False),
    Column("recorded_at", Instant, nullable=False),
)

stage_catalog = Table(
    "stage_catalog",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("discovered_at", Instant, nullable=False),
    Column("fingerprint", String(64), nullable=False),
    # the Discovery, as JSON
    Column("catalog", JSON, nullable=False),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("source", String(100), primary_key=True),
    # the record's source id when it has one, else where it stood ("file.csv row 12")
    Column("record", String(300), primary_key=True),
    Column("locator", String(500), nullable=False),
    Column("field", String(100), nullable=False),
    Column("reason", Text, nullable=False),
    Column("raw", JSON, nullable=False),
    Column("first_seen", Instant, nullable=False),
    Column("last_seen", Instant, nullable=False),
)

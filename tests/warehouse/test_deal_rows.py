"""A deal written to `deals` reads back as the same deal, on every dialect, inserted or updated."""

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select

from pipesync.model import Category, Cursor, Deal
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import DealRows, PageWrite, Warehouse

PARIS_SUMMER = timezone(timedelta(hours=2))


def full_deal(source_id: str, **changes) -> Deal:
    fields = dict(
        source="crm", source_id=source_id, name="Renewal – Ünïcode GmbH", pipeline="Sales", source_stage="Won 🎉",
        stage="closed_won", status=Category.WON, amount=Decimal("1234.5000"), currency="EUR",
        amount_reporting=Decimal("1357.9500"), probability=1.0, close_date=date(2026, 3, 31),
        # the same instant written in two timezones: both are stored as that instant in UTC
        created_at=datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc),
        updated_at=datetime(2026, 1, 5, 11, 30, tzinfo=PARIS_SUMMER),
        stage_entered_at=datetime(2026, 3, 30, 23, 59, 59, 123456, tzinfo=timezone.utc),
        last_activity_at=None, owner_email="ana@example.com", owner_name="Ana", account_name="Ünïcode GmbH",
        account_domain="example.com", contact_emails=["a@example.com", "b@example.com"], lead_source=None,
        lost_reason=None, next_step="", external_refs=[], is_deleted=False, raw={"Deal - ID": source_id, "Value": None},
    )
    return Deal(**{**fields, **changes})


def stored(url: str) -> dict[str, dict]:
    wh = Warehouse(url)
    with wh.begin() as conn:
        rows = {r.key: dict(r._mapping) for r in conn.execute(select(t.deals))}
    wh.close()
    return rows


def expected_row(deal: Deal, content_hash: str) -> dict:
    return {**deal.model_dump(), "key": deal.key, "content_hash": content_hash}


def test_every_field_round_trips_through_insert_and_update(warehouse_url):
    wh = Warehouse(warehouse_url)
    first, bare = full_deal("1"), Deal(source="crm", source_id="2", stage="lead", status=Category.OPEN)
    wh.write_page(PageWrite(source="crm", cursor=Cursor(), inserts=DealRows.of([(first, "h1"), (bare, "h2")])))
    changed = full_deal("1", amount=None, currency=None, amount_reporting=None, close_date=None,
                        created_at=datetime(2026, 1, 5, 9, 30, tzinfo=PARIS_SUMMER), contact_emails=[], is_deleted=True)
    wh.write_page(PageWrite(source="crm", cursor=Cursor(), updates=DealRows.of([(changed, "h3")])))
    wh.close()

    rows = stored(warehouse_url)
    for deal, digest in [(changed, "h3"), (bare, "h2")]:
        row = rows[deal.key]
        assert row["synced_at"].tzinfo is not None
        got = {k: v for k, v in row.items() if k != "synced_at"}
        assert got == expected_row(deal, digest)
    assert rows["crm:1"]["created_at"] == datetime(2026, 1, 5, 7, 30, tzinfo=timezone.utc)
    assert rows["crm:1"]["updated_at"] == datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)

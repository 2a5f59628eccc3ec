"""Whole-table reads and writes column by column (``warehouse/bulk.py``) hold and return exactly what SQLAlchemy does."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import insert, select

from pipesync.warehouse import schema as t
from pipesync.warehouse.bulk import ColumnInsert, clear, read_raw
from pipesync.warehouse.store import Warehouse

COLUMNS = ("golden_id", "source", "name", "stage", "status", "amount", "close_date", "created_at", "updated_at", "probability",
           "contact_emails", "external_refs", "is_deleted", "members", "confidence", "provenance", "conflicts")


def golden(n: int) -> dict:
    return {
        "golden_id": f"gd_{n:03}", "source": "hubspot" if n % 2 else None, "name": f"Deal «{n}» — 株式会社",
        "stage": "won", "status": "won", "amount": Decimal("1234.5") + n if n % 3 else None,
        "close_date": date(2025, 1, 1 + n % 28) if n % 4 else None,
        "created_at": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc) if n % 5 else None,
        # another zone, a whole second, a year before 1000: each written as SQLAlchemy writes it
        "updated_at": [datetime(2024, 5, 6, 23, 30, tzinfo=timezone(timedelta(hours=-5))),
                       datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc), None][n % 3],
        "probability": 0.25 if n % 2 else None, "contact_emails": [] if n % 2 else [f"a{n}@x.example"],
        "external_refs": ["salesforce:006A"] if n % 3 == 0 else [], "is_deleted": False,
        "members": [f"hubspot:{n}", f"salesforce:{n}"], "confidence": 0.9 if n % 2 else None,
        "provenance": {} if n % 2 else {"name": {"deal_key": f"hubspot:{n}", "rule": "most_recent"}},
        "conflicts": [] if n % 2 else [{"field": "amount", "values": {f"hubspot:{n}": "1.5"}}],
    }


def stored(conn):
    return [dict(r) for r in conn.execute(select(t.golden_deals).order_by(t.golden_deals.c.golden_id)).mappings()]


def test_rows_written_by_column_read_back_as_sqlalchemy_writes_them(warehouse_url):
    rows = [golden(n) for n in range(40)]
    warehouse = Warehouse(warehouse_url)
    try:
        with warehouse.begin() as conn:
            conn.execute(insert(t.golden_deals), rows)
            expected = stored(conn)
            clear(conn, t.golden_deals)
            assert stored(conn) == []
            batches = [{c: [r[c] for r in rows[a:a + 15]] for c in COLUMNS} for a in range(0, len(rows), 15)]
            assert ColumnInsert(conn, t.golden_deals, COLUMNS).write(conn, batches) == len(rows)
            assert stored(conn) == expected
    finally:
        warehouse.close()


def test_raw_rows_with_their_converters_are_the_values_sqlalchemy_returns(warehouse_url):
    warehouse = Warehouse(warehouse_url)
    try:
        with warehouse.begin() as conn:
            conn.execute(insert(t.golden_deals), [golden(n) for n in range(20)])
            query = select(*[t.golden_deals.c[c] for c in COLUMNS]).order_by(t.golden_deals.c.golden_id)
            rows, convert = read_raw(conn, query.where(t.golden_deals.c.golden_id.in_(["gd_003", "gd_004", "gd_x"])))
            got = [tuple(v if v is None or c not in convert else convert[c](v) for c, v in zip(COLUMNS, row))
                   for row in rows]
            expected = [tuple(r) for r in conn.execute(query.where(t.golden_deals.c.golden_id.in_(["gd_003", "gd_004"])))]
    finally:
        warehouse.close()
    assert len(got) == 2 and got == expected

"""`warehouse_schema:` puts a PostgreSQL warehouse's tables in a schema of their own (one per tenant)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from pipesync.config import load_config
from pipesync.errors import ConfigError
from pipesync.sync import run_sync
from pipesync.warehouse.locks import source_lock
from pipesync.warehouse.store import Warehouse


def test_each_tenant_gets_its_schema_created_and_public_stays_clean(pg_server_url: str, example_project: Path) -> None:
    settings = load_config(example_project / "pipesync.yaml")
    settings.warehouse = pg_server_url
    counts = {}
    for tenant in ("tenant_a", "tenant_b"):
        settings.warehouse_schema = tenant
        result = run_sync(settings)
        assert result.status == "ok"
        counts[tenant] = sum(c.inserted for c in result.sources.values())
    engine = create_engine(pg_server_url)
    with engine.connect() as conn:
        found = inspect(conn)
        assert "deals" in found.get_table_names(schema="tenant_a") and "deals" in found.get_table_names(schema="tenant_b")
        assert "pipesync_schema_version" in found.get_table_names(schema="tenant_a")
        assert "deals" not in found.get_table_names(schema="public")
        assert conn.execute(text("SELECT count(*) FROM tenant_b.deals")).scalar() == counts["tenant_b"] > 0
    engine.dispose()


def test_the_same_source_in_two_schemas_does_not_share_a_lock(pg_server_url: str) -> None:
    a = Warehouse(pg_server_url + "?options=-csearch_path%3Dlock_a")
    b = Warehouse(pg_server_url + "?options=-csearch_path%3Dlock_b")
    with source_lock(a, "crm") as first, source_lock(b, "crm") as second:
        assert first < 1 and second < 1
    a.close()
    b.close()


def test_a_schema_for_sqlite_is_refused(example_project: Path) -> None:
    settings = load_config(example_project / "pipesync.yaml")
    settings.warehouse_schema = "tenant_a"
    with pytest.raises(ConfigError, match="warehouse_schema: 'tenant_a' is for a PostgreSQL warehouse"):
        settings.warehouse_url()

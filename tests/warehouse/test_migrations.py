"""Warehouse schema migrations: every revision upgrades an existing warehouse to what this release writes."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from pipesync.errors import WarehouseError
from pipesync.warehouse import schema as t
from pipesync.warehouse import version
from pipesync.warehouse.store import Warehouse

FIRST_RELEASE = Path(version.__file__).parent / "migrations" / "versions" / "0001_first_release.py"


def differences(url: str) -> list:
    """What the database's tables lack or have beyond the current schema (empty when equal)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        found = compare_metadata(MigrationContext.configure(conn), t.metadata)
    engine.dispose()
    return [d for d in found if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == version.VERSION_TABLE)]


def make_first_release_warehouse(url: str) -> None:
    """The tables the release before migrations created, with no version row, as such a user has them."""
    from alembic.operations import Operations

    engine = create_engine(url)
    with engine.begin() as conn:
        namespace: dict = {}
        exec(compile(FIRST_RELEASE.read_text(encoding="utf-8"), str(FIRST_RELEASE), "exec"), namespace)  # noqa: S102
        with Operations.context(MigrationContext.configure(conn)):
            namespace["upgrade"]()
        conn.execute(text("INSERT INTO deals (key, source, source_id, name, stage, status, contact_emails, "
                          "external_refs, is_deleted, raw, content_hash, synced_at) VALUES ('csv:1', 'csv', '1', "
                          "'Kept deal', 'proposal', 'open', '[]', '[]', false, '{}', 'h', '2026-01-01 00:00:00')"))
    engine.dispose()


def test_the_newest_revision_is_the_one_the_code_expects() -> None:
    assert version.head_of_scripts() == version.HEAD


def test_a_new_warehouse_is_created_at_the_newest_revision(warehouse_url: str) -> None:
    Warehouse(warehouse_url).close()
    engine = create_engine(warehouse_url)
    with engine.connect() as conn:
        assert version.revision_of(conn) == version.HEAD
    engine.dispose()
    assert differences(warehouse_url) == []


def test_a_warehouse_from_before_migrations_is_refused_then_upgraded_with_its_data(warehouse_url: str) -> None:
    make_first_release_warehouse(warehouse_url)
    with pytest.raises(WarehouseError, match=r"before schema migrations: run `pipesync warehouse upgrade`"):
        Warehouse(warehouse_url)
    engine = create_engine(warehouse_url)
    assert version.upgrade(engine) == (version.FIRST, version.HEAD)
    engine.dispose()
    assert differences(warehouse_url) == []
    warehouse = Warehouse(warehouse_url)
    with warehouse.begin() as conn:
        assert conn.execute(text("SELECT name FROM deals")).scalar() == "Kept deal"
    warehouse.close()


def test_a_warehouse_newer_than_this_release_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Warehouse(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {version.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(WarehouseError, match="newer than this pipesync knows"):
        Warehouse(url)


def test_upgrading_a_current_warehouse_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    Warehouse(url).close()
    engine = create_engine(url)
    assert version.upgrade(engine) == (version.HEAD, version.HEAD)
    assert set(inspect(engine).get_table_names()) == {*t.metadata.tables, version.VERSION_TABLE}
    engine.dispose()


def test_the_cli_says_what_to_run_and_upgrades(example_project: Path) -> None:
    import json

    from typer.testing import CliRunner

    from pipesync.cli import app

    config = str(example_project / "pipesync.yaml")
    url = f"sqlite:///{example_project / 'pipesync-example.db'}"
    make_first_release_warehouse(url)
    runner = CliRunner()
    refused = runner.invoke(app, ["sync", "--config", config])
    assert refused.exit_code == 1 and "pipesync warehouse upgrade" in refused.output
    status = runner.invoke(app, ["warehouse", "status", "--config", config, "--json"])
    assert json.loads(status.stdout)["revision"] is None
    upgraded = runner.invoke(app, ["warehouse", "upgrade", "--config", config, "--json"])
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.stdout) | {"warehouse": None} == {"warehouse": None, "from": version.FIRST, "to": version.HEAD}
    assert runner.invoke(app, ["sync", "--config", config]).exit_code == 0


def make_warehouse_at(url: str, revision: str) -> None:
    """A warehouse as the release whose newest revision was ``revision`` left it, holding one deal."""
    from alembic import command

    make_first_release_warehouse(url)
    engine = create_engine(url)
    with engine.begin() as conn:
        version._stamp(conn, version.FIRST)
        command.upgrade(version._config(conn), revision)
    engine.dispose()


def test_a_0002_warehouse_gains_the_actual_close_date_and_keeps_its_deals(warehouse_url: str) -> None:
    make_warehouse_at(warehouse_url, "0002")
    with pytest.raises(WarehouseError, match=rf"has schema revision 0002; this pipesync needs {version.HEAD}"):
        Warehouse(warehouse_url)
    engine = create_engine(warehouse_url)
    assert version.upgrade(engine) == ("0002", version.HEAD)
    engine.dispose()
    assert differences(warehouse_url) == []
    warehouse = Warehouse(warehouse_url)
    with warehouse.begin() as conn:
        # no actual close date is known until the source is read again: metrics fall back to the expected one
        assert conn.execute(text("SELECT name, actual_close_date FROM deals")).one() == ("Kept deal", None)
        assert "actual_close_date" in {c["name"] for c in inspect(conn).get_columns("golden_deals")}
    warehouse.close()

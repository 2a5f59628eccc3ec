"""Shared fixtures: warehouses on every tested dialect, the bundled example project."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
PG_URL = os.environ.get("PIPESYNC_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def logging_as_the_test_found_it() -> Iterator[None]:
    """A command run in-process (CliRunner) configures pipesync's logging for its own stream, which
    closes with it: put the logger back, so later tests' records reach caplog, not a closed stream."""
    from pipesync.logs import ROOT, JsonLines, TextLines

    ours, everyone = logging.getLogger(ROOT), logging.getLogger()
    saved = ours.handlers[:], ours.propagate, ours.level, everyone.level
    yield
    ours.handlers[:], ours.propagate, ours.level, level = saved
    everyone.setLevel(level)
    for handler in everyone.handlers[:]:  # -vv puts pipesync's handler at the root
        if isinstance(handler.formatter, (JsonLines, TextLines)):
            everyone.removeHandler(handler)


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test session (.ci/run makes sure a server answers)."""
    name = f"pipesync_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as e:  # noqa: BLE001 - the message says what to do
        pytest.fail(f"PostgreSQL at {PG_URL} is required for the warehouse tests (set PIPESYNC_TEST_PG_URL): {e}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    create_engine(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def warehouse_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty warehouse URL on each tested dialect."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    url = request.getfixturevalue("pg_server_url")
    from pipesync.warehouse.version import drop

    engine = create_engine(url)
    with engine.begin() as conn:
        drop(conn)
    yield url
    with engine.begin() as conn:
        drop(conn)
    engine.dispose()


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A writable copy of examples/ (config, exports, mappings)."""
    target = tmp_path / "project"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns("*.db", "*.db-*"))
    return target

"""Files pipesync writes: whole or not at all, with the permissions the user's umask gives; secrets 0600."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pipesync.cli.report_cmd  # noqa: F401 - registers the command
from pipesync.adapters.auth import TokenStore
from pipesync.cli.app import app
from pipesync.files import write_atomically
from pipesync.mapper.mapping_writer import write_mapping
from pipesync.mapper.propose import propose_mapping
from pipesync.pipeline import load_pipeline
from tests.mapper.helpers import discovery, stage
from tests.metrics.builders import write_warehouse
from tests.metrics.conftest import quarter_deals


@pytest.fixture
def umask() -> Iterator[int]:
    """A umask other than the usual 022, so that the test tells the umask's permissions from a fixed 0644."""
    before = os.umask(0o027)
    yield 0o027
    os.umask(before)


def permissions(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_file_gets_what_the_umask_leaves_of_0666(tmp_path: Path, umask: int) -> None:
    path = write_atomically(tmp_path / "notes.txt", "hello")
    assert path.read_text(encoding="utf-8") == "hello"
    assert permissions(path) == 0o666 & ~umask == 0o640


def test_a_secret_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    before = os.umask(0)
    try:
        path = write_atomically(tmp_path / "secret.json", "{}", mode=0o600, durable=True)
    finally:
        os.umask(before)
    assert permissions(path) == 0o600


def test_the_token_store_is_0600(tmp_path: Path, umask: int) -> None:
    store = TokenStore(tmp_path / "state" / "oauth.json")
    store.save({"refresh_token": "r-1"})
    assert permissions(store.path) == 0o600
    assert store.load() == {"refresh_token": "r-1"}


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    path = write_atomically(tmp_path / "mapping.yaml", "old")
    with pytest.raises(TypeError):
        write_atomically(path, 42)  # type: ignore[arg-type]
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["mapping.yaml"]


def test_a_mapping_file_is_readable_as_the_umask_says(tmp_path: Path, umask: int) -> None:
    pipeline = load_pipeline()
    proposal = propose_mapping(discovery(("1", [stage("Lead In", id="1")]), source="crm"), pipeline, None)
    path = tmp_path / "crm.yaml"
    write_mapping(path, proposal)
    assert permissions(path) == 0o640


def test_a_report_is_readable_as_the_umask_says(tmp_path: Path, umask: int) -> None:
    settings = write_warehouse(f"sqlite:///{tmp_path / 'w.db'}", quarter_deals())
    config = tmp_path / "pipesync.yaml"
    config.write_text(f"warehouse: {settings.warehouse}\n", encoding="utf-8")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(app, ["report", "-c", str(config), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"report": str(out.resolve())}
    assert permissions(out) == 0o640

"""What the command line imports before a command starts: every command pays for it, `pipesync sync` included.

Each check runs a fresh interpreter, since this test process has long imported everything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Loaded only by the commands (or the code paths) that use them, never to run `pipesync sync`.
NOT_FOR_SYNC = (
    "numpy",
    "jinja2",
    "rapidfuzz",  # drift's rename pairing imports it only when a stage was both added and removed
    "opencc",
    "rich.progress",  # the command body loads what it draws
    "rich.table",
    "pipesync.mapper.context",
    "pipesync.mapper.lexicon",
    "pipesync.mapper.mapping_writer",
    "pipesync.mapper.propose",
    "pipesync.mapper.review",
    "pipesync.metrics.formatting",
    "pipesync.metrics.periods",
    "pipesync.metrics.results",
    "pipesync.metrics.run",
    "pipesync.consolidate",
    "pipesync.report",
    # pipesync-sandbox's commands are registered at start (pipesync.commands); the sandboxes load when they run
    "pipesync_sandbox.world",
    "pipesync_sandbox.sandboxes",
    "pipesync_sandbox.demo",
    "starlette",
    "uvicorn",
    "pipesync.init",
)


def loaded_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


@pytest.fixture(scope="module")
def sync_imports() -> set[str]:
    """The command line and the sync engine: what `pipesync sync` has loaded when its work starts."""
    return loaded_by("import pipesync.cli, pipesync.sync")


@pytest.mark.parametrize("module", NOT_FOR_SYNC)
def test_sync_does_not_import(sync_imports: set[str], module: str) -> None:
    assert module not in sync_imports


def test_the_sync_path_checks_drift_without_the_mapper(sync_imports: set[str]) -> None:
    # sync refuses a source whose live stages the mapping misses: the mapping model's own check
    assert "pipesync.mapping" in sync_imports


def test_the_command_line_loads_no_engine() -> None:
    """`pipesync --help`, `pipesync init` … load neither the sync engine nor SQLAlchemy."""
    loaded = loaded_by("import pipesync.cli")
    assert not {"pipesync.sync", "pipesync.warehouse.store", "sqlalchemy", "pipesync.mapping"} & loaded


def test_the_mapper_package_still_offers_every_name() -> None:
    loaded = loaded_by(
        "import pipesync.mapper as m\n"
        "assert set(m.__all__) <= set(dir(m))\n"
        "assert m.lexicon.normalize is m.normalize\n"  # a submodule is an attribute without importing it, as before
        "from pipesync.mapper import *\n"
        "assert m.propose.DEFAULT_THRESHOLD is DEFAULT_THRESHOLD"
    )
    assert {"pipesync.mapper.propose", "pipesync.mapper.lexicon", "pipesync.mapper.context"} <= loaded

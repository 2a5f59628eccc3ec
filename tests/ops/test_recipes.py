"""recipes/: the cron line, the Kubernetes CronJob (validated against its schema), the Airflow DAG and the
Dagster assets (loaded and materialized where the orchestrator is installed; skipped cleanly where not)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from ruamel.yaml import YAML

from pipesync.config import load_config
from tests.conftest import REPO

RECIPES = REPO / "recipes"


def load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cron_line_runs_pipesync_run_every_night() -> None:
    lines = [line for line in (RECIPES / "cron.txt").read_text(encoding="utf-8").splitlines()
             if line and not line.startswith("#")]
    assert len(lines) == 1
    minute, hour, *_, command = lines[0].split(None, 5)
    assert (minute, hour) == ("0", "2") and "pipesync --log-format json run --wait" in command


def test_the_kubernetes_cronjob_validates_against_its_schema() -> None:
    validation = pytest.importorskip("kubernetes_validate")
    manifest = YAML(typ="safe").load((RECIPES / "kubernetes" / "cronjob.yaml").read_text(encoding="utf-8"))
    validation.validate(manifest, validation.utils.latest_version(), strict=True)
    pod = manifest["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert manifest["spec"]["concurrencyPolicy"] == "Forbid" and pod["securityContext"]["runAsNonRoot"]
    assert pod["containers"][0]["args"][-3:] == ["run", "--wait", "600"]


def test_the_dagster_assets_load_one_per_source_and_materialize(example_project: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    dagster = pytest.importorskip("dagster")
    config = example_project / "pipesync.yaml"
    monkeypatch.setenv("PIPESYNC_CONFIG", str(config))
    module = load(RECIPES / "dagster" / "pipesync_assets.py")
    names = {s.name for s in load_config(config).sources}
    assert {a.key.path[-1] for a in module.sources} == {f"deals_{n.replace('-', '_')}" for n in names}
    result = dagster.materialize([*module.sources, module.golden_deals, module.metric_snapshot])
    assert result.success


def test_the_airflow_dag_builds_one_sync_task_per_source(example_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow")
    config = example_project / "pipesync.yaml"
    monkeypatch.setenv("PIPESYNC_CONFIG", str(config))
    module = load(RECIPES / "airflow" / "pipesync_dag.py")
    dag = module.pipesync_dag()
    names = {s.name for s in load_config(config).sources}
    assert {t for t in dag.task_ids if t.startswith("sync_")} == {f"sync_{n}" for n in names}
    assert all(dag.get_task(f"sync_{n}").downstream_task_ids == {"consolidate_and_measure"} for n in names)

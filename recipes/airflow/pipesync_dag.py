"""Airflow: pipesync every night, one sync task per source, then consolidate → metrics → plan once.

Copy into your DAGs folder; set PIPESYNC_CONFIG to the project's pipesync.yaml. The tasks call the
library (``pipesync.run.run_job``), not the command line, so each task's result is returned to XCom
and a failure is an exception Airflow retries. The sync tasks run side by side across workers,
each bounded by its own source's rate limit; a source's run lock keeps a retry from overlapping
a straggler.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import dag, task  # Airflow 3; on Airflow 2: from airflow.decorators import dag, task

from pipesync.config import load_config

CONFIG = os.environ.get("PIPESYNC_CONFIG", "pipesync.yaml")


def _run(steps: list[str], sources: tuple[str, ...] = ()) -> dict:
    from pipesync.run import run_job

    result = run_job(load_config(CONFIG), only=steps, sources=sources, wait=600)
    if result.exit_code:
        raise RuntimeError("; ".join(f"{s.step}: {s.error}" for s in result.steps if s.error))
    return result.as_dict()


@dag(dag_id="pipesync", schedule="0 2 * * *", start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
     default_args={"retries": 2, "retry_delay": timedelta(minutes=10)}, tags=["revops"])
def pipesync_dag() -> None:
    @task
    def consolidate_and_measure() -> dict:
        return _run(["consolidate", "metrics", "plan", "apply"])

    syncs = [task(task_id=f"sync_{name}")(_run)(["sync"], (name,)) for name in
             (s.name for s in load_config(CONFIG).sources)]
    syncs >> consolidate_and_measure()  # type: ignore[operator]


pipesync_dag()

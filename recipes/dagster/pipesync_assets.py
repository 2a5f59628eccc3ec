"""Dagster: one asset per source's deals, then golden deals and the metric snapshot built on them.

Load with ``dagster dev -f pipesync_assets.py`` (PIPESYNC_CONFIG: the project's pipesync.yaml). The
assets call the library (``pipesync.run.run_job``), not the command line; the per-source assets
materialize side by side across Dagster's workers, each holding its source's run lock.
"""

# no `from __future__ import annotations`: Dagster reads the context parameter's annotation as a type
import os

from dagster import AssetExecutionContext, AssetsDefinition, Definitions, ScheduleDefinition, asset, define_asset_job

from pipesync.config import load_config
from pipesync.run import run_job

CONFIG = os.environ.get("PIPESYNC_CONFIG", "pipesync.yaml")


def _run(context: AssetExecutionContext, steps: list[str], sources: tuple[str, ...] = ()) -> dict:
    result = run_job(load_config(CONFIG), only=steps, sources=sources, wait=600)
    for step in result.steps:
        context.log.info(f"{step.step}: {step.status} in {step.seconds:.1f}s")
    if result.exit_code:
        raise RuntimeError("; ".join(f"{s.step}: {s.error}" for s in result.steps if s.error))
    return result.as_dict()


def source_asset(name: str) -> AssetsDefinition:
    @asset(name=f"deals_{name.replace('-', '_')}", group_name="pipesync", description=f"{name}'s deals in the warehouse")
    def deals(context: AssetExecutionContext) -> None:
        summary = _run(context, ["sync"], (name,))["steps"][0]["summary"]["sources"][name]
        context.add_output_metadata({k: summary[k] for k in ("read", "inserted", "updated", "deleted", "quarantined")})

    return deals


sources = [source_asset(s.name) for s in load_config(CONFIG).sources]


@asset(deps=sources, group_name="pipesync", description="golden deals: every source's copies of a deal merged")
def golden_deals(context: AssetExecutionContext) -> None:
    summary = _run(context, ["consolidate"])["steps"][0]["summary"]
    context.add_output_metadata({"deals": summary["deals"], "golden_deals": summary["golden_deals"]})


@asset(deps=[golden_deals], group_name="pipesync", description="this period's metrics, stored as a snapshot")
def metric_snapshot(context: AssetExecutionContext) -> None:
    _run(context, ["metrics", "plan", "apply"])


nightly = define_asset_job("pipesync_nightly", selection="*")
defs = Definitions(assets=[*sources, golden_deals, metric_snapshot], jobs=[nightly],
                   schedules=[ScheduleDefinition(job=nightly, cron_schedule="0 2 * * *")])

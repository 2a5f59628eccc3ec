"""``pipesync demo``: the whole flow, end to end, against the bundled CRM sandboxes.

Seeds a world of overlapping deals, serves it from local Salesforce, HubSpot and
Pipedrive emulators over real HTTP, writes a project (config, secrets files,
mappings), then runs what a RevOps team would: map every source, sync the three
CRMs plus a spreadsheet export, consolidate duplicates, plan the push-back (write-back
fields, duplicate marks, stale deals; nothing is sent), compute the metrics and write
the HTML report. Each step is the same function the command line calls.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from pipesync.config import Settings, SourceConfig, load_config
from pipesync.consolidate.store import ConsolidationSummary, run_consolidation
from pipesync.errors import UsageError
from pipesync.mapper import map_context, propose_mapping, write_mapping
from pipesync.mapper.propose import accept_confident
from pipesync.metrics.periods import quarter_of
from pipesync.metrics.results import Metrics
from pipesync.pipeline import default_pipeline_path
from pipesync.pushback.fields import create_fields
from pipesync.pushback.plan import Plan, save_plan
from pipesync.pushback.planner import make_plan, rules_for
from pipesync.pushback.review import write_review
from pipesync.report.builder import report_data, write_report
from pipesync.sync import SyncResult, run_sync
from pipesync_sandbox.csv_export import write_export
from pipesync_sandbox.generator import FX_TO_USD, generate
from pipesync_sandbox.sandboxes import Sandboxes
from pipesync_sandbox.sources import sandbox_source
from pipesync_sandbox.world import SYSTEMS

Step = Callable[[str], None]

# Marks a folder `pipesync demo` wrote, so the next demo may replace it: no other folder is ever deleted.
MARKER = ".pipesync-demo"


@dataclass
class DemoResult:
    folder: Path
    mapped: dict[str, tuple[int, int]]  # source → (stages mapped, stages in the source)
    sync: SyncResult
    consolidation: ConsolidationSummary
    metrics: Metrics
    report: Path
    plan: Plan
    plan_file: Path
    plan_page: Path


def write_project(folder: Path, sources: list[SourceConfig]) -> Settings:
    """pipesync.yaml and mappings/pipeline.yaml for ``sources``; secrets stay in their own files."""
    (folder / "mappings").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default_pipeline_path(), folder / "mappings" / "pipeline.yaml")
    config = {
        "warehouse": "sqlite:///pipesync-demo.db",
        "reporting_currency": "USD",
        "fx_rates": {code: float(rate) for code, rate in FX_TO_USD.items() if code != "USD"},
        "mappings_dir": "mappings",
        "sources": [s.model_dump(mode="json", exclude_defaults=True) for s in sources],
    }
    with (folder / "pipesync.yaml").open("w", encoding="utf-8") as f:
        f.write("# Written by `pipesync demo`: the sandboxes' URLs are only valid while the demo runs.\n")
        writer = YAML(typ="safe", pure=True)
        writer.default_flow_style = False
        writer.width = 4096
        writer.dump(config, f)
    return load_config(folder / "pipesync.yaml")


def fresh_folder(folder: Path) -> None:
    """Make ``folder`` an empty demo folder; a demo starts from nothing, so its figures are reproducible.

    Only a previous demo's folder (its marker file) is replaced; any other folder that holds
    anything is refused, and left as it was.
    """
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"--dir {folder}: a file, not a folder; give a new or empty folder for the demo")
        if (folder / MARKER).is_file():
            shutil.rmtree(folder)
        elif any(folder.iterdir()):
            raise UsageError(f"--dir {folder}: the folder holds files `pipesync demo` did not write, and a demo "
                             "replaces its folder; give a new or empty folder (nothing was changed)")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("Written by `pipesync demo`: the next demo run with --dir here replaces this "
                                 "folder and everything in it.\n", encoding="utf-8")


def run_demo(folder: Path, *, seed: int = 1, size: int = 3000, step: Step = lambda _: None) -> DemoResult:
    folder = folder.resolve()
    fresh_folder(folder)
    step(f"seeding {size:,} deals across {', '.join(SYSTEMS)} (seed {seed})")
    world = generate(seed, size)
    with Sandboxes(world) as boxes:
        step("sandboxes up: " + ", ".join(f"{b.system} {b.base_url}" for b in boxes))
        # the spreadsheet is kept by the same sales team: its owners are people the CRMs know too
        team = sorted({o.name for o in world.systems["salesforce"].owners})
        export = write_export(folder / "exports" / "spreadsheet.csv", max(size // 20, 50), seed=seed, owners=team)
        sources = [sandbox_source(boxes[s], folder / ".secrets") for s in SYSTEMS] + [
            SourceConfig(name="spreadsheet", type="csv", mapping=str(export.with_suffix(".yaml").relative_to(folder)),
                         options={"path": str(export.relative_to(folder)), "format": "pipedrive_export"})
        ]
        settings = write_project(folder, sources)

        mapped = {}
        for source in [*SYSTEMS, "spreadsheet"]:
            step(f"mapping {source}'s stages, lost reasons and lead sources")
            ctx = map_context(settings, source)
            proposal = accept_confident(propose_mapping(ctx.discovery, ctx.pipeline, ctx.existing), 0.8)
            write_mapping(ctx.path, proposal)
            decided = sum(1 for _, s in proposal.stages() if s.accepted)
            mapped[source] = (decided, decided + len(proposal.undecided()))

        step("syncing every source into the warehouse")
        synced = run_sync(settings)
        step("consolidating duplicates into golden deals")
        consolidation = run_consolidation(settings)
        step("planning the push-back: write-back fields, duplicate marks, stale deals (nothing is sent)")
        settings = write_pushback_rules(folder)
        ready_write_back_fields(boxes, settings)
        plan = make_plan(settings, now=world.as_of)
        plan_file, plan_page = folder / "pipesync-plan.json", folder / "plan.html"
        save_plan(plan, plan_file)
        write_review(plan, plan_page)
    period = quarter_of(world.as_of.date()) if world.as_of else None
    step("computing metrics and writing the report")
    data = report_data(settings, period, now=world.as_of, limit=10)
    report = write_report(data, settings, folder / "report.html")
    return DemoResult(folder, mapped, synced, consolidation, data.overall, report, plan, plan_file, plan_page)


# The demo's push-back rules: every CRM record learns its golden deal and where else it lives,
# duplicates within one CRM are marked, deals idle for half a year are closed as lost.
PUSHBACK_RULES = """\
# Push-back rules written by `pipesync demo` (docs/pushback.md). Every rule is off until enabled.
max_changes: 20000
scope:
  sources: {deny: [spreadsheet]}
write_back:
  enabled: true
  fields:
    salesforce: {golden_id: Pipesync_Golden_Id__c, duplicate_of: Pipesync_Duplicate_Of__c, also_in: Pipesync_Also_In__c}
    hubspot: {golden_id: pipesync_golden_id, duplicate_of: pipesync_duplicate_of, also_in: pipesync_also_in}
    pipedrive: {golden_id: pipesync_golden_id, duplicate_of: pipesync_duplicate_of, also_in: pipesync_also_in}
duplicates:
  enabled: true
  action: mark
close_stale:
  enabled: true
  after_days: 180
"""


def write_pushback_rules(folder: Path) -> Settings:
    (folder / "pushback.yaml").write_text(PUSHBACK_RULES, encoding="utf-8")
    return load_config(folder / "pipesync.yaml")


def ready_write_back_fields(boxes: Sandboxes, settings: Settings) -> None:
    """The write-back fields in each CRM: made in the Salesforce sandbox as an admin would in Setup
    (its API cannot), and by `pipesync fields create` in HubSpot and Pipedrive."""
    rules = rules_for(settings)
    for name, figure in rules.write_back.fields["salesforce"].items():
        boxes["salesforce"].store.add_custom_field("Opportunity", figure, "string", f"pipesync {name}", length=255)
    for source in ("hubspot", "pipedrive"):
        create_fields(settings, source, rules)

"""``pipesync migrate --from S --to T``: dry run (default), ``--execute``, ``--reconcile``; see docs/migration.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from

if TYPE_CHECKING:
    from pipesync.migrate.reconcile import Reconciliation


@app.command()
@handles_errors
def migrate(
    source: str = typer.Option(..., "--from", metavar="SOURCE", help="The configured source whose deals are copied."),
    target: str = typer.Option(..., "--to", metavar="TARGET", help="The configured CRM they are created in."),
    dry_run: bool = typer.Option(True, "--dry-run/--execute", help="Show what would be done (default), or do it."),
    reconcile_only: bool = typer.Option(False, "--reconcile", help="Only compare what was migrated with the target."),
    limit: int = typer.Option(None, "--limit", min=1, help="Migrate at most N deals (a sample first)."),
    default_owner: str = typer.Option(None, "--default-owner", metavar="EMAIL",
                                      help="The target user who gets deals whose owner has no user there."),
    pipeline: str = typer.Option(None, "--pipeline", help="The target pipeline (id or label) deals land in "
                                                          "(default: the first in the target's mapping)."),
    config: Path = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Copy one system's deals into another CRM: dry run first, resumable, never duplicating, reconciled."""
    from pipesync.migrate.plan import make_migration
    from pipesync.migrate.reconcile import reconcile
    from pipesync.migrate.run import run_migration

    settings = settings_from(config)
    if reconcile_only:
        result = reconcile(settings, source, target)
        emit_json(result.as_dict()) if json_out else render_reconciliation(result)
        if not result.ok:
            raise typer.Exit(1)
        return
    migration = make_migration(settings, source, target, limit=limit, default_owner=default_owner, pipeline_id=pipeline)
    summary = migration.summary()
    if dry_run or migration.blockers:
        emit_json({"dry_run": True, **summary}) if json_out else render_dry_run(summary)
        if migration.blockers:
            raise typer.Exit(2)
        return
    done = run_migration(settings, migration)
    if json_out:
        emit_json({"dry_run": False, **summary, "sample": None, **done.as_dict()})
    else:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(done.summary.counts.items())) or "nothing to create"
        console.print(f"[bold]{done.summary.run_id}[/]: {counts}"
                      + (f"; {done.recovered} found already created after an interrupted run" if done.recovered else ""),
                      highlight=False)
        for why in done.summary.stopped.values():
            console.print(f"  [red]stopped[/]: {escape(why)} — run the same command again to finish", highlight=False)
        render_reconciliation(done.reconciliation)
    if not done.ok:
        raise typer.Exit(1)


def render_dry_run(s: dict[str, Any]) -> None:
    console.print(f"[bold]{s['source']} → {s['target']}[/] (dry run: nothing is sent): create {s['counts']['create']}, "
                  f"skip {s['counts']['skip']}", highlight=False)
    for blocker in s["blockers"]:
        console.print(f"  [red]cannot start[/]: {escape(blocker)}", highlight=False)
    console.print("by shared stage: " + (", ".join(f"{k} {v}" for k, v in s["by_stage"].items()) or "none"), highlight=False)
    console.print("by owner: " + (", ".join(f"{escape(k)} {v}" for k, v in s["by_owner"].items()) or "none"), highlight=False)
    if s["unmatched_owners"]:
        console.print("owners with no user in the target (default owner, else unassigned): "
                      + ", ".join(f"{escape(k)} {v}" for k, v in s["unmatched_owners"].items()), highlight=False)
    if s["not_written"]:
        console.print(f"fields the target cannot hold (left out): {', '.join(s['not_written'])}", highlight=False)
    for action, rows in s["sample"].items():
        if rows:
            console.print(f"\nsample of {action}:", highlight=False)
        for row in rows:
            row = dict(row)
            key, label = row.pop("source_key"), row.pop("name", None) or row.pop("reason", "")
            rest = ", ".join(f"{k} {v}" for k, v in row.items())
            console.print(f"  {escape(key)}: {escape(str(label))}" + (f" [dim]({escape(rest)})[/]" if rest else ""),
                          highlight=False)
    if s["counts"]["create"] and not s["blockers"]:
        console.print(f"\nto do it: pipesync migrate --from {s['source']} --to {s['target']} --execute", highlight=False)


def render_reconciliation(r: Reconciliation) -> None:
    state = "[green]reconciles[/]" if r.ok else "[red]does not reconcile[/]"
    console.print(f"reconciliation {r.source} → {r.target}: {state} ({r.migrated} migrated, {r.not_migrated} not yet)",
                  highlight=False)
    for stage, sides in r.stages.items():
        mark = "" if sides["source"] == sides["target"] else "  [red]≠[/]"
        console.print(f"  {stage}: {sides['source']['count']} / {sides['source']['amount']} → "
                      f"{sides['target']['count']} / {sides['target']['amount']}{mark}", highlight=False)
    for f in r.failed[:20]:
        console.print(f"  failed: {escape(f['source_key'])}: {escape(str(f['reason'] or ''))}", highlight=False)
    for m in r.missing[:20]:
        console.print(f"  missing in the target: {escape(m['source_key'])} ({escape(m['target_id'])})", highlight=False)
    for d in r.diffs[:20]:
        console.print(f"  differs: {escape(d['source_key'])} {d['field']}: sent {escape(str(d['sent']))}, "
                      f"target has {escape(str(d['target']))}", highlight=False)

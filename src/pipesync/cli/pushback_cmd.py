"""``pipesync plan`` / ``apply`` / ``undo`` / ``journal``: the push-back loop.

plan → review → apply → journal → undo; see docs/pushback.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from

if TYPE_CHECKING:
    from pipesync.pushback.apply import RunSummary
    from pipesync.pushback.plan import Plan

SHOWN_PER_RULE = 10


@app.command()
@handles_errors
def plan(
    config: Path = ConfigOption,
    out: Path = typer.Option(Path("pipesync-plan.json"), "--out", "-o", help="Where to write the plan file."),
    rules: Path = typer.Option(None, "--rules", help="Push-back rules file (default: `pushback:` in the config, else pushback.yaml)."),
    html: Path = typer.Option(None, "--html", metavar="FILE", help="Also write a review page (HTML) of the plan."),
    json_out: bool = JsonOption,
) -> None:
    """Plan the writes the push-back rules make: nothing is sent to any CRM."""
    from pipesync.pushback.plan import save_plan
    from pipesync.pushback.planner import make_plan, rules_for
    from pipesync.pushback.review import write_review

    settings = settings_from(config)
    made = make_plan(settings, rules_for(settings, rules))
    save_plan(made, out)
    if html:
        write_review(made, html)
    if json_out:
        emit_json({"plan_file": str(out), **made.model_dump(mode="json"), "counts": made.counts()})
        return
    render_plan(made, out)


def render_plan(p: Plan, path: Path | None) -> None:
    counts = p.counts()
    if not p.rules:
        console.print("no push-back rule is enabled (see docs/pushback.md): the plan is empty", highlight=False)
    console.print(f"[bold]{p.plan_id}[/]: {len(p.changes)} change(s)" + (f", written to {escape(str(path))}" if path else ""),
                  highlight=False)
    for rule, per_source in counts.items():
        console.print(f"\n[bold]{rule}[/]: " + ", ".join(f"{s} {n}" for s, n in per_source.items()), highlight=False)
        shown = [c for c in p.changes if c.rule == rule][:SHOWN_PER_RULE]
        for c in shown:
            console.print(f"  {escape(c.deal_key)} [dim]{c.kind.value}[/] — {escape(c.reason)}", highlight=False)
            for f in c.fields:
                console.print(f"      {escape(f.field)}: {escape(_shown(f.before))} → {escape(_shown(f.after))}", highlight=False)
        more = sum(per_source.values()) - len(shown)
        if more > 0:
            console.print(f"  … and {more} more (the plan file lists every change)", style="dim", highlight=False)
    if p.refused:
        console.print(f"\n{len(p.refused)} change(s) left out:", highlight=False)
        for r in p.refused[:SHOWN_PER_RULE]:
            console.print(f"  {r.rule} {escape(r.deal_key or r.source or '')}: {escape(r.reason)}", highlight=False)
    if p.changes and path:
        console.print(f"\nreview it, then: pipesync apply {escape(str(path))}", highlight=False)


def _shown(value: Any) -> str:
    return "(empty)" if value in (None, "") else str(value)


@app.command()
@handles_errors
def apply(
    plan_file: Path = typer.Argument(..., metavar="PLAN", help="A plan file made by `pipesync plan`."),
    config: Path = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Send a plan's changes to the CRMs, journaled; re-running resumes and never sends twice."""
    from pipesync.pushback.apply import apply_plan
    from pipesync.pushback.plan import load_plan

    settings = settings_from(config)
    summary = apply_plan(settings, load_plan(plan_file))
    _finish(summary, json_out)


@app.command()
@handles_errors
def undo(
    run_id: str = typer.Argument(..., metavar="RUN", help="The run to undo (see `pipesync journal`)."),
    config: Path = ConfigOption,
    force: bool = typer.Option(False, "--force", help="Overwrite fields a person changed since the run."),
    json_out: bool = JsonOption,
) -> None:
    """Restore what an applied run changed, skipping fields changed since (unless --force)."""
    from pipesync.pushback.undo import undo_run

    summary = undo_run(settings_from(config), run_id, force=force)
    _finish(summary, json_out)


def _finish(summary: RunSummary, json_out: bool) -> None:
    if json_out:
        emit_json(summary.as_dict())
    else:
        render_run(summary)
    if not summary.ok:
        raise typer.Exit(1)


def render_run(s: RunSummary) -> None:
    counts = ", ".join(f"{k} {v}" for k, v in sorted(s.counts.items())) or "nothing to do"
    console.print(f"[bold]{s.run_id}[/]: {counts}", highlight=False)
    for source, n in s.by_source.items():
        console.print(f"  {source}: " + ", ".join(f"{k} {v}" for k, v in sorted(n.items())), highlight=False)
    for source, why in s.stopped.items():
        console.print(f"  [red]{source} stopped[/]: {escape(why)} — run the same command again to finish", highlight=False)
    for p in s.problems[:20]:
        console.print(f"  {p['outcome']}: {escape(p['deal_key'])} ({p['kind']}): {escape(str(p.get('reason') or ''))}",
                      highlight=False)
    if len(s.problems) > 20:
        console.print(f"  … and {len(s.problems) - 20} more (--json lists all)", style="dim", highlight=False)


@app.command()
@handles_errors
def journal(
    run_id: str = typer.Argument(None, metavar="[RUN]", help="Show one run's changes."),
    config: Path = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """List push-back runs, or show one run's changes with their outcomes."""
    from pipesync.pushback.journal import describe_run, recent_runs

    settings = settings_from(config)
    if run_id:
        run, entries = describe_run(settings, run_id)
        if json_out:
            emit_json({"run": run.model_dump(mode="json"), "changes": [e.model_dump(mode="json") for e in entries]})
            return
        console.print(f"[bold]{run.run_id}[/] ({run.kind} of {run.plan_id}) {run.status}, started {run.started_at:%Y-%m-%d %H:%M}",
                      highlight=False)
        for e in entries:
            outcome = e.outcome.value if e.outcome else "pending"
            console.print(f"  {e.seq:>5} {outcome:<9} {escape(e.deal_key)} {e.kind.value} {escape(e.result_reason or '')}",
                          highlight=False)
        return
    from rich.table import Table

    runs = recent_runs(settings)
    if json_out:
        emit_json([r.model_dump(mode="json") for r in runs])
        return
    if not runs:
        console.print("no push-back run yet (pipesync plan, then pipesync apply PLAN)", highlight=False)
        return
    table = Table("run", "kind", "status", "started", "changes")
    for r in runs:
        table.add_row(escape(r.run_id), r.kind, r.status, f"{r.started_at:%Y-%m-%d %H:%M}",
                      ", ".join(f"{k} {v}" for k, v in sorted(r.counts.items())))
    console.print(table)


fields_app = typer.Typer(help="The CRM fields push-back writes into: check them, create the missing ones.",
                         no_args_is_help=True)
app.add_typer(fields_app, name="fields")


@fields_app.command("check")
@handles_errors
def fields_check(
    source: str = typer.Argument(None, metavar="[SOURCE]", help="One source (default: every source with write-back fields)."),
    config: Path = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Check that each write-back field exists in its CRM, writable, with a usable type."""
    from pipesync.pushback.fields import describe
    from pipesync.pushback.planner import check_write_back_fields, rules_for

    settings = settings_from(config)
    problems = check_write_back_fields(settings, rules_for(settings), source)
    if json_out:
        emit_json({"ok": not problems, "problems": [vars(p) for p in problems]})
    elif problems:
        console.print(escape(describe(problems)), highlight=False)
    else:
        console.print("every write-back field is ready", highlight=False)
    if problems:
        raise typer.Exit(1)


@fields_app.command("create")
@handles_errors
def fields_create(
    source: str = typer.Argument(..., metavar="SOURCE"),
    config: Path = ConfigOption,
    json_out: bool = JsonOption,
) -> None:
    """Create SOURCE's missing write-back fields where its API can (HubSpot, Pipedrive); print the steps where it cannot."""
    from pipesync.pushback.fields import create_fields
    from pipesync.pushback.planner import rules_for

    settings = settings_from(config)
    created = create_fields(settings, source, rules_for(settings))
    if json_out:
        emit_json({"created": [vars(c) for c in created]})
        return
    for c in created:
        console.print(f"created {c.source} field {escape(c.field)} ({c.kind})" + (f", key {c.key}" if c.key != c.field else ""),
                      highlight=False)
    if not created:
        console.print(f"{source}: every write-back field exists already", highlight=False)

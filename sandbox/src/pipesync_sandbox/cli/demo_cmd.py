"""``pipesync demo``: registered on the product's app by :func:`pipesync_sandbox.cli.register`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipesync.cli.app import JsonOption, console, emit_json, handles_errors


@handles_errors
def demo(
    folder: Path = typer.Option(Path("pipesync-demo"), "--dir", help="Where to write the demo project: a new or empty folder, or a previous demo's "
                                                     "(replaced)."),
    size: int = typer.Option(3000, "--size", min=100, help="Deal records to seed across the three CRMs."),
    seed: int = typer.Option(1, "--seed", help="Seed of the generated world (same seed, same figures)."),
    json_out: bool = JsonOption,
) -> None:
    """Start the CRM sandboxes, seed them, and run map → sync → consolidate → metrics → report end to end."""
    from rich.table import Table

    from pipesync.cli.metrics_cmd import render as render_metrics
    from pipesync.cli.sync_cmd import render as render_sync
    from pipesync_sandbox.demo import run_demo

    step = (lambda _: None) if json_out else (lambda text: console.print(f"[dim]›[/] {text}", highlight=False))
    result = run_demo(folder, seed=seed, size=size, step=step)
    if json_out:
        emit_json({
            "folder": str(result.folder), "mapped": result.mapped, "sync": result.sync.as_dict(),
            "consolidation": result.consolidation.as_dict(), "report": str(result.report),
            "plan": {"file": str(result.plan_file), "page": str(result.plan_page), "plan_id": result.plan.plan_id,
                     "changes": len(result.plan.changes), "counts": result.plan.counts()},
        })
        return
    table = Table(title="stage mappings proposed (pipesync map --yes)")
    for col in ("source", "stages mapped"):
        table.add_column(col)
    for source, (done, total) in result.mapped.items():
        table.add_row(source, f"{done} of {total}")
    console.print(table)
    render_sync(result.sync)
    c = result.consolidation
    console.print(f"consolidated {c.deals:,} deals into {c.golden_deals:,} golden deals")
    render_metrics(result.metrics)
    console.print(f"report: [bold]{result.report}[/]  (project, config and warehouse in {result.folder})", highlight=False)
    p = result.plan
    counts = "; ".join(f"{rule}: " + ", ".join(f"{s} {n}" for s, n in per.items()) for rule, per in p.counts().items())
    console.print(f"push-back plan: {len(p.changes):,} change(s), nothing sent ({counts})", highlight=False)
    console.print(f"  review it: [bold]{result.plan_page}[/] (the sandboxes stop with the demo; with your own CRMs "
                  "the loop goes on: pipesync apply PLAN, pipesync journal, pipesync undo RUN — docs/pushback.md)",
                  highlight=False)

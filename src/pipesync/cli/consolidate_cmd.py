"""``pipesync consolidate``: duplicates merged into golden deals; ``--explain KEY`` says why."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, handles_errors, settings_from
from pipesync.errors import UsageError

if TYPE_CHECKING:  # the engine (numpy, rapidfuzz) loads when the command runs, not with every command
    from pipesync.consolidate.explain import Explanation, PairExplanation, PairVerdict
    from pipesync.consolidate.store import ConsolidationSummary


@app.command()
@handles_errors
def consolidate(
    config: Path = ConfigOption,
    rules: Path = typer.Option(None, "--rules", help="Match rules file (default: `consolidation:` in the config, else built-in)."),
    explain_key: str = typer.Option(None, "--explain", metavar="KEY", help="Show why deal KEY (e.g. hubspot:123) sits in its golden deal."),
    with_key: str = typer.Option(None, "--with", metavar="OTHER", help="With --explain: why KEY and OTHER are (not) one golden deal."),
    json_out: bool = JsonOption,
) -> None:
    """Match duplicate deals within and across systems and merge them into golden deals."""
    from pipesync.consolidate.explain import explain, explain_pair
    from pipesync.consolidate.store import rules_for, run_consolidation
    from pipesync.warehouse.store import Warehouse

    settings = settings_from(config)
    if with_key and not explain_key:
        raise UsageError("--with OTHER goes with --explain KEY: why KEY and OTHER are (not) one golden deal")
    if explain_key and with_key:
        warehouse = Warehouse(settings.warehouse_url())
        try:
            verdict = explain_pair(warehouse, explain_key, with_key, rules_for(settings, rules))
        finally:
            warehouse.close()
        if json_out:
            emit_json(verdict.as_dict())
        else:
            render_verdict(verdict)
        return
    if explain_key:
        warehouse = Warehouse(settings.warehouse_url())
        try:
            explanation = explain(warehouse, explain_key, rules_for(settings, rules))
        finally:
            warehouse.close()
        if json_out:
            emit_json(explanation.as_dict())
        else:
            render_explanation(explanation)
        return
    # no spinner with --json: stdout carries only the JSON
    with nullcontext() if json_out else console.status("consolidating…", spinner="dots"):
        summary = run_consolidation(settings, rules)
    if json_out:
        emit_json(summary.as_dict())
    else:
        render_summary(summary)


def render_summary(s: ConsolidationSummary) -> None:
    console.print(
        f"{s.deals} deals → {s.golden_deals} golden deals "
        f"({s.merged_clusters} merged, {s.duplicates} duplicates folded in, {s.hard_links} external-id links); "
        f"{s.candidate_pairs} candidate pairs compared; {s.conflicts} field conflicts recorded.",
        highlight=False,
    )
    console.print("  " + ", ".join(f"{k} {v:.2f}s" for k, v in s.seconds.items()), style="dim", highlight=False)


def render_verdict(v: PairVerdict) -> None:
    status = "[green]one golden deal[/]" if v.joined else "[red]not joined[/]"
    console.print(f"[bold]{v.left}[/] ↔ [bold]{v.right}[/]: {status} — {v.verdict}", highlight=False)
    console.print(f"  {v.reason}", highlight=False)
    render_pair(v.pair)


def render_pair(p: PairExplanation) -> None:
    from rich.table import Table

    verdict = "[green]match[/]" if p.match else "[red]no match[/]"
    vetoed = f" — vetoed: {p.vetoed}" if p.vetoed else ""
    pair = Table(title=f"{p.left} ↔ {p.right}: p={p.probability:.4f} {verdict}{vetoed}")
    for col in ("comparison", "level", "weight"):
        pair.add_column(col)
    for c in p.comparisons:
        pair.add_row(c.comparison, c.level, f"{c.weight:+g}")
    console.print(pair)


def render_explanation(e: Explanation) -> None:
    from rich.table import Table

    confidence = "" if e.confidence is None else f", confidence {e.confidence:.3f}"
    console.print(f"[bold]{e.deal_key}[/] → golden deal [bold]{e.golden_id}[/]{confidence}", highlight=False)
    members = Table(title="members")
    for col in ("deal", "name", "linked to", "score", "rule"):
        members.add_column(col)
    for m in e.members:
        members.add_row(m.deal_key, m.name, m.linked_to or "", "" if m.score is None else f"{m.score:.4f}", m.rule or "")
    console.print(members)
    for p in e.pairs:
        render_pair(p)
    if e.fields:
        fields = Table(title="surviving values")
        for col in ("field", "value", "from", "rule"):
            fields.add_column(col)
        for name, how in e.fields.items():
            source = how.get("deal_key") or ", ".join(how.get("deal_keys", []))
            fields.add_row(name, str(how.get("value", "")), source, how.get("rule", ""))
        console.print(fields)
    for c in e.conflicts:
        values = ", ".join(f"{k}={v}" for k, v in c["values"].items())
        console.print(f"[yellow]conflict[/] {c['field']}: {values}", highlight=False)

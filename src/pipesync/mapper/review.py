"""Interactive review of a proposal in the terminal (Rich): accept all, change one, skip one."""

from __future__ import annotations

from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.prompt import Prompt
from rich.table import Table

from pipesync.mapper.propose import PipelineProposal, Proposal, StageProposal
from pipesync.mapper.values import value_comment
from pipesync.model import SharedPipeline

UNDECIDED = "-"


def proposal_table(proposal: Proposal, title: str | None = None) -> Table:
    """Every stage, numbered for review: source label → shared stage, confidence and why."""
    table = Table(title=title or f"Stage mapping for {proposal.source}", show_lines=False)
    # Deal counts (files, some CRMs) tell a reviewer which stages matter most.
    counts = any(sp.deal_count is not None for _, sp in proposal.stages())
    table.add_column("#", justify="right")
    table.add_column("pipeline")
    table.add_column("source stage")
    if counts:
        table.add_column("deals", justify="right")
    table.add_column("→ shared stage")
    table.add_column("conf.", justify="right")
    table.add_column("why")
    for n, (pp, sp) in enumerate(proposal.stages(), start=1):
        deals = [str(sp.deal_count) if sp.deal_count is not None else ""] if counts else []
        table.add_row(
            str(n), escape(pp.label), escape(sp.label), *deals, _decision(sp), f"{sp.confidence:.2f}",
            escape(_why(sp)),
        )
    return table


def values_table(proposal: Proposal) -> Table:
    """The source's lost reasons and lead sources → shared entries (undecided ones are kept as written)."""
    table = Table(title=f"Lost reasons and lead sources of {proposal.source}")
    for name, justify in (("field", "left"), ("value", "left"), ("deals", "right"), ("→ shared", "left"),
                          ("conf.", "right"), ("why", "left")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for v in proposal.values:
        decision = v.key if v.accepted else f"[yellow]as written[/] (guess: {v.key})" if v.key else "[yellow]as written[/]"
        table.add_row(v.field, escape(v.value), str(v.deal_count or ""), decision, f"{v.confidence:.2f}",
                      escape(value_comment(v)))
    return table


def review(
    proposal: Proposal, pipeline: SharedPipeline, console: Console, stream: TextIO | None = None
) -> bool:
    """Lets the user go over ``proposal`` (changed in place); True to write it, False to quit without writing.

    Stages below the confidence threshold start undecided, with their best
    guess shown, so "accept all" never accepts a weak guess unseen.
    """
    rows = list(proposal.stages())
    keys = pipeline.keys
    while True:
        console.print(proposal_table(proposal))
        left = len(proposal.undecided())
        if left:
            console.print(f"[yellow]{left} stage(s) undecided[/]: their deals are quarantined until mapped.")
        action = Prompt.ask(
            "[a]ccept all, [c]hange one, [s]kip one (leave undecided), [q]uit without writing",
            choices=["a", "c", "s", "q"], default="a", console=console, stream=stream,
        )
        if action == "a":
            return True
        if action == "q":
            return False
        pp, sp = rows[_ask_row(len(rows), console, stream) - 1]
        if action == "s":
            sp.accept(None, "left undecided in review")
            continue
        for i, key in enumerate(keys, start=1):
            console.print(f"  {i}. {key} — {escape(pipeline.get(key).label)}")
        console.print(f"  {UNDECIDED}  undecided")
        choice = Prompt.ask(
            f"Shared stage for '{escape(sp.label)}' ({escape(pp.label)})",
            choices=[str(i) for i in range(1, len(keys) + 1)] + keys + [UNDECIDED],
            show_choices=False, console=console, stream=stream,
        )
        if choice == UNDECIDED:
            sp.accept(None, "left undecided in review")
        else:
            sp.accept(keys[int(choice) - 1] if choice.isdigit() else choice, "chosen in review")


def _ask_row(count: int, console: Console, stream: TextIO | None) -> int:
    return int(Prompt.ask(
        f"Which stage (1-{count})", choices=[str(i) for i in range(1, count + 1)], show_choices=False,
        console=console, stream=stream,
    ))


def _decision(sp: StageProposal) -> str:
    if sp.accepted and sp.stage:
        return f"[green]{sp.stage}[/]"
    if sp.stage:
        return f"[yellow]undecided[/] (guess: {sp.stage})"
    return "[red]undecided[/]"


def _why(sp: StageProposal) -> str:
    if sp.reasons:
        return "; ".join(sp.reasons)
    return ", ".join(f"{g.stage}? {'; '.join(g.reasons)}" for g in sp.guesses) or "no evidence"


def undecided_lines(proposal: Proposal) -> list[str]:
    """One line per undecided stage, with its best guess: what `--yes` lists when it fails."""
    return [_undecided_line(pp, sp) for pp, sp in proposal.undecided()]


def _undecided_line(pp: PipelineProposal, sp: StageProposal) -> str:
    where = f"pipeline '{pp.label}', stage '{sp.label}'"
    if not sp.candidates():
        return f"{where}: no guess ({'; '.join(sp.reasons) or 'no evidence'})"
    best = sp.candidates()[0]
    return f"{where}: best guess {best.stage} {best.confidence:.2f} ({'; '.join(best.reasons)})"

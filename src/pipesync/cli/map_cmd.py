"""``pipesync map SOURCE``: propose, review and write the source's stage mapping; ``--check`` for drift."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from pipesync.cli.app import ConfigOption, JsonOption, app, console, emit_json, err_console, fail, handles_errors, settings_from
from pipesync.errors import MappingError
from pipesync.mapper import DEFAULT_THRESHOLD

if TYPE_CHECKING:  # the proposal engine and its lexicon load when the command runs, not with every command
    from rich.table import Table

    from pipesync.config import Settings

    from pipesync.mapper import Proposal, ReverseMapping
    from pipesync.mapping import DriftReport


# `--check`'s exit code when the file and the source differ: drift is a finding, not a failure
# of the check (1) nor a broken file (2), and a scheduled job tells the three apart.
DRIFT_FOUND = 3


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@app.command("map")
@handles_errors
def map_command(
    source: str = typer.Argument(..., help="Name of the source in the config."),
    config: Path = ConfigOption,
    yes: bool = typer.Option(
        False, "--yes", "-y", help="Accept proposals at or above --threshold without asking; exit 1 listing the rest."
    ),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, "--threshold", min=0.0, max=1.0, help="Confidence to accept."),
    json_out: bool = JsonOption,
    check: bool = typer.Option(
        False, "--check",
        help=f"Compare the mapping file with the live source; exit {DRIFT_FOUND} on drift (for a scheduled job).",
    ),
    for_writes: bool = typer.Option(
        False, "--for-writes",
        help="Show which source stage a write to each shared stage lands in (push-back, migrate); --yes writes "
             "the proposed choices into the file's writes:.",
    ),
) -> None:
    """Discover SOURCE's pipelines and stages, propose their shared stages, review, write mappings/SOURCE.yaml.

    Interactive when stdin is a terminal. With --json alone the proposal is printed and nothing is written.

    Exit codes: 0 ok, 1 failure (or stages left undecided with --yes), 2 usage or a broken file,
    3 drift found by --check.
    """
    from pipesync.mapper import map_context, propose_mapping, write_mapping
    from pipesync.mapper.date_order import advise_date_order
    from pipesync.mapper.review import review, undecided_lines
    from pipesync.mapping import check_mapping

    if for_writes:
        _map_for_writes(source, settings_from(config), yes, json_out)
        return
    ctx = map_context(settings_from(config), source)
    if check:
        if ctx.existing is None:
            raise MappingError(f"{ctx.path}: no mapping file for source {source!r}: run `pipesync map {source}` first")
        report = check_mapping(ctx.discovery, ctx.existing)
        if json_out:
            emit_json(report.model_dump())
        else:
            render_drift(report, ctx.path)
        if not report.ok:
            raise typer.Exit(DRIFT_FOUND)
        return

    proposal = propose_mapping(
        ctx.discovery, ctx.pipeline, ctx.existing, threshold=threshold, dates=ctx.dates, vocabularies=ctx.vocabularies
    )
    if json_out and not yes:
        emit_json({**proposal.model_dump(), "columns": ctx.columns})
        return
    if ctx.columns is not None and not json_out:
        console.print(columns_table(ctx.columns, ctx.source.name))
    if not yes:
        if not stdin_is_terminal():
            fail("UsageError", "stdin is not a terminal: pass --yes to accept proposals at or above --threshold, "
                 "or --json to print the proposal", 2, json_out=False)
        if not review(proposal, ctx.pipeline, console):
            console.print("Nothing written.")
            return
    write_mapping(ctx.path, proposal)
    left = undecided_lines(proposal)
    dates = advise_date_order(ctx.dates, ctx.existing.parse.date_order if ctx.existing else None)
    if json_out:
        emit_json({"path": str(ctx.path), "undecided": left, "dates": dates.message, "columns": ctx.columns,
                   "proposal": proposal.model_dump()})
    else:
        render_written(proposal, ctx.path, yes)
        if dates.message:
            out = err_console if dates.problem else console
            out.print(f"{'[yellow]warning:[/] ' if dates.problem else ''}{escape(dates.message)}", highlight=False)
    if yes and left:
        err_console.print(
            f"[bold red]error:[/] {len(left)} stage(s) below confidence {threshold:g}, left undecided in "
            f"{escape(str(ctx.path))}; map them there (or re-run without --yes to review):",
            highlight=False,
        )
        for line in left:
            err_console.print(f"  - {escape(line)}", highlight=False)
        raise typer.Exit(1)


def _map_for_writes(source: str, settings: Settings, yes: bool, json_out: bool) -> None:
    from pipesync.mapper import reverse_mapping, write_landings

    reverse = reverse_mapping(settings, source)
    written = write_landings(reverse.path, reverse.landings) if yes else 0
    if json_out:
        emit_json({**reverse.model_dump(), "written": written})
        return
    console.print(landings_table(reverse))
    chosen, unmapped = reverse.chosen(), reverse.unmapped()
    if written:
        console.print(f"Wrote {written} choice(s) into writes: of {escape(reverse.path)}; edit them there.", highlight=False)
    elif chosen:
        console.print(f"{len(chosen)} shared stage(s) have several source stages: the proposed one is shown; "
                      "--yes writes the proposals into the file's writes:, or edit it.")
    if unmapped:
        console.print(f"[yellow]{len(unmapped)} pipeline × shared stage(s) have no source stage[/]: a push-back change "
                      "to them is left out of the plan, and a migration into this source stops until they are mapped.")


def landings_table(reverse: ReverseMapping) -> Table:
    from rich.table import Table

    how = {"written": "the file's writes:", "only": "the one stage mapped there", "none": "[yellow]none maps here[/]"}
    table = Table(title=f"Where writes land in {reverse.source}")
    for name in ("pipeline", "shared stage", "lands in", "how"):
        table.add_column(name)
    for x in reverse.landings:
        chosen = f"[cyan]proposed[/], over {escape(x.others())}"
        lands = "-" if x.stage is None else x.stage_label if x.stage_label == x.stage else f"{x.stage_label} ({x.stage})"
        table.add_row(escape(x.pipeline_label or x.pipeline), x.shared, escape(lands),
                      chosen if x.origin == "chosen" else how[x.origin])
    return table


def columns_table(columns: dict[str, str | None], source: str) -> Table:
    """Which column of the file each canonical field is read from, or that the file has none."""
    from rich.table import Table

    table = Table(title=f"Columns of {source}")
    table.add_column("field")
    table.add_column("read from column")
    for field, column in columns.items():
        table.add_row(field, escape(column) if column is not None else "[yellow]none found[/] (name one under fields:)")
    return table


def render_written(proposal: Proposal, path: Path, quiet: bool) -> None:
    from pipesync.mapper.review import proposal_table, values_table

    if quiet:
        console.print(proposal_table(proposal))
    if proposal.values:
        console.print(values_table(proposal))
    decided = sum(1 for _, s in proposal.stages() if s.accepted)
    total = decided + len(proposal.undecided())
    console.print(f"Wrote {escape(str(path))}: {decided} of {total} stage(s) mapped.", highlight=False)
    if proposal.undecided() and not quiet:
        console.print(
            f"[yellow]{len(proposal.undecided())} stage(s) left undecided[/]: `pipesync sync` refuses this source "
            "until they are mapped (edit the file, or re-run `pipesync map`)."
        )


def render_drift(report: DriftReport, path: Path) -> None:
    if report.ok:
        console.print(f"{escape(str(path))} matches source {report.source!r}: no drift.", highlight=False)
        return
    console.print(f"[bold red]{len(report.items)} drift problem(s)[/] between {escape(str(path))} and the live source:")
    for item in report.items:
        console.print(f"  [bold]{item.kind}[/]: {escape(item.message)}", highlight=False)

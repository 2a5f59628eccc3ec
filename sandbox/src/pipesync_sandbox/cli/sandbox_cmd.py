"""``pipesync sandbox``: run the local CRM sandboxes, or write a seeded world's labels.

Registered on the product's app by :func:`pipesync_sandbox.cli.register`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from pipesync.cli.app import JsonOption, console, emit_json, handles_errors

if TYPE_CHECKING:
    from pipesync_sandbox.faults import Faults

sandbox_app = typer.Typer(
    help="Local, faithful Salesforce, HubSpot and Pipedrive APIs filled with seeded, labelled data.",
    no_args_is_help=True,
)

SeedOption = typer.Option(1, "--seed", help="Seed of the generated world: the same seed and size give the same data.")
SizeOption = typer.Option(10_000, "--size", min=1, help="Deal records across the three systems.")


def parse_faults(specs: list[str]) -> dict[str, Faults]:
    """``["hubspot.error_rate=0.1", "salesforce.expire_token_after=50"]`` as Faults per system."""
    from pipesync_sandbox.faults import Faults  # the emulators' web stack: loaded only by sandbox commands
    from pipesync_sandbox.world import SYSTEMS

    settings: dict[str, dict[str, float | int]] = {}
    for spec in specs:
        target, _, raw = spec.partition("=")
        system, _, name = target.partition(".")
        if system not in SYSTEMS or not name or not raw:
            raise typer.BadParameter(f"{spec!r}: expected SYSTEM.SETTING=VALUE, SYSTEM one of {', '.join(SYSTEMS)}",
                                     param_hint="--fault")
        try:
            value: float | int = int(raw) if raw.lstrip("-").isdigit() else float(raw)
        except ValueError:
            raise typer.BadParameter(f"{spec!r}: {raw!r} is not a number", param_hint="--fault") from None
        settings.setdefault(system, {})[name] = value
    faults = {}
    for system, values in settings.items():
        try:
            faults[system] = Faults(**values)  # type: ignore[arg-type]
        except (TypeError, ValueError) as e:
            raise typer.BadParameter(f"{system}: {e}", param_hint="--fault") from None
    return faults


@sandbox_app.command("up")
@handles_errors
def up(
    seed: int = SeedOption,
    size: int = SizeOption,
    fault: list[str] = typer.Option(
        [], "--fault", help="Switch a fault on at start, e.g. hubspot.error_rate=0.05 or "
                            "pipedrive.burst_429_every=100 (repeatable; see pipesync_sandbox.faults)."),
    labels: Path | None = typer.Option(None, "--labels", help="Also write the served world's labels file here."),
    json_out: bool = JsonOption,
) -> None:
    """Start all three sandboxes, print their URLs and throwaway credentials, serve until Ctrl-C."""
    from rich.table import Table

    from pipesync_sandbox.generator import generate, write_labels
    from pipesync_sandbox.sandboxes import Sandboxes

    faults = parse_faults(fault)
    world = generate(seed, size)
    if labels:
        write_labels(world, labels)
    with Sandboxes(world, faults=faults) as boxes:
        if json_out:
            emit_json({b.system: {"base_url": b.base_url, "ca_bundle": b.ca_bundle, "credentials": b.credentials}
                       for b in boxes})
        else:
            table = Table(title=f"pipesync sandboxes (seed {seed}, {size:,} deals) — Ctrl-C to stop")
            for col in ("system", "base URL", "CA bundle", "credentials"):
                table.add_column(col, overflow="fold")
            for b in boxes:
                creds = "\n".join(f"{k}={v}" for k, v in b.credentials.items())
                table.add_row(b.system, b.base_url, b.ca_bundle or "", creds)
            console.print(table)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            console.print("stopping the sandboxes", style="dim")


@sandbox_app.command("seed")
@handles_errors
def seed_cmd(
    seed: int = SeedOption,
    size: int = SizeOption,
    labels: Path = typer.Option(Path("labels.csv"), "--labels", help="Where to write the ground-truth clusters."),
    json_out: bool = JsonOption,
) -> None:
    """Generate a world and write its labels file (docs/sandbox.md); print what it holds."""
    from rich.table import Table

    from pipesync_sandbox.generator import generate, world_summary, write_labels

    world = generate(seed, size)
    write_labels(world, labels)
    summary = world_summary(world) | {"labels": str(labels)}
    if json_out:
        emit_json(summary)
        return
    table = Table(title=f"seed {seed}: {size:,} deal records → {labels}")
    columns = ("deals", "open", "deleted", "merged_away", "accounts", "contacts", "owners", "pipelines")
    table.add_column("system")
    for col in columns:
        table.add_column(col.replace("_", " "), justify="right")
    for system, counts in summary["systems"].items():  # type: ignore[union-attr]
        table.add_row(system, *(f"{counts[c]:,}" for c in columns))
    console.print(table)
    console.print(
        f"{summary['real_deals']:,} real deals: {summary['in_two_or_more_systems']:,} in two or more systems "
        f"({summary['in_all_three_systems']:,} in all three), {summary['duplicated_within_a_system']:,} "
        "duplicated within one system", highlight=False)

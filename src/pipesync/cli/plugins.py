"""Commands that other installed parts add to ``pipesync``: the ``pipesync.commands`` entry point group.

Each entry point names a callable ``register(app: typer.Typer) -> None`` that adds its commands
to the app; it is called at start, so it must import no more than its command functions (the
work is imported when a command runs: tests/unit/test_cli_imports.py). ``pipesync-sandbox``
registers ``demo`` and ``sandbox`` this way. A command the documentation promises whose part is
not installed still answers, with how to install it (exit 2).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from pipesync.cli.app import handles_errors
from pipesync.errors import NotInstalled

GROUP = "pipesync.commands"

# command → (its help, the distribution that provides it, how to install that from a clone of the repository)
PROVIDED_ELSEWHERE = {
    "demo": ("Run the whole flow end to end against local CRM sandboxes.", "pipesync-sandbox",
             "pip install -e ./sandbox"),
    "sandbox": ("Local Salesforce, HubSpot and Pipedrive API emulators with seeded, labelled data.",
                "pipesync-sandbox", "pip install -e ./sandbox"),
}


def load_plugins(app: typer.Typer) -> None:
    for entry_point in entry_points(group=GROUP):
        entry_point.load()(app)
    present = {c.name or c.callback.__name__ for c in app.registered_commands if c.callback} | {
        g.name for g in app.registered_groups}
    for name, (help_text, distribution, from_clone) in PROVIDED_ELSEWHERE.items():
        if name not in present:
            _add_missing(app, name, help_text, distribution, from_clone)


def _add_missing(app: typer.Typer, name: str, help_text: str, distribution: str, from_clone: str) -> None:
    # Any arguments are accepted (`pipesync sandbox up --size 10`), so the answer is always the same.
    @app.command(name, help=f"{help_text} (not installed: {distribution})", add_help_option=False,
                 context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    @handles_errors
    def missing(ctx: typer.Context) -> None:
        raise NotInstalled(f"`pipesync {name}` comes with {distribution}, which is not installed: "
                           f"pip install {distribution} (from a clone of the repository: {from_clone})")

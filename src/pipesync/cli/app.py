"""The Typer application, global options, and the one place errors become exit codes."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipesync.config import DEFAULT_CONFIG, Settings, load_config
from pipesync.errors import PipesyncError

app = typer.Typer(
    name="pipesync",
    help="CRM sync middleware for RevOps: one shared pipeline, golden deals, trusted metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

console = Console()
# soft_wrap: an error message stays one line per problem, whatever the terminal width (logs, schedulers)
err_console = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = typer.Option(Path(DEFAULT_CONFIG), "--config", "-c", help="Path to pipesync.yaml.")
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def settings_from(path: Path) -> Settings:
    return load_config(path)


def emit_json(data: Any) -> None:
    """JSON on stdout, nothing else, so a scheduler can parse it."""
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


def handles_errors(fn: F) -> F:
    """Turns pipesync errors into a message on stderr and the documented exit code (1 failure, 2 config)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PipesyncError as e:
            err_console.print("[bold red]error:[/]", escape(str(e)), highlight=False)
            raise typer.Exit(e.exit_code) from None

    return wrapper  # type: ignore[return-value]

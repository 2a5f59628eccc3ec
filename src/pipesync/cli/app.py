"""The Typer application, global options, and the one place errors become exit codes."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from typer.core import TyperGroup
from rich.console import Console
from rich.markup import escape

import pipesync
from pipesync import logs
from pipesync.config import DEFAULT_CONFIG, Settings, load_config
from pipesync.errors import PipesyncError

# What the parser raises for a command line it refuses; found through BadParameter, as typer runs
# on click or on its own copy of it.
_USAGE_ERROR = next(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "UsageError")

class _Commands(TyperGroup):
    """pipesync's command group: under ``--json``, what the parser refuses (an unknown option or
    command, a missing argument, a value of the wrong kind) is the JSON error object every
    command prints, not the parser's text on stderr."""

    json_errors = False

    def main(self, args: Sequence[str] | None = None, *rest: Any, **kwargs: Any) -> Any:
        argv = _global_options_first(list(sys.argv[1:] if args is None else args))
        self.json_errors = "--json" in argv
        return super().main(argv, *rest, **kwargs)

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        with self._usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        with self._usage_errors():
            return super().invoke(ctx)

    @contextmanager
    def _usage_errors(self) -> Iterator[None]:
        try:
            yield
        except _USAGE_ERROR as e:
            if not self.json_errors:
                raise
            usage = e.ctx.get_usage().replace("Usage: ", "", 1) if getattr(e, "ctx", None) else None
            hint = f" (usage: {usage}; see {e.ctx.command_path} --help)" if usage else " (see pipesync --help)"
            fail("UsageError", e.format_message() + hint, e.exit_code, json_out=True)


# The options of the whole program; also accepted after the command (`pipesync run --log-format json`).
_GLOBAL_FLAGS = {"--version", "-v", "--verbose", "-q", "--quiet", "-vv", "-qq"}
_GLOBAL_VALUED = {"--log-format"}


def _global_options_first(argv: list[str]) -> list[str]:
    """Moves the global options in front of the command, where the parser reads them."""
    front: list[str] = []
    rest: list[str] = []
    items = iter(argv)
    for arg in items:
        if arg == "--":
            rest += [arg, *items]
            break
        if arg in _GLOBAL_FLAGS or arg.split("=", 1)[0] in _GLOBAL_VALUED:
            front.append(arg)
            if arg in _GLOBAL_VALUED:
                front.append(next(items, ""))
        else:
            rest.append(arg)
    return front + rest


app = typer.Typer(
    name="pipesync",
    cls=_Commands,
    help="CRM sync middleware for RevOps: one shared pipeline, golden deals, trusted metrics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

def _show_version(shown: bool) -> None:
    if shown:
        print(f"pipesync {pipesync.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True,
                                 help="Print pipesync's version and exit."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More log detail (-vv: libraries' too)."),
    quiet: int = typer.Option(0, "--quiet", "-q", count=True, help="Only warnings (-qq: only errors)."),
    log_format: str = typer.Option(
        "text", "--log-format", envvar="PIPESYNC_LOG_FORMAT", metavar="text|json",
        help="Log lines on stderr as text, or one JSON object per line.",
    ),
) -> None:
    """CRM sync middleware for RevOps: one shared pipeline, golden deals, trusted metrics."""
    if log_format not in logs.FORMATS:
        raise typer.BadParameter(f"{log_format!r}: choose text or json", param_hint="--log-format")
    logs.configure(verbose - quiet, log_format)  # type: ignore[arg-type]


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


# Set (to anything but 0 or empty) to see the traceback of an unexpected error, as well as its message.
DEBUG_ENV = "PIPESYNC_DEBUG"
# How a command ends the framework's way (an exit code it chose, an abort, a usage error click reports
# itself). ClickException is found through BadParameter: typer runs on click, or on its own copy of it.
_FRAMEWORK_EXITS = (
    typer.Exit, typer.Abort, *(cls for cls in typer.BadParameter.__mro__ if cls.__name__ == "ClickException"),
)


def handles_errors(fn: F) -> F:
    """Turns every error into the documented exit code (1 failure, 2 config/usage) and one message:
    on stderr, or with ``--json`` (the command's ``json_out``) as ``{"error": {...}}`` on stdout.

    An error pipesync did not expect (a bug, a full disk) is a failure like any other; its
    traceback is printed on stderr only with ``PIPESYNC_DEBUG=1``.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _FRAMEWORK_EXITS:
            raise
        except PipesyncError as e:
            fail(type(e).__name__, str(e), e.exit_code, json_out=kwargs.get("json_out", False))
        except Exception as e:  # noqa: BLE001 - the one place an unexpected error becomes an exit code
            if os.environ.get(DEBUG_ENV, "0") not in ("", "0"):
                traceback.print_exc()
            message = f"unexpected {type(e).__name__}: {e}" if str(e) else f"unexpected {type(e).__name__}"
            hint = "" if kwargs.get("json_out") else f" (set {DEBUG_ENV}=1 to see where)"
            fail(type(e).__name__, message + hint, 1, json_out=kwargs.get("json_out", False))

    return wrapper  # type: ignore[return-value]


def fail(kind: str, message: str, exit_code: int, *, json_out: bool) -> None:
    """Reports an error and exits with ``exit_code``."""
    if json_out:
        emit_json({"error": {"type": kind, "message": message, "exit_code": exit_code}})
    elif logs.current_format() == "json":  # a scheduler reading JSON lines gets the error as one too
        logs.event(logging.getLogger("pipesync.cli"), message, logging.ERROR, error=kind, exit_code=exit_code)
    else:
        err_console.print("[bold red]error:[/]", escape(message), highlight=False)
    raise typer.Exit(exit_code)

"""Adapters as plugins: the entry-point group ``pipesync.adapters`` and what each entry holds.

A distribution adds a CRM by declaring, in its ``pyproject.toml``::

    [project.entry-points."pipesync.adapters"]
    acme = "acme_pipesync.options:PLUGIN"

where ``PLUGIN`` is an :class:`AdapterPlugin`: the source type's options model and
the adapter class, named as ``"module:Class"`` and imported only when a source of
that type is opened. The options model lives in a light module, so validating a
config (or building a record URL) never imports a vendor SDK.

This module sits below the config, which validates every source's options with
the model its type registered, and below the adapters, which read those options.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from pipesync.errors import ConfigError

GROUP = "pipesync.adapters"

# Refused as an option by every adapter, whether or not it reads them: a credential is never written in the config.
COMMON_CREDENTIALS = frozenset({
    "password", "secret", "token", "api_key", "api_token", "access_token", "refresh_token", "client_secret",
    "private_key", "security_token", "session_id",
})


class AdapterOptions(BaseModel):
    """A source's ``options:``. Subclasses declare their fields, each with a ``description``
    (``pipesync init`` and docs/adapters.md are written from them), and their secrets."""

    # hide_input: a refused value may be a credential, and must not be echoed in any message
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    #: the secrets the adapter reads (names under the source's ``secrets:``); never accepted as options
    credentials: ClassVar[frozenset[str]] = frozenset()
    #: names that are accepted both as an option and as a secret (a client id, a user name)
    option_or_secret: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def secret_names(cls) -> frozenset[str]:
        return cls.credentials | cls.option_or_secret

    @model_validator(mode="before")
    @classmethod
    def _no_credentials(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        inline = [k for k in data if str(k) in (cls.credentials | COMMON_CREDENTIALS) - cls.option_or_secret]
        if not inline:
            return data
        problems = [_line_error(k, f"{k!r} is a credential: put it under secrets: as {{env: VAR}}") for k in inline]
        try:  # the other options' problems too, so that every problem is reported at once
            cls.model_validate({k: v for k, v in data.items() if k not in inline})
        except ValidationError as e:
            problems += [_line_error(err["loc"], err["msg"]) for err in e.errors()]
        raise ValidationError.from_exception_data(cls.__name__, problems, hide_input=True)

    def files(self) -> dict[str, str]:
        """The files the adapter reads, by the option naming each (relative to the config's folder)."""
        return {}

    def needed_secrets(self) -> frozenset[str]:
        """The secrets these options' sign-in cannot do without (``pipesync config check`` looks for them)."""
        return frozenset()

    def history_wanted(self, in_bulk: bool) -> bool:
        """Whether sync reads the source's stage history (``in_bulk``: the adapter reads it a page at a time)."""
        return in_bulk

    def record_url(self, source_id: str) -> str | None:
        """The web page of record ``source_id`` in the source's system; None where there is none."""
        return None


@dataclass(frozen=True)
class AdapterPlugin:
    """One source type: its options model, and its adapter class (``"module:Class"``, imported on first use)."""

    options: type[AdapterOptions]
    adapter: str
    #: one line for ``pipesync init``
    summary: str = ""
    #: the secrets its default sign-in needs, which ``pipesync init`` names in its example
    init_secrets: tuple[str, ...] = ()

    def adapter_class(self) -> Any:
        """The adapter class (a ``pipesync.adapters.base.Adapter``), imported now."""
        module, name = self.adapter.split(":")
        return getattr(import_module(module), name)


@cache
def registered() -> dict[str, AdapterPlugin]:
    """Every installed adapter, by source type."""
    found: dict[str, AdapterPlugin] = {}
    for entry in entry_points(group=GROUP):
        try:
            plugin = entry.load()
        except (ImportError, AttributeError) as e:
            raise ConfigError(f"adapter {entry.name!r} ({entry.value}) cannot be loaded: {e}") from None
        if not isinstance(plugin, AdapterPlugin):
            raise ConfigError(f"entry point {entry.name} = {entry.value} (group {GROUP}) is not an AdapterPlugin")
        found[entry.name] = plugin
    return dict(sorted(found.items()))


def plugin(source_type: str) -> AdapterPlugin:
    plugins = registered()
    if source_type not in plugins:
        known = ", ".join(plugins) or f"none: is pipesync installed (pip install -e .)? Adapters register in {GROUP}"
        raise ValueError(f"unknown source type {source_type!r} (registered adapters: {known})")
    return plugins[source_type]


def key_errors(title: str, problems: dict[str, str]) -> ValidationError:
    """A validation error per key of a mapping, so each is reported on its own line of the file."""
    return ValidationError.from_exception_data(title, [_line_error(k, m) for k, m in problems.items()], hide_input=True)


def _line_error(loc: str | tuple[int | str, ...], message: str) -> Any:
    # no input: what was refused may be a credential
    return {"type": PydanticCustomError("invalid", message), "loc": loc if isinstance(loc, tuple) else (loc,),
            "input": None}

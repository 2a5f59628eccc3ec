"""``pipesync.yaml``: sources, warehouse, reporting currency.

Secrets are never written in the file: a source names the environment variable
(or a secrets file) that holds each one, and :func:`resolve_secret` reads it at
the moment an adapter needs it. Environment variables ``PIPESYNC_WAREHOUSE``
and ``PIPESYNC_REPORTING_CURRENCY`` override the file (pydantic-settings), so a
scheduler can point one config at another database.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel, ConfigDict, Field, SecretStr, SerializeAsAny, ValidationError, ValidationInfo, field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipesync.errors import ConfigError, FileErrors
from pipesync.plugins import AdapterOptions, key_errors, plugin
from pipesync.yamlfile import describe_errors, plain, read_yaml

DEFAULT_CONFIG = "pipesync.yaml"


class SecretRef(BaseModel):
    """Where a secret lives: an environment variable or a file (e.g. a mounted Kubernetes secret)."""

    model_config = ConfigDict(extra="forbid")

    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "SecretRef":
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is given by exactly one of env: or file:")
        return self


def resolve_secret(ref: SecretRef, what: str) -> SecretStr:
    """The secret's value, wrapped so that printing it shows '**********'."""
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if not value:
            raise ConfigError(f"{what}: environment variable {ref.env} is not set")
        return SecretStr(value)
    try:
        return SecretStr(Path(ref.file).read_text(encoding="utf-8").strip())  # type: ignore[arg-type]
    except OSError as e:
        raise ConfigError(f"{what}: cannot read secrets file {ref.file}: {e.strerror}") from None


class SourceConfig(BaseModel):
    """One source. ``options`` is validated by the options model its ``type`` registered
    (:mod:`pipesync.plugins`): given as a plain mapping, it is read as that model."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_\-]*$", max_length=64)
    type: str
    mapping: str | None = None
    # What sync does when the source has live stages its mapping cannot place:
    # refuse the source (default: fix the mapping first) or quarantine those deals.
    unmapped_stages: Literal["refuse", "quarantine"] = "refuse"
    options: SerializeAsAny[AdapterOptions] = Field(default_factory=dict, validate_default=True)  # type: ignore[arg-type]
    secrets: dict[str, SecretRef] = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _registered(cls, source_type: str) -> str:
        plugin(source_type)
        return source_type

    @field_validator("options", mode="before")
    @classmethod
    def _typed(cls, options: Any, info: ValidationInfo) -> Any:
        if "type" not in info.data:  # the type is already reported
            return AdapterOptions()
        model = plugin(info.data["type"]).options
        return options if isinstance(options, model) else model.model_validate({} if options is None else options)

    @field_validator("secrets")
    @classmethod
    def _known_secrets(cls, secrets: dict[str, SecretRef], info: ValidationInfo) -> dict[str, SecretRef]:
        if "type" not in info.data:
            return secrets
        names = plugin(info.data["type"]).options.secret_names()
        unknown = {k: f"not a secret a {info.data['type']} source reads "
                      f"(it reads: {', '.join(sorted(names)) or 'none'})" for k in secrets if k not in names}
        if unknown:
            raise key_errors("secrets", unknown)
        return secrets


class Target(BaseModel):
    """A revenue target (won value, reporting currency) for one period: a quarter ``2026-Q4`` or a month
    ``2026-11``; with ``owner`` (the owner's name or e-mail) or ``pipeline``, for that owner's or pipeline's deals."""

    model_config = ConfigDict(extra="forbid")

    period: str
    amount: Decimal = Field(ge=0)
    owner: str | None = None
    pipeline: str | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, period: str) -> str:
        if not re.fullmatch(r"\d{4}-(Q[1-4]|0[1-9]|1[0-2])", period):
            raise ValueError(f"{period!r} is not a quarter like 2026-Q4 or a month like 2026-11")
        return period

    @model_validator(mode="after")
    def _one_scope(self) -> "Target":
        if self.owner is not None and self.pipeline is not None:
            raise ValueError("a target is for the whole pipeline, one owner or one pipeline, not an owner and a pipeline")
        return self


class ForecastSettings(BaseModel):
    """``forecast:`` in pipesync.yaml (docs/forecast.md)."""

    model_config = ConfigDict(extra="forbid")

    # The lowest stage probability of a commit and of a best-case deal (the rest is pipeline).
    commit_from: float = Field(default=0.7, gt=0, le=1)
    best_case_from: float = Field(default=0.4, gt=0, le=1)
    # The fewest observations a group of the history-weighted method needs before its own rate is used.
    min_sample: int = Field(default=30, gt=0)
    # How far back the history-weighted method learns, in years.
    history_years: int = Field(default=3, gt=0, le=20)
    targets: list[Target] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ordered_bands(self) -> "ForecastSettings":
        if self.best_case_from > self.commit_from:
            raise ValueError("best_case_from must not be above commit_from")
        return self


class RunSettings(BaseModel):
    """``run:``: what the scheduled job (``pipesync run``) does beyond syncing and measuring."""

    model_config = ConfigDict(extra="forbid")

    # send the push-back plan the run makes; off: the plan is only written, for a person to apply
    apply: bool = False
    # where each run's push-back plan file is written (relative to the config)
    plans_dir: str = "plans"


class Settings(BaseSettings):
    """The whole configuration, as validated from ``pipesync.yaml`` and the environment."""

    # hide_input: an option refused here may hold a credential
    model_config = SettingsConfigDict(env_prefix="PIPESYNC_", extra="forbid", hide_input_in_errors=True)

    warehouse: str = "sqlite:///pipesync.db"
    # PostgreSQL: the schema that holds pipesync's tables (created if missing), e.g. one per tenant
    warehouse_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    reporting_currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    # Units of the reporting currency for one unit of each other currency.
    fx_rates: dict[str, Decimal] = Field(default_factory=dict)
    mappings_dir: str = "mappings"
    pipeline: str | None = None
    stale_after_days: int = Field(default=30, gt=0)
    # how the funnel's stage conversion is counted (docs/metrics.md): "cohort" or "cumulative"
    stage_conversion: Literal["cohort", "cumulative"] = "cohort"
    # processes a sync may use to read a large file source side by side (default: one per core)
    sync_workers: int | None = Field(default=None, gt=0)
    # match and survivorship rules for `pipesync consolidate` (default: the built-in rules)
    consolidation: str | None = None
    # the push-back rules file (default: pushback.yaml beside this file, when there is one)
    pushback: str | None = None
    # probability bands, targets and the history-weighted method's learning (docs/forecast.md)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    run: RunSettings = Field(default_factory=RunSettings)
    sources: list[SourceConfig] = Field(default_factory=list)

    # Set by load_config, not by the file: paths in the file are relative to it.
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique: {', '.join(dupes)}")
        return sources

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file, so a scheduler can override one value.
        return env_settings, init_settings

    def path(self, relative: str | Path) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.sources) or "none"
        raise ConfigError(f"no source named {name!r} in the config (sources: {known})")

    def mapping_path(self, source: SourceConfig) -> Path:
        return self.path(source.mapping or Path(self.mappings_dir) / f"{source.name}.yaml")

    def pipeline_path(self) -> Path | None:
        if self.pipeline:
            return self.path(self.pipeline)
        candidate = self.path(Path(self.mappings_dir) / "pipeline.yaml")
        return candidate if candidate.exists() else None

    def vocabularies_path(self) -> Path | None:
        """The project's lost-reason and lead-source vocabularies (mappings/vocabularies.yaml), if it has them."""
        candidate = self.path(Path(self.mappings_dir) / "vocabularies.yaml")
        return candidate if candidate.exists() else None

    def warehouse_url(self) -> str:
        if self.warehouse_schema is not None:
            return self._in_schema(self.warehouse_schema)
        # A relative SQLite path is relative to the config file, like every other path in it.
        prefix = "sqlite:///"
        if self.warehouse.startswith(prefix) and not self.warehouse.startswith(prefix + "/"):
            rest = self.warehouse[len(prefix):]
            if rest and rest != ":memory:":
                return prefix + str(self.path(rest))
        return self.warehouse

    def _in_schema(self, schema: str) -> str:
        from sqlalchemy.engine import make_url

        url = make_url(self.warehouse)
        if url.get_backend_name() != "postgresql":
            raise ConfigError(f"warehouse_schema: {schema!r} is for a PostgreSQL warehouse, not {url.get_backend_name()}")
        # the session's search_path: every table, query and migration lands in the schema
        return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


def _source_label(data: dict[str, Any]) -> Callable[[tuple[int | str, ...]], str | None]:
    """Adds the source's name to a problem in one: ``sources.0.options.delimter (source 'crm')``."""
    sources = data.get("sources")

    def label(loc: tuple[int | str, ...]) -> str | None:
        if len(loc) < 3 or loc[0] != "sources" or not isinstance(sources, list) or not isinstance(loc[1], int):
            return None
        entry = sources[loc[1]] if loc[1] < len(sources) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        return f"{'.'.join(map(str, loc))} (source {name!r})" if isinstance(name, str) else None

    return label


def load_config(path: str | Path = DEFAULT_CONFIG) -> Settings:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file (run `pipesync init` to write one)")
    doc = read_yaml(path)
    data = plain(doc) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected settings (key: value lines) at the top level, found a {type(data).__name__}")
    try:
        settings = Settings(**data)
    except ValidationError as e:
        raise FileErrors(str(path), describe_errors(doc, e, _source_label(data))) from None
    settings.base_dir = path.resolve().parent
    return settings

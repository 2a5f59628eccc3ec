"""``pipesync config check``: a project validated without running it.

Everything a run would read before it talks to a CRM: the config with every
source's options, every secret the config names (present, never shown), the
shared pipeline, each source's mapping file, the consolidation rules file and the push-back rules.
Every problem is listed, each with its file and, where it has one, its line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pipesync.config import Settings, load_config, resolve_secret
from pipesync.consolidate.rules import load_rules
from pipesync.errors import ConfigError, FileErrors
from pipesync.files import require_regular_file
from pipesync.mapping import load_mapping
from pipesync.pipeline import load_pipeline
from pipesync.pushback.planner import rules_for
from pipesync.pushback.rules import DEFAULT_RULES_FILE as DEFAULT_PUSHBACK_FILE
from pipesync.vocabulary import load_vocabularies
from pipesync.yamlfile import line_of, read_yaml

T = TypeVar("T")


@dataclass
class CheckResult:
    config: Path
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # the files and secrets looked at

    @property
    def ok(self) -> bool:
        return not self.problems

    def attempt(self, what: str, load: Callable[[], T]) -> T | None:
        """``load()``'s result, or None with its problems recorded."""
        self.checked.append(what)
        try:
            return load()
        except FileErrors as e:
            self.problems += [f"{e.path}: {p}" for p in e.problems]
        except ConfigError as e:
            self.problems.append(str(e))
        return None


def check_project(config: str | Path) -> CheckResult:
    result = CheckResult(Path(config))
    settings = result.attempt(str(config), lambda: load_config(config))
    if settings is None:
        return result  # nothing else can be found without the config
    _check_secrets(settings, result)
    pipeline_path = settings.pipeline_path()
    pipeline = result.attempt(str(pipeline_path or "the default pipeline"), lambda: load_pipeline(pipeline_path))
    vocabularies_path = settings.vocabularies_path()
    vocabularies = result.attempt(str(vocabularies_path or "the default vocabularies"),
                                  lambda: load_vocabularies(vocabularies_path))
    for source in settings.sources:
        for option, name in source.options.files().items():
            read = settings.path(name)
            what = f"source {source.name!r}: options.{option}"
            result.attempt(f"{what} ({read})", lambda: _readable(read, what))
        path = settings.mapping_path(source)
        if not path.exists():
            result.problems.append(f"{path}: source {source.name!r} has no mapping file (write it with "
                                   f"`pipesync map {source.name}`)")
        elif pipeline is not None:  # a mapping is checked against the pipeline it maps onto
            result.attempt(str(path), lambda: load_mapping(path, pipeline, vocabularies))
    if settings.consolidation:
        rules = settings.path(settings.consolidation)
        result.attempt(str(rules), lambda: load_rules(rules))
    pushback = settings.path(settings.pushback or DEFAULT_PUSHBACK_FILE)
    if settings.pushback or pushback.exists():
        result.attempt(str(pushback), lambda: rules_for(settings))
    return result


def _readable(path: Path, what: str) -> None:
    require_regular_file(path, what)
    if not path.exists():
        raise ConfigError(f"{what}: {path}: no such file")


def _check_secrets(settings: Settings, result: CheckResult) -> None:
    """Each secret a source's sign-in needs is named, and each one named can be read (its value is read
    and dropped, never shown)."""
    doc = read_yaml(result.config)

    def at(*loc: int | str) -> str:
        line = line_of(doc, ("sources", *loc))
        return f"{result.config}: line {line}: " if line else f"{result.config}: "

    for i, source in enumerate(settings.sources):
        for name in sorted(source.options.needed_secrets() - source.secrets.keys()):
            result.problems.append(f"{at(i, 'secrets' if source.secrets else 'type')}source {source.name!r}: "
                                   f"its sign-in needs the secret {name!r} under secrets: (as {{env: VAR}})")
        for name, ref in source.secrets.items():
            what = f"source {source.name!r}: secret {name!r}"
            result.checked.append(f"{what} ({f'env {ref.env}' if ref.env else f'file {ref.file}'})")
            try:
                resolve_secret(ref, what)
            except ConfigError as e:
                result.problems.append(f"{at(i, 'secrets', name)}{e}")

"""The CRM fields write-back writes into: checked through each CRM's own field list before a
plan is made, and created where the CRM's API allows (``pipesync fields create SOURCE``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, ManualStepsRequired
from pipesync.pushback.rules import WRITE_BACK_KINDS, PushbackRules

# The CRM field kinds that hold each write-back figure's kind.
USABLE = {"text": {"text", "url"}, "url": {"url", "text"}, "number": {"number"}}


@dataclass
class FieldProblem:
    source: str
    field: str  # the CRM field's name, as the rules give it
    figure: str  # what it is to receive
    problem: str


def _folded(name: str) -> str:
    """A field's name as people write it: "Pipesync golden id" and "pipesync_golden_id" are one."""
    return re.sub(r"[^0-9a-z]+", "_", name.casefold()).strip("_")


def wanted_fields(rules: PushbackRules, source: str) -> dict[str, str]:
    """CRM field → the figure it receives, for ``source``."""
    return {crm: figure for figure, crm in rules.write_back.fields.get(source, {}).items()}


def check_fields(adapter: Adapter, rules: PushbackRules) -> list[FieldProblem]:
    """Each write-back field of the adapter's source that is missing, read-only or of the wrong kind."""
    wanted = wanted_fields(rules, adapter.name)
    if not wanted:
        return []
    listed = adapter.deal_fields()
    found = {f.name: f for f in listed}
    by_label = {_folded(f.label): f for f in listed if getattr(f, "custom", True)}
    problems = []
    for name, figure in sorted(wanted.items()):
        kind = WRITE_BACK_KINDS[figure]
        f = found.get(name) or by_label.get(_folded(name))
        if f is None:
            problems.append(FieldProblem(adapter.name, name, figure, f"there is no deal field {name!r}"))
        elif not f.writable:
            problems.append(FieldProblem(adapter.name, name, figure, f"the field {name!r} is read-only"))
        elif f.kind not in USABLE[kind]:
            problems.append(FieldProblem(adapter.name, name, figure,
                                         f"the field {name!r} holds {f.kind}, and {figure} needs {kind}"))
    return problems


def describe(problems: list[FieldProblem]) -> str:
    lines = [f"  - {p.source}: {p.problem} (for {p.figure})" for p in problems]
    sources = sorted({p.source for p in problems})
    fix = " ".join(f"`pipesync fields create {s}`" for s in sources)
    return "write-back fields are not ready:\n" + "\n".join(lines) + f"\ncreate the missing ones with {fix}"


@dataclass
class Created:
    source: str
    field: str
    kind: str
    key: str  # the name the CRM gave it (Pipedrive: a hash key)


def create_fields(settings: Settings, source: str, rules: PushbackRules,
                  opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter) -> list[Created]:
    """Creates the source's missing write-back fields; a CRM whose API cannot create them
    raises ManualStepsRequired with the steps for each."""
    config = settings.source(source)
    if not wanted_fields(rules, source):
        raise ConfigError(f"the push-back rules name no write-back field for {source} (write_back.fields.{source})")
    created = []
    with opener(config, settings) as adapter:
        problems = check_fields(adapter, rules)
        wrong = [p for p in problems if not p.problem.startswith("there is no")]
        if wrong:
            raise ConfigError(describe(wrong).split("\ncreate")[0] + "\nrename or fix these in the CRM, or name other fields")
        steps = []
        for p in problems:
            kind = WRITE_BACK_KINDS[p.figure]
            try:  # labelled with the name the rules give it, so it is found by that name in every CRM
                info = adapter.create_field(p.field, p.field, kind)
            except ManualStepsRequired as e:
                steps.append(str(e))
                continue
            created.append(Created(source, p.field, kind, info.name))
        if steps:
            raise ManualStepsRequired("\n\n".join(steps))
    return created

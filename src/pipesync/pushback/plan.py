"""The plan file: every change a push-back would make, reviewable before anything is sent.

JSON with a versioned, documented schema (docs/pushback.md). A plan is made against
one warehouse; ``apply`` checks it was, and re-reads every record before writing.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from pipesync.errors import UsageError
from pipesync.files import write_atomically
from pipesync.model import Change, ChangeKind, FieldChange

SCHEMA_VERSION = 1
# Kinds a CRM cannot take back: their undo is refused with the reason.
IRREVERSIBLE = frozenset({ChangeKind.MERGE})


class PlannedChange(BaseModel):
    seq: int
    source: str
    source_id: str
    deal_key: str
    golden_id: str | None = None
    kind: ChangeKind
    fields: list[FieldChange] = Field(default_factory=list)
    rule: str
    reason: str
    merge_into: str | None = None
    record_url: str | None = None
    #: the record's modification time as the plan read it (apply skips a record modified since)
    seen_updated_at: datetime | None = None

    def change(self) -> Change:
        return Change(deal_key=self.deal_key, kind=self.kind, fields=self.fields, rule=self.rule,
                      reason=self.reason, merge_into=self.merge_into, unchanged_since=self.seen_updated_at)


class Refusal(BaseModel):
    """A change a rule wanted that the plan leaves out, and why (scope, a missing field, no stage to land in)."""

    rule: str
    source: str | None = None
    deal_key: str | None = None
    reason: str


class Plan(BaseModel):
    schema_version: int = SCHEMA_VERSION
    plan_id: str
    created_at: datetime
    #: a fingerprint of the warehouse the plan was made from (its URL, never shown)
    warehouse: str
    rules: list[str]
    changes: list[PlannedChange]
    refused: list[Refusal] = Field(default_factory=list)

    def counts(self) -> dict[str, dict[str, int]]:
        """Changes per rule and source: {rule: {source: n}}."""
        out: dict[str, Counter[str]] = {}
        for c in self.changes:
            out.setdefault(c.rule, Counter())[c.source] += 1
        return {rule: dict(sorted(n.items())) for rule, n in sorted(out.items())}


def warehouse_fingerprint(url: str) -> str:
    return hashlib.blake2b(url.encode(), digest_size=8).hexdigest()


def plan_id(created_at: datetime, changes: list[PlannedChange]) -> str:
    digest = hashlib.blake2b(digest_size=4)
    for c in changes:
        digest.update(f"{c.deal_key}|{c.kind}|{c.rule}\n".encode())
    return f"plan-{created_at.strftime('%Y%m%dT%H%M%SZ')}-{digest.hexdigest()}"


def save_plan(plan: Plan, path: str | Path) -> None:
    write_atomically(path, json.dumps(plan.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n")


def load_plan(path: str | Path) -> Plan:
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{path}: no such plan file (make one with `pipesync plan`)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UsageError(f"{path}: not a readable plan file ({e})") from None
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise UsageError(f"{path}: plan schema version {version!r}; this pipesync reads version {SCHEMA_VERSION} "
                         f"(make the plan again with this version's `pipesync plan`)")
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UsageError(f"{path}: not a valid plan: {where}: {first['msg']}") from None

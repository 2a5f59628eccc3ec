"""An in-memory CRM behind the adapter surface the push-back engine uses, for specifying the
engine without a network: records as plain dicts, a write log, and hooks to interfere."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pipesync.adapters import Adapter
from pipesync.adapters.changes import settle
from pipesync.model import Change, ChangeKind, ChangeOutcome, ChangeResult


@dataclass
class Field:
    name: str
    label: str
    kind: str
    writable: bool = True


class FakeCRM:
    """One CRM's state, shared by every adapter opened on it (as a real CRM is)."""

    def __init__(self, records: dict[str, dict[str, Any]], *, batch_max: int = 2, status_field: bool = False,
                 merges: bool = False):
        self.records = records
        self.batch_max = batch_max
        self.status_field = status_field
        self.merges = merges
        self.write_log: list[tuple[str, str, dict[str, Any]]] = []  # (kind, id, fields written)
        self.calls = {"read": 0, "write": 0}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.fields = {f.removeprefix("custom:") for r in records.values() for f in r if f.startswith("custom:")}
        self.before_write: Callable[[Sequence[Change]], None] | None = None
        self.after_write: Callable[[Sequence[Change]], None] | None = None

    def edit(self, record_id: str, **fields: Any) -> None:
        """A person edits the record in the CRM."""
        self.records[record_id].update(fields, updated_at=datetime.now(timezone.utc))


class FakeAdapter(Adapter):
    record_noun = "deal"

    def __init__(self, source, settings, crm: FakeCRM):  # type: ignore[no-untyped-def]
        super().__init__(source, settings)
        self.crm = crm
        self.write_batch_max = crm.batch_max
        self.writable_fields = frozenset({"source_stage", "lost_reason"} | ({"status"} if crm.status_field else set()))
        self.merges = crm.merges

    def deal_fields(self) -> list[Field]:
        return [Field(name, name, "text") for name in self.crm.fields]

    def create_field(self, name: str, label: str, kind: str) -> Field:
        self.crm.fields.add(name)
        return Field(name, label, kind)

    def read_current(self, source_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        self.crm.calls["read"] += 1
        return {i: dict(self.crm.records[i]) for i in source_ids if i in self.crm.records}

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        assert len(changes) <= self.write_batch_max, "the engine must hand one batch at a time"
        if self.crm.before_write:
            self.crm.before_write(changes)
        self.crm.calls["read"] += 1
        results = []
        for change in changes:
            sid = change.deal_key.split(":", 1)[1]
            if change.kind is ChangeKind.CREATE_TASK:
                task_id = f"T{len(self.crm.tasks) + 1}"
                self.crm.tasks[task_id] = {f.field: f.after for f in change.fields} | {"deal": sid}
                self.crm.write_log.append(("create_task", sid, {"task": task_id}))
                results.append(ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.APPLIED, new_source_id=task_id))
                continue
            if change.kind is ChangeKind.DELETE_TASK:
                self.crm.tasks.pop(change.fields[0].before, None)
                self.crm.write_log.append(("delete_task", sid, {}))
                results.append(ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.APPLIED))
                continue
            current = self.crm.records.get(sid)
            settled = settle(change, current, self.record_noun)
            if settled:
                results.append(settled)
                continue
            written = {f.field: f.after for f in change.fields}
            current.update(written, updated_at=datetime.now(timezone.utc))  # type: ignore[union-attr]
            self.crm.write_log.append((change.kind.value, sid, written))
            results.append(ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.APPLIED))
        self.crm.calls["write"] += 1
        if self.crm.after_write:
            self.crm.after_write(changes)
        return results


def opener(crms: dict[str, FakeCRM]):  # type: ignore[no-untyped-def]
    return lambda source, settings: FakeAdapter(source, settings, crms[source.name])

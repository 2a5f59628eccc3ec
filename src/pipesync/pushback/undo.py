"""``pipesync undo RUN``: the before-images of an applied run written back, conflict-checked.

The undo of a change expects to find what the change wrote; a field a person changed
since is a conflict and stays as they left it, unless ``force``. An undo is a run of
its own, journaled like an apply, and can itself be undone. A merge cannot be taken
back by any CRM: its undo is refused with that reason.
"""

from __future__ import annotations

from collections.abc import Callable

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.errors import UsageError
from pipesync.model import ChangeKind, ChangeOutcome, FieldChange
from pipesync.pushback import journal
from pipesync.pushback.apply import Progress, RunSummary, run_changes
from pipesync.pushback.journal import JournalEntry
from pipesync.pushback.plan import IRREVERSIBLE, PlannedChange
from pipesync.warehouse.store import Warehouse


def inverse(entry: JournalEntry, run_id: str) -> PlannedChange | str:
    """The change that takes ``entry`` back, or why none can."""
    source = entry.source or entry.deal_key.split(":", 1)[0]
    source_id = entry.deal_key.split(":", 1)[1] if ":" in entry.deal_key else entry.deal_key
    base = dict(seq=entry.seq, source=source, source_id=source_id, deal_key=entry.deal_key, rule="undo",
                reason=f"undo of change {entry.seq} of {run_id} ({entry.rule})")
    if entry.kind in IRREVERSIBLE:
        return f"a {entry.kind.value} cannot be undone in the CRM"
    if entry.kind is ChangeKind.CREATE_TASK:
        if not entry.new_source_id:
            return "the created task's id was not recorded"
        return PlannedChange(kind=ChangeKind.DELETE_TASK, **base,
                             fields=[FieldChange(field="task_id", before=entry.new_source_id, after=None)])
    if entry.kind is ChangeKind.DELETE_TASK:
        return "a deleted task cannot be restored"
    if entry.kind is ChangeKind.CREATE:
        return f"pipesync does not delete the records a migration created: delete {entry.new_source_id or 'it'} in the CRM"
    fields = [FieldChange(field=k, before=v, after=entry.before.get(k)) for k, v in entry.after.items()]
    return PlannedChange(kind=ChangeKind.SET_FIELDS, fields=fields, **base)


def undo_run(settings: Settings, run_id: str, *, force: bool = False,
             opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter,
             progress: Progress | None = None) -> RunSummary:
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            run = journal.get_run(conn, run_id)
            if run is None:
                raise UsageError(f"no write run {run_id!r} in the journal (see `pipesync journal`)")
            if run.status == "running":
                raise UsageError(f"run {run_id} has not finished: run `pipesync apply` on its plan again first")
            applied = [e for e in journal.entries(conn, run_id) if e.outcome is ChangeOutcome.APPLIED]
    finally:
        warehouse.close()
    changes, refused = [], []
    for e in applied:
        made = inverse(e, run_id)
        if isinstance(made, str):
            refused.append({"seq": e.seq, "deal_key": e.deal_key, "kind": e.kind.value, "reason": made})
        else:
            changes.append(made)
    if force:
        _expect_current(settings, changes, opener)
    summary = run_changes(settings, "undo:" + run_id, run.plan_id, "undo", changes, undo_of=run_id, retry_conflicts=force, opener=opener,
                          progress=progress)
    summary.problems += [{**r, "outcome": "not undoable"} for r in refused]
    return summary


def _expect_current(settings: Settings, changes: list[PlannedChange], opener: Callable[[SourceConfig, Settings], Adapter]) -> None:
    """``--force``: each undo expects whatever the record holds now, so a person's later edit is overwritten."""
    by_source: dict[str, list[PlannedChange]] = {}
    for c in changes:
        if c.kind is ChangeKind.SET_FIELDS:
            by_source.setdefault(c.source, []).append(c)
    for source, items in by_source.items():
        with opener(settings.source(source), settings) as adapter:
            current = adapter.read_current(sorted({c.source_id for c in items}), sorted({f.field for c in items for f in c.fields}))
        for c in items:
            now = current.get(c.source_id, {})
            for f in c.fields:
                f.before = now.get(f.field)

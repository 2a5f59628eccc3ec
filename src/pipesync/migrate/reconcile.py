"""``pipesync migrate --reconcile``: does the target hold what the migration sent?

For the deals of the source that ``id_map`` says were migrated, counts and amount sums per
shared stage on both sides (the target's records read back through its API and placed on the
shared pipeline by the target's own mapping), the deals whose create failed with the CRM's
reason, ids the target no longer has, and a field-by-field diff of a sample against what was
sent (the journal's values). It does not reconcile when any of those differ.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from pipesync.adapters import Adapter, open_adapter
from pipesync.adapters.changes import same_value
from pipesync.config import Settings, SourceConfig
from pipesync.mapping import Mapping, load_mapping
from pipesync.model import ChangeKind, ChangeOutcome, SharedPipeline
from pipesync.pipeline import load_pipeline
from pipesync.warehouse import schema as t
from pipesync.warehouse.store import Warehouse

SAMPLE = 20
# Canonical fields read back from the target and compared with what was sent.
COMPARED = ("name", "pipeline", "source_stage", "status", "amount", "currency", "close_date", "lost_reason",
            "lead_source", "next_step")
UNPLACED = "(not on the shared pipeline)"


def run_prefix(source: str, target: str) -> str:
    """Every migrate run of ``source`` into ``target`` has a run id starting so."""
    return f"migrate:{source}>{target}"


@dataclass
class Reconciliation:
    source: str
    target: str
    #: shared stage → {"source": {"count", "amount"}, "target": {...}}
    stages: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    diffs: list[dict[str, Any]] = field(default_factory=list)
    migrated: int = 0
    not_migrated: int = 0
    compared: int = 0

    @property
    def ok(self) -> bool:
        return not (self.failed or self.missing or self.diffs) and all(
            s["source"] == s["target"] for s in self.stages.values())

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "source": self.source, "target": self.target, "migrated": self.migrated,
                "not_migrated": self.not_migrated, "stages": self.stages, "failed": self.failed,
                "missing": self.missing, "diff_sample_size": self.compared, "diffs": self.diffs}


def reconcile(settings: Settings, source: str, target: str, *, sample: int = SAMPLE,
              opener: Callable[[SourceConfig, Settings], Adapter] = open_adapter) -> Reconciliation:
    """Compares the migrated deals of ``source`` with the target's records, stage by stage."""
    target_config = settings.source(target)
    settings.source(source)
    shared = load_pipeline(settings.pipeline_path())
    mapping_path = settings.mapping_path(target_config)
    mapping = load_mapping(mapping_path, shared) if mapping_path.exists() else Mapping()
    prefix = run_prefix(source, target)
    warehouse = Warehouse(settings.warehouse_url())
    try:
        with warehouse.begin() as conn:
            d, m, j = t.deals, t.id_map, t.change_journal
            deals = {k: (stage, amount) for k, stage, amount in conn.execute(
                select(d.c.key, d.c.stage, d.c.amount).where(d.c.source == source, d.c.is_deleted.is_(False)))}
            ids = {k: v for k, v in conn.execute(select(m.c.source_key, m.c.target_id).where(m.c.target == target))
                   if k in deals}
            journaled = [r for r in conn.execute(
                select(j.c.run_id, j.c.deal_key, j.c.outcome, j.c.result_reason, j.c.after, j.c.finished_at)
                .where(j.c.run_id.like(prefix + ":%"), j.c.kind == ChangeKind.CREATE.value)
                .order_by(j.c.journaled_at)) if r.run_id.startswith(prefix + ":")]
    finally:
        warehouse.close()
    result = Reconciliation(source, target, migrated=len(ids))
    latest = {r.deal_key: r for r in journaled}  # each deal's last attempt
    result.failed = [{"source_key": k, "outcome": r.outcome or "pending", "reason": r.result_reason}
                     for k, r in sorted(latest.items()) if k not in ids and k in deals]
    result.not_migrated = len(deals) - len(ids) - len(result.failed)
    with opener(target_config, settings) as adapter:
        current = adapter.read_current(sorted(set(ids.values())), list(COMPARED)) if ids else {}
    source_side: dict[str, Counter[str]] = {}
    target_side: dict[str, Counter[str]] = {}
    for key, target_id in sorted(ids.items()):
        stage, amount = deals[key]
        _add(source_side, stage, amount)
        found = current.get(target_id)
        if found is None:
            result.missing.append({"source_key": key, "target_id": target_id})
            continue
        _add(target_side, _shared_stage(mapping, shared, found), found.get("amount"))
    for stage in [s.key for s in shared.stages] + [UNPLACED]:
        a, b = source_side.get(stage), target_side.get(stage)
        if a or b:
            result.stages[stage] = {"source": _shown(a), "target": _shown(b)}
    sent = {r.deal_key: r.after for r in journaled if r.outcome == ChangeOutcome.APPLIED.value}
    for key in [k for k in sorted(ids) if k in sent and ids[k] in current][:sample]:
        result.compared += 1
        now = current[ids[key]]
        for name, value in sent[key].items():
            if name in now and not same_value(value, now[name]):
                result.diffs.append({"source_key": key, "target_id": ids[key], "field": name, "sent": value,
                                     "target": _plain(now[name])})
    return result


def _shared_stage(mapping: Mapping, shared: SharedPipeline, values: dict[str, Any]) -> str:
    """The shared stage of a target record, by the target's mapping; a status won or lost decides
    where the CRM closes by status (Pipedrive)."""
    rule = mapping.find_stage(values.get("pipeline"), str(values.get("source_stage") or ""))
    status = values.get("status")
    if status in ("won", "lost"):
        if rule is not None and rule.stage and shared.get(rule.stage).category.value == status:
            return rule.stage
        return next((s.key for s in shared.stages if s.category.value == status), UNPLACED)
    return rule.stage if rule is not None and rule.stage else UNPLACED


def _add(side: dict[str, Counter[str]], stage: str, amount: Any) -> None:
    counter = side.setdefault(stage, Counter())
    counter["count"] += 1
    counter["amount"] += Decimal(str(amount)) if amount not in (None, "") else Decimal(0)  # type: ignore[assignment]


def _shown(c: Counter[str] | None) -> dict[str, Any]:
    if not c:
        return {"count": 0, "amount": "0"}
    return {"count": c["count"], "amount": format(Decimal(c["amount"]).normalize(), "f")}


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value if isinstance(value, (str, int, float, bool,
                                                                                            type(None))) else str(value)

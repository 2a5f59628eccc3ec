"""Push-back rules: what pipesync may write back to each CRM, as data (``pushback.yaml``).

Every rule is off until enabled. Guardrails (caps, allow/deny lists) apply to every
rule; a plan that exceeds a cap is refused whole, naming the rule.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipesync.yamlfile import load_model

DEFAULT_RULES_FILE = "pushback.yaml"

# The figures a write-back field can receive, each per CRM deal.
WriteBackValue = Literal[
    "golden_id",         # the golden deal the record belongs to
    "shared_stage",      # the shared stage's label
    "duplicate_of",      # the surviving record's URL (or id) in the same CRM, for a duplicate
    "also_in",           # URLs (or ids) of the same deal in the other CRMs
    "days_in_stage",     # whole days in the current shared stage
    "attention",         # "stuck", "stale", "stuck, stale" or empty
    "amount_reporting",  # the golden amount in the reporting currency
    "weighted_amount",   # the golden amount × the shared stage's probability
]
WRITE_BACK_KINDS: dict[str, str] = {
    "golden_id": "text", "shared_stage": "text", "duplicate_of": "url", "also_in": "text",
    "days_in_stage": "number", "attention": "text", "amount_reporting": "number", "weighted_amount": "number",
}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    enabled: bool = False
    #: the most changes this rule may put in one plan (None: only the plan's cap)
    cap: int | None = Field(default=None, ge=0)


class WriteBack(Rule):
    """Per source: CRM field (its API name) ← figure. Only the fields named are written."""

    fields: dict[str, dict[WriteBackValue, str]] = Field(default_factory=dict)


class CloseStale(Rule):
    """Open deals untouched for ``after_days`` (and, with ``only_stuck``, past their stage's SLA)
    are closed as lost with ``lost_reason``, or moved to the shared stage ``park_in``."""

    after_days: int = Field(default=90, gt=0)
    only_stuck: bool = False
    action: Literal["close_lost", "park"] = "close_lost"
    lost_reason: str = "No activity for {days} days (closed by pipesync)"
    park_in: str = "on_hold"


class Duplicates(Rule):
    """Duplicates within one CRM: ``mark`` sets the write-back field ``duplicate_of``; ``close`` also
    closes them as lost; ``merge`` merges them into the survivor where the CRM can (never across CRMs)."""

    action: Literal["mark", "close", "merge"] = "mark"
    lost_reason: str = "Duplicate of {survivor}"


class SuspiciousAmounts(Rule):
    """An amount far off the owner's usual sizes is never changed: its owner gets a task."""

    subject: str = "Check the amount of {deal}"
    body: str = "pipesync flagged this amount: {reason}. Please confirm or correct it."
    due_in_days: int = Field(default=7, ge=0)


class Names(Strict):
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)

    def admits(self, value: str | None) -> bool:
        folded = (value or "").casefold()
        if any(folded == d.casefold() for d in self.deny):
            return False
        return not self.allow or any(folded == a.casefold() for a in self.allow)


class Scope(Strict):
    """Which deals a plan may touch: sources by name, pipelines by id or label, owners by e-mail or name."""

    sources: Names = Field(default_factory=Names)
    pipelines: Names = Field(default_factory=Names)
    owners: Names = Field(default_factory=Names)


class PushbackRules(Strict):
    #: the most changes one plan may hold; a larger plan is refused whole
    max_changes: int = Field(default=1000, ge=0)
    scope: Scope = Field(default_factory=Scope)
    write_back: WriteBack = Field(default_factory=WriteBack)
    close_stale: CloseStale = Field(default_factory=CloseStale)
    duplicates: Duplicates = Field(default_factory=Duplicates)
    suspicious_amounts: SuspiciousAmounts = Field(default_factory=SuspiciousAmounts)

    @model_validator(mode="after")
    def _consistent(self) -> "PushbackRules":
        if self.duplicates.enabled and self.duplicates.action == "mark" and not any(
            "duplicate_of" in fields for fields in self.write_back.fields.values()
        ):
            raise ValueError("duplicates.action 'mark' needs a write_back field for duplicate_of in at least one source")
        return self

    def enabled(self) -> list[str]:
        return [name for name in ("write_back", "close_stale", "duplicates", "suspicious_amounts")
                if getattr(self, name).enabled]


def load_rules(path: str | Path | None) -> PushbackRules:
    """The rules in ``path``; every rule off (an empty plan) when there is no file."""
    if path is None or not Path(path).exists():
        return PushbackRules()
    return load_model(path, PushbackRules)

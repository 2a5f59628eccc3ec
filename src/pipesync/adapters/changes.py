"""What the write side of every API adapter shares: the target id of a change, the
before-image check, and the origin tag that keeps pipesync from reading its own
write-back as a user's change (no sync loops).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from collections.abc import Callable, Sequence
from typing import Any

from pipesync.adapters.values import instant
from pipesync.model import Change, ChangeKind, ChangeOutcome, ChangeResult

ORIGIN = "pipesync"


def origin_tag(now: datetime | None = None, key: str | None = None) -> str:
    """The value written into the origin field with every write: who, when, and for a
    create the change it came from (so a create whose response was lost can be found)."""
    now = now or datetime.now(timezone.utc)
    stamp = now.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return f"{ORIGIN} {stamp}" + (f" {key}" if key else "")


def own_write(tag: Any, updated_at: datetime | None, tolerance_s: float) -> bool:
    """True when the record's last change is pipesync's own tagged write.

    The tag carries the write's time: a user edit after it moves the modification time
    past the tolerance, so their change is never mistaken for ours.
    """
    if not isinstance(tag, str) or not tag.startswith(ORIGIN + " ") or updated_at is None:
        return False
    try:
        written = instant(tag.split()[1])
    except (ValueError, IndexError):
        return False
    assert written is not None
    return updated_at - written <= timedelta(seconds=tolerance_s)


def origin_marks(tag: Any, updated_at: datetime | None, tolerance_s: float) -> dict[str, Any]:
    """The two keys every API adapter adds to ``RawDeal.raw``: the tag as read, and whether it is current."""
    return {"pipesync_origin": tag if tag not in ("", None) else None,
            "pipesync_own_write": own_write(tag, updated_at, tolerance_s)}


def target_id(change: Change, source: str) -> str:
    """The source record id a change addresses (``deal_key`` is ``"<source>:<id>"``)."""
    prefix = f"{source}:"
    return change.deal_key[len(prefix):] if change.deal_key.startswith(prefix) else change.deal_key


def _comparable(value: Any) -> Any:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value)).normalize()
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(microsecond=0)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return sorted(str(v).lower() for v in value)
    text = str(value)
    try:
        return Decimal(text).normalize()
    except ArithmeticError:
        return text


def same_value(a: Any, b: Any) -> bool:
    """Whether two field values are the same once read back (1 and "1.00", "" and None)."""
    return _comparable(a) == _comparable(b)


def stale_fields(change: Change, current: dict[str, Any]) -> list[str]:
    """Fields whose current value is not the before-image the plan expected."""
    return [
        f.field for f in change.fields
        if f.field in current and _comparable(f.before) != _comparable(current[f.field])
    ]


def conflict(change: Change, current: dict[str, Any] | None, noun: str) -> ChangeResult | None:
    """The result to return instead of writing, when the record is gone or changed under the plan."""
    if current is None:
        return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.CONFLICT,
                            reason=f"the {noun} no longer exists (deleted or merged away)")
    stale = stale_fields(change, current)
    if stale:
        return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.CONFLICT,
                            reason=f"changed since the plan was made: {', '.join(stale)}")
    return None


def failed(change: Change, reason: str) -> ChangeResult:
    return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.FAILED, reason=reason)


def applied(change: Change, new_source_id: str | None = None) -> ChangeResult:
    return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.APPLIED, new_source_id=new_source_id)


def wanted(change: Change) -> dict[str, Any]:
    """The canonical field values a change sets."""
    return {f.field: f.after for f in change.fields}


def with_valid_ids(changes: Sequence[Change], source: str, valid: Callable[[str], Any], noun: str,
                   write: Callable[[Sequence[Change]], list[ChangeResult]]) -> list[ChangeResult]:
    """``write`` the changes whose target is a well-formed id; the others fail without a request,
    so a malformed or crafted key never reaches a query."""
    bad = {i: failed(c, f"{target_id(c, source)!r} is not a {noun} id") for i, c in enumerate(changes)
           if c.kind is not ChangeKind.CREATE and not valid(target_id(c, source))}
    done = iter(write([c for i, c in enumerate(changes) if i not in bad]))
    return [bad[i] if i in bad else next(done) for i in range(len(changes))]

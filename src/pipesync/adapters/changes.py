"""What the write side of every API adapter shares: the target id of a change, the
before-image check, exactly-once sending, custom field names, and the origin tag that
keeps pipesync from reading its own write-back as a user's change (no sync loops).
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.values import instant
from pipesync.errors import ConfigError, SourceError
from pipesync.model import CUSTOM_PREFIX, Change, ChangeKind, ChangeOutcome, ChangeResult

ORIGIN = "pipesync"
ALREADY_IN_PLACE = "already in place"
TASK_KINDS = (ChangeKind.CREATE_TASK, ChangeKind.DELETE_TASK)
# Rounds of re-read and send when a write's outcome stays unknown (a dropped connection, a 5xx).
WRITE_ROUNDS = 4


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
    written = tagged_at(tag)
    if written is None or updated_at is None:
        return False
    return updated_at - written <= timedelta(seconds=tolerance_s)


def tagged_at(tag: Any) -> datetime | None:
    """When pipesync wrote an origin tag (its own clock), None for anything else."""
    if not isinstance(tag, str) or not tag.startswith(ORIGIN + " "):
        return None
    try:
        return instant(tag.split()[1])
    except (ValueError, IndexError):
        return None


def origin_marks(tag: Any, updated_at: datetime | None, tolerance_s: float) -> dict[str, Any]:
    """The two keys every API adapter adds to ``RawDeal.raw``: the tag as read, and whether it is current."""
    return {"pipesync_origin": tag if tag not in ("", None) else None,
            "pipesync_own_write": own_write(tag, updated_at, tolerance_s)}


def created_keys(tagged: Iterable[tuple[str, Any]], keys: Iterable[str]) -> dict[str, str]:
    """Of (record id, origin tag) pairs, the records whose tag carries one of ``keys`` (a create's
    ``deal_key``, the tag's last word): key → record id."""
    wanted_ = set(keys)
    found = {}
    for record_id, tag in tagged:
        words = tag.split() if isinstance(tag, str) and tag.startswith(ORIGIN + " ") else []
        if len(words) == 3 and words[2] in wanted_:
            found[words[2]] = str(record_id)
    return found


def target_id(change: Change, source: str) -> str:
    """The source record id a change addresses (``deal_key`` is ``"<source>:<id>"``)."""
    prefix = f"{source}:"
    return change.deal_key[len(prefix):] if change.deal_key.startswith(prefix) else change.deal_key


def change_key(change: Change) -> str:
    """The same key for the same change in every run: what a create's origin tag carries, so a
    create whose response was lost, or whose run was killed before recording it, is found, not repeated."""
    return "c" + hashlib.sha1(change.model_dump_json().encode()).hexdigest()[:20]


def custom_name(field: str) -> str | None:
    """The CRM's API name in a ``custom:<name>`` field, None for a canonical field."""
    return field[len(CUSTOM_PREFIX):] if field.startswith(CUSTOM_PREFIX) else None


def custom_names(changes: Iterable[Change] = (), fields: Iterable[str] = ()) -> list[str]:
    """The custom field names the changes (or field names) use, each once."""
    named = [f.field for c in changes for f in c.fields] + list(fields)
    return list(dict.fromkeys(n for f in named if (n := custom_name(f)) is not None))


def no_such_field(system: str, name: str, how: str) -> ConfigError:
    return ConfigError(f"{system}: the deal has no field {name!r} (custom:{name}); {how}")


def task_id_of(change: Change) -> str | None:
    """The task a DELETE_TASK removes: its ``task_id`` field (the id the create returned)."""
    for f in change.fields:
        if f.field == "task_id":
            value = f.before if f.before not in (None, "") else f.after
            return None if value in (None, "") else str(value)
    return None


def task_values(change: Change) -> dict[str, Any]:
    """A CREATE_TASK's ``subject``, ``body`` and ``due_date``; subject is required."""
    values = wanted(change)
    unknown = set(values) - {"subject", "body", "due_date"}
    if unknown:
        raise ConfigError(f"a task has subject, body and due_date, not {', '.join(sorted(unknown))}")
    if not values.get("subject"):
        raise ConfigError("a task needs a subject")
    return values


def tagged_body(change: Change) -> str:
    """A task's body with the origin tag on its last line: the key finds the task again."""
    body = str(wanted(change).get("body") or "")
    return f"{body}\n\n{origin_tag(key=change_key(change))}".lstrip()


def _comparable(value: Any) -> Any:
    if value is None or value == "" or value == []:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"  # HubSpot sends booleans as text
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


def in_place(change: Change, current: dict[str, Any]) -> bool:
    """Every field of the change already holds its new value (a run killed after sending, before recording)."""
    return bool(change.fields) and all(
        f.field in current and _comparable(f.after) == _comparable(current[f.field]) for f in change.fields)


# A CRM that stamps modifications to the second may round the plan's reading either way.
MODIFIED_TOLERANCE = timedelta(seconds=1)


def _instant_of(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    try:
        return instant(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def settle(change: Change, current: dict[str, Any] | None, noun: str) -> ChangeResult | None:
    """The result to return instead of writing: the record is gone or changed under the plan
    (conflict), or the change is already in place (applied, so a re-run applies it exactly once)."""
    if current is None:
        return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.CONFLICT,
                            reason=f"the {noun} no longer exists (deleted or merged away)")
    if change.kind in TASK_KINDS:
        return None  # a task's fields are not the deal's: there is no before-image to compare
    if in_place(change, current):
        return applied(change, reason=ALREADY_IN_PLACE)
    stale = stale_fields(change, current)
    if stale:
        return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.CONFLICT,
                            reason=f"changed since the plan was made: {', '.join(stale)}")
    modified = _instant_of(current.get("updated_at"))
    if change.unchanged_since is not None and modified is not None and modified - change.unchanged_since > MODIFIED_TOLERANCE:
        return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.CONFLICT,
                            reason=f"modified in the CRM at {modified:%Y-%m-%d %H:%M:%S} UTC, after the plan read it")
    return None


def failed(change: Change, reason: str) -> ChangeResult:
    return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.FAILED, reason=reason)


def applied(change: Change, new_source_id: str | None = None, reason: str | None = None) -> ChangeResult:
    return ChangeResult(deal_key=change.deal_key, outcome=ChangeOutcome.APPLIED, new_source_id=new_source_id,
                        reason=reason)


Indexed = tuple[int, Change]


def write_once(batch: Sequence[Indexed], *, noun: str,
               reread: Callable[[Sequence[Indexed]], dict[int, dict[str, Any] | None]],
               prepare: Callable[[int, Change, dict[str, Any]], Any],
               send: Callable[[list[tuple[int, Change, Any]]], dict[int, ChangeResult]]) -> dict[int, ChangeResult]:
    """Re-read, settle, prepare and send one batch so that each change lands exactly once.

    ``reread`` gives each change's current values (None: the record is gone); ``prepare`` its
    request payload (a ConfigError fails that change alone, a ChangeResult settles it); ``send`` the results of one write
    call, leaving out the changes whose outcome is unknown. Those, and a whole call that ends in
    a dropped connection, are re-read and only what is not in place yet is sent again: a write is
    never blindly replayed, so the CRM's own log shows it once.
    """
    results: dict[int, ChangeResult] = {}
    todo, unknown = list(batch), ""
    for _ in range(WRITE_ROUNDS):
        current = reread(todo)
        pending: list[tuple[int, Change, Any]] = []
        for i, change in todo:
            done = settle(change, current.get(i), noun)
            if done is not None:
                results[i] = done
                continue
            try:
                payload = prepare(i, change, current[i])  # type: ignore[index]
            except ConfigError as e:
                results[i] = failed(change, str(e))
                continue
            if isinstance(payload, ChangeResult):  # found done on its own terms (a tagged create)
                results[i] = payload
            else:
                pending.append((i, change, payload))
        if not pending:
            return results
        try:
            sent = send(pending)
        except AmbiguousWrite as e:
            sent, unknown = {}, str(e)
        except SourceError as e:
            return results | {i: failed(c, str(e)) for i, c, _ in pending}
        results.update(sent)
        todo = [(i, c) for i, c, _ in pending if i not in sent]
        if not todo:
            return results
        unknown = unknown or "the write's outcome is unknown"
    return results | {i: failed(c, f"{unknown}; not applied after {WRITE_ROUNDS} checks, re-run the plan")
                      for i, c in todo}


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

"""Checking a v2 deal write (``POST /api/v2/deals``, ``PATCH /api/v2/deals/{id}``) the way Pipedrive does.

v2 takes JSON only and is strict about types: a number sent as a string, an
integer sent as ``true`` or an unknown field is refused with a 400 naming the
field; nothing is coerced. References (owner, person, organization, pipeline,
stage, custom field options) must exist, a stage must belong to the pipeline
it is sent with, and ``lost_reason`` is accepted only for a lost deal.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pipesync_sandbox.pipedrive.envelope import invalid
from pipesync_sandbox.pipedrive.store import DEAL_STATUSES, Deal, PipedriveStore, utc_seconds

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
_VISIBILITY = (1, 3, 5, 7)


def parse_rfc3339(name: str, text: str) -> datetime:
    """Whole-second RFC 3339 (``2025-01-01T10:20:00Z``); Pipedrive rejects fractions of a second."""
    if not _RFC3339.match(text):
        raise invalid(name, f"'{text}' is not a valid datetime")
    try:
        return utc_seconds(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise invalid(name, f"'{text}' is not a valid datetime") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(name: str, value: Any) -> int:
    if not _is_int(value):
        raise invalid(name, f"must be integer, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _nullable(check: Callable[[str, Any], Any]) -> Callable[[str, Any], Any]:
    return lambda name, value: None if value is None else check(name, value)


def _string(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(name, f"must be string, got {_json_type(value)}")
    return value


def _title(name: str, value: Any) -> str:
    text = _string(name, value).strip()
    if not text:
        raise invalid(name, "must not be empty")
    return text


def _number(name: str, value: Any) -> float:
    if not _is_number(value):
        raise invalid(name, f"must be number, got {_json_type(value)}")
    return float(value)


def _boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(name, f"must be boolean, got {_json_type(value)}")
    return value


def _currency(name: str, value: Any) -> str:
    text = _string(name, value)
    if not _CURRENCY.match(text):
        raise invalid(name, f"'{text}' is not a 3-letter currency code")
    return text


def _status(name: str, value: Any) -> str:
    if value not in DEAL_STATUSES:
        raise invalid(name, f"must be one of {', '.join(DEAL_STATUSES)}")
    return value


def _visibility(name: str, value: Any) -> int:
    if _integer(name, value) not in _VISIBILITY:
        raise invalid(name, f"must be one of {', '.join(map(str, _VISIBILITY))}")
    return value


def _day(name: str, value: Any) -> date:
    text = _string(name, value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    raise invalid(name, f"'{text}' is not a valid date (YYYY-MM-DD)")


def _moment(name: str, value: Any) -> datetime:
    return parse_rfc3339(name, _string(name, value))


def _labels(name: str, value: Any) -> list[int]:
    if not isinstance(value, list) or not all(_is_int(v) for v in value):
        raise invalid(name, "must be an array of integers")
    return value


_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "title": _title,
    "owner_id": _integer,
    "person_id": _nullable(_integer),
    "org_id": _nullable(_integer),
    "pipeline_id": _integer,
    "stage_id": _integer,
    "value": _number,
    "currency": _currency,
    "status": _status,
    "probability": _nullable(_number),
    "lost_reason": _nullable(_string),
    "visible_to": _visibility,
    "expected_close_date": _nullable(_day),
    "close_time": _nullable(_moment),
    "won_time": _nullable(_moment),
    "lost_time": _nullable(_moment),
    "label_ids": _labels,
    "is_archived": _boolean,
    "is_deleted": _boolean,
    "custom_fields": lambda name, value: value,  # checked against the field catalogue below
}


def check_deal_write(store: PipedriveStore, body: Any, current: Deal | None) -> dict[str, Any]:
    """The validated field values of a deal write; ``current`` is None for a create.

    Raises :class:`~pipesync_sandbox.pipedrive.envelope.ApiError` (400) naming the first bad field.
    """
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    values: dict[str, Any] = {}
    for name, raw in body.items():
        check = _FIELDS.get(name)
        if check is None:
            raise invalid(name, "is not a deal field that can be set")
        values[name] = check(name, raw)
    if current is None and "title" not in values:
        raise invalid("title", "is required")
    if "custom_fields" in values:
        values["custom_fields"] = _check_custom_fields(store, values["custom_fields"])
    _check_references(store, values)
    status = values.get("status", current.status if current else "open")
    if values.get("lost_reason") is not None and status != "lost":
        raise invalid("lost_reason", "can only be set when the deal status is lost")
    return values


def _check_references(store: PipedriveStore, values: dict[str, Any]) -> None:
    known = {"owner_id": store.users, "person_id": store.persons, "org_id": store.organizations,
             "pipeline_id": store.pipelines, "stage_id": store.stages}
    for name, table in known.items():
        value = values.get(name)
        if value is not None and value not in table:
            raise invalid(name, f"{value} does not exist")
    if "stage_id" in values and "pipeline_id" in values:
        if store.stages[values["stage_id"]].pipeline_id != values["pipeline_id"]:
            raise invalid("stage_id", f"stage {values['stage_id']} is not in pipeline {values['pipeline_id']}")
    if values.get("label_ids"):  # the sandbox company defines no deal labels
        raise invalid("label_ids", f"label {values['label_ids'][0]} does not exist")


_CUSTOM_VALUE_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "varchar": _string, "text": _string, "double": _number, "date": lambda n, v: _day(n, v).isoformat(),
}
CUSTOM_FIELD_TYPES = ("enum", *_CUSTOM_VALUE_CHECKS)


def _check_custom_fields(store: PipedriveStore, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid("custom_fields", f"must be object, got {_json_type(raw)}")
    checked: dict[str, Any] = {}
    for key, value in raw.items():
        custom = store.custom_fields.get(key)
        name = f"custom_fields.{key}"
        if custom is None:
            raise invalid(name, "is not a deal field")
        if value is None:
            checked[key] = None
        elif custom.field_type == "enum":
            if not _is_int(value) or value not in custom.options:
                raise invalid(name, f"must be one of the option ids of '{custom.name}'")
            checked[key] = value
        else:
            checked[key] = _CUSTOM_VALUE_CHECKS[custom.field_type](name, value)
    return checked


_ACTIVITY_FIELDS: dict[str, Callable[[str, Any], Any]] = {
    "subject": _title, "type": _string, "owner_id": _integer, "deal_id": _nullable(_integer),
    "due_date": _nullable(_day), "due_time": _nullable(_string), "note": _nullable(_string), "done": _boolean,
    "priority": _nullable(_integer), "busy": _boolean, "public_description": _nullable(_string),
}
ACTIVITY_TYPES = ("call", "meeting", "task", "deadline", "email", "lunch")


def check_activity_write(store: PipedriveStore, body: Any) -> dict[str, Any]:
    """The validated values of ``POST /api/v2/activities`` (only ``subject`` is required)."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    values: dict[str, Any] = {}
    for name, raw in body.items():
        check = _ACTIVITY_FIELDS.get(name)
        if check is None:
            raise invalid(name, "is not an activity field that can be set")
        values[name] = check(name, raw)
    if "subject" not in values:
        raise invalid("subject", "is required")
    if values.get("type", "task") not in ACTIVITY_TYPES:
        raise invalid("type", f"must be one of the activity types: {', '.join(ACTIVITY_TYPES)}")
    if values.get("owner_id") is not None and values["owner_id"] not in store.users:
        raise invalid("owner_id", f"{values['owner_id']} does not exist")
    if values.get("deal_id") is not None:
        deal = store.deals.get(values["deal_id"])
        if deal is None or deal.is_deleted:
            raise invalid("deal_id", f"{values['deal_id']} does not exist")
    return values


def check_field_create(body: Any) -> tuple[str, str, list[str]]:
    """``(field_name, field_type, option labels)`` of a ``POST /api/v2/dealFields`` body."""
    if not isinstance(body, dict):
        raise invalid("body", "must be a JSON object")
    name = _title("field_name", body.get("field_name"))
    field_type = body.get("field_type")
    if field_type not in CUSTOM_FIELD_TYPES:
        raise invalid("field_type", f"must be one of {', '.join(CUSTOM_FIELD_TYPES)} in this sandbox")
    options = body.get("options") or []
    if not isinstance(options, list) or not all(isinstance(o, dict) and isinstance(o.get("label"), str)
                                                for o in options):
        raise invalid("options", "must be an array of {label}")
    if field_type == "enum" and not options:
        raise invalid("options", "an enum field needs at least one option")
    return name, field_type, [o["label"] for o in options]

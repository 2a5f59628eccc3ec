"""HubSpot CRM search (``POST /crm/v3/objects/deals/search``): request checks, filters, sorts, paging.

The limits are HubSpot's, taking the strictest where its documents disagree
(crm-api-facts.md §2.3): at most 5 filter groups, 6 filters per group and 18
in all; one sort; ``limit`` up to 200; and no result past the 10,000th —
asking for ``after`` ≥ 10,000 is a 400, while ``total`` still counts every
match and ``paging.next`` still points past the cap, as the real API does
(which is exactly what trips clients that page blindly).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from pipesync_sandbox.hubspot.store import (DATETIME_PROPERTIES, DEFAULT_DEAL_PROPERTIES, NUMBER_PROPERTIES, HubDeal,
                                            HubSpotStore, parse_time_ms)

MAX_FILTER_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
DEFAULT_LIMIT = 10
RESULT_CAP = 10_000
MAX_QUERY_CHARS = 3000

Predicate = Callable[[HubDeal], bool]


class SearchError(ValueError):
    """The request breaks one of search's rules; HubSpot answers 400 VALIDATION_ERROR."""


@dataclass(frozen=True, slots=True)
class SearchRequest:
    groups: list[list[Predicate]]  # OR of ANDs; empty means everything
    sort_property: str
    descending: bool
    text: str | None
    limit: int
    offset: int
    properties: list[str]
    # Inclusive hs_lastmodifieddate bounds every match must meet (lets the store skip a full scan), or None.
    modified_range: tuple[int | None, int | None] | None


def parse_search(body: dict, store: HubSpotStore) -> SearchRequest:
    groups = body.get("filterGroups") or []
    if len(groups) > MAX_FILTER_GROUPS:
        raise SearchError(f"Too many filter groups: {len(groups)}; a search allows at most {MAX_FILTER_GROUPS}.")
    predicates: list[list[Predicate]] = []
    total = 0
    for group in groups:
        filters = group.get("filters") or [] if isinstance(group, dict) else []
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(f"Too many filters in a filter group: {len(filters)}; at most {MAX_FILTERS_PER_GROUP} are allowed.")
        total += len(filters)
        predicates.append([_predicate(f, store) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(f"Too many filters: {total}; a search allows at most {MAX_FILTERS} across all filter groups.")

    sorts = body.get("sorts") or []
    if len(sorts) > 1:
        raise SearchError("Only one sort is allowed per search.")
    sort_property, descending = "hs_object_id", False
    if sorts:
        sort_property, descending = _sort(sorts[0])

    text = body.get("query")
    if text is not None and len(str(text)) > MAX_QUERY_CHARS:
        raise SearchError(f"query must be at most {MAX_QUERY_CHARS} characters.")
    limit = _integer(body.get("limit", DEFAULT_LIMIT), "limit")
    if not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}.")
    offset = _integer(body.get("after") or 0, "after")
    if offset < 0:
        raise SearchError(f"after must not be negative, got {offset}.")
    if offset >= RESULT_CAP:
        raise SearchError(f"Search results are limited to {RESULT_CAP} per query; 'after' {offset} is past that limit.")
    properties = body.get("properties") or list(DEFAULT_DEAL_PROPERTIES)
    modified_range = _modified_range(groups[0]["filters"]) if len(groups) == 1 else None
    return SearchRequest(predicates, sort_property, descending, text or None, limit, offset, list(properties),
                         modified_range)


def _modified_range(filters: list[dict]) -> tuple[int | None, int | None] | None:
    """The hs_lastmodifieddate bounds that the (already validated) filters of one group imply, if any."""
    low: int | None = None
    high: int | None = None
    for f in filters:
        if f["propertyName"] != "hs_lastmodifieddate" or f["operator"] not in ("EQ", "GT", "GTE", "LT", "LTE", "BETWEEN"):
            continue
        value = parse_time_ms(str(f["value"]))
        assert value is not None  # _predicate accepted it
        lower = {"EQ": value, "GT": value + 1, "GTE": value, "BETWEEN": value}.get(f["operator"])
        upper = {"EQ": value, "LT": value - 1, "LTE": value}.get(f["operator"])
        if f["operator"] == "BETWEEN":
            upper = parse_time_ms(str(f["highValue"]))
        if lower is not None:
            low = lower if low is None else max(low, lower)
        if upper is not None:
            high = upper if high is None else min(high, upper)
    return None if low is None and high is None else (low, high)


def run_search(request: SearchRequest, deals: Iterable[HubDeal]) -> tuple[int, list[HubDeal], int | None]:
    """(total matches, this page, offset of the next page or None)."""
    matched = [d for d in deals if _matches(request, d)]
    key = _sort_key(request.sort_property)
    present = [d for d in matched if key(d) is not None]
    missing = sorted((d for d in matched if key(d) is None), key=lambda d: int(d.id))
    present.sort(key=lambda d: int(d.id))  # ties keep id order, so pages are stable
    present.sort(key=key, reverse=request.descending)  # type: ignore[arg-type]
    ordered = present + missing  # HubSpot puts records without the sort property last
    end = min(request.offset + request.limit, RESULT_CAP)
    page = ordered[request.offset:end]
    next_offset = request.offset + len(page) if request.offset + len(page) < len(ordered) else None
    return len(ordered), page, next_offset


def _matches(request: SearchRequest, deal: HubDeal) -> bool:
    if request.text and not _text_matches(request.text, deal):
        return False
    return not request.groups or any(all(p(deal) for p in group) for group in request.groups)


def _text_matches(text: str, deal: HubDeal) -> bool:
    haystack = " ".join(deal.props.get(name, "") for name in ("dealname", "hs_object_id")).casefold()
    return all(term in haystack for term in text.casefold().split())


def _sort(raw: object) -> tuple[str, bool]:
    # Real clients send {"propertyName", "direction"}; the spec types sorts as strings ("-prop" = descending).
    if isinstance(raw, dict) and raw.get("propertyName"):
        direction = str(raw.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise SearchError(f"direction must be ASCENDING or DESCENDING, got {direction!r}.")
        return str(raw["propertyName"]), direction == "DESCENDING"
    if isinstance(raw, str) and raw.strip("-"):
        return raw.lstrip("-"), raw.startswith("-")
    raise SearchError("Each sort needs a propertyName.")


def _integer(value: object, name: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise SearchError(f"{name} must be an integer, got {value!r}.") from None


def _kind(name: str, store: HubSpotStore) -> str:
    if name in DATETIME_PROPERTIES or name in store.stage_date_properties:
        return "datetime"
    if name in NUMBER_PROPERTIES:
        return "number"
    return "string"


def _sort_key(name: str) -> Callable[[HubDeal], object]:
    if name in NUMBER_PROPERTIES:
        return lambda d: _number(d.props.get(name))  # numbers are never datetimes
    if name in DATETIME_PROPERTIES or name.startswith("hs_v2_date_"):
        return lambda d: d.times.get(name)
    return lambda d: (d.props.get(name) or None) and d.props[name].casefold()


def _number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def _operand(kind: str, raw: object, property_name: str) -> object:
    text = "" if raw is None else str(raw)
    if kind == "datetime":
        value = parse_time_ms(text)
        if value is None:
            raise SearchError(f"{text!r} is not a valid value for {property_name}: use epoch milliseconds or ISO 8601.")
        return value
    if kind == "number":
        number = _number(text)
        if number is None:
            raise SearchError(f"{text!r} is not a valid number for {property_name}.")
        return number
    return text.casefold()


def _predicate(raw: object, store: HubSpotStore) -> Predicate:
    if not isinstance(raw, dict) or not raw.get("propertyName") or not raw.get("operator"):
        raise SearchError("Each filter needs a propertyName and an operator.")
    name, operator = str(raw["propertyName"]), str(raw["operator"])
    kind = _kind(name, store)

    def actual(deal: HubDeal) -> object:
        if kind == "datetime":
            return deal.times.get(name)
        value = deal.props.get(name)
        if value is None:
            return None
        return _number(value) if kind == "number" else value.casefold()

    match operator:
        case "HAS_PROPERTY":
            return lambda d: d.has(name)
        case "NOT_HAS_PROPERTY":
            return lambda d: not d.has(name)
        case "EQ" | "NEQ" | "LT" | "LTE" | "GT" | "GTE":
            if "value" not in raw:
                raise SearchError(f"The {operator} filter on {name} needs a value.")
            want = _operand(kind, raw["value"], name)
            if operator == "NEQ":
                return lambda d: (v := actual(d)) is None or v != want
            compare = _COMPARISONS[operator]
            return lambda d: (v := actual(d)) is not None and compare(v, want)
        case "BETWEEN":
            if "value" not in raw or "highValue" not in raw:
                raise SearchError(f"The BETWEEN filter on {name} needs a value and a highValue.")
            low, high = _operand(kind, raw["value"], name), _operand(kind, raw["highValue"], name)
            return lambda d: (v := actual(d)) is not None and low <= v <= high  # type: ignore[operator]
        case "IN" | "NOT_IN":
            values = raw.get("values")
            if not isinstance(values, list) or not values:
                raise SearchError(f"The {operator} filter on {name} needs a non-empty values list.")
            wanted = {_operand(kind, v, name) for v in values}
            if operator == "IN":
                return lambda d: actual(d) in wanted
            return lambda d: actual(d) not in wanted
        case "CONTAINS_TOKEN" | "NOT_CONTAINS_TOKEN":
            pattern = str(raw.get("value", "")).casefold()
            contains = lambda d: any(fnmatch.fnmatchcase(token, pattern)  # noqa: E731
                                     for token in (d.get(name) or "").casefold().split())
            return contains if operator == "CONTAINS_TOKEN" else (lambda d: not contains(d))
    raise SearchError(f"Unknown filter operator {operator!r}.")


_COMPARISONS: dict[str, Callable[[object, object], bool]] = {
    "EQ": lambda a, b: a == b,
    "LT": lambda a, b: a < b,  # type: ignore[operator]
    "LTE": lambda a, b: a <= b,  # type: ignore[operator]
    "GT": lambda a, b: a > b,  # type: ignore[operator]
    "GTE": lambda a, b: a >= b,  # type: ignore[operator]
}

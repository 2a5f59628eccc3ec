"""Pipedrive: v2 deals with cursor paging and ``updated_since``; v1 only for flow and merge.

Reads run three passes, each with its own ``update_time`` watermark in the cursor:
live deals, archived deals (``/deals/archived``, absent from ``/deals`` since 2025), and
deleted deals (``status=deleted``, kept 30 days; older deletions are caught by a full
read, which reports ``snapshot_complete``). Won/lost is the deal's ``status``, not its
stage. Custom fields arrive as 40-character hash keys and option ids and are resolved
to their names and labels through ``/dealFields``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pipesync.adapters.base import Adapter
from pipesync.adapters.changes import (
    ALREADY_IN_PLACE, TASK_KINDS, applied, change_key, created_keys, custom_name, custom_names, failed, no_such_field, origin_marks,
    origin_tag, settle, tagged_at, tagged_body, target_id, task_id_of, task_values, wanted, with_valid_ids, write_once,
)
from pipesync.adapters.auth import oauth_store_path
from pipesync.adapters.lookups import Lookup
from pipesync.adapters.metadata import KEY as METADATA_KEY, Metadata
from pipesync.adapters.pipedrive_client import IDS_MAX, PipedriveClient
from pipesync.adapters.pipedrive_options import PAGE_MAX, PipedriveOptions
from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.watermark import Watermark
from pipesync.adapters.values import calendar_date, chunks, decimal_or_none, domain_of, instant, wire
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, SourceError
from pipesync.model import (
    CUSTOM_PREFIX, Change, ChangeKind, ChangeResult, Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, FieldInfo,
    FieldKind, Owner, Page, RawDeal, RawStageChange,
)

# Passes of one read: (cursor key, path, extra parameters).
PASSES = (
    ("live", "/api/v2/deals", {}),
    ("archived", "/api/v2/deals/archived", {}),
    ("deleted", "/api/v2/deals", {"status": "deleted"}),
)

# canonical field → v2 deal field, for writes
WRITABLE = {
    "name": "title", "amount": "value", "currency": "currency", "close_date": "expected_close_date",
    "source_stage": "stage_id", "pipeline": "pipeline_id", "status": "status", "lost_reason": "lost_reason",
    "probability": "probability", "owner_id": "owner_id",
}
INTEGER_FIELDS = {"stage_id", "pipeline_id", "owner_id"}
# dealFields field_type → what pipesync can write into it; and what it creates for each kind
_KINDS: dict[str | None, FieldKind] = {"varchar": "text", "varchar_auto": "text", "text": "text", "phone": "text",
                                       "double": "number", "monetary": "number", "int": "number", "date": "date"}
_FIELD_TYPES: dict[str, tuple[str, list[str] | None]] = {
    "text": ("varchar", None), "url": ("varchar", None), "number": ("double", None), "date": ("date", None),
    "boolean": ("enum", ["Yes", "No"]),  # Pipedrive has no yes/no field: an option field with two options
}


def _activity_to_delete(i: int, change: Change, current: dict[str, Any]) -> str:
    activity = task_id_of(change)
    if activity is None or not activity.isdigit():
        raise ConfigError(f"{activity!r} is not a Pipedrive activity id")
    return activity


def _field_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.casefold()).strip("_")


class PipedriveAdapter(Adapter):
    record_noun = "deal"
    # one call per deal (no bulk update), but one re-read per 100: the engine journals the batch first
    write_batch_max = IDS_MAX
    writable_fields = frozenset(WRITABLE)
    merges = True
    history_in_bulk = False  # /v1/deals/{id}/flow: one call per deal

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = opts = PipedriveOptions.model_validate(source.options)
        self.api = PipedriveClient(source, opts, oauth_store_path(source, opts, settings))
        self.metadata = Metadata(opts.metadata_refresh_hours * 3600)
        self.orgs = Lookup(lambda ids: self.api.by_ids("/api/v2/organizations", ids), batch=IDS_MAX)
        self.persons = Lookup(lambda ids: self.api.by_ids("/api/v2/persons", ids), batch=IDS_MAX)

    def close(self) -> None:
        self.api.close()

    @property
    def calls(self) -> int:
        return self.api.policy.stats.calls

    @property
    def rate_limited(self) -> int:
        return self.api.policy.stats.rate_limited

    # ------------------------------------------------------------ discovery

    def resume(self, since: Cursor | None) -> None:
        self.metadata.resume(since)

    def _stages(self) -> list[dict[str, Any]]:
        return self.metadata.get("stages", lambda: self.api.all("/api/v2/stages"))

    def discover(self) -> Discovery:
        pipelines = self.metadata.get("pipelines", lambda: self.api.all("/api/v2/pipelines"))
        stages = self._stages()
        result = []
        for p in sorted(pipelines, key=lambda p: p.get("order_nr") or 0):
            if p.get("is_deleted"):
                continue
            own = sorted((s for s in stages if s.get("pipeline_id") == p["id"]), key=lambda s: s.get("order_nr") or 0)
            result.append(DiscoveredPipeline(id=str(p["id"]), label=p["name"], stages=[
                DiscoveredStage(
                    id=str(s["id"]), label=s["name"], order=s.get("order_nr"),
                    probability=None if s.get("deal_probability") is None else s["deal_probability"] / 100,
                    # Pipedrive stages are never closed: won and lost are deal statuses.
                    is_closed=False, is_won=False, active=not s.get("is_deleted", False),
                ) for s in own
            ]))
        owners = [Owner(id=str(u["id"]), name=u.get("name"), email=u.get("email")) for u in self._all_users().values()]
        return Discovery(source=self.name, pipelines=result, owners=owners)

    # ------------------------------------------------------------ reads

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        state: dict[str, Any] = dict(since.value) if since and since.value else {}
        state.pop(METADATA_KEY, None)
        yield from self.metadata.carried(self._read(state))

    def _read(self, state: dict[str, Any]) -> Iterator[Page]:
        full = not state
        if full:
            # A full read mentions most records, and lists page 5× larger than fetches by id.
            self.orgs.prime({str(o["id"]): o for o in self.api.all("/api/v2/organizations", {"limit": PAGE_MAX})})
            self.persons.prime({str(p["id"]): p for p in self.api.all("/api/v2/persons", {"limit": PAGE_MAX})})
        for key, path, extra in PASSES:
            mark = Watermark.load(state.get(key))
            params: dict[str, Any] = {"sort_by": "update_time", "sort_direction": "asc", "limit": self.options.page_size,
                                      **extra}
            if mark.stamp:
                params["updated_since"] = mark.stamp
            for rows in self.api.pages(path, params):
                fresh = mark.fresh(rows, _deal_id, _updated)
                mark = mark.advance(fresh, _deal_id, _updated, order=instant)
                state[key] = mark.dump()
                if key == "deleted":
                    page = Page(deals=[], deleted_ids=[str(r["id"]) for r in fresh], cursor=Cursor(value=dict(state)))
                else:
                    page = Page(deals=self._raw_deals(fresh), cursor=Cursor(value=dict(state)))
                yield page
        # The live and archived passes of a full read listed every deal the source still has.
        yield Page(deals=[], cursor=Cursor(value=dict(state)), snapshot_complete=full)

    def _raw_deals(self, rows: list[dict[str, Any]]) -> list[RawDeal]:
        if not rows:
            return []
        fields, users = self._deal_fields(), self._all_users()
        stages = {str(s["id"]) for s in self._stages()} if self.metadata.known("stages") else set()
        if ({str(r["owner_id"]) for r in rows if r.get("owner_id")} - users.keys()
                or {str(r["stage_id"]) for r in rows if r.get("stage_id")} - stages
                or {k for r in rows for k in r.get("custom_fields") or {}} - fields.keys()) \
                and self.metadata.refresh():
            fields, users = self._deal_fields(), self._all_users()  # a new owner, stage or field: re-read the lists
        orgs = self.orgs.resolve(str(r["org_id"]) for r in rows if r.get("org_id"))
        persons = self.persons.resolve(str(r["person_id"]) for r in rows if r.get("person_id"))
        return [self._raw_deal(r, fields, users, orgs, persons) for r in rows]

    def _raw_deal(self, d: dict[str, Any], fields: dict[str, dict[str, Any]], users: dict[str, dict[str, Any]],
                  orgs: dict[str, dict[str, Any]], persons: dict[str, dict[str, Any]]) -> RawDeal:
        opts = self.options
        custom = self._custom_fields(d.get("custom_fields") or {}, fields)
        owner = users.get(str(d.get("owner_id")), {})
        org = orgs.get(str(d.get("org_id")), {})
        person = persons.get(str(d.get("person_id")), {})
        updated_at = instant(d.get("update_time"))
        emails = sorted((e for e in person.get("emails") or [] if e.get("value")),
                        key=lambda e: not e.get("primary"))
        status = d.get("status")
        values = {
            "source_id": str(d["id"]),
            "name": d.get("title") or "",
            "pipeline": None if d.get("pipeline_id") is None else str(d["pipeline_id"]),
            "source_stage": None if d.get("stage_id") is None else str(d["stage_id"]),
            "status": status,
            "amount": decimal_or_none(d.get("value")),
            "currency": d.get("currency"),
            "probability": None if d.get("probability") is None else d["probability"] / 100,
            "close_date": calendar_date(d.get("expected_close_date")),
            # When it was won or lost, an instant (UTC): normalize takes its day in the source's timezone.
            "actual_close_date": instant(d.get(f"{status}_time") if status in ("won", "lost") else None)
            or instant(d.get("close_time")),
            "created_at": instant(d.get("add_time")),
            "updated_at": updated_at,
            "stage_entered_at": instant(d.get("stage_change_time")) or instant(d.get("add_time")),
            "last_activity_at": instant(d.get("last_activity_date")),
            "owner_email": owner.get("email"),
            "owner_name": owner.get("name"),
            "account_name": org.get("name"),
            "account_domain": domain_of(org.get("website")),
            "contact_emails": [e["value"] for e in emails],
            "lead_source": custom.get(_field_key(opts.lead_source_field)) if opts.lead_source_field else None,
            "lost_reason": d.get("lost_reason"),
            "next_step": custom.get(_field_key(opts.next_step_field)) if opts.next_step_field else None,
            "external_refs": [f"{system}:{custom[_field_key(name)]}" for name, system in opts.external_ref_fields.items()
                              if custom.get(_field_key(name))],
            "is_deleted": bool(d.get("is_deleted")),
        }
        raw = {**d, "custom_fields": custom, "is_archived": bool(d.get("is_archived")),
               **origin_marks(custom.get(_field_key(opts.origin_field)) if opts.origin_field else None,
                              updated_at, opts.own_write_tolerance_s)}
        return RawDeal(source_id=str(d["id"]), locator=f"Pipedrive deal {d['id']}", values=values, raw=raw)

    def _custom_fields(self, custom: dict[str, Any], fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``{hash: option id}`` → ``{field name key: label}``, so mapping files stay readable."""
        named: dict[str, Any] = {}
        for code, value in custom.items():
            f = fields.get(code)
            if f is None:
                named[code] = value
                continue
            options = {str(o["id"]): o.get("label") for o in f.get("options") or []}
            if options and isinstance(value, list):
                value = [options.get(str(v), v) for v in value]
            elif options and value is not None:
                value = options.get(str(value), value)
            named[_field_key(f["field_name"])] = value
        return named

    def _deal_fields(self) -> dict[str, dict[str, Any]]:
        return self.metadata.get("fields", lambda: {f["field_code"]: f for f in self.api.all("/api/v2/dealFields")
                                                    if f.get("field_code")})

    def _all_users(self) -> dict[str, dict[str, Any]]:
        # /v1/users has no paging and no id filter: one call returns every user.
        return self.metadata.get("users", lambda: {str(u["id"]): u for u in
                                                   self.api.request("GET", "/api/v1/users").get("data") or []})

    # ------------------------------------------------------------ history

    def read_stage_history(self, source_ids: Sequence[str]) -> Iterator[RawStageChange]:
        """Stage changes from ``/v1/deals/{id}/flow``: one call (40 tokens) per deal, so only when asked."""
        for sid in source_ids:
            start = 0
            while True:
                body = self.api.request("GET", f"/api/v1/deals/{sid}/flow",
                                        params={"start": start, "limit": PAGE_MAX, "items": "dealChange", "all_changes": 1})
                for item in body.get("data") or []:
                    data = item.get("data") or {}
                    if item.get("object") != "dealChange" or data.get("field_key") != "stage_id":
                        continue
                    yield RawStageChange(
                        source_id=str(sid),
                        from_stage=None if data.get("old_value") in (None, "") else str(data["old_value"]),
                        to_stage=str(data["new_value"]),
                        changed_at=instant(data.get("log_time") or item.get("timestamp")),  # type: ignore[arg-type]
                    )
                pagination = (body.get("additional_data") or {}).get("pagination") or {}
                if not pagination.get("more_items_in_collection"):
                    break
                start = pagination.get("next_start", start + PAGE_MAX)

    # ------------------------------------------------------------ writes

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        return with_valid_ids(changes, self.name, str.isdigit, "Pipedrive deal", self._write)

    def _write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """One call per deal (Pipedrive has no bulk deal update), paced by the token budget; the
        deals are re-read 100 per call first."""
        results: dict[int, ChangeResult] = {}
        groups: dict[ChangeKind | None, list[tuple[int, Change]]] = {}
        for i, c in enumerate(changes):
            if c.kind is ChangeKind.CREATE:
                results[i] = self._create(c)
            else:
                groups.setdefault(c.kind if c.kind in (ChangeKind.MERGE, *TASK_KINDS) else None, []).append((i, c))
        for kind, members in groups.items():
            for batch in chunks(members, IDS_MAX):
                if kind is ChangeKind.MERGE:
                    current = self._reread(batch)
                    results.update({i: self._merge(c, current.get(i)) for i, c in batch})
                elif kind is ChangeKind.DELETE_TASK:
                    results.update(write_once(batch, noun=self.record_noun, reread=lambda todo: {i: {} for i, _ in todo},
                                              prepare=_activity_to_delete, send=self._delete_activities))
                elif kind is ChangeKind.CREATE_TASK:
                    results.update(write_once(batch, noun=self.record_noun, reread=self._reread_with_activities,
                                              prepare=self._activity_body, send=self._create_activities))
                else:
                    results.update(write_once(batch, noun=self.record_noun, reread=self._reread,
                                              prepare=lambda i, c, cur: self._body(c), send=self._patch))
        return [results[i] for i in range(len(changes))]

    def _rows(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for batch in chunks([i for i in dict.fromkeys(ids) if i.isdigit()], IDS_MAX):
            rows.update(self.api.by_ids("/api/v2/deals", batch))
        return rows

    def _values(self, row: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
        """Canonical values and the ``custom:`` fields named (an option field's label), as a change compares them."""
        # Organizations, persons and owners decide no write: no calls to resolve them.
        users = self._all_users() if self.metadata.known("users") else {}
        values = self._raw_deal(row, self._deal_fields(), users, {}, {}).values
        for name in custom_names(fields=fields):
            key = self._custom_key(name)
            if key is not None:
                values[f"{CUSTOM_PREFIX}{name}"] = self._custom_value(key, (row.get("custom_fields") or {}).get(key))
        values["_row"] = row
        return values

    def _reread(self, todo: Sequence[tuple[int, Change]]) -> dict[int, dict[str, Any] | None]:
        rows = self._rows([target_id(c, self.name) for _, c in todo])
        return {i: self._values(row, [f.field for f in c.fields]) if (row := rows.get(target_id(c, self.name))) else None
                for i, c in todo}

    def read_current(self, source_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        wanted_ = [*fields, "updated_at"]
        return {sid: {f: v for f, v in self._values(row, fields).items() if f in wanted_}
                for sid, row in self._rows(list(source_ids)).items()}

    def _patch(self, pending: list[tuple[int, Change, dict[str, Any]]]) -> dict[int, ChangeResult]:
        def patch(change: Change, body: dict[str, Any]) -> ChangeResult:
            self.api.request("PATCH", f"/api/v2/deals/{target_id(change, self.name)}", json=body, idempotent=False)
            return applied(change)
        return self._each(pending, patch)

    def _each(self, pending: list[tuple[int, Change, Any]], send: Any) -> dict[int, ChangeResult]:
        """One request per change; a change whose outcome is unknown is left out, to be re-read."""
        results: dict[int, ChangeResult] = {}
        for i, change, payload in pending:
            try:
                results[i] = send(change, payload)
            except AmbiguousWrite:
                continue
            except (SourceError, ConfigError) as e:
                results[i] = failed(change, str(e))
        return results

    def _body(self, change: Change, create_key: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        values = wanted(change)
        if change.kind is ChangeKind.CLOSE_LOST:
            values.setdefault("status", "lost")
        for field, value in values.items():
            if (name := custom_name(field)) is not None:
                key = self._custom_key(name)
                if key is None:
                    raise no_such_field("Pipedrive", name, f"create it with `pipesync fields create {self.name}` or in "
                                        f"Company settings → Data fields → Deal → Add custom field")
                custom[key] = self._custom_wire(key, value)
                continue
            if field not in WRITABLE:
                raise ConfigError(f"Pipedrive: pipesync cannot write the field {field!r} (writable: {', '.join(WRITABLE)})")
            key = WRITABLE[field]
            if key in INTEGER_FIELDS and value is not None:
                value = int(value)
            elif key == "probability" and value is not None:
                value = round(float(value) * 100)
            elif key == "value" and value is not None:
                value = float(value)  # v2 is strictly typed: numbers, not strings
            body[key] = wire(value)
        if not body and not custom:
            raise ConfigError("the change sets no fields")
        origin = self._origin_code()
        if origin:
            custom[origin] = origin_tag(key=create_key)
        if custom:
            body["custom_fields"] = custom
        return body

    # ------------------------------------------------------------ custom fields

    def _custom_key(self, name: str) -> str | None:
        """A custom field's 40-character key, given the key itself or the field's name."""
        fields = self._deal_fields()
        if name in fields:
            return name
        wanted_ = _field_key(name)
        return next((code for code, f in fields.items()
                     if f.get("is_custom_field", True) and _field_key(f.get("field_name", "")) == wanted_), None)

    def _custom_value(self, key: str, value: Any) -> Any:
        options = {str(o["id"]): o.get("label") for o in self._deal_fields()[key].get("options") or []}
        return options.get(str(value), value) if options and value is not None else value

    def _custom_wire(self, key: str, value: Any) -> Any:
        """A value as v2 takes it for this field: numbers as numbers, option fields by option id."""
        f = self._deal_fields()[key]
        if value is None:
            return None
        if f.get("options"):
            label = {True: "Yes", False: "No"}.get(value, value) if isinstance(value, bool) else str(value)
            found = next((o["id"] for o in f["options"] if str(o.get("label")) == label), None)
            if found is None:
                raise ConfigError(f"Pipedrive: {label!r} is not an option of the deal field {f.get('field_name')!r}")
            return found
        if f.get("field_type") in ("double", "monetary", "int"):
            return float(value)
        return wire(value)

    def deal_fields(self) -> list[FieldInfo]:
        self.metadata.forget("fields")
        writable = set(WRITABLE.values())
        return [FieldInfo(name=code, label=f.get("field_name") or code, kind=_KINDS.get(f.get("field_type"), "other"),
                          writable=bool(f.get("is_custom_field")) or code in writable,
                          custom=bool(f.get("is_custom_field")))
                for code, f in self._deal_fields().items()]

    def create_field(self, name: str, label: str, kind: FieldKind) -> FieldInfo:
        """A deal field named ``label``; Pipedrive answers with its key, which is the field's name from then on.
        A custom field already named so is returned, not made twice."""
        existing = self._custom_key(label)
        if existing is None:
            field_type, options = _FIELD_TYPES.get(kind, ("varchar", None))
            body: dict[str, Any] = {"field_name": label, "field_type": field_type}
            if options:
                body["options"] = [{"label": o} for o in options]
            existing = str(self.api.request("POST", "/api/v2/dealFields", json=body, idempotent=False)["data"]["field_code"])
        return next(f for f in self.deal_fields() if f.name == existing)

    # ------------------------------------------------------------ merges and activities

    def _merge(self, change: Change, current: dict[str, Any] | None) -> ChangeResult:
        if not change.merge_into:
            return failed(change, "a merge needs the surviving deal (merge_into)")
        sid = target_id(change, self.name)
        survivor = target_id(Change(deal_key=change.merge_into, kind=change.kind, rule="", reason=""), self.name)
        try:
            if current is None or not current.get("_row"):
                # Gone: merged by a run whose result was not recorded, or deleted by someone.
                return applied(change, new_source_id=survivor, reason=ALREADY_IN_PLACE) if self._merged(sid, survivor) \
                    else settle(change, None, self.record_noun)  # type: ignore[return-value]
            try:
                # v1 merge is the only merge endpoint; merging the same pair twice is refused, not duplicated.
                self.api.request("PUT", f"/api/v1/deals/{sid}/merge", json={"merge_with_id": int(survivor)},
                                 idempotent=False)
            except AmbiguousWrite:
                if not self._merged(sid, survivor):
                    return failed(change, "the merge's outcome is unknown and it was not applied; re-run the plan")
            return applied(change, new_source_id=survivor)
        except (SourceError, ConfigError) as e:
            return failed(change, str(e))

    def _merged(self, merged_id: str, survivor: str) -> bool:
        """Whether the survivor's change log records the merge of ``merged_id`` into it."""
        try:
            body = self.api.request("GET", f"/api/v1/deals/{survivor}/changelog", params={"limit": PAGE_MAX})
        except SourceError:
            return False
        return any(item.get("field_key") == "merge_what_id" and str(item.get("new_value")) == merged_id
                   for item in body.get("data") or [])

    def _reread_with_activities(self, todo: Sequence[tuple[int, Change]]) -> dict[int, dict[str, Any] | None]:
        """The deals, and for each the notes of its activities (one call per deal: no filter by several deals)."""
        current = self._reread(todo)
        for values in current.values():
            if values is not None:
                rows = self.api.all("/api/v2/activities", {"deal_id": values["source_id"], "limit": PAGE_MAX})
                values["_activities"] = {str(a["id"]): a.get("note") or "" for a in rows}
        return current

    def _activity_body(self, i: int, change: Change, current: dict[str, Any]) -> dict[str, Any] | ChangeResult:
        key = change_key(change)
        made = next((a for a, note in current["_activities"].items() if key in note), None)
        if made:
            return applied(change, new_source_id=made, reason=ALREADY_IN_PLACE)
        values = task_values(change)
        body = {"subject": str(values["subject"]), "type": "task", "deal_id": int(current["source_id"]),
                "note": tagged_body(change)}
        owner = current["_row"].get("owner_id")
        if owner is not None:
            body["owner_id"] = int(owner)
        if values.get("due_date"):
            body["due_date"] = wire(values["due_date"])
        return body

    def _create_activities(self, pending: list[tuple[int, Change, dict[str, Any]]]) -> dict[int, ChangeResult]:
        return self._each(pending, lambda c, body: applied(c, new_source_id=str(self.api.request(
            "POST", "/api/v2/activities", json=body, idempotent=False)["data"]["id"])))

    def _delete_activities(self, pending: list[tuple[int, Change, str]]) -> dict[int, ChangeResult]:
        def delete(change: Change, activity: str) -> ChangeResult:
            try:
                # Deleting twice is refused (404), never done twice: safe to retry after a dropped response.
                self.api.request("DELETE", f"/api/v2/activities/{activity}")
            except SourceError as e:
                if "HTTP 404" in str(e):
                    return applied(change, reason=ALREADY_IN_PLACE)
                raise
            return applied(change)
        return self._each(pending, delete)

    def _create(self, change: Change) -> ChangeResult:
        """A create is not idempotent: after an unknown outcome, look for it before any resend."""
        try:
            body = self._body(change, create_key=change.deal_key)
            if "title" not in body:
                return failed(change, "a new Pipedrive deal needs a name")
            try:
                created = self.api.request("POST", "/api/v2/deals", json=body, idempotent=False)
            except AmbiguousWrite:
                found = self._find_by_origin(body)
                if found is not None:
                    return applied(change, new_source_id=found)
                created = self.api.request("POST", "/api/v2/deals", json=body, idempotent=False)
            return applied(change, new_source_id=str(created["data"]["id"]))
        except (SourceError, ConfigError) as e:
            return failed(change, str(e))

    def find_created(self, keys: Sequence[str], since: datetime) -> dict[str, str]:
        origin = self._origin_code()
        if not origin:
            raise SourceError("Pipedrive: no origin field is configured to find created deals by")
        # Newest first, by id: Pipedrive's clock may differ from pipesync's, the tags carry pipesync's
        # own. Past a page with no tag written since ``since``, the interrupted creates are behind.
        found: dict[str, str] = {}
        for rows in self.api.pages("/api/v2/deals", {"sort_by": "id", "sort_direction": "desc"}):
            tags = [(r["id"], (r.get("custom_fields") or {}).get(origin)) for r in rows]
            found |= created_keys(tags, keys)
            if len(found) == len(set(keys)) or not any((at := tagged_at(t)) and at >= since for _, t in tags):
                break
        return found

    def _find_by_origin(self, body: dict[str, Any]) -> str | None:
        """The deal a lost create response made, found by its unique origin tag."""
        origin = self._origin_code()
        if not origin:
            raise AmbiguousWrite("Pipedrive: a create's outcome is unknown and no origin field is configured to check it")
        tag = body["custom_fields"][origin]
        since = tag.split()[1]
        for rows in self.api.pages("/api/v2/deals", {"updated_since": since, "sort_by": "update_time"}):
            for r in rows:
                if (r.get("custom_fields") or {}).get(origin) == tag:
                    return str(r["id"])
        return None

    def _origin_code(self) -> str | None:
        if not self.options.origin_field:
            return None
        key = _field_key(self.options.origin_field)
        for code, f in self._deal_fields().items():
            if _field_key(f.get("field_name", "")) == key:
                return code
        if not self.options.create_origin_field:
            raise ConfigError(
                f"Pipedrive: no deal field named {self.options.origin_field!r} to tag pipesync's writes; create a text "
                f"deal field with that name, or set the source's origin_field option"
            )
        # One text field, created once, so pipesync can tell its own write-back from a user's change.
        created = self.api.request("POST", "/api/v2/dealFields",
                                   json={"field_name": self.options.origin_field, "field_type": "varchar"})
        self._deal_fields()[str(created["data"]["field_code"])] = created["data"]  # known now: no re-listing
        return str(created["data"]["field_code"])


def _deal_id(d: dict[str, Any]) -> str:
    return str(d["id"])


def _updated(d: dict[str, Any]) -> Any:
    return d.get("update_time")

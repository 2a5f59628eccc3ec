"""HubSpot deals: full reads through the list API, incremental reads through search.

- Search caps every query at 10,000 results: the incremental read windows by time,
  re-querying ``hs_lastmodifieddate GTE <last seen>`` and de-duplicating by id at the
  boundary (and, should 10,000 deals share one timestamp, paging that instant by id).
  It starts ``lookback_s`` before the watermark because the search index lags writes.
- Archiving does not bump ``hs_lastmodifieddate``: archived deals are swept from the
  ``archived=true`` list on every run, and a full read (``snapshot_complete``) runs
  every ``reconcile_hours`` to catch anything else that vanished.
- A merge gives the survivor a new id and lists the merged ids in
  ``hs_merged_object_ids``: those become ``Page.aliases``.
- Companies and contacts come through associations, resolved with batch reads.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pipesync.adapters.base import Adapter
from pipesync.adapters.changes import applied, conflict, failed, with_valid_ids, origin_marks, origin_tag, target_id, wanted
from pipesync.adapters.auth import oauth_store_path
from pipesync.adapters.hubspot_client import HubSpotClient
from pipesync.adapters.hubspot_options import HubSpotOptions
from pipesync.adapters.lookups import Lookup
from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.watermark import Watermark
from pipesync.adapters.values import boolean, calendar_date, chunks, decimal_or_none, domain_of, instant
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, SourceError
from pipesync.model import (
    Change, ChangeKind, ChangeResult, Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, Owner, Page, RawDeal,
    RawStageChange,
)

PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
SEARCH_CAP = 10_000
BATCH_MAX = 100
HISTORY_BATCH_MAX = 50
MAX_BUFFERED_PAGES = 50
ORIGIN_PROPERTY = "pipesync_origin"
DEAL_PROPERTIES = [
    "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
    "hs_lastmodifieddate", "hubspot_owner_id", "closed_lost_reason", "hs_deal_stage_probability", "hs_next_step",
    "notes_last_updated", "hs_analytics_source", "hs_merged_object_ids", "hs_is_closed", ORIGIN_PROPERTY,
]
# canonical field → deal property, for writes
WRITABLE = {
    "name": "dealname", "amount": "amount", "currency": "deal_currency_code", "close_date": "closedate",
    "source_stage": "dealstage", "pipeline": "pipeline", "lost_reason": "closed_lost_reason",
    "next_step": "hs_next_step", "lead_source": "hs_analytics_source",
}


class HubSpotAdapter(Adapter):
    record_noun = "deal"

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = opts = HubSpotOptions.model_validate(source.options)
        self.lookback_ms = int(opts.lookback_s * 1000)
        self.reconcile_s = opts.reconcile_hours * 3600
        self.api = HubSpotClient(source, opts, oauth_store_path(source, opts, settings))
        self._pipelines: list[dict[str, Any]] | None = None
        self._owners: dict[str, dict[str, Any]] | None = None
        self.companies = Lookup(lambda ids: self._batch_read(self.api.companies_batch, ids, ["name", "domain", "website"]),
                                batch=BATCH_MAX)
        self.contacts = Lookup(lambda ids: self._batch_read(self.api.contacts_batch, ids, ["email"]), batch=BATCH_MAX)

    @property
    def calls(self) -> int:
        return self.api.calls

    # ------------------------------------------------------------ discovery

    def discover(self) -> Discovery:
        pipelines = []
        for p in sorted(self._all_pipelines(), key=lambda p: p.get("displayOrder", 0)):
            stages = []
            for s in sorted(p.get("stages") or [], key=lambda s: s.get("displayOrder", 0)):
                meta = s.get("metadata") or {}
                probability = None if meta.get("probability") in (None, "") else float(meta["probability"])
                closed = boolean(meta.get("isClosed"))
                stages.append(DiscoveredStage(
                    id=s["id"], label=s["label"], order=s.get("displayOrder"), probability=probability,
                    is_closed=closed,
                    # HubSpot's convention: a closed stage is won at probability 1, lost at 0.
                    is_won=None if closed is None else bool(closed and probability == 1.0),
                    active=not s.get("archived", False),
                ))
            pipelines.append(DiscoveredPipeline(id=p["id"], label=p["label"], stages=stages))
        owners = [Owner(id=i, name=_full_name(o), email=o.get("email")) for i, o in self._all_owners().items()]
        return Discovery(source=self.name, pipelines=pipelines, owners=owners)

    def _all_pipelines(self) -> list[dict[str, Any]]:
        if self._pipelines is None:
            body = self.api.call(self.api.pipelines.get_all, "deals", what="list deal pipelines")
            self._pipelines = [p for p in body.get("results") or [] if not p.get("archived")]
        return self._pipelines

    def _all_owners(self) -> dict[str, dict[str, Any]]:
        if self._owners is None:
            owners: dict[str, dict[str, Any]] = {}
            after = None
            while True:
                body = self.api.call(self.api.owners.get_page, limit=500, after=after, what="list owners")
                owners.update({str(o["id"]): o for o in body.get("results") or []})
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    break
            self._owners = owners
        return self._owners

    def _properties(self) -> list[str]:
        # The time each deal entered its current stage lives in one property per stage.
        stage_ids = [s["id"] for p in self._all_pipelines() for s in p.get("stages") or []]
        return DEAL_PROPERTIES + list(self.options.external_ref_properties) + [f"hs_v2_date_entered_{s}" for s in stage_ids]

    # ------------------------------------------------------------ reads

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        state = dict(since.value) if since and since.value else {}
        if state.get("full_after"):
            yield from self._full_read(state)  # a full read that was stopped: continue it
        elif not state or time.time() - float(state.get("full_at", 0)) >= self.reconcile_s:
            yield from self._full_read({})
        else:
            yield from self._incremental_read(state)

    def _full_read(self, resumed: dict[str, Any]) -> Iterator[Page]:
        started_ms = int(float(resumed.get("full_started", time.time())) * 1000)
        properties = self._properties()
        # Anything modified after the read started is the next incremental read's business.
        base = {"mark": Watermark(started_ms - self.lookback_ms).dump(),
                "archived_ms": started_ms - self.lookback_ms, "full_started": started_ms / 1000}
        after, buffered = resumed.get("full_after"), []
        while True:
            body = self.api.call(self.api.deals.get_page, limit=PAGE_MAX, after=after, properties=properties,
                                 associations=["companies", "contacts"], archived=False, what="list deals")
            rows = body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            # Each page's cursor continues the listing right after it if the run stops there.
            buffered.append((rows, {r["id"]: _association_ids(r) for r in rows}, {**base, "full_after": after}))
            yield from self._flush(buffered, final=not after)
            if not after:
                break
        archived = [r["id"] for r in self._archived()]
        done = {k: v for k, v in base.items() if k != "full_started"} | {"full_at": started_ms / 1000}
        yield Page(deals=[], deleted_ids=archived, cursor=Cursor(value=done), snapshot_complete=not resumed)

    def _flush(self, buffered: list[tuple[list[dict[str, Any]], dict[str, tuple[list[str], list[str]]], dict[str, Any]]],
               *, final: bool) -> Iterator[Page]:
        """Pages whose companies and contacts are known, fetching them only in full batches of 100.

        Held pages wait until a full batch of unknown companies or contacts has gathered, so one
        batch read serves several pages instead of a part-filled batch per page.
        """
        companies = self.companies.unknown(c for _, links, _ in buffered for ids in links.values() for c in ids[0][:1])
        contacts = self.contacts.unknown(c for _, links, _ in buffered for ids in links.values() for c in ids[1])
        if not (final or len(buffered) >= MAX_BUFFERED_PAGES or max(len(companies), len(contacts)) >= BATCH_MAX):
            return
        whole = final or len(buffered) >= MAX_BUFFERED_PAGES
        self.companies.resolve(companies if whole else companies[:len(companies) // BATCH_MAX * BATCH_MAX])
        self.contacts.resolve(contacts if whole else contacts[:len(contacts) // BATCH_MAX * BATCH_MAX])
        while buffered:
            rows, links, state = buffered[0]
            pending = self.companies.unknown(ids[0][0] for ids in links.values() if ids[0]) or \
                self.contacts.unknown(c for ids in links.values() for c in ids[1])
            if pending:
                return
            buffered.pop(0)
            yield self._page(rows, links, state)

    def _incremental_read(self, state: dict[str, Any]) -> Iterator[Page]:
        properties = self._properties()
        mark = Watermark.load(state.get("mark"))
        for rows in self._search_since(int(mark.stamp) - self.lookback_ms, properties):
            rows = mark.fresh(rows, _deal_id, _modified_ms)
            if not rows:
                continue
            links = self._associations([r["id"] for r in rows])
            mark = mark.advance(rows, _deal_id, _modified_ms)
            state["mark"] = mark.dump()
            yield self._page(rows, links, state)
        # Archiving does not bump hs_lastmodifieddate: sweep the archive for what is new there.
        sweep_from = int(state.get("archived_ms", 0)) - self.lookback_ms
        started_ms = int(time.time() * 1000)
        gone = [r["id"] for r in self._archived() if (instant(r.get("archivedAt")) is None
                                                      or _ms(instant(r.get("archivedAt"))) >= sweep_from)]
        state["archived_ms"] = started_ms
        yield Page(deals=[], deleted_ids=gone, cursor=Cursor(value=dict(state)))

    def _search_since(self, since_ms: int, properties: list[str]) -> Iterator[list[dict[str, Any]]]:
        """Every deal modified at or after ``since_ms``, past the 10,000-result cap, each version once."""
        low = since_ms
        yielded: dict[str, int] = {}  # id → modification time already yielded, for the window boundaries
        while True:
            after, last_ts = None, low
            while True:
                body = self._search([_filter("hs_lastmodifieddate", "GTE", low)], "hs_lastmodifieddate", properties, after)
                rows = _unseen(body.get("results") or [], yielded)
                last_ts = max([last_ts, *(_modified_ms(r) for r in rows)])
                yield rows
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return
                if int(after) >= SEARCH_CAP:
                    break
            if last_ts == low:
                # 10,000 deals at one instant: page that instant by id, then move past it.
                yield from self._search_instant(low, properties, yielded)
                low += 1
            else:
                low = last_ts
            yielded = {i: t for i, t in yielded.items() if t >= low}

    def _search_instant(self, ts: int, properties: list[str], yielded: dict[str, int]) -> Iterator[list[dict[str, Any]]]:
        last_id = "0"
        while True:
            body = self._search([_filter("hs_lastmodifieddate", "EQ", ts), _filter("hs_object_id", "GT", last_id)],
                                "hs_object_id", properties, None)
            results = body.get("results") or []
            if not results:
                return
            yield _unseen(results, yielded)
            last_id = results[-1]["id"]

    def _search(self, filters: list[dict[str, Any]], sort: str, properties: list[str], after: str | None) -> dict[str, Any]:
        request = {"filterGroups": [{"filters": filters}], "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
                   "properties": properties, "limit": SEARCH_PAGE_MAX}
        if after:
            request["after"] = after
        return self.api.call(self.api.deals_search.do_search, request, what="search deals", search=True)

    def _archived(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        after = None
        while True:
            body = self.api.call(self.api.deals.get_page, limit=PAGE_MAX, after=after, archived=True,
                                 properties=["hs_lastmodifieddate"], what="list archived deals")
            rows.extend(body.get("results") or [])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return rows

    def _page(self, rows: list[dict[str, Any]], links: dict[str, tuple[list[str], list[str]]],
              state: dict[str, Any]) -> Page:
        companies = self.companies.resolve(c for ids in links.values() for c in ids[0][:1])
        contacts = self.contacts.resolve(c for ids in links.values() for c in ids[1])
        owners = self._all_owners()
        deals, aliases = [], {}
        for r in rows:
            company_ids, contact_ids = links.get(r["id"], ([], []))
            deals.append(self._raw_deal(r, companies.get(company_ids[0]) if company_ids else None,
                                        [contacts[c] for c in contact_ids if c in contacts], owners))
            merged = (r.get("properties") or {}).get("hs_merged_object_ids") or ""
            aliases.update({m: r["id"] for m in merged.split(";") if m.strip() and m.strip() != r["id"]})
        return Page(deals=deals, aliases=aliases, cursor=Cursor(value=dict(state)))

    def _raw_deal(self, r: dict[str, Any], company: dict[str, Any] | None, contacts: list[dict[str, Any]],
                  owners: dict[str, dict[str, Any]]) -> RawDeal:
        p = r.get("properties") or {}
        owner = owners.get(str(p.get("hubspot_owner_id")), {})
        company_props = (company or {}).get("properties") or {}
        updated_at = instant(p.get("hs_lastmodifieddate") or r.get("updatedAt"))
        probability = p.get("hs_deal_stage_probability")
        values = {
            "source_id": r["id"],
            "name": p.get("dealname") or "",
            "pipeline": p.get("pipeline"),
            "source_stage": p.get("dealstage"),
            "amount": decimal_or_none(p.get("amount")),
            "currency": p.get("deal_currency_code") or None,
            "probability": None if probability in (None, "") else float(probability),
            # Date-only close dates are stored at midnight UTC: keep the written calendar day.
            "close_date": calendar_date(p.get("closedate")),
            # Moving a deal to a closed stage sets closedate to that day (unless someone types another).
            "actual_close_date": calendar_date(p.get("closedate")) if boolean(p.get("hs_is_closed")) else None,
            "created_at": instant(p.get("createdate") or r.get("createdAt")),
            "updated_at": updated_at,
            "stage_entered_at": instant(p.get(f"hs_v2_date_entered_{p.get('dealstage')}")),
            "last_activity_at": instant(p.get("notes_last_updated")),
            "owner_email": owner.get("email"),
            "owner_name": _full_name(owner) if owner else None,
            "account_name": company_props.get("name"),
            "account_domain": company_props.get("domain") or domain_of(company_props.get("website")),
            "contact_emails": [c["properties"]["email"] for c in contacts if (c.get("properties") or {}).get("email")],
            "lead_source": p.get("hs_analytics_source") or None,
            "lost_reason": p.get("closed_lost_reason") or None,
            "next_step": p.get("hs_next_step") or None,
            "external_refs": [f"{system}:{p[k]}" for k, system in self.options.external_ref_properties.items() if p.get(k)],
            "is_deleted": bool(r.get("archived")),
        }
        raw = {**r, **origin_marks(p.get(ORIGIN_PROPERTY), updated_at, self.options.own_write_tolerance_s)}
        return RawDeal(source_id=r["id"], locator=f"HubSpot deal {r['id']}", values=values, raw=raw)

    def _batch_read(self, api: Any, ids: list[str], properties: list[str]) -> dict[str, dict[str, Any]]:
        body = self.api.call(api.read, {"inputs": [{"id": i} for i in ids], "properties": properties,
                                        "propertiesWithHistory": []}, archived=False, what="batch read")
        return {r["id"]: r for r in body.get("results") or []}

    def _associations(self, deal_ids: list[str]) -> dict[str, tuple[list[str], list[str]]]:
        """deal id → (company ids, contact ids), two batch calls per 100 deals."""
        links: dict[str, tuple[list[str], list[str]]] = {i: ([], []) for i in deal_ids}
        for index, to_type in enumerate(("companies", "contacts")):
            for batch in chunks(deal_ids, BATCH_MAX):
                body = self.api.call(self.api.associations.get_page, "deals", to_type,
                                     {"inputs": [{"id": i} for i in batch]}, what=f"read deal→{to_type} associations")
                for result in body.get("results") or []:
                    deal_id = str((result.get("_from") or result.get("from") or {}).get("id"))
                    if deal_id in links:
                        links[deal_id][index].extend(str(t["toObjectId"]) for t in result.get("to") or [])
        return links

    # ------------------------------------------------------------ history

    def read_stage_history(self, source_ids: Sequence[str]) -> Iterator[RawStageChange]:
        """From ``propertiesWithHistory=dealstage``: 50 deals per batch read."""
        for batch in chunks(list(source_ids), HISTORY_BATCH_MAX):
            body = self.api.call(self.api.deals_batch.read, {
                "inputs": [{"id": i} for i in batch], "properties": ["pipeline"], "propertiesWithHistory": ["dealstage"],
            }, archived=False, what="read deal stage history")
            for r in body.get("results") or []:
                entries = sorted(((r.get("propertiesWithHistory") or {}).get("dealstage") or []),
                                 key=lambda e: e["timestamp"])
                previous = None
                for e in entries:
                    if e.get("value") and e["value"] != previous:
                        yield RawStageChange(source_id=r["id"], pipeline=(r.get("properties") or {}).get("pipeline"),
                                             from_stage=previous, to_stage=e["value"],
                                             changed_at=instant(e["timestamp"]))  # type: ignore[arg-type]
                    previous = e.get("value") or previous

    # ------------------------------------------------------------ writes

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        return with_valid_ids(changes, self.name, str.isdigit, "HubSpot deal", self._write)

    def _write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        results: dict[int, ChangeResult] = {}
        indexed = list(enumerate(changes))
        updates = [(i, c) for i, c in indexed if c.kind not in (ChangeKind.CREATE, ChangeKind.MERGE)]
        for batch in chunks(updates, BATCH_MAX):
            results.update(self._update_batch(batch))
        for i, c in indexed:
            if c.kind is ChangeKind.MERGE:
                results[i] = self._merge(c)
        creates = [(i, c) for i, c in indexed if c.kind is ChangeKind.CREATE]
        for batch in chunks(creates, BATCH_MAX):
            results.update(self._create_batch(batch))
        return [results[i] for i in range(len(changes))]

    def _current(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        body = self.api.call(self.api.deals_batch.read, {"inputs": [{"id": i} for i in ids],
                                                         "properties": DEAL_PROPERTIES, "propertiesWithHistory": []},
                             archived=False, what="read deals before writing")
        # A merged-away id resolves to its survivor: that deal is not the one the plan saw.
        return {r["id"]: r for r in body.get("results") or []}

    def _update_batch(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        results: dict[int, ChangeResult] = {}
        current = self._current([target_id(c, self.name) for _, c in batch])
        owners = self._all_owners()
        inputs, pending = [], {}
        for i, change in batch:
            sid = target_id(change, self.name)
            record = current.get(sid)
            values = None if record is None else self._raw_deal(record, None, [], owners).values
            blocked = conflict(change, values, self.record_noun)
            if blocked:
                results[i] = blocked
                continue
            try:
                properties = self._properties_for(change, record)
            except ConfigError as e:
                results[i] = failed(change, str(e))
                continue
            inputs.append({"id": sid, "properties": properties})
            pending[sid] = (i, change)
        if inputs:
            try:
                body = self.api.call(self.api.deals_batch.update, {"inputs": inputs}, what="batch update deals")
            except SourceError as e:
                return results | {i: failed(c, str(e)) for i, c in pending.values()}
            errors = _errors_by_id(body)
            for sid, (i, change) in pending.items():
                results[i] = failed(change, errors[sid]) if sid in errors else applied(change)
        return results

    def _properties_for(self, change: Change, record: dict[str, Any] | None, key: str | None = None) -> dict[str, str]:
        values = wanted(change)
        if change.kind is ChangeKind.CLOSE_LOST and "source_stage" not in values:
            values["source_stage"] = self._lost_stage((record or {}).get("properties", {}).get("pipeline"))
        properties = {}
        for field, value in values.items():
            if field not in WRITABLE:
                raise ConfigError(f"HubSpot: pipesync cannot write the field {field!r} (writable: {', '.join(WRITABLE)})")
            properties[WRITABLE[field]] = _property_value(value)
        if not properties:
            raise ConfigError("the change sets no fields")
        properties[ORIGIN_PROPERTY] = origin_tag(key=key)
        return properties

    def _lost_stage(self, pipeline_id: str | None) -> str:
        for p in self._all_pipelines():
            if p["id"] == pipeline_id:
                for s in sorted(p.get("stages") or [], key=lambda s: s.get("displayOrder", 0)):
                    meta = s.get("metadata") or {}
                    if boolean(meta.get("isClosed")) and float(meta.get("probability") or 0) == 0.0:
                        return s["id"]
        raise ConfigError(f"HubSpot: pipeline {pipeline_id!r} has no closed-lost stage to move the deal to")

    def _merge(self, change: Change) -> ChangeResult:
        if not change.merge_into:
            return failed(change, "a merge needs the surviving deal (merge_into)")
        primary = target_id(Change(deal_key=change.merge_into, kind=change.kind, rule="", reason=""), self.name)
        try:
            body = self.api.call(self.api.deals.merge, {"primaryObjectId": primary,
                                                        "objectIdToMerge": target_id(change, self.name)},
                                 what="merge deals", idempotent=False)
        except AmbiguousWrite:
            # A merged-away id, read by id, resolves to the survivor: check before any resend.
            merged_id = target_id(change, self.name)
            survivor = next(iter(self._current([merged_id]).values()), None)
            if survivor is not None and survivor["id"] != merged_id:
                return applied(change, new_source_id=survivor["id"])
            return failed(change, "the merge's outcome is unknown and it was not applied; re-run the plan")
        except SourceError as e:
            return failed(change, str(e))
        # HubSpot gives the merged deal a new id: history and write-back follow it.
        return applied(change, new_source_id=str(body.get("id")))

    def _create_batch(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        """Creates are tagged with a unique origin per change; after a lost response, search by tag first."""
        results: dict[int, ChangeResult] = {}
        inputs, tags = [], {}
        for i, change in batch:
            try:
                props = self._properties_for(change, None, key=str(i))
            except ConfigError as e:
                results[i] = failed(change, str(e))
                continue
            inputs.append({"properties": props, "associations": []})
            tags[props[ORIGIN_PROPERTY]] = (i, change)
        if not inputs:
            return results
        try:
            body = self.api.call(self.api.deals_batch.create, {"inputs": inputs}, what="batch create deals",
                                 idempotent=False)
            made = {(r.get("properties") or {}).get(ORIGIN_PROPERTY): r["id"] for r in body.get("results") or []}
        except AmbiguousWrite:
            made = self._find_by_origin(list(tags))
            missing = [inp for inp in inputs if inp["properties"][ORIGIN_PROPERTY] not in made]
            if missing:
                body = self.api.call(self.api.deals_batch.create, {"inputs": missing}, what="batch create deals",
                                     idempotent=False)
                made |= {(r.get("properties") or {}).get(ORIGIN_PROPERTY): r["id"] for r in body.get("results") or []}
        except SourceError as e:
            return results | {i: failed(c, str(e)) for i, c in tags.values()}
        for tag, (i, change) in tags.items():
            results[i] = applied(change, new_source_id=made[tag]) if tag in made else failed(change, "HubSpot did not create it")
        return results

    def _find_by_origin(self, tags: list[str]) -> dict[str, str]:
        found = {}
        for batch in chunks(tags, 100):
            body = self._search([{"propertyName": ORIGIN_PROPERTY, "operator": "IN", "values": batch}],
                                "hs_lastmodifieddate", [ORIGIN_PROPERTY], None)
            found.update({(r.get("properties") or {}).get(ORIGIN_PROPERTY): r["id"] for r in body.get("results") or []})
        return found


def _unseen(rows: list[dict[str, Any]], yielded: dict[str, int]) -> list[dict[str, Any]]:
    fresh = [r for r in rows if yielded.get(r["id"]) != _modified_ms(r)]
    yielded.update({r["id"]: _modified_ms(r) for r in fresh})
    return fresh


def _filter(name: str, operator: str, value: Any) -> dict[str, Any]:
    return {"propertyName": name, "operator": operator, "value": str(value)}


def _ms(dt: datetime | None) -> int:
    return 0 if dt is None else int(dt.timestamp() * 1000)


def _deal_id(r: dict[str, Any]) -> str:
    return r["id"]


def _modified_ms(r: dict[str, Any]) -> int:
    return _ms(instant((r.get("properties") or {}).get("hs_lastmodifieddate") or r.get("updatedAt")))


def _association_ids(r: dict[str, Any]) -> tuple[list[str], list[str]]:
    assoc = r.get("associations") or {}

    def ids(kind: str) -> list[str]:
        return list(dict.fromkeys(str(a["id"]) for a in (assoc.get(kind) or {}).get("results") or []))

    return ids("companies"), ids("contacts")


def _full_name(owner: dict[str, Any]) -> str | None:
    name = " ".join(x for x in (owner.get("firstName"), owner.get("lastName")) if x)
    return name or None


def _property_value(value: Any) -> str:
    if value is None:
        return ""  # HubSpot clears a property set to the empty string
    if isinstance(value, datetime):
        return str(_ms(value))
    if isinstance(value, date):
        # A date-only value is midnight UTC of that calendar day.
        return str(_ms(datetime(value.year, value.month, value.day, tzinfo=timezone.utc)))
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _errors_by_id(body: dict[str, Any]) -> dict[str, str]:
    errors = {}
    for e in body.get("errors") or []:
        for i in (e.get("context") or {}).get("ids") or []:
            errors[str(i)] = f"HubSpot: {e.get('category', 'error')}: {e.get('message', '')}"[:300]
    return errors

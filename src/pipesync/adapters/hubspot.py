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

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pipesync.adapters.base import Adapter
from pipesync.adapters.changes import (
    ALREADY_IN_PLACE, TASK_KINDS, applied, change_key, created_keys, custom_name, custom_names, failed, no_such_field, origin_marks,
    origin_tag, tagged_body, target_id, task_id_of, task_values, wanted, with_valid_ids, write_once,
)
from pipesync.adapters.auth import oauth_store_path
from pipesync.adapters.hubspot_client import HubSpotClient
from pipesync.adapters.hubspot_options import HubSpotOptions
from pipesync.adapters.lookups import Lookup
from pipesync.adapters.metadata import KEY as METADATA_KEY, Metadata
from pipesync.adapters.policy import AmbiguousWrite
from pipesync.adapters.watermark import Watermark
from pipesync.adapters.values import boolean, calendar_date, chunks, decimal_or_none, domain_of, instant
from pipesync.config import Settings, SourceConfig
from pipesync.errors import ConfigError, SourceError
from pipesync.model import (
    CUSTOM_PREFIX, Change, ChangeKind, ChangeResult, Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, FieldInfo,
    FieldKind, Owner, Page, RawDeal, RawStageChange,
)

PAGE_MAX = 100
SEARCH_PAGE_MAX = 200
SEARCH_CAP = 10_000
BATCH_MAX = 100
HISTORY_BATCH_MAX = 50
ENTERED, EXITED = "hs_v2_date_entered_", "hs_v2_date_exited_"
# Entry and exit stamps of one stage move are HubSpot's one write: they may differ by a few ms only.
CHAIN_TOLERANCE_MS = 1000
MAX_BUFFERED_PAGES = 50
ORIGIN_PROPERTY = "pipesync_origin"
PROPERTY_GROUP = "pipesync"
TASK_TO_DEAL = 216  # HubSpot-defined association type: task → deal
# property type → what pipesync can write into it, and back
_KINDS: dict[str | None, FieldKind] = {"string": "text", "number": "number", "date": "date", "datetime": "date",
                                       "bool": "boolean"}
_PROPERTY_TYPES = {"text": ("string", "text"), "url": ("string", "text"), "number": ("number", "number"),
                   "date": ("date", "date"), "boolean": ("bool", "booleancheckbox")}
DEAL_PROPERTIES = [
    "dealname", "amount", "deal_currency_code", "dealstage", "pipeline", "closedate", "createdate",
    "hs_lastmodifieddate", "hubspot_owner_id", "closed_lost_reason", "hs_deal_stage_probability", "hs_next_step",
    "notes_last_updated", "hs_analytics_source", "hs_merged_object_ids", "hs_is_closed", ORIGIN_PROPERTY,
]
# canonical field → deal property, for writes
WRITABLE = {
    "name": "dealname", "amount": "amount", "currency": "deal_currency_code", "close_date": "closedate",
    "source_stage": "dealstage", "pipeline": "pipeline", "lost_reason": "closed_lost_reason",
    "next_step": "hs_next_step", "lead_source": "hs_analytics_source", "owner_id": "hubspot_owner_id",
}


class HubSpotAdapter(Adapter):
    record_noun = "deal"
    write_batch_max = BATCH_MAX
    writable_fields = frozenset(WRITABLE)
    merges = True

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = opts = HubSpotOptions.model_validate(source.options)
        self.lookback_ms = int(opts.lookback_s * 1000)
        self.reconcile_s = opts.reconcile_hours * 3600
        self.api = HubSpotClient(source, opts, oauth_store_path(source, opts, settings))
        self.metadata = Metadata(opts.metadata_refresh_hours * 3600)
        self._property_catalog: dict[str, dict[str, Any]] | None = None
        # deal id → its stage visits read from the stage date properties, None where they do not chain;
        # kept from the last page until sync asks for its history
        self._chains: dict[str, tuple[str | None, list[tuple[str, datetime]]] | None] = {}
        self._page_ids: list[str] = []
        self.companies = Lookup(lambda ids: self._batch_read(self.api.companies_batch, ids, ["name", "domain", "website"]),
                                batch=BATCH_MAX)
        self.contacts = Lookup(lambda ids: self._batch_read(self.api.contacts_batch, ids, ["email"]), batch=BATCH_MAX)
        # Stage history from the property history, for deals whose stage dates do not give it.
        self.histories = Lookup(self._property_histories, batch=HISTORY_BATCH_MAX)

    @property
    def calls(self) -> int:
        return self.api.calls

    @property
    def rate_limited(self) -> int:
        return self.api.rate_limited

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

    def resume(self, since: Cursor | None) -> None:
        self.metadata.resume(since)

    def _all_pipelines(self) -> list[dict[str, Any]]:
        def fetch() -> list[dict[str, Any]]:
            body = self.api.call(self.api.pipelines.get_all, "deals", what="list deal pipelines")
            return [p for p in body.get("results") or [] if not p.get("archived")]
        return self.metadata.get("pipelines", fetch)

    def _all_owners(self) -> dict[str, dict[str, Any]]:
        def fetch() -> dict[str, dict[str, Any]]:
            owners: dict[str, dict[str, Any]] = {}
            after = None
            while True:
                body = self.api.call(self.api.owners.get_page, limit=500, after=after, what="list owners")
                owners.update({str(o["id"]): o for o in body.get("results") or []})
                after = ((body.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return owners
        return self.metadata.get("owners", fetch)

    def _stage_ids(self) -> list[str]:
        return [s["id"] for p in self._all_pipelines() for s in p.get("stages") or []]

    def _properties(self) -> list[str]:
        # When each deal last entered and left each stage lives in two properties per stage: they date
        # the current stage and, where they chain without gaps, give the whole history at no extra call.
        return DEAL_PROPERTIES + list(self.options.external_ref_properties) + \
            [f"{prefix}{s}" for s in self._stage_ids() for prefix in (ENTERED, EXITED)]

    # ------------------------------------------------------------ reads

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        state = dict(since.value) if since and since.value else {}
        state.pop(METADATA_KEY, None)
        if state.get("full_after"):
            pages = self._full_read(state)  # a full read that was stopped: continue it
        elif not state or time.time() - float(state.get("full_at", 0)) >= self.reconcile_s:
            pages = self._full_read({})
        else:
            pages = self._incremental_read(state)
        yield from self.metadata.carried(pages)

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
        """Pages whose companies, contacts and (where the stage dates do not give it) stage history
        are known, fetching them only in full batches.

        Held pages wait until a full batch of unknown records has gathered, so one batch read
        serves several pages instead of a part-filled batch per page.
        """
        for rows, _, _ in buffered:
            self._chains.update((r["id"], _stage_chain(r.get("properties") or {}, self._stage_ids()))
                                for r in rows if r["id"] not in self._chains)
        needed = [(lookup, lookup.unknown(i for rows, links, _ in buffered for i in ids(rows, links)))
                  for lookup, ids in self._needs()]
        whole = final or len(buffered) >= MAX_BUFFERED_PAGES
        if not (whole or any(len(missing) >= lookup.batch for lookup, missing in needed)):
            return
        for lookup, missing in needed:
            lookup.resolve(missing if whole else missing[:len(missing) // lookup.batch * lookup.batch])
        while buffered:
            rows, links, state = buffered[0]
            if any(lookup.unknown(ids(rows, links)) for lookup, ids in self._needs()):
                return
            buffered.pop(0)
            yield self._page(rows, links, state)

    def _needs(self) -> list[tuple[Lookup, Callable[[list[dict[str, Any]], dict[str, tuple[list[str], list[str]]]],
                                                    Iterable[str]]]]:
        """What a page's deals need fetched: (lookup, the ids a page's rows and associations want from it)."""
        needs: list = [(self.companies, lambda rows, links: (ids[0][0] for ids in links.values() if ids[0])),
                       (self.contacts, lambda rows, links: (c for ids in links.values() for c in ids[1]))]
        if self.options.history_wanted(self.history_in_bulk):
            needs.append((self.histories, lambda rows, links: (r["id"] for r in rows if self._chains.get(r["id"]) is None)))
        return needs

    def _incremental_read(self, state: dict[str, Any]) -> Iterator[Page]:
        properties = self._properties()
        mark = Watermark.load(state.get("mark"))
        # The deal versions read within the lookback: the window comes back on the next run, and
        # re-reading them would cost their associations, companies and contacts again.
        recent: dict[str, int] = dict(state.get("recent") or {})
        for rows in self._search_since(int(mark.stamp) - self.lookback_ms, properties):
            rows = [r for r in mark.fresh(rows, _deal_id, _modified_ms) if recent.get(r["id"]) != _modified_ms(r)]
            if not rows:
                continue
            links = self._associations([r["id"] for r in rows])
            mark = mark.advance(rows, _deal_id, _modified_ms)
            recent.update((r["id"], _modified_ms(r)) for r in rows)
            recent = {i: ms for i, ms in recent.items() if ms >= int(mark.stamp) - self.lookback_ms}
            state["mark"], state["recent"] = mark.dump(), recent
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
        owners, stage_ids = self._all_owners(), self._stage_ids()
        named = {(r.get("properties") or {}).get("hubspot_owner_id") or None for r in rows} - {None}
        staged = {(r.get("properties") or {}).get("dealstage") or None for r in rows} - {None}
        if (named - owners.keys() or staged - set(stage_ids)) and self.metadata.refresh():
            owners, stage_ids = self._all_owners(), self._stage_ids()  # a new owner or stage: re-read the lists
        deals, aliases = [], {}
        # sync asks for a page's history before it takes the next one: the earlier pages' are done with
        for i in self._page_ids:
            self._chains.pop(i, None)
        self._page_ids = [r["id"] for r in rows]
        for r in rows:
            company_ids, contact_ids = links.get(r["id"], ([], []))
            deals.append(self._raw_deal(r, companies.get(company_ids[0]) if company_ids else None,
                                        [contacts[c] for c in contact_ids if c in contacts], owners))
            if r["id"] not in self._chains:
                self._chains[r["id"]] = _stage_chain(r.get("properties") or {}, stage_ids)
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
            "stage_entered_at": instant(p.get(f"{ENTERED}{p.get('dealstage')}")),
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
        """From the stage date properties read with the deals, where they chain without a gap; else
        from ``propertiesWithHistory=dealstage`` (50 deals per batch read, gathered across pages on a
        full read): a deal that went back to a stage keeps only its last visit's dates."""
        unchained = []
        for deal_id in source_ids:
            chain = self._chains.get(deal_id)
            if chain is None:
                unchained.append(deal_id)
            else:
                yield from _changes(deal_id, *chain)
        for changes in self.histories.resolve(unchained).values():
            yield from changes

    def _property_histories(self, ids: list[str]) -> dict[str, list[RawStageChange]]:
        body = self.api.call(self.api.deals_batch.read, {
            "inputs": [{"id": i} for i in ids], "properties": ["pipeline"], "propertiesWithHistory": ["dealstage"],
        }, archived=False, what="read deal stage history")
        found: dict[str, list[RawStageChange]] = {i: [] for i in ids}
        for r in body.get("results") or []:
            entries = sorted(((r.get("propertiesWithHistory") or {}).get("dealstage") or []), key=lambda e: e["timestamp"])
            visits = [(e["value"], instant(e["timestamp"])) for e in entries if e.get("value")]
            found[r["id"]] = list(_changes(r["id"], (r.get("properties") or {}).get("pipeline"), visits))
        return found

    # ------------------------------------------------------------ writes

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        return with_valid_ids(changes, self.name, str.isdigit, "HubSpot deal", self._write)

    def _write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """One re-read and one batch call per kind of change in the batch; merges one by one."""
        results: dict[int, ChangeResult] = {}
        groups: dict[ChangeKind | None, list[tuple[int, Change]]] = {}
        for i, c in enumerate(changes):
            if c.kind is ChangeKind.MERGE:
                results[i] = self._merge(c)
            else:
                groups.setdefault(c.kind if c.kind in (ChangeKind.CREATE, *TASK_KINDS) else None, []).append((i, c))
        send = {None: self._send_updates, ChangeKind.CREATE: self._create_batch,
                ChangeKind.CREATE_TASK: self._send_task_creates, ChangeKind.DELETE_TASK: self._send_task_deletes}
        for kind, members in groups.items():
            for batch in chunks(members, BATCH_MAX):
                results.update(send[kind](batch))
        return [results[i] for i in range(len(changes))]

    def _current_list(self, ids: list[str], custom: Sequence[str] = ()) -> list[dict[str, Any]]:
        body = self.api.call(self.api.deals_batch.read, {"inputs": [{"id": i} for i in ids],
                                                         "properties": [*DEAL_PROPERTIES, *custom],
                                                         "propertiesWithHistory": []},
                             archived=False, what="read deals before writing")
        return body.get("results") or []

    def _current(self, ids: list[str], custom: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        # A merged-away id resolves to its survivor: that deal is not the one the plan saw.
        return {r["id"]: r for r in self._current_list(ids, custom)}

    def _current_values(self, record: dict[str, Any], custom: Sequence[str]) -> dict[str, Any]:
        # Owners only name the owner, which no write compares: no extra call to list them.
        values = self._raw_deal(record, None, [], self._all_owners() if self.metadata.known("owners") else {}).values
        props = record.get("properties") or {}
        values.update({f"{CUSTOM_PREFIX}{name}": props.get(name) for name in custom})
        values["_record"] = record
        return values

    def _reread(self, custom: Sequence[str]) -> Any:
        def reread(todo: Sequence[tuple[int, Change]]) -> dict[int, dict[str, Any] | None]:
            records = self._current([target_id(c, self.name) for _, c in todo], custom)
            return {i: self._current_values(r, custom) if (r := records.get(target_id(c, self.name))) else None
                    for i, c in todo}
        return reread

    def read_current(self, source_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        custom = custom_names(fields=fields)
        wanted_ = [*fields, "updated_at"]
        found: dict[str, dict[str, Any]] = {}
        for batch in chunks([i for i in dict.fromkeys(source_ids) if i.isdigit()], BATCH_MAX):
            for sid, record in self._current(batch, custom).items():
                found[sid] = {f: v for f, v in self._current_values(record, custom).items() if f in wanted_}
        return found

    def _send_updates(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        return write_once(batch, noun=self.record_noun, reread=self._reread(custom_names(c for _, c in batch)),
                          prepare=lambda i, c, cur: {"id": target_id(c, self.name),
                                                     "properties": self._properties_for(c, cur["_record"])},
                          send=self._batch_update)

    def _batch_update(self, pending: list[tuple[int, Change, dict[str, Any]]]) -> dict[int, ChangeResult]:
        body = self.api.call(self.api.deals_batch.update, {"inputs": [p for _, _, p in pending]},
                             what="batch update deals", idempotent=False)
        errors = _errors_by_id(body)
        return {i: failed(c, errors[p["id"]]) if p["id"] in errors else applied(c) for i, c, p in pending}

    # ------------------------------------------------------------ tasks

    def _send_task_creates(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        plain = self._reread(())

        def reread(todo: Sequence[tuple[int, Change]]) -> dict[int, dict[str, Any] | None]:
            current = plain(todo)
            tasks = self._task_bodies([v["source_id"] for v in current.values() if v])
            return {i: v and {**v, "_tasks": tasks.get(v["source_id"], {})} for i, v in current.items()}

        return write_once(batch, noun=self.record_noun, reread=reread, prepare=self._task_input,
                          send=self._create_tasks)

    def _task_input(self, i: int, change: Change, current: dict[str, Any]) -> dict[str, Any] | ChangeResult:
        key = change_key(change)
        made = next((task for task, body in current["_tasks"].items() if key in body), None)
        if made:
            return applied(change, new_source_id=made, reason=ALREADY_IN_PLACE)
        values = task_values(change)
        due = values.get("due_date")
        properties = {"hs_task_subject": str(values["subject"]), "hs_task_body": tagged_body(change),
                      "hs_timestamp": _property_value(due) if due else str(_ms(datetime.now(timezone.utc))),
                      "hs_task_status": "NOT_STARTED", "hs_task_type": "TODO"}
        owner = (current["_record"].get("properties") or {}).get("hubspot_owner_id")
        if owner:
            properties["hubspot_owner_id"] = owner
        return {"properties": properties, "associations": [{"to": {"id": current["source_id"]}, "types": [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": TASK_TO_DEAL}]}]}

    def _create_tasks(self, pending: list[tuple[int, Change, dict[str, Any]]]) -> dict[int, ChangeResult]:
        body = self.api.call(self.api.tasks_batch.create, {"inputs": [p for _, _, p in pending]},
                             what="batch create tasks", idempotent=False)
        # Results do not come back in input order: the key in each task's body says whose it is.
        made = {r["id"]: (r.get("properties") or {}).get("hs_task_body") or "" for r in body.get("results") or []}
        results = {}
        for i, c, _ in pending:
            key = change_key(c)
            task = next((t for t, text in made.items() if key in text), None)
            results[i] = applied(c, new_source_id=task) if task else failed(c, _first_error(body))
        return results

    def _task_bodies(self, deal_ids: list[str]) -> dict[str, dict[str, str]]:
        """deal id → {task id: body} of its tasks: one association call, one read per 100 tasks."""
        if not deal_ids:
            return {}
        body = self.api.call(self.api.associations.get_page, "deals", "tasks",
                             {"inputs": [{"id": i} for i in deal_ids]}, what="read deal→task associations")
        linked = {str((r.get("_from") or r.get("from") or {}).get("id")): [str(t["toObjectId"]) for t in r.get("to") or []]
                  for r in body.get("results") or []}
        texts: dict[str, str] = {}
        for batch in chunks(list(dict.fromkeys(t for ts in linked.values() for t in ts)), BATCH_MAX):
            read = self.api.call(self.api.tasks_batch.read, {"inputs": [{"id": t} for t in batch],
                                                            "properties": ["hs_task_body"], "propertiesWithHistory": []},
                                 archived=False, what="read tasks")
            texts.update({r["id"]: (r.get("properties") or {}).get("hs_task_body") or "" for r in read.get("results") or []})
        return {deal: {t: texts[t] for t in tasks if t in texts} for deal, tasks in linked.items()}

    def _send_task_deletes(self, batch: list[tuple[int, Change]]) -> dict[int, ChangeResult]:
        def task(i: int, change: Change, current: dict[str, Any]) -> str:
            found = task_id_of(change)
            if found is None or not found.isdigit():
                raise ConfigError(f"{found!r} is not a HubSpot task id")
            return found

        def archive(pending: list[tuple[int, Change, str]]) -> dict[int, ChangeResult]:
            # Archiving an archived task changes nothing: safe to retry.
            self.api.call(self.api.tasks_batch.archive, {"inputs": [{"id": t} for _, _, t in pending]},
                          what="archive tasks")
            return {i: applied(c) for i, c, _ in pending}

        return write_once(batch, noun=self.record_noun, reread=lambda todo: {i: {} for i, _ in todo},
                          prepare=task, send=archive)

    # ------------------------------------------------------------ fields

    def _catalog(self, fresh: bool = False) -> dict[str, dict[str, Any]]:
        if self._property_catalog is None or fresh:
            body = self.api.call(self.api.properties.get_all, "deals", what="list deal properties")
            self._property_catalog = {p["name"]: p for p in body.get("results") or []}
        return self._property_catalog

    def deal_fields(self) -> list[FieldInfo]:
        return [_field_info(p) for p in self._catalog(fresh=True).values()]

    def create_field(self, name: str, label: str, kind: FieldKind) -> FieldInfo:
        """A deal property in pipesync's property group (created on first use)."""
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", name):
            raise ConfigError(f"HubSpot: {name!r} cannot be a property's internal name: lower-case letters, digits "
                              f"and underscores, starting with a letter")
        existing = self._catalog(fresh=True).get(name)
        if existing is not None:
            return _field_info(existing)
        try:
            self.api.call(self.api.property_groups.create, "deals", {"name": PROPERTY_GROUP, "label": "pipesync"},
                          what="create the pipesync property group", idempotent=False)
        except SourceError as e:
            if "HTTP 409" not in str(e):  # the group exists already: fine
                raise
        type_, field_type = _PROPERTY_TYPES.get(kind, ("string", "text"))
        definition: dict[str, Any] = {"name": name, "label": label, "type": type_, "fieldType": field_type,
                                      "groupName": PROPERTY_GROUP}
        if type_ == "bool":
            definition["options"] = [{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]
        created = self.api.call(self.api.properties.create, "deals", definition, what=f"create deal property {name}",
                                idempotent=False)
        self._property_catalog = None
        return _field_info(created)

    def _properties_for(self, change: Change, record: dict[str, Any] | None, key: str | None = None) -> dict[str, str]:
        values = wanted(change)
        if change.kind is ChangeKind.CLOSE_LOST and "source_stage" not in values:
            values["source_stage"] = self._lost_stage((record or {}).get("properties", {}).get("pipeline"))
        properties = {}
        for field, value in values.items():
            if (custom := custom_name(field)) is not None:
                known = self._catalog().get(custom)
                if known is None:
                    raise no_such_field("HubSpot", custom, f"create it with `pipesync fields create {self.name}` or in "
                                        f"Settings → Properties → Deal properties → Create property (internal name "
                                        f"{custom})")
                if (known.get("modificationMetadata") or {}).get("readOnlyValue"):
                    raise ConfigError(f"HubSpot: the deal property {custom} is read-only")
                properties[custom] = _property_value(value)
                continue
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
        survivor = _merged_into(self._current_list([target_id(change, self.name), primary]), target_id(change, self.name),
                                primary)
        if survivor is not None:  # merged by an earlier run whose result was not recorded
            return applied(change, new_source_id=survivor, reason=ALREADY_IN_PLACE)
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
                props = self._properties_for(change, None, key=change.deal_key)
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

    def find_created(self, keys: Sequence[str], since: datetime) -> dict[str, str]:
        found: dict[str, str] = {}
        for rows in self._search_since(_ms(since), [ORIGIN_PROPERTY]):
            found |= created_keys((((r["id"], (r.get("properties") or {}).get(ORIGIN_PROPERTY)) for r in rows)), keys)
        return found

    def currencies(self) -> frozenset[str] | None:
        """The account's currencies: the options of the deal currency property (None when it lists none)."""
        options = (self._catalog().get("deal_currency_code") or {}).get("options") or []
        return frozenset(o["value"] for o in options if o.get("value") and not o.get("hidden")) or None

    def _find_by_origin(self, tags: list[str]) -> dict[str, str]:
        found = {}
        for batch in chunks(tags, 100):
            body = self._search([{"propertyName": ORIGIN_PROPERTY, "operator": "IN", "values": batch}],
                                "hs_lastmodifieddate", [ORIGIN_PROPERTY], None)
            found.update({(r.get("properties") or {}).get(ORIGIN_PROPERTY): r["id"] for r in body.get("results") or []})
        return found


def _merged_into(records: list[dict[str, Any]], merged_id: str, primary: str) -> str | None:
    """The survivor both ids of a merge already resolve to (HubSpot gives it a new id), if merged."""
    for r in records:
        merged = set(((r.get("properties") or {}).get("hs_merged_object_ids") or "").split(";"))
        if r["id"] != merged_id and merged_id in merged and (r["id"] == primary or primary in merged):
            return r["id"]
    return None


def _field_info(p: dict[str, Any]) -> FieldInfo:
    return FieldInfo(name=p["name"], label=p.get("label") or p["name"], kind=_KINDS.get(p.get("type"), "other"),
                     writable=not (p.get("modificationMetadata") or {}).get("readOnlyValue", False)
                     and not p.get("calculated"), custom=not p.get("hubspotDefined", False))


def _first_error(body: dict[str, Any]) -> str:
    errors = body.get("errors") or []
    return f"HubSpot: {errors[0].get('category', 'error')}: {errors[0].get('message', '')}"[:300] if errors else \
        "HubSpot did not create it"


def _stage_chain(p: dict[str, Any], stage_ids: list[str]) -> tuple[str | None, list[tuple[str, datetime]]] | None:
    """(pipeline, [(stage, entered at)] oldest first) from the stage date properties, or None where
    they cannot be the whole history: each stage left when the next was entered, the first entered at
    creation, the last the current stage and not left since. Any revisit leaves a gap, so fails this."""
    entered = sorted((at, s) for s in stage_ids if (at := instant(p.get(ENTERED + s))) is not None)
    if not entered or p.get("dealstage") != entered[-1][1] or p.get(EXITED + entered[-1][1]) \
            or not _close(entered[0][0], instant(p.get("createdate"))):
        return None
    if not all(_close(instant(p.get(EXITED + stage)), next_at) for (_, stage), (next_at, _) in zip(entered, entered[1:])):
        return None
    return p.get("pipeline"), [(s, at) for at, s in entered]


def _close(a: datetime | None, b: datetime | None) -> bool:
    return a is not None and b is not None and abs(_ms(a) - _ms(b)) <= CHAIN_TOLERANCE_MS


def _changes(deal_id: str, pipeline: str | None, visits: list[tuple[str, datetime]]) -> Iterator[RawStageChange]:
    """One change per move between the visits (stage, entered at), oldest first."""
    previous = None
    for stage, at in visits:
        if stage != previous:
            yield RawStageChange(source_id=deal_id, pipeline=pipeline, from_stage=previous, to_stage=stage, changed_at=at)
        previous = stage


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
    if isinstance(value, bool):
        return "true" if value else "false"  # HubSpot's bool option values
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

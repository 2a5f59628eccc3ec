"""``pipesync sync``: extract → normalize → warehouse, incrementally, for every configured source.

Per source: read pages from the adapter from the saved cursor, normalize each
record through the source's mapping (quarantining what can't be), tell new,
changed and unchanged deals apart by content hash, record observed stage
changes, and commit page + cursor together. Re-running on the same input
changes nothing; killing the run at any point loses nothing. The counts a run
reports are those of the pages it committed.

A complete snapshot (a file) marks the live deals it does not list deleted,
unless they are more than ``DELETION_SHARE`` of the source's live deals (and
more than ``DELETION_FLOOR``): a truncated or header-only export looks just
like that. Those deletions are then held back and the source fails, saying so;
``allow_deletions`` (``--allow-deletions``) accepts them. A read that fails
(a file the reader cannot split into rows) settles nothing, so deletes nothing.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime

from pipesync.adapters import Adapter, open_adapter
from pipesync.config import Settings, SourceConfig
from pipesync.currency import FxTable
from pipesync.errors import MappingError, NormalizationError, PipesyncError, SourceError
from pipesync.mapping import load_mapping, unmapped_live_stages
from pipesync.model import Cursor, Page, SharedPipeline, StageChange, deal_key
from pipesync.normalize import NormalizedPage, Normalizer
from pipesync.pipeline import load_pipeline
from pipesync.vocabulary import load_vocabularies
from pipesync.warehouse import schema as t
from pipesync.warehouse.locks import source_lock
from pipesync.warehouse.store import DealRows, Known, PageWrite, QuarantineEntry, Warehouse, now, unstorable
from pipesync.workers import Send, Worker, can_fork, cpu_count

DELETION_SHARE = 0.20  # of a source's live deals: a snapshot that would delete more is held back…
DELETION_FLOOR = 5  # …when it is more than this many deals, too (a small source loses a few at a time)
# The fields the metrics need (name → the deal columns any of which holds it, what it feeds): a source
# whose every live deal lacks one is synced with a warning, since a column the reader did not find
# ("Closing Date" in a generic file) otherwise leaves the figures quietly wrong.
EMPTY_FIELD_USES: dict[str, tuple[tuple[str, ...], str]] = {
    "amount": (("amount",), "pipeline value, won value and deal size"),
    "close_date": (("close_date", "actual_close_date"), "won and lost deals by period, win rate and sales cycle"),
    "created_at": (("created_at",), "new pipeline, sales cycle and the pipeline as of a past day"),
    "owner": (("owner_email", "owner_name"), "the by-owner view and suspicious amounts"),
}


@dataclass
class SourceCounts:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    # Deals kept without a value that could not be read and does not decide the deal (a malformed
    # contact e-mail): a warning, not a quarantine; the raw record keeps the value.
    dropped: int = 0
    first_dropped: str | None = None  # where and what, for the warning
    # A field the metrics need that no live deal of the source has: {field, message} each (EMPTY_FIELD_USES).
    warnings: list[dict[str, str]] = field(default_factory=list)
    # waited for another run of the source to finish (a timing: two runs' counts still compare equal)
    lock_wait_s: float = field(default=0.0, compare=False)
    # API requests the adapter sent and 429s it met (0 for files)
    api_calls: int = field(default=0, compare=False)
    rate_limited: int = field(default=0, compare=False)
    error: str | None = None
    exit_code: int = 0  # the error's: 2 when the source's configuration or mapping is wrong, else 1

    def add(self, other: "SourceCounts") -> None:
        for name in ("read", "inserted", "updated", "unchanged", "deleted", "quarantined", "dropped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first_dropped = self.first_dropped or other.first_dropped


@dataclass
class SyncResult:
    run_id: int
    status: str
    sources: dict[str, SourceCounts] = field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        return sum(c.quarantined for c in self.sources.values())

    @property
    def exit_code(self) -> int:
        """0 when every source synced; else the gravest of their errors' codes (2 config, 1 failure)."""
        return max((c.exit_code for c in self.sources.values()), default=0)

    def as_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "sources": {k: asdict(v) for k, v in self.sources.items()}}


Progress = Callable[[str, int], None]


def run_sync(
    settings: Settings,
    sources: Sequence[str] = (),
    *,
    full: bool = False,
    quarantine_unmapped: bool = False,
    warehouse: Warehouse | None = None,
    progress: Progress | None = None,
    workers: int | None = None,
    allow_deletions: float = DELETION_SHARE,
    wait: float = 0.0,
) -> SyncResult:
    """Syncs the named sources (all when empty) into the warehouse and returns the per-source counts.

    A source that fails (unreachable, bad credentials, live stages its mapping cannot
    place) is reported and the others go on; the run's status is then ``partial``.
    ``quarantine_unmapped`` syncs such sources anyway, quarantining the unplaceable deals.
    ``workers`` caps the processes that read a large file source side by side
    (default: ``sync_workers`` in the config, else one per core).
    ``allow_deletions``: the share (0–1) of a source's live deals that one snapshot may mark
    deleted; a snapshot that would delete more (and more than ``DELETION_FLOOR``) fails the
    source with its deletions held back.
    Each source is synced holding its run lock (``warehouse.locks``): a source another run is
    syncing fails with who holds it, after waiting up to ``wait`` seconds.
    """
    chosen = [settings.source(n) for n in sources] if sources else list(settings.sources)
    wh = warehouse or Warehouse(settings.warehouse_url())
    pipeline = load_pipeline(settings.pipeline_path())
    fx = FxTable(settings.reporting_currency, settings.fx_rates)
    run_id = wh.start_run([s.name for s in chosen])
    result = SyncResult(run_id=run_id, status="running")
    workers = workers or settings.sync_workers or cpu_count()
    try:
        for source in chosen:
            counts = result.sources[source.name] = SourceCounts()
            try:
                with source_lock(wh, source.name, wait) as waited, _fewer_gc_passes():
                    counts.lock_wait_s = round(waited, 1)  # a timing for logs: tenths are enough
                    _sync_source(
                        settings, source, pipeline, fx, wh, counts, full, quarantine_unmapped, progress, workers, allow_deletions
                    )
            except PipesyncError as e:
                counts.error, counts.exit_code = str(e), e.exit_code
        failed = [n for n, c in result.sources.items() if c.error]
        result.status = "ok" if not failed else ("failed" if len(failed) == len(chosen) else "partial")
    except BaseException as e:  # KeyboardInterrupt included: the run is recorded as what it was
        result.status = "interrupted" if isinstance(e, KeyboardInterrupt) else "failed"
        wh.finish_run(run_id, result.status, result.as_dict()["sources"], error=str(e) or e.__class__.__name__)
        raise
    wh.finish_run(run_id, result.status, result.as_dict()["sources"], error="; ".join(
        f"{n}: {c.error}" for n, c in result.sources.items() if c.error) or None)
    if warehouse is None:
        wh.close()
    return result


@contextmanager
def _fewer_gc_passes() -> Iterator[None]:
    """Runs the cyclic garbage collector less often while a source syncs.

    A sync allocates millions of short-lived objects (cells, dicts, deals, rows) that
    reference counting frees, while it holds large long-lived maps (the known deals):
    at Python's default threshold the collector runs thousands of times and walks
    those maps for nothing (measured: 15–25% of a 100,000-row sync).
    """
    before = gc.get_threshold()
    gc.set_threshold(50_000, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _sync_source(
    settings: Settings,
    source: SourceConfig,
    pipeline: SharedPipeline,
    fx: FxTable,
    wh: Warehouse,
    counts: SourceCounts,
    full: bool,
    quarantine_unmapped: bool,
    progress: Progress | None,
    workers: int,
    allow_deletions: float,
) -> None:
    mapping_path = settings.mapping_path(source)
    vocabularies = load_vocabularies(settings.vocabularies_path())
    mapping = load_mapping(mapping_path, pipeline, vocabularies)
    normalizer = Normalizer(source.name, mapping, pipeline, fx, mapping_path.name, vocabularies)
    with open_adapter(source, settings) as adapter, _usage_counted(adapter, counts):
        since = None if full else wh.cursor(source.name)
        adapter.resume(since)  # the metadata lists the last run kept, where fresh: no call to re-list them
        discovery = adapter.discover()
        wh.record_catalog(source.name, discovery)
        unmapped = unmapped_live_stages(discovery, mapping)
        if unmapped and not (quarantine_unmapped or source.unmapped_stages == "quarantine"):
            raise MappingError(
                f"{mapping_path.name} cannot place {len(unmapped)} live stage(s) of {source.name}:\n"
                + "\n".join(f"  - {item.message}" for item in unmapped)
                + f"\nFix the mapping (pipesync map {source.name}), or sync with --quarantine-unmapped "
                "(or unmapped_stages: quarantine on the source) to quarantine those deals meanwhile."
            )
        known = wh.known_deals(source.name)
        snapshot = _Snapshot(started=now(), live=sum(not k.is_deleted for k in known.values()), allowed=allow_deletions)
        reading = _Reading(
            adapter, normalizer, wh, known, wh.quarantined(source.name), snapshot,
            history=source.options.history_wanted(adapter.history_in_bulk),
            tick=(lambda n: progress(source.name, n)) if progress else (lambda n: None),
        )
        parts = adapter.partitions(workers) if workers > 1 and can_fork() and wh.shared_across_processes else []
        if len(parts) > 1:
            _read_in_parallel(reading, since, parts, counts)
        else:
            reading.read(adapter.read_deals(since), reading.committed_to(counts))
        if snapshot.held_back:
            raise SourceError(snapshot.held_back_message(counts))
    counts.warnings = _empty_fields(wh, source, mapping_path.name)


@contextmanager
def _usage_counted(adapter: Adapter, counts: SourceCounts) -> Iterator[None]:
    """Records the API requests and 429s of the source's sync, failed or not (the run's logs show them)."""
    try:
        yield
    finally:
        counts.api_calls, counts.rate_limited = adapter.calls, adapter.rate_limited


def _empty_fields(wh: Warehouse, source: SourceConfig, mapping_name: str) -> list[dict[str, str]]:
    """A warning for each field the metrics need that none of the source's live deals has."""
    live, filled = wh.filled(source.name, {name: columns for name, (columns, _) in EMPTY_FIELD_USES.items()})
    if not live:
        return []
    if hasattr(source.options, "path"):  # a file: its column was not found, or is blank
        fix = f"name the column that holds it under fields: in {mapping_name} (a list of columns reads the first one filled)"
    else:
        fix = "check that the source's records have it and the source's options (docs/adapters.md)"
    return [
        {"field": name, "message": f"{source.name}: no deal has a {name.replace('_', ' ')} (all {live} are empty), "
                                   f"so {uses} leave them out: {fix}"}
        for name, (columns, uses) in EMPTY_FIELD_USES.items()
        if not filled[name]
    ]


@dataclass
class _Snapshot:
    """How a complete snapshot settles: the live deals it did not list are deleted, unless too many."""

    started: datetime  # when the read began: quarantine rows older than that are no longer in the snapshot
    live: int  # the source's live deals before the read
    allowed: float  # the share of them one snapshot may delete
    held_back: int = 0

    def settle(self, write: PageWrite, known: dict[str, Known], seen: set[str]) -> None:
        """Marks the live deals the snapshot did not list deleted and drops the quarantine rows it no
        longer has, unless too many deals would go (a truncated file, likely: it settles nothing)."""
        gone = _vanished(known, seen)
        if len(gone) > DELETION_FLOOR and len(gone) > self.allowed * self.live:
            self.held_back = len(gone)
            return
        write.deleted_keys += gone
        write.stale_quarantine_before = self.started

    def held_back_message(self, counts: SourceCounts) -> str:
        share = self.held_back / self.live
        return (
            f"the snapshot leaves out {self.held_back} of the source's {self.live} live deals ({share:.0%}), "
            f"more than the {self.allowed:.0%} a sync marks deleted unasked (a truncated or header-only export?). "
            f"Held back: those {self.held_back} deletions (and releasing the quarantine rows the file no longer has), "
            f"nothing else (written: {counts.inserted} inserted, "
            f"{counts.updated} updated, {counts.quarantined} quarantined). If they are really gone, "
            f"sync again with --allow-deletions {math.ceil(share * 100)}%."
        )


@dataclass
class _ReadEnd:
    """How a read (or a partition of one) ended: the deals it saw and its last page's cursor."""

    seen: set[str]
    cursor: Cursor | None
    snapshot_complete: bool


@dataclass
class _Reading:
    """One source's pages, normalized against what the warehouse holds and written page by page."""

    adapter: Adapter
    normalizer: Normalizer
    wh: Warehouse
    known: dict[str, Known]
    in_quarantine: set[str]
    snapshot: _Snapshot
    history: bool
    tick: Callable[[int], None]

    def read(self, pages: Iterable[Page], committed: Callable[[SourceCounts], None], *, partition: bool = False) -> _ReadEnd:
        """Writes each page with its cursor, then hands its counts to ``committed``; a partition's
        pages move no cursor and settle no snapshot."""
        end = _ReadEnd(set(), None, False)
        for page in pages:
            counts = SourceCounts()
            write = _page_write(
                page, self.normalizer, self.known, self.in_quarantine, end.seen, counts, None if partition else self.snapshot
            )
            if self.history:
                changed = [sid for rows in (write.inserts, write.updates) if rows for sid in rows.columns["source_id"]]
                write.source_history = _source_history(self.adapter, self.normalizer, changed) if changed else {}
            if partition:
                write.cursor = None
            self.wh.write_page(write)
            committed(counts)
            end.cursor, end.snapshot_complete = page.cursor, page.snapshot_complete
        return end

    def committed_to(self, counts: SourceCounts) -> Callable[[SourceCounts], None]:
        """Adds a committed page's counts to the source's, and shows the progress."""

        def committed(page: SourceCounts) -> None:
            counts.add(page)
            self.tick(page.read)

        return committed


def _read_in_parallel(reading: _Reading, since: Cursor | None, parts: list[object], counts: SourceCounts) -> None:
    """Reads the first partition here and each other one in a forked worker, each writing its own pages.

    The source's cursor and a snapshot's deletions wait until every partition is in:
    a run killed before that re-reads from the old cursor, which changes nothing
    that was written already.
    """
    source = reading.normalizer.source
    committed = reading.committed_to(counts)  # each worker sends its pages' counts as it commits them

    def partition_reader(part: object) -> Callable[[Send], _ReadEnd]:
        def read(send: Send) -> _ReadEnd:
            return reading.read(reading.adapter.read_partition(since, part), send, partition=True)
        return read

    reading.wh.before_fork()
    workers = [Worker(f"part {i} of {len(parts)} ({part})", partition_reader(part)) for i, part in enumerate(parts[1:], 2)]
    try:

        def ours(page: SourceCounts) -> None:  # after each page of ours, the workers' pages too
            committed(page)
            for worker in workers:
                worker.received(committed)

        ends = [reading.read(reading.adapter.read_partition(since, parts[0]), ours, partition=True)]
        ends += [worker.finish(committed) for worker in workers]
    except BaseException:
        for worker in workers:
            worker.stop()
            worker.received(committed)  # the pages it committed before it stopped
        raise
    last = ends[-1]
    write = PageWrite(source=source, cursor=last.cursor)
    if last.snapshot_complete:
        reading.snapshot.settle(write, reading.known, set().union(*(end.seen for end in ends)))
    reading.wh.write_page(write)
    counts.deleted += len(write.deleted_keys)


def _vanished(known: dict[str, Known], seen: set[str]) -> list[str]:
    """The live deals a complete snapshot did not list: gone from the source."""
    return [k for k, kn in known.items() if k not in seen and not kn.is_deleted]


def _source_history(adapter: Adapter, normalizer: Normalizer, source_ids: list[str]) -> dict[str, list[StageChange]]:
    """The stage changes the source recorded for these deals, in shared stage keys.

    Each deal's list is complete (the adapter reads its whole history), so it replaces
    what the warehouse held. A change into a stage the mapping does not know is left
    out: the deal itself is quarantined for that stage already.
    """
    out: dict[str, list[StageChange]] = {deal_key(normalizer.source, sid): [] for sid in source_ids}
    for change in adapter.read_stage_history(source_ids):
        to_stage = normalizer.shared_stage(change.pipeline, change.to_stage)
        if to_stage is None:
            continue
        from_stage = normalizer.shared_stage(change.pipeline, change.from_stage) if change.from_stage else None
        key = deal_key(normalizer.source, change.source_id)
        out.setdefault(key, []).append(
            StageChange(deal_key=key, from_stage=from_stage, to_stage=to_stage, changed_at=change.changed_at, origin="source_history")
        )
    return out


def _page_write(
    page: Page,
    normalizer: Normalizer,
    known: dict[str, Known],
    in_quarantine: set[str],
    seen: set[str],
    counts: SourceCounts,
    snapshot: _Snapshot | None,
) -> PageWrite:
    """What one page changes in the warehouse, and its ``counts``; ``known``, ``in_quarantine`` and ``seen`` follow along.

    ``snapshot``: how a page that completes one settles it (None: a partition's page, which does not).
    """
    source = normalizer.source
    write = PageWrite(source=source, cursor=page.cursor)
    raws = page.deals
    counts.read += len(raws)
    keys = [None if raw.source_id is None else deal_key(source, raw.source_id) for raw in raws]
    digests = normalizer.content_hashes(raws)
    # A record listed twice in a page is decided in order: its first copy may change what the next finds.
    repeated = {k for k, n in Counter(keys).items() if n > 1} if len(set(keys)) < len(keys) else set()

    def unchanged(i: int) -> bool:
        before = known.get(keys[i])  # type: ignore[arg-type]
        return before is not None and before.content_hash == digests[i] and raws[i].source_id not in in_quarantine

    # Unchanged records (same digest as stored) are not normalized again.
    todo = [i for i in range(len(raws)) if keys[i] in repeated or not unchanged(i)]
    if len(todo) < len(raws):
        counts.unchanged += len(raws) - len(todo)
        done = set(todo)
        seen.update(keys[i] for i in range(len(raws)) if i not in done)  # type: ignore[misc]
    normalized = normalizer.normalize_page([raws[i] for i in todo])
    columns, errors = normalized.columns, normalized.errors
    for j, (name, reason) in unstorable(source, columns).items():
        errors.setdefault(j, NormalizationError(name, reason))
    ids, stages, deleted = columns["source_id"], columns["stage"], columns["is_deleted"]
    inserts, updates = _Chosen(), _Chosen()
    for j, i in enumerate(todo):
        raw = raws[i]
        if keys[i] in repeated and unchanged(i):
            seen.add(keys[i])  # type: ignore[arg-type]
            counts.unchanged += 1
            continue
        if j in errors:
            record = raw.source_id if raw.source_id and _storable_record(raw.source_id) else raw.locator
            counts.quarantined += 1
            error = errors[j]
            write.quarantine.append(
                QuarantineEntry(record=record, locator=raw.locator, field=error.field, reason=f"{raw.locator}: {error}", raw=raw.raw)
            )
            if raw.source_id:
                # A record we can't read now is still there: don't mark it deleted at the end of a snapshot.
                seen.add(deal_key(source, raw.source_id))
            continue
        key = deal_key(source, ids[j])
        seen.add(key)
        if j in normalized.dropped:
            counts.dropped += 1
            counts.first_dropped = counts.first_dropped or f"{raw.locator}: {normalized.dropped[j]}"
        if raw.source_id in in_quarantine:
            write.released.append(raw.source_id)
        before = known.get(key)
        if before is None:
            inserts.add(j, key, digests[i])
        else:
            updates.add(j, key, digests[i])
            if before.stage != stages[j]:
                write.history.append(_observed_change(key, before.stage, normalized, j, page.as_of))
        known[key] = Known(digests[i], stages[j], deleted[j])
    counts.inserted += len(inserts.positions)
    counts.updated += len(updates.positions)
    write.inserts, write.updates = inserts.rows(normalized), updates.rows(normalized)
    for sid in page.deleted_ids:
        key = deal_key(source, sid)
        if key in known and not known[key].is_deleted:
            write.deleted_keys.append(key)
    if page.snapshot_complete and snapshot is not None:
        snapshot.settle(write, known, seen)
    write.aliases = {deal_key(source, a): deal_key(source, s) for a, s in page.aliases.items()}
    for key in write.deleted_keys:
        known[key] = Known("", known[key].stage, True)
    counts.deleted += len(write.deleted_keys)
    in_quarantine.difference_update(write.released)
    in_quarantine.update(e.record for e in write.quarantine)
    return write


def _storable_record(source_id: str) -> bool:
    """Whether a quarantine row can be keyed by this id (else by where the record is)."""
    return len(source_id) <= t.quarantine.c.record.type.length and "\0" not in source_id


def _observed_change(key: str, before: str, normalized: NormalizedPage, j: int, as_of: datetime | None) -> StageChange:
    """A stage change sync saw, dated by the record, else by the snapshot it was read from: a time that
    every run reading it agrees on, so a re-run or a concurrent run writes the same (unique) row. Only
    a source that dates neither leaves the time of reading."""
    columns = normalized.columns
    return StageChange(
        deal_key=key,
        from_stage=before,
        to_stage=columns["stage"][j],
        changed_at=columns["stage_entered_at"][j] or columns["updated_at"][j] or as_of or now(),
        origin="observed",
    )


@dataclass
class _Chosen:
    """The records of a normalized page going into one statement (insert or update), with their keys and hashes."""

    positions: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    hashes: list[str] = field(default_factory=list)

    def add(self, position: int, key: str, digest: str) -> None:
        self.positions.append(position)
        self.keys.append(key)
        self.hashes.append(digest)

    def rows(self, normalized: NormalizedPage) -> DealRows:
        columns = normalized.columns
        if len(self.positions) < len(normalized):
            columns = {f: [c[j] for j in self.positions] for f, c in columns.items()}
        return DealRows(columns, self.keys, self.hashes)

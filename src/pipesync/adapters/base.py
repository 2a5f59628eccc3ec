"""The one small surface every adapter has (docs/architecture.md, "The adapter surface").

An adapter knows one system's API or file format and nothing else: it yields
:class:`RawDeal` records whose ``values`` use canonical field names (see
``pipesync.model.RAW_FIELDS``) and leaves parsing, stage mapping and currency
conversion to ``pipesync.normalize``, so nothing vendor-specific leaks past it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pipesync.errors import SourceError
from pipesync.model import Change, ChangeResult, Cursor, DateStyle, Discovery, FieldInfo, FieldKind, Page, RawStageChange

if TYPE_CHECKING:
    from pipesync.config import Settings, SourceConfig


class Adapter:
    """Base class: subclasses implement ``discover`` and ``read_deals``, and where they can, the rest."""

    #: the vendor's name for a deal record, used in messages ("Opportunity", "deal")
    record_noun = "record"
    #: whether reading stage history costs about a page of calls, not a call per deal;
    #: sync reads history by default only where it does (``options.history`` overrides)
    history_in_bulk = True
    #: the most changes one ``write()`` call may carry: the engine hands over one batch at a time,
    #: journaled before it is sent (0: the source cannot be written to)
    write_batch_max = 0
    #: canonical fields ``write`` can set (beside the CRM's own fields, named ``custom:<name>``)
    writable_fields: frozenset[str] = frozenset()
    #: whether the CRM merges two deals through its API
    merges = False
    #: API requests sent and rate-limit refusals (429) met so far: the API adapters count them (run logs)
    calls = 0
    rate_limited = 0

    def __init__(self, source: "SourceConfig", settings: "Settings"):
        self.source = source
        self.settings = settings

    @property
    def name(self) -> str:
        return self.source.name

    def discover(self) -> Discovery:
        raise NotImplementedError

    def resume(self, since: Cursor | None) -> None:
        """Takes back what the run that saved ``since`` kept beside it (metadata lists), before
        ``discover``; sources that keep nothing ignore it."""

    def date_style(self) -> DateStyle | None:
        """How the source writes dates, where they are text people export or type (files).

        ``pipesync map`` proposes the day/month order from it. None (the default)
        for APIs, whose dates are ISO.
        """
        return None

    def columns(self) -> dict[str, str | None] | None:
        """Where each canonical field is read from, where the source is a table people export (files):
        field → the column's header, or None where the file has none. None (the default) for APIs,
        whose fields are fixed."""
        return None

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        """Pages of deals changed since ``since`` (everything when None), deletions included.

        Each page carries the cursor that resumes right after it.
        """
        raise NotImplementedError

    def partitions(self, most: int) -> list[object]:
        """Up to ``most`` parts of what ``read_deals(None)`` reads, for reading side by side.

        The parts hold disjoint sets of records, together all of them, in an order
        where the last part ends the read as ``read_deals`` does (its last page
        completes the snapshot, its cursor resumes after everything). Empty (the
        default) when the source cannot be split: APIs page through one cursor.
        """
        return []

    def read_partition(self, since: Cursor | None, partition: object) -> Iterator[Page]:
        """The pages of one of :meth:`partitions`."""
        raise NotImplementedError

    def read_stage_history(self, source_ids: Sequence[str]) -> Iterator[RawStageChange]:
        """Stage changes the source itself recorded; sources without history yield nothing."""
        return iter(())

    def write(self, changes: Sequence[Change]) -> list[ChangeResult]:
        """Apply at most ``write_batch_max`` changes: re-read, skip conflicts, send; one result per change."""
        raise self._read_only()

    def read_current(self, source_ids: Sequence[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The current values of ``fields`` (canonical names and ``custom:<api name>``) plus ``updated_at``,
        for each id that exists, read in the API's largest batches: the plan's before-images."""
        raise self._read_only()

    def deal_fields(self) -> list[FieldInfo]:
        """Every deal field the CRM has, standard and custom."""
        raise self._read_only()

    def create_field(self, name: str, label: str, kind: FieldKind) -> FieldInfo:
        """Create a custom deal field; its ``name`` is what ``custom:<name>`` writes to."""
        raise self._read_only()

    def currencies(self) -> frozenset[str] | None:
        """The currency codes a deal may hold in this CRM (its enabled currencies); None when it takes any."""
        return None

    def find_created(self, keys: Sequence[str], since: datetime) -> dict[str, str]:
        """The records that creates keyed ``keys`` (``Change.deal_key`` of a ``CREATE``) made at or after
        ``since``, found by their external id or origin tag: key → record id. A run killed between a
        create and its journal entry looks here first, so the re-run does not create the record again."""
        raise self._read_only()

    def _read_only(self) -> SourceError:
        return SourceError(f"source {self.name!r} ({self.source.type}) is read-only: pipesync cannot write to it")

    def close(self) -> None:
        """Release connections; adapters are also context managers."""

    def __enter__(self) -> "Adapter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

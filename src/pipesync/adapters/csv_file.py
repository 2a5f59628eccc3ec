"""CSV exports: Salesforce reports, HubSpot and Pipedrive exports, and any spreadsheet.

Options (``sources[].options`` in pipesync.yaml):

- ``path``: the file;
- ``format``: ``salesforce_report``, ``hubspot_export``, ``pipedrive_export`` or
  ``generic`` (column presets in ``csv_presets.yaml``; the mapping's ``fields``
  override them);
- ``encoding``: ``auto`` (default: UTF-8 with or without BOM, UTF-16 as Excel's
  "Unicode text" writes it, else cp1252) or any Python codec name;
- ``delimiter``: ``auto`` (sniffed among , ; tab |) or the character;
- ``page_size``: rows committed per transaction (default 2000; with workers writing side by side,
  shorter transactions keep each from waiting on the other).

A file is a full snapshot: every read reads it all, and a deal that was in the
warehouse but is no longer in the file is marked deleted. A large file is read
in partitions (runs of whole pages) that sync can read in parallel.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from itertools import islice
from operator import itemgetter
from pathlib import Path

from pydantic import BaseModel, RootModel

from pipesync.adapters.base import Adapter
from pipesync.errors import ConfigError, SourceError
from pipesync.mapping import ANY, Mapping, fold
from pipesync.model import Cursor, DiscoveredPipeline, DiscoveredStage, Discovery, Page, RawDeal
from pipesync.yamlfile import load_model

PAGE_SIZE = 2000
DELIMITERS = ",;\t|"


class Preset(BaseModel):
    description: str
    columns: dict[str, list[str]]
    footers: list[str] = []


class Presets(RootModel[dict[str, Preset]]):
    pass


def load_presets() -> dict[str, Preset]:
    path = Path(str(resources.files("pipesync.adapters").joinpath("csv_presets.yaml")))
    return load_model(path, Presets).root


def decode(data: bytes, encoding: str = "auto") -> str:
    """The file's text. ``auto`` trusts a BOM, then UTF-16 by its zero bytes, then UTF-8, then cp1252."""
    if encoding != "auto":
        return data.decode(encoding)
    if data.startswith(codecs.BOM_UTF8):
        return data[3:].decode("utf-8")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    head = data[:4096]
    if head and head.count(0) > len(head) // 4:  # UTF-16 without BOM: every other byte is zero
        return data.decode("utf-16-le" if head[1:2] == b"\0" else "utf-16-be")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


def sniff_delimiter(text: str) -> str:
    sample = text[:65536]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on irregular files: fall back to the most frequent candidate in the header.
        header = sample.split("\n", 1)[0]
        return max(DELIMITERS, key=header.count)


class CsvAdapter(Adapter):
    record_noun = "row"
    history_in_bulk = False  # an export holds no stage history: nothing to read, nothing to replace

    @cached_property
    def path(self) -> Path:
        if "path" not in self.source.options:
            raise ConfigError(f"source {self.name!r}: CSV sources need options.path")
        return self.settings.path(self.source.options["path"])

    @cached_property
    def preset(self) -> Preset:
        name = self.source.options.get("format", "generic")
        presets = load_presets()
        if name not in presets:
            raise ConfigError(f"source {self.name!r}: unknown CSV format {name!r} (known: {', '.join(presets)})")
        return presets[name]

    @cached_property
    def _content(self) -> tuple[str, str]:
        """The file's text and digest, read once per adapter: sync discovers, then reads."""
        try:
            data = self.path.read_bytes()
        except OSError as e:
            raise SourceError(f"{self.path}: cannot read the file ({e.strerror})") from None
        try:
            text = decode(data, self.source.options.get("encoding", "auto"))
        except (UnicodeDecodeError, LookupError) as e:
            raise SourceError(f"{self.path}: cannot decode the file: {e}") from None
        return text, hashlib.sha256(data).hexdigest()

    def _columns(self, header: list[str], overrides: dict[str, str]) -> dict[str, int]:
        """Canonical field → column index, from the mapping's ``fields`` first, then the preset."""
        index = {fold(h): i for i, h in reversed(list(enumerate(header)))}
        columns: dict[str, int] = {}
        for field, wanted in overrides.items():
            if fold(wanted) not in index:
                raise SourceError(f"{self.path}: the mapping names column {wanted!r} for {field}, but the file has no such column")
            columns[field] = index[fold(wanted)]
        for field, candidates in self.preset.columns.items():
            if field not in columns:
                found = next((index[fold(c)] for c in candidates if fold(c) in index), None)
                if found is not None:
                    columns[field] = found
        for needed in ("source_id", "source_stage"):
            if needed not in columns:
                raise SourceError(
                    f"{self.path}: no column for {needed}; map it under fields: in the mapping file "
                    f"(columns in the file: {', '.join(header)})"
                )
        return columns

    def _table(
        self, text: str, rows: RowRange | None = None
    ) -> tuple[list[str], dict[str, int], Iterator[tuple[int, list[str]]]]:
        """(header, canonical field → column index, each data row's line number and cells).

        Footers and blank rows are skipped. ``rows`` limits the data rows to a part of the file.
        """
        delimiter = self.source.options.get("delimiter", "auto")
        lines = io.StringIO(text, newline="")
        reader = csv.reader(lines, delimiter=sniff_delimiter(text) if delimiter == "auto" else delimiter)
        header = next(reader, None)
        if not header:
            raise SourceError(f"{self.path}: the file is empty")
        header = [h.strip().lstrip("\ufeff") for h in header]
        footers = tuple(fold(f) for f in self.preset.footers)
        skipped = 0
        if rows is not None and rows.after > reader.line_num:
            # the reader reads one line at a time: lines skipped here are lines it never parses
            skipped = rows.after - reader.line_num
            next(islice(lines, skipped, skipped), None)
        last = rows.last if rows is not None else None

        def data_rows() -> Iterator[tuple[int, list[str]]]:
            for cells in reader:
                line = reader.line_num + skipped
                if last is not None and line > last:
                    return
                # A row whose first two cells are filled is data; only the others can be blank or a footer.
                if len(cells) < 2 or not (cells[0].strip() and cells[1].strip()):
                    filled = [c for c in cells if c.strip()]
                    if not filled or (len(filled) == 1 and fold(filled[0]).startswith(footers)):
                        continue
                yield line, cells

        return header, self._columns(header, self._overrides), data_rows()

    @cached_property
    def _overrides(self) -> dict[str, str]:
        """The mapping file's ``fields:`` (canonical field → column header), when the file exists yet."""
        path = self.settings.mapping_path(self.source)
        return load_model(path, Mapping).fields if path.exists() else {}

    @property
    def _page_size(self) -> int:
        return int(self.source.options.get("page_size", PAGE_SIZE))

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        return self._read_rows(None)

    def partitions(self, most: int) -> list[RowRange]:
        """The file's pages split into up to ``most`` runs of whole pages.

        A file that lists an id twice is not split: its last copy must win, as
        it does when the file is read in order.
        """
        survey = self._survey
        count = min(most, len(survey.page_ends))
        if count < 2 or survey.repeats_ids:
            return []
        cuts = [survey.page_ends[len(survey.page_ends) * k // count - 1] for k in range(1, count)]
        return [RowRange(after, last) for after, last in zip([0, *cuts], [*cuts, None])]

    def read_partition(self, since: Cursor | None, partition: RowRange) -> Iterator[Page]:
        return self._read_rows(partition)

    def _read_rows(self, part: RowRange | None) -> Iterator[Page]:
        # A file is a snapshot: every read is a full read of its rows, whatever the cursor.
        text, digest = self._content
        page_size = self._page_size
        header, columns, rows = self._table(text, part)
        # columns always holds source_id and source_stage: picks returns a tuple
        fields, picks, width = tuple(columns), itemgetter(*columns.values()), len(header)
        batch: list[RawDeal] = []
        name = self.path.name
        line = 0
        for line, cells in rows:
            problem = None
            if len(cells) == width:
                values = dict(zip(fields, picks(cells)))
            else:
                values = {f: cells[i] for f, i in columns.items() if i < len(cells)}
                problem = ("row", f"{len(cells)} cells where the header has {width} (a stray delimiter or quote?)")
            batch.append(
                RawDeal(
                    source_id=values.get("source_id", "").strip() or None,
                    locator=f"{name} row {line}",
                    values=values,
                    raw=dict(zip(header, cells)),
                    problem=problem,
                )
            )
            if len(batch) >= page_size:
                yield Page(deals=batch, cursor=Cursor(value={"sha256": digest, "row": line}))
                batch = []
        if part is None or part.last is None:
            yield Page(deals=batch, cursor=Cursor(value={"sha256": digest}), snapshot_complete=True)
        elif batch:
            yield Page(deals=batch, cursor=Cursor(value={"sha256": digest, "row": line}))

    def discover(self) -> Discovery:
        pipelines: dict[str, list[DiscoveredStage]] = {}
        for (pipeline, stage), n in self._survey.stages.items():
            pipelines.setdefault(pipeline, []).append(DiscoveredStage(id=stage, label=stage, deal_count=n))
        return Discovery(
            source=self.name,
            pipelines=[DiscoveredPipeline(id=p, label=p, stages=s) for p, s in sorted(pipelines.items())],
        )

    @cached_property
    def _survey(self) -> Survey:
        """One pass over the file for what discovery and partitioning need (sync asks for both)."""
        _, columns, rows = self._table(self._content[0])
        stage_at, pipeline_at, id_at = columns["source_stage"], columns.get("pipeline"), columns["source_id"]
        page_size = self._page_size
        stages: Counter[tuple[str, str]] = Counter()
        page_ends: list[int] = []
        ids: list[str] = []
        line = 0
        for n, (line, cells) in enumerate(rows, 1):
            width = len(cells)
            stage = cells[stage_at].strip() if stage_at < width else ""
            if stage:
                pipeline = cells[pipeline_at].strip() if pipeline_at is not None and pipeline_at < width else ""
                stages[(pipeline or ANY, stage)] += 1
            ids.append(cells[id_at].strip() if id_at < width else "")
            if n % page_size == 0:
                page_ends.append(line)
        if len(ids) % page_size:
            page_ends.append(line)
        named = [i for i in ids if i]
        return Survey(stages=stages, page_ends=page_ends, repeats_ids=len(set(named)) < len(named))


@dataclass(frozen=True, slots=True)
class RowRange:
    """A partition of a file: the data rows after physical line ``after``, up to line ``last`` (None: the end)."""

    after: int
    last: int | None

    def __str__(self) -> str:
        return f"the rows on lines {self.after + 1}–{'end' if self.last is None else self.last}"


@dataclass(frozen=True, slots=True)
class Survey:
    stages: Counter[tuple[str, str]]  # (pipeline, stage) → rows
    page_ends: list[int]  # the line each page's last row ends on
    repeats_ids: bool

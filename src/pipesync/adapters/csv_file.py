"""CSV exports: Salesforce reports, HubSpot and Pipedrive exports, and any spreadsheet.

Options: :class:`~pipesync.adapters.csv_options.CsvOptions` (path, format, encoding, delimiter, ...).

A file is a full snapshot: every read reads it all, and a deal that was in the
warehouse but is no longer in the file is marked deleted. A large file is read
in partitions (runs of whole pages) that sync can read in parallel.

A file the reader cannot split into rows (a quote that never closes, or closes
in the middle of a cell; a cell over 131,072 characters) fails the read with
the line its broken row begins on: such a read settles nothing, so it deletes
nothing. An id on more than one row: the first row is the deal, the others are
flagged ``duplicate_id`` (quarantined), however the file is paged or split.

The file is streamed, never held in memory: each pass (the digest and encoding
check, the survey, each partition's read) reads it a megabyte at a time, so a
sync's memory does not grow with the file's size (only its ids are kept).
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from importlib import resources
from itertools import accumulate, islice, repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, RootModel

from pipesync.adapters.base import Adapter
from pipesync.adapters.csv_options import CsvOptions
from pipesync.adapters.spreadsheet import Workbook, is_workbook
from pipesync.adapters.values import salesforce_id18
from pipesync.errors import SourceError
from pipesync.files import require_regular_file
from pipesync.mapping import ANY, Mapping, fold
from pipesync.model import DATE_FIELDS, Cursor, DateStyle, DiscoveredPipeline, DiscoveredStage, Discovery, Page, RawDeal
from pipesync.parsing import numeric_date_order, split_list
from pipesync.vocabulary import VALUE_FIELDS
from pipesync.yamlfile import load_model

if TYPE_CHECKING:
    from pipesync.config import Settings, SourceConfig

DELIMITERS = ",;\t|"
# Rows parsed per step: rows are handled a chunk at a time (C-level maps rather than a Python
# loop per row), and a chunk this small still sits in the CPU cache while it is worked on.
CHUNK = 256
PREAMBLE_ROWS = 20  # rows above the header a report may print (title, filters, blank lines)
SNIFF_SAMPLE = 65536  # characters the delimiter is sniffed from
READ_BUFFER = 1 << 20  # bytes read from the file at a time: it is streamed, never held whole
LEGACY_SAMPLE = 8 << 20  # bytes a code page is guessed from
_SEP_LINE = re.compile(r"\ufeff?sep=(.)\r?\n")  # Excel's first line naming the delimiter


class Preset(BaseModel):
    description: str
    # canonical field → candidate headers, the first one the file has wins; a candidate that is a
    # list stands for those of its columns the file has, read as the first one not blank in a row
    columns: dict[str, list[str | list[str]]]
    footers: list[str] = []
    ids: Literal["salesforce"] | None = None  # salesforce: 15-character ids are read in their 18-character form

    @property
    def id_form(self) -> Callable[[str], str]:
        return salesforce_id18 if self.ids == "salesforce" else str


class Presets(RootModel[dict[str, Preset]]):
    pass


def load_presets() -> dict[str, Preset]:
    path = Path(str(resources.files("pipesync.adapters").joinpath("csv_presets.yaml")))
    return load_model(path, Presets).root


def decode(data: bytes, encoding: str = "auto") -> str:
    """The file's text (read whole: the adapter streams it, with :func:`declared_encoding` and
    the same rules)."""
    found = declared_encoding(data[:4096], encoding)
    if found is not None:
        return data.decode(found)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode(legacy_encoding(data))


def declared_encoding(head: bytes, encoding: str = "auto") -> str | None:
    """The encoding the file's first bytes settle: ``encoding`` unless ``auto``; else a BOM's, then
    UTF-16 by its zero bytes. None: UTF-8 if the whole file reads as such, else the Windows code
    page Excel saved it in (:func:`legacy_encoding`)."""
    if encoding != "auto":
        return encoding
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head and head.count(0) > len(head) // 4:  # UTF-16 without BOM: every other byte is zero
        return "utf-16-le" if head[1:2] == b"\0" else "utf-16-be"
    return None


# Excel saves "CSV" in the system's ANSI code page: Windows-1252 in the West; Shift-JIS, GBK,
# UHC or Big5 in Japan, China, Korea and Taiwan.
LEGACY_ENCODINGS = ("cp1252", "cp932", "gb18030", "cp949", "big5")


def legacy_encoding(data: bytes) -> str:
    """The code page of a file that is not UTF-8: Windows-1252 unless its bytes make no sense as such.

    Windows-1252 reads almost any bytes, so it is kept whenever charset-normalizer finds it a
    plausible reading; files with a few CJK words may then read as Latin letters, as before.
    """
    from charset_normalizer import from_bytes  # only for files that are not UTF-8

    readings = [match.encoding for match in from_bytes(data, cp_isolation=list(LEGACY_ENCODINGS))]
    if "cp1252" in readings or not readings:
        return "cp1252"
    return readings[0]


def record_maker(keys: Sequence[str], indices: Sequence[int]) -> Callable[[list[str]], dict[str, str]]:
    """A function from a row's cells to the dict ``{keys[n]: cells[indices[n]]}``, as ``dict(zip(...))`` makes it.

    Generated as one dict display, which sizes the dict once: twice as fast as
    ``dict(zip(keys, ...))``, and it runs twice per row. The keys come in as
    arguments, so no text from the file is ever part of the generated code.
    """
    names = [f"k{n}" for n in range(len(keys))]
    entries = ", ".join(f"{name}: c[{int(i)}]" for name, i in zip(names, indices))
    scope: dict[str, Callable[..., Callable[[list[str]], dict[str, str]]]] = {}
    exec(f"def bind({', '.join(names)}):\n    return lambda c: {{{entries}}}", scope)
    return scope["bind"](*keys)


# canonical field → the columns it is read from, in order: the first not blank in a row is its value
Columns = dict[str, tuple[int, ...]]


def cell_getter(indices: tuple[int, ...]) -> Callable[[list[str]], str]:
    """A row's cell for a field read from ``indices``: the first not blank, "" when none is."""
    if len(indices) == 1:
        return itemgetter(indices[0])

    def first_filled(cells: list[str]) -> str:
        return next((cells[i] for i in indices if i < len(cells) and cells[i].strip()), "")

    return first_filled


def header_index(header: list[str]) -> dict[str, int]:
    """Folded column name → its first position."""
    return {fold(h): i for i, h in reversed(list(enumerate(header)))}


def sniff_delimiter(text: str) -> str:
    sample = text[:SNIFF_SAMPLE]
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        # The sniffer gives up on irregular files: fall back to the most frequent candidate in the header.
        header = sample.split("\n", 1)[0]
        return max(DELIMITERS, key=header.count)


class CsvAdapter(Adapter):
    record_noun = "row"
    history_in_bulk = False  # an export holds no stage history: nothing to read, nothing to replace

    def __init__(self, source: SourceConfig, settings: Settings):
        super().__init__(source, settings)
        self.options = CsvOptions.model_validate(source.options)

    @cached_property
    def path(self) -> Path:
        return self.settings.path(self.options.path)

    @cached_property
    def preset(self) -> Preset:
        return load_presets()[self.options.format]  # the options checked the name

    @cached_property
    def _fd(self) -> int:
        """The file, opened once per adapter: every pass over it (sync discovers, then reads, maybe in
        forked workers) reads the same file, even when an export replaces it meanwhile."""
        require_regular_file(self.path, f"source {self.source.name!r}: options.path")
        try:
            return os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError as e:
            raise SourceError(f"{self.path}: cannot read the file ({e.strerror})") from None

    def close(self) -> None:
        if "_fd" in self.__dict__:
            os.close(self.__dict__.pop("_fd"))

    def _binary(self) -> io.BufferedReader:
        """The file's bytes from its start, read through a position of this pass's own."""
        if not hasattr(os, "pread"):  # Windows: the path again (an export replaced meanwhile is read as it now is)
            return self.path.open("rb", buffering=READ_BUFFER)  # type: ignore[return-value]
        return io.BufferedReader(_FileAt(self._fd), READ_BUFFER)

    @cached_property
    def _saved_at(self) -> datetime:
        """The file's modification time: the export's own time, for ``Page.as_of``."""
        return datetime.fromtimestamp(os.fstat(self._fd).st_mtime, timezone.utc)

    @cached_property
    def _scan(self) -> tuple[str, str]:
        """(sha256 of the file, its encoding), from one pass over its bytes that also decodes them all:
        a file that cannot be decoded fails here, before a row is read (so it deletes nothing)."""
        head = self._binary().read(4096)
        declared = declared_encoding(head, self.options.encoding)
        digest, error = self._digest_decoding(declared or "utf-8")
        if declared is None and error:  # not UTF-8: a Windows code page, which must decode too
            declared = legacy_encoding(self._legacy_sample())
            _, error = self._digest_decoding(declared)
        if error:
            raise SourceError(f"{self.path}: cannot decode the file as {declared or 'utf-8'}: {error}")
        return digest, declared or "utf-8"

    def _digest_decoding(self, encoding: str | None) -> tuple[str, str | None]:
        """(sha256 of the file, why it does not all decode in ``encoding``: None when it does, or
        when ``encoding`` is None: a workbook's bytes are not text)."""
        try:
            decoder = codecs.getincrementaldecoder(encoding)() if encoding else None
        except LookupError as e:
            raise SourceError(f"{self.path}: cannot decode the file: {e}") from None
        digest, error = hashlib.sha256(), None
        with self._binary() as f:
            while chunk := f.read(READ_BUFFER):
                digest.update(chunk)
                try:
                    if error is None and decoder is not None:
                        decoder.decode(chunk)
                except UnicodeDecodeError as e:
                    error = f"{e.reason} (byte {e.object[e.start:e.end]!r})"
        try:
            if error is None and decoder is not None:
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as e:
            error = f"{e.reason} at the end of the file"
        return digest.hexdigest(), error

    def _legacy_sample(self) -> bytes:
        """What a code page is guessed from: the whole file when small, else its lines that are not
        ASCII (the only bytes that tell code pages apart), up to ``LEGACY_SAMPLE`` bytes."""
        with self._binary() as f:
            if os.fstat(self._fd).st_size <= LEGACY_SAMPLE:
                return f.read()
            sample, size = [], 0
            for line in f:
                if not line.isascii():
                    sample.append(line)
                    size += len(line)
                    if size >= LEGACY_SAMPLE:
                        break
            return b"".join(sample)

    @cached_property
    def _digest(self) -> str:
        return self._scan[0] if self._workbook is None else self._digest_decoding(None)[0]

    def _lines(self) -> io.TextIOWrapper:
        """The file's text from its start, a line at a time as it is read (never all of it at once)."""
        return io.TextIOWrapper(self._binary(), encoding=self._scan[1], newline="")

    @cached_property
    def _workbook(self) -> Workbook | None:
        """The workbook a spreadsheet file is (None for a CSV file)."""
        if not is_workbook(self.path):
            return None
        self._saved_at  # noqa: B018 - a regular, readable file, and its time, before the workbook reads it
        return Workbook(self.path)

    @cached_property
    def _sheet(self) -> str | None:
        """The workbook's sheet to read: ``options.sheet``, else the first whose header the preset (or the
        mapping's ``fields``) recognizes."""
        book = self._workbook
        if book is None:
            return None
        names = book.sheet_names
        if self.options.sheet is not None:
            if self.options.sheet not in names:
                raise SourceError(f"{self.path}: no sheet {self.options.sheet!r} (sheets: {', '.join(names)})")
            return self.options.sheet
        first_error: SourceError | None = None
        for name in names:
            try:
                self._header(book.rows(name))
                return name
            except SourceError as e:
                first_error = first_error or e
        if first_error is None:
            raise SourceError(f"{self.path}: the workbook has no sheet")
        raise SourceError(f"{self.path}: no sheet has a header with the columns needed ({', '.join(names)}); "
                          f"the first sheet's: {first_error}") from None

    @cached_property
    def _where(self) -> str:
        """How locators name the file: "deals.csv", or "deals.xlsx sheet 'Deals'"."""
        return self.path.name if self._sheet is None else f"{self.path.name} sheet {self._sheet!r}"

    def _columns(self, header: list[str], overrides: Mapping) -> Columns:
        """Canonical field → its column indices (the first not blank in a row is the value), from the
        mapping's ``fields`` first, then the preset."""
        index = header_index(header)
        columns: Columns = {}
        for field in overrides.fields:
            missing = [c for c in overrides.columns_of(field) if fold(c) not in index]
            if missing:
                raise SourceError(f"{self.path}: the mapping names column {missing[0]!r} for {field}, but the file has no such column")
            columns[field] = tuple(index[fold(c)] for c in overrides.columns_of(field))
        for field, candidates in self.preset.columns.items():
            if field not in columns:
                for candidate in candidates:
                    found = tuple(index[fold(c)] for c in ([candidate] if isinstance(candidate, str) else candidate) if fold(c) in index)
                    if found:
                        columns[field] = found
                        break
        for needed in ("source_id", "source_stage"):
            if needed not in columns:
                raise SourceError(
                    f"{self.path}: no column for {needed}; map it under fields: in the mapping file "
                    f"(columns in the file: {', '.join(header)})"
                )
        return columns

    def _table(self, rows: RowRange | None = None) -> tuple[list[str], Columns, DataRows]:
        """(header, canonical field → column index, the data rows).

        ``rows`` limits the data rows to a part of the file.
        """
        skip, reader, header, columns = self._open_table()
        footers = tuple(fold(f) for f in self.preset.footers)
        skipped = 0
        if rows is not None and rows.after > reader.line_num:
            # the reader reads one line at a time: lines skipped here are lines it never parses
            skipped = rows.after - reader.line_num
            skip(skipped)
        data = DataRows(reader, skipped, rows.last if rows is not None else None, footers, self._broken, header)
        return header, columns, data

    def _external_refs(self, header: list[str]) -> list[tuple[int, str, Callable[[str], str]]]:
        """``options.external_refs`` (column → the source whose ids it holds): (position, source, id form) each.

        Those ids become that source's deal keys, so consolidation joins the two deals outright.
        """
        index = header_index(header)
        refs: list[tuple[int, str, Callable[[str], str]]] = []
        for column, target in self.options.external_refs.items():
            if fold(column) not in index:
                raise SourceError(f"{self.path}: options.external_refs names column {column!r}, but the file has no such column")
            other = self.settings.source(str(target))
            other_preset = load_presets()[other.options.format] if isinstance(other.options, CsvOptions) else None
            form = salesforce_id18 if other.type == "salesforce" else other_preset.id_form if other_preset else str
            # a cell may already hold the key ("salesforce:006…"): its id, not the key, takes the prefix
            prefix = f"{other.name}:"
            refs.append((index[fold(column)], other.name, lambda v, form=form, prefix=prefix: form(v.removeprefix(prefix))))
        return refs

    def _open_table(self) -> tuple[Callable[[int], None], Any, list[str], Columns]:
        """A reader of the table's rows past its header (``csv.reader`` or a sheet's :class:`SheetRows`),
        a function skipping lines unread, the header and where each field is in it."""
        if self._workbook is not None:
            sheet = self._workbook.rows(self._sheet)  # type: ignore[arg-type]  # a workbook has its sheet
            return sheet.skip, sheet, *self._header(sheet)
        lines = self._lines()
        reader = csv.reader(lines, delimiter=self._delimiter, strict=True)

        def skip(count: int) -> None:
            next(islice(lines, count, count), None)

        return skip, reader, *self._header(reader)

    @cached_property
    def _delimiter(self) -> str:
        """The configured delimiter; else Excel's ``sep=`` line's; else the sniffed one, or another
        when the sniffed one finds no header (a title above the header can mislead the sniffer).

        Found once per adapter: discovery, each part of the file and map read the same table.
        """
        delimiter = self.options.delimiter
        if delimiter != "auto":
            return delimiter
        with self._lines() as lines:
            head = lines.read(SNIFF_SAMPLE)
        if sep_line := _SEP_LINE.match(head):
            return sep_line.group(1)
        sniffed = sniff_delimiter(head)
        first_error: SourceError | None = None
        for candidate in [sniffed, *(d for d in DELIMITERS if d != sniffed)]:
            try:
                with self._lines() as lines:
                    self._header(csv.reader(lines, delimiter=candidate, strict=True))
                return candidate
            except SourceError as e:
                first_error = first_error or e
        raise first_error  # type: ignore[misc]

    def _header(self, reader: Any) -> tuple[list[str], Columns]:
        """The header row and where each canonical field is in it.

        Reports print a title, filters or Excel's ``sep=`` line above their header:
        the header is the first row that names the columns the source needs.
        """
        first_error: SourceError | None = None
        rows = islice(reader, PREAMBLE_ROWS)  # lazily: the reader stays right after the header
        while True:
            try:
                row = next(rows, None)
            except csv.Error as e:
                raise first_error or self._broken(e, reader) from None
            if row is None:
                break
            header = [h.strip().lstrip("\ufeff") for h in row]
            if not any(header):
                continue
            try:
                return header, self._columns(header, self._overrides)
            except SourceError as e:
                first_error = first_error or e
        raise first_error or SourceError(f"{self.path}: the file is empty")

    def _broken(self, error: csv.Error, reader: Any) -> SourceError:
        """What the reader could not split into rows, named by the physical line its row begins on.

        Found by reading the file again a row at a time (only a broken file pays for it): the
        reader reports where it stopped, which for a quote that never closes is the end of the file.
        """
        again = csv.reader(self._lines(), delimiter=reader.dialect.delimiter, strict=True)
        start = 1
        try:
            for _ in again:
                start = again.line_num + 1
        except csv.Error:
            pass
        where = f"{self.path.name} line {start}"
        message = str(error)
        if "field limit" in message:
            why = f"a cell longer than {csv.field_size_limit():,} characters begins on this line (a quote that never closes?)"
        elif "end of data" in message:
            why = "a quote opened on this line never closes: the rest of the file would be one cell"
        elif "expected after" in message:
            why = f"a quote opened on this line closes in the middle of a cell (line {again.line_num}): a stray quote?"
        else:
            why = message
        return SourceError(f"{where}: {why}. The file was not read past it and nothing was marked deleted; fix the file and sync again.")

    def _check_rows_not_swallowed(self, lines: Sequence[int], rows: list[list[str]], width: int) -> None:
        """Fails on a row with a cell whose later lines read as rows of the file: a quote that opened
        in one row and closed rows later (the width may still come out right), swallowing those rows.

        Only rows over several lines are looked at; a cell of notes over a few lines has no line
        with as many delimiters as a row.
        """
        delimiter = self._delimiter
        for line, cells in zip(lines, rows):
            if (spanned := lines_spanned(cells)) == 1:
                continue
            for cell in cells:
                if any(part.count(delimiter) >= width - 1 for part in cell.splitlines()[1:]):
                    raise SourceError(
                        f"{self.path.name} line {line - spanned + 1}: a quote opened on this line closes on line {line}, "
                        "making the rows between one cell. The file was not read past it and nothing was marked "
                        "deleted; fix the file and sync again."
                    )

    @cached_property
    def _overrides(self) -> Mapping:
        """The mapping file, for its ``fields:`` (canonical field → column headers), when the file exists yet."""
        path = self.settings.mapping_path(self.source)
        return load_model(path, Mapping) if path.exists() else Mapping()

    @property
    def _page_size(self) -> int:
        return self.options.page_size

    def read_deals(self, since: Cursor | None) -> Iterator[Page]:
        return self._read_rows(None)

    def partitions(self, most: int) -> list[RowRange]:
        """The file's pages split into up to ``most`` runs of whole pages."""
        survey = self._survey
        count = min(most, len(survey.page_ends))
        if count < 2:
            return []
        cuts = [survey.page_ends[len(survey.page_ends) * k // count - 1] for k in range(1, count)]
        return [RowRange(after, last) for after, last in zip([0, *cuts], [*cuts, None])]

    def read_partition(self, since: Cursor | None, partition: RowRange) -> Iterator[Page]:
        return self._read_rows(partition)

    def _read_rows(self, part: RowRange | None) -> Iterator[Page]:
        # A file is a snapshot: every read is a full read of its rows, whatever the cursor.
        digest, as_of = self._digest, self._saved_at
        page_size = self._page_size
        header, columns, data = self._table(part)
        width = len(header)
        named = [i for i, h in enumerate(header) if h]
        unnamed = [i for i in range(width) if not header[i]]  # Excel leaves some, mostly at the end
        needed = named[-1] + 1
        single = {f: ix[0] for f, ix in columns.items() if len(ix) == 1}
        values_of, raw_of = record_maker(tuple(single), tuple(single.values())), record_maker([header[i] for i in named], named)
        if coalesced := {f: cell_getter(ix) for f, ix in columns.items() if len(ix) > 1}:
            single_values_of = values_of

            def values_of(cells: list[str]) -> dict[str, Any]:  # a field read from several columns: the first filled
                values: dict[str, Any] = single_values_of(cells)
                values.update((f, get(cells)) for f, get in coalesced.items())
                return values
        if unnamed:
            named_raw_of = raw_of

            def raw_of(cells: list[str]) -> dict[str, str]:  # what the unnamed columns hold, under their number
                raw = named_raw_of(cells)
                raw.update((f"column {i + 1}", cells[i]) for i in unnamed if i < len(cells) and cells[i].strip())
                return raw

        if refs := self._external_refs(header):
            own_values_of = values_of

            def values_of(cells: list[str]) -> dict[str, Any]:
                values: dict[str, Any] = own_values_of(cells)
                values["external_refs"] = [
                    f"{target}:{form(i)}" for at, target, form in refs if at < len(cells) for i in split_list(cells[at])
                ]
                return values

        id_of, id_form = cell_getter(columns["source_id"]), self.preset.id_form
        name = self._where
        repeats = self._survey.repeats

        def one_by_one(line: int, cells: list[str]) -> RawDeal:  # a chunk with a row of another width
            if len(cells) >= needed and not any(map(str.strip, cells[width:])):  # short or long only where no column is
                values, raw, problem = values_of(cells), raw_of(cells), None
            else:
                values, raw = {f: cell_getter(ix)(cells) for f, ix in columns.items() if min(ix) < len(cells)}, dict(zip(header, cells))
                problem = ("row", f"{len(cells)} cells where the header has {width} (a stray delimiter or quote?)")
            source_id = values.get("source_id", "").strip()
            return RawDeal(id_form(source_id) if source_id else None, f"{name} row {line}", values, raw, problem)

        batch: list[RawDeal] = []
        line = 0
        # Never parse past the end of the page being filled: a row that fails to parse fails
        # after the pages before it were handed out, as when the file is read row by row.
        while (chunk := data.take(max(1, min(CHUNK, page_size - len(batch))))) is not None:
            lines, rows = chunk
            if not rows:
                continue
            if list(map(len, rows)).count(width) == len(rows):
                ids = [id_form(i) if i else None for i in map(str.strip, map(id_of, rows))]
                locators = [f"{name} row {n}" for n in lines]
                batch += map(RawDeal, ids, locators, map(values_of, rows), map(raw_of, rows))
            else:
                batch += map(one_by_one, lines, rows)
            if repeats:
                self._flag_repeats(batch, lines, repeats)
            line = lines[-1]
            if len(batch) >= page_size:
                yield Page(deals=batch, cursor=Cursor(value={"sha256": digest, "row": line}), as_of=as_of)
                batch = []
        if part is None or part.last is None:
            yield Page(deals=batch, cursor=Cursor(value={"sha256": digest}), snapshot_complete=True, as_of=as_of)
        elif batch:
            yield Page(deals=batch, cursor=Cursor(value={"sha256": digest, "row": line}), as_of=as_of)

    def _flag_repeats(self, batch: list[RawDeal], lines: Sequence[int], repeats: dict[int, int]) -> None:
        """Flags the rows of the last chunk (at the end of ``batch``) whose id an earlier row has: ``duplicate_id``.

        They lose their id here, so that only the first row stands for the deal (and their
        quarantine rows are keyed by where they are).
        """
        start = len(batch) - len(lines)
        for k, line in enumerate(lines):
            if (first := repeats.get(line)) is not None:
                deal = batch[start + k]
                reason = f"duplicate_id: the id {deal.source_id!r} is on {self._where} row {first} already, which is kept (the first row with an id is the deal)"
                batch[start + k] = RawDeal(None, deal.locator, deal.values, deal.raw, ("source_id", reason))

    def discover(self) -> Discovery:
        pipelines: dict[str, list[DiscoveredStage]] = {}
        for (pipeline, stage), n in self._survey.stages.items():
            pipelines.setdefault(pipeline, []).append(DiscoveredStage(id=stage, label=stage, deal_count=n))
        return Discovery(
            source=self.name,
            pipelines=[DiscoveredPipeline(id=p, label=p, stages=s) for p, s in sorted(pipelines.items())],
            values={field: dict(counts) for field, counts in self._survey.values.items()},
        )

    def columns(self) -> dict[str, str | None]:
        """Each canonical field the format knows (and the mapping's ``fields:``) → the header of the column it is read from, or None."""
        header, columns = self._open_table()[2:]
        fields = [*self.preset.columns, *(f for f in self._overrides.fields if f not in self.preset.columns)]
        return {field: " / ".join(header[i] for i in columns[field]) if field in columns else None for field in fields}

    def date_style(self) -> DateStyle:
        """What the file's date columns prove about day/month order, with the first proof of each."""
        header, columns, data = self._table()
        date_columns = sorted({i for field, ix in columns.items() if field in DATE_FIELDS for i in ix})  # once each: fields may share one
        order_of: dict[str, str | None] = {}
        proof: dict[str, str] = {}
        ambiguous = 0
        while (chunk := data.take(CHUNK)) is not None:
            for line, row in zip(*chunk):
                for i in date_columns:
                    cell = row[i] if i < len(row) else ""
                    if (order := order_of.get(cell, "")) == "":
                        order = order_of[cell] = numeric_date_order(cell)
                    if order == "ambiguous":
                        ambiguous += 1
                    elif order is not None and order not in proof:
                        proof[order] = f"{cell.strip()!r} in column {header[i]!r}, {self._where} row {line}"
        return DateStyle.of(proof, ambiguous)

    @cached_property
    def _survey(self) -> Survey:
        """One pass over the file for what discovery and partitioning need (sync asks for both)."""
        header, columns, data = self._table()
        width = len(header)
        stage_of, id_of = cell_getter(columns["source_stage"]), cell_getter(columns["source_id"])
        pipeline_of = cell_getter(columns["pipeline"]) if "pipeline" in columns else None
        page_size = self._page_size
        pairs: Counter[tuple[str, str]] = Counter()  # (pipeline cell, stage cell) as in the file → rows
        page_ends: list[int] = []
        # each id (trimmed, in the deals' form) → the line of its first row: ids are kept, rows are not
        first: dict[str, int] = {}
        repeats: dict[int, int] = {}
        id_form = self.preset.id_form if self.preset.ids is not None else None
        value_of = {field: cell_getter(columns[field]) for field in VALUE_FIELDS if field in columns}
        values: dict[str, Counter[str]] = {field: Counter() for field in value_of}  # cells as written → rows
        widest = max(i for f in ("source_stage", "source_id", "pipeline", *value_of) for i in columns.get(f, ()))
        count = line = 0
        while (chunk := data.take(CHUNK)) is not None:
            lines, rows = chunk
            if not rows:
                continue
            if not isinstance(lines, range) and self._workbook is None:  # some row of the chunk spans lines
                self._check_rows_not_swallowed(lines, rows, width)
            if min(map(len, rows)) <= widest:  # some rows are short of a column: those cells count as blank
                rows = [row + [""] * (widest + 1 - len(row)) for row in rows]
            pairs.update(zip(map(pipeline_of, rows) if pipeline_of is not None else repeat(""), map(stage_of, rows)))
            ids = list(map(str.strip, map(id_of, rows)))
            if id_form is not None:  # ids compared as the deals will hold them: a 15- and an 18-character id are one
                ids = [id_form(i) if i else i for i in ids]
            chunk_ids = dict(zip(ids, lines))
            if len(chunk_ids) == len(ids) and "" not in chunk_ids and first.keys().isdisjoint(chunk_ids):
                first.update(chunk_ids)  # the common case, at C speed: every id new
            else:
                _add_repeats(first, repeats, ids, lines)
            for field, get in value_of.items():
                values[field].update(map(get, rows))
            page_ends += lines[page_size - 1 - count % page_size :: page_size]
            count += len(rows)
            line = lines[-1]
        if count % page_size:
            page_ends.append(line)
        # Counted as written, then trimmed: a few distinct pairs to strip rather than every row's.
        # Merged in order of first appearance, so stages come out in the file's order.
        stages: Counter[tuple[str, str]] = Counter()
        for (pipeline, stage), n in pairs.items():
            if stage := stage.strip():
                stages[(pipeline.strip() or ANY, stage)] += n
        distinct: dict[str, Counter[str]] = {field: Counter() for field in values}
        for field, counts in values.items():
            for value, n in counts.items():
                if value := value.strip():
                    distinct[field][value] += n
        return Survey(stages=stages, page_ends=page_ends, repeats=repeats, values=distinct)


def _add_repeats(first: dict[str, int], repeats: dict[int, int], ids: list[str], lines: Sequence[int]) -> None:
    """Adds the ids of a chunk to ``first`` (id → the line of its first row), and to ``repeats`` the
    rows whose (non-blank) id an earlier row has (line → that row's line)."""
    for id_, line in zip(ids, lines):
        if id_ and (earlier := first.setdefault(id_, line)) != line:
            repeats[line] = earlier


class DataRows:
    """A table's data rows, parsed a chunk at a time, with the physical line each row ends on.

    Skipped: blank rows, footers, the rows after line ``last``, and a board's layout: the
    header printed again (per group, per page) and a group's title, a row of one cell that the
    header follows (blank rows between). A row of one cell that no header follows is data as
    before (and quarantined as a short row), so nothing is dropped on a guess.
    """

    def __init__(
        self, reader: Any, skipped: int, last: int | None, footers: tuple[str, ...],
        broken: Callable[[csv.Error, Any], Exception], header: list[str],
    ) -> None:
        self.reader, self.skipped, self.last, self.footers, self.broken = reader, skipped, last, footers, broken
        self.header = _trimmed(header)
        self.header_start = header[0].strip().casefold() if header else ""
        self.done = False
        # A title row (and the blank rows after it) read at the end of a chunk: whether it is a
        # group's title depends on the row after it, so it waits for the next chunk.
        self.held: tuple[list[int], list[list[str]]] = ([], [])

    def take(self, most: int) -> tuple[Sequence[int], list[list[str]]] | None:
        """(lines, cells) of the data rows among the next ``most`` rows of the file; None at its end."""
        reader = self.reader
        before = reader.line_num + self.skipped
        held_lines, held_rows = self.held
        asked = max(1, most - len(held_rows))
        try:
            rows = [] if self.done else list(islice(reader, asked))
        except csv.Error as e:
            raise self.broken(e, reader) from None
        ended = self.done or len(rows) < asked
        lines: Sequence[int]
        if reader.line_num + self.skipped - before == len(rows):
            lines = range(before + 1, before + 1 + len(rows))  # the common case: a line per row
        else:
            lines = list(accumulate(map(lines_spanned, rows), initial=before))[1:]
        if rows and self.last is not None and lines[-1] > self.last:
            keep = bisect_right(lines, self.last)
            lines, rows, self.done, ended = lines[:keep], rows[:keep], True, True
        if held_rows:
            lines, rows, self.held = [*held_lines, *lines], [*held_rows, *rows], ([], [])
        if not rows:
            return None
        # A row whose first two cells are filled is data, unless it is the header again; only
        # the others can be blank, a footer or a group's title.
        filled = min(map(len, rows), default=2) >= 2 and all(map(str.strip, map(itemgetter(0), rows)))
        if not (filled and all(map(str.strip, map(itemgetter(1), rows))) and self.header_start not in map(str.casefold, map(str.strip, map(itemgetter(0), rows)))):
            kept, held = self._kept(rows, ended)
            if held is not None:
                self.held = (list(lines[held:]), rows[held:])
            lines, rows = [lines[n] for n in kept], [rows[n] for n in kept]
        return lines, rows

    def _kept(self, rows: list[list[str]], ended: bool) -> tuple[list[int], int | None]:
        """The data rows' positions among ``rows``, and where the rows to hold from start: a title row
        at the end, with the blank rows after it, waits for the row that decides it (None: none waits)."""
        kept: list[int] = []
        title: int | None = None  # a one-cell row whose fate the next filled row decides
        for n, cells in enumerate(rows):
            filled = [c for c in cells if c.strip()]
            if not filled:
                continue
            if len(filled) > 1 and _trimmed(cells) == self.header:
                title = None  # the header again: the row of one cell before it is a group's title
                continue
            if title is not None:
                kept.append(title)
                title = None
            if len(filled) > 1:
                kept.append(n)
            elif not fold(filled[0]).startswith(self.footers):
                title = n
        if title is not None and not ended:
            return kept, title
        return (kept if title is None else [*kept, title]), None


def _trimmed(cells: list[str]) -> list[str]:
    """Cells as a header is compared: folded, trailing blank cells dropped."""
    folded = [fold(c) for c in cells]
    while folded and not folded[-1]:
        folded.pop()
    return folded


def lines_spanned(cells: list[str]) -> int:
    """The physical lines a parsed row took: one, plus the line breaks quoted inside its cells.

    Breaks are counted as the reader's lines split (\\r\\n, \\r or \\n); the separator
    keeps a \\r ending one cell and a \\n starting the next from counting as one.
    """
    text = "\0".join(cells)
    return 1 + text.count("\n") + text.count("\r") - text.count("\r\n")


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
    repeats: dict[int, int]  # the line of each row whose id an earlier row has → that row's line
    values: dict[str, Counter[str]]  # lost_reason, lead_source: each value (trimmed) → rows


class _FileAt(io.RawIOBase):
    """A file descriptor read from a position of this reader's own (``pread``): passes over the
    file, and forked workers sharing the descriptor, never move each other's place."""

    def __init__(self, fd: int) -> None:
        self.fd, self.at = fd, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self.fd, len(buffer), self.at)
        buffer[: len(data)] = data
        self.at += len(data)
        return len(data)

"""Spreadsheet workbooks (.xlsx, .xlsm, .xlsb, .xls, .ods) read as rows of text cells, like a CSV file's.

Most CRMs export Excel first. A sheet is read through python-calamine (Rust: the
sheet's cells are held compactly there, and turned into Python values one row at a
time), and each cell becomes the text the CSV reader would have found, written
without any locale: a date cell ``2026-03-01``, a date-and-time cell
``2026-03-01 14:30:00`` (in the mapping's ``parse.timezone``), a number cell its
shortest exact form as a :class:`~pipesync.model.SheetNumber`, so normalization
reads amounts exactly and never through the mapping's decimal separator, and a
number in a date column as Excel's serial day.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from pipesync.errors import SourceError
from pipesync.model import SheetNumber

# What calamine reads: Office Open XML (Excel 2007+, with macros, binary), Excel 97-2003, OpenDocument.
SHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"})


def is_workbook(path: Path) -> bool:
    return path.suffix.casefold() in SHEET_SUFFIXES


def cell_text(value: Any) -> str:
    """A cell's value as text that means one thing in any locale."""
    if value is None or value == "":
        return ""
    if value.__class__ is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return SheetNumber(int(value))
        return SheetNumber(repr(value))
    if isinstance(value, int):
        return SheetNumber(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):  # a duration cell: its seconds
        return SheetNumber(repr(value.total_seconds()))
    return str(value)


class SheetRows:
    """A sheet's rows as lists of text cells, read lazily, with ``line_num`` (the sheet's row number
    of the last row read), as ``csv.reader`` gives a file's."""

    def __init__(self, sheet: Any):
        self.name: str = sheet.name
        self.line_num = 0  # calamine gives the rows above the used range too (empty): row numbers are the sheet's
        self._rows: Iterator[list[Any]] = iter(sheet.iter_rows())

    def __iter__(self) -> SheetRows:
        return self

    def __next__(self) -> list[str]:
        row = next(self._rows)
        self.line_num += 1
        return [cell_text(v) for v in row]

    def skip(self, count: int) -> None:
        """Passes ``count`` rows unread (``line_num`` stays, as when a CSV file's lines are skipped)."""
        for _ in range(count):
            if next(self._rows, None) is None:
                return


class Workbook:
    """One workbook file, opened once; each :meth:`rows` call reads a sheet from its first row."""

    def __init__(self, path: Path):
        from python_calamine import CalamineWorkbook  # only for workbooks

        self.path = path
        self._sheets: dict[str, Any] = {}
        try:
            self._book = CalamineWorkbook.from_path(str(path))
        except Exception as e:  # calamine's own errors (zip, XML, password) and OSError
            raise SourceError(f"{path}: cannot read the workbook ({e})") from None

    @property
    def sheet_names(self) -> list[str]:
        return list(self._book.sheet_names)

    def rows(self, name: str) -> SheetRows:
        """The sheet's rows from its first; the sheet is parsed once (discovery, survey and reads walk it again)."""
        if name not in self._sheets:
            try:
                self._sheets[name] = self._book.get_sheet_by_name(name)
            except Exception as e:
                raise SourceError(f"{self.path}: cannot read sheet {name!r} ({e})") from None
        return SheetRows(self._sheets[name])

"""The spreadsheet report (xlsx), for auditors who work in Excel or LibreOffice.

Three sheets, each with a bold, frozen header row and an autofilter:

* **Scope** — the scope, the summary (with counts per event type and actor) and
  the integrity attestation, as Section / Item / Value rows;
* **Timeline** — one row per event, every field of the export format;
* **Changes** — in an aggregate report, one row per field an event changed
  (JSON Pointer, value before, value after; ``(absent)`` where there was none).
  A report of many aggregates lists no changes, and its Scope sheet says so.

Every cell is typed: numbers are numbers, times are real datetimes and text is a
string cell, which a spreadsheet never evaluates, so a value like
``=HYPERLINK(...)`` is shown, not run, and needs no ``'`` prefix. Text is shown
as in the other human-readable reports: control characters and bidi overrides
as escapes (:mod:`workbench.safetext`; xlsx cannot hold most control characters
at all). Spreadsheets know no time zones, so times are written as UTC wall-clock
times and every time heading says "(UTC)"; Excel keeps them to the millisecond.
A cell holds at most 32,767 characters: a longer text is cut and says how much
was left out (the JSON Lines and Parquet reports hold it whole). A sheet holds
at most 1,048,576 rows: a larger report is refused, with the advice to narrow
it or use CSV or Parquet.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from ..safetext import shown
from .model import Report, json_text

__all__ = ["MAX_CELL_CHARS", "MAX_ROWS", "write_xlsx"]

MAX_CELL_CHARS = 32_767
"""The most characters a spreadsheet cell holds (Excel's limit)."""
MAX_ROWS = 1_048_576
"""The most rows a sheet holds, its header row included (Excel's limit)."""

_TIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
_BOLD = Font(bold=True)
_TOP = Alignment(vertical="top")

_TIMELINE = (
    ("Position", 10),
    ("Recorded at (UTC)", 24),
    ("Occurred at (UTC)", 24),
    ("Actor", 18),
    ("Aggregate", 22),
    ("Aggregate type", 16),
    ("Version", 9),
    ("Event", 24),
    ("Schema version", 9),
    ("Event id", 38),
    ("Correlation id", 38),
    ("Causation id", 38),
    ("Data (JSON)", 60),
    ("Metadata (JSON)", 40),
    ("Hash", 66),
)
_CHANGES = (
    ("Position", 10),
    ("Version", 9),
    ("Recorded at (UTC)", 24),
    ("Event", 24),
    ("Field (JSON Pointer)", 30),
    ("Before (JSON)", 50),
    ("After (JSON)", 50),
)
_SCOPE = (("Section", 12), ("Item", 28), ("Value", 70))


def _text(value: str) -> str:
    text = shown(value)
    if len(text) <= MAX_CELL_CHARS:
        return text
    marker = " … ({:,} more characters; the jsonl and parquet reports hold them)"
    keep = MAX_CELL_CHARS - len(marker.format(len(text)))
    return text[:keep] + marker.format(len(text) - keep)


def _cell(sheet: WriteOnlyWorksheet, value: Any, *, bold: bool = False) -> Cell:
    if isinstance(value, datetime):
        cell = WriteOnlyCell(sheet, value=value.astimezone(UTC).replace(tzinfo=None))
        cell.number_format = _TIME_FORMAT
    elif value is None or isinstance(value, (bool, int, float)):
        cell = WriteOnlyCell(sheet, value=value)
    else:
        cell = WriteOnlyCell(sheet, value=_text(str(value)))
        cell.data_type = "s"  # openpyxl would take a leading "=" for a formula
    # Not wrapped: rows stay one line high (spreadsheets do not grow a row for
    # wrapped text written by a file), and the last column runs on to the right.
    cell.alignment = _TOP
    if bold:
        cell.font = _BOLD
    return cell


class _Sheet:
    """A streamed sheet with a frozen header row and an autofilter over its rows."""

    def __init__(
        self,
        book: Workbook,
        title: str,
        columns: tuple[tuple[str, int], ...],
        *,
        fit_width: bool = False,
    ) -> None:
        self.sheet: WriteOnlyWorksheet = book.create_sheet(title)
        self.title = title
        self.width = len(columns)
        self.rows = 1
        for index, (_, width) in enumerate(columns, 1):
            self.sheet.column_dimensions[get_column_letter(index)].width = width
        self.sheet.freeze_panes = "A2"
        # On paper: landscape, the header row on every page; a narrow sheet
        # is fitted to the page's width (a timeline's 15 columns would be unreadable).
        self.sheet.page_setup.orientation = "landscape"
        self.sheet.print_title_rows = "1:1"
        if fit_width:
            self.sheet.page_setup.fitToWidth = 1
            self.sheet.page_setup.fitToHeight = 0
            self.sheet.sheet_properties.pageSetUpPr.fitToPage = True
        self.sheet.append([_cell(self.sheet, name, bold=True) for name, _ in columns])

    def append(self, values: list[Any]) -> None:
        if self.rows >= MAX_ROWS:
            raise ValueError(
                f"the {self.title} sheet would need more than {MAX_ROWS:,} rows, the most a "
                "spreadsheet holds; narrow the report (filters, --limit) or use csv or parquet"
            )
        self.sheet.append([_cell(self.sheet, value) for value in values])
        self.rows += 1

    def close(self) -> None:
        # A write-only sheet has its own auto_filter; types-openpyxl leaves it out.
        self.sheet.auto_filter.ref = f"A1:{get_column_letter(self.width)}{self.rows}"  # type: ignore[attr-defined]

    def discard(self) -> None:
        """After a failure: finish the sheet's stream and remove its temporary file."""
        with contextlib.suppress(Exception):
            self.sheet.close()
            self.sheet._writer.cleanup()  # type: ignore[attr-defined]  # private, not in the stubs


def _count(value: str) -> int | str:
    return int(value) if value.isdigit() else value


def _scope_rows(report: Report) -> list[list[Any]]:
    scope, summary, integrity = report.scope, report.summary, report.integrity
    rows: list[list[Any]] = [["Scope", "Title", scope.title]]
    rows += [["Scope", key, value] for key, value in scope.rows()]
    rows.append(["Scope", "Times", "every time in this workbook is UTC"])
    if not report.is_aggregate:
        rows.append(["Scope", "Changes", "field changes are listed in a report of one aggregate"])
    rows += [["Summary", key, _count(value)] for key, value in summary.rows()]
    rows += [["Event type", name, count] for name, count in summary.per_type.items()]
    rows += [["Actor", name, count] for name, count in summary.per_actor.items()]
    rows.append(["Integrity", "Statement", integrity.statement()])
    rows += [["Integrity", key, _count(value)] for key, value in integrity.rows()]
    return rows


def write_xlsx(report: Report, out: BinaryIO) -> int:
    """Write ``report`` as an xlsx workbook to ``out``; returns the number of events."""
    book = Workbook(write_only=True)
    sheets = [
        _Sheet(book, "Scope", _SCOPE, fit_width=True),
        _Sheet(book, "Timeline", _TIMELINE),
        _Sheet(book, "Changes", _CHANGES),
    ]
    try:
        count = _fill(report, *sheets)
    except BaseException:
        for sheet in sheets:
            sheet.discard()
        raise
    for sheet in sheets:
        sheet.close()
    book.save(out)
    return count


def _fill(report: Report, scope: _Sheet, timeline: _Sheet, changes: _Sheet) -> int:
    for row in _scope_rows(report):
        scope.append(row)
    count = 0
    for entry in report.entries():
        e = entry.event
        timeline.append(
            [
                e.position,
                e.recorded_at,
                e.occurred_at,
                e.actor,
                e.aggregate_id,
                e.aggregate_type,
                e.version,
                e.type,
                e.schema_version,
                e.event_id,
                e.correlation_id,
                e.causation_id,
                json_text(e.data, spaced=True),
                json_text(e.metadata, spaced=True),
                e.hash,
            ]
        )
        for change in entry.changes or []:
            changes.append(
                [
                    e.position,
                    e.version,
                    e.recorded_at,
                    e.type,
                    change.path,
                    "(absent)" if change.old is None else json_text(change.old, spaced=True),
                    "(absent)" if change.new is None else json_text(change.new, spaced=True),
                ]
            )
        count += 1
    return count

"""Events as JSON Lines or CSV rows: one writer for ``sss export`` and the TUI's export.

So a file written from the TUI and one written by the command line cannot
disagree about a byte: both are UTF-8, lines end with ``\\n``, JSON Lines hold
every field of the event schema (``RecordedEvent.to_dict``), and CSV has one
header row with the schema's field names, then one row per event with
``data`` and ``metadata`` as compact JSON text and an empty cell for null.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import IO, Any

from store import EVENT_FIELDS, RecordedEvent
from workbench.safetext import spreadsheet_cell

__all__ = ["EXPORT_FIELDS", "FORMATS", "csv_row", "write_csv", "write_events", "write_jsonl"]

EXPORT_FIELDS: tuple[str, ...] = tuple(EVENT_FIELDS)
"""CSV columns: the schema's field names, in schema order."""

FORMATS = ("jsonl", "csv")

_LINES_PER_WRITE = 512  # fewer write calls when streaming large exports


def write_jsonl(events: Iterable[RecordedEvent], out: IO[str]) -> int:
    """One JSON object per line, every field; returns how many were written."""
    count = 0
    chunk: list[str] = []
    for event in events:
        chunk.append(json.dumps(event.to_dict(), ensure_ascii=False))
        count += 1
        if len(chunk) >= _LINES_PER_WRITE:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")
    return count


def csv_row(event: RecordedEvent, spreadsheet_safe: bool = False) -> list[Any]:
    """The CSV cells of one event, in :data:`EXPORT_FIELDS` order.

    Exact data by default; ``spreadsheet_safe`` neutralises cells a spreadsheet
    would take for formulas (:func:`workbench.safetext.spreadsheet_cell`).
    """
    record = event.to_dict()
    row: list[Any] = []
    for name in EXPORT_FIELDS:
        value = record[name]
        if name in ("data", "metadata"):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        value = "" if value is None else value
        row.append(spreadsheet_cell(value) if spreadsheet_safe else value)
    return row


def write_csv(
    events: Iterable[RecordedEvent], out: IO[str], *, spreadsheet_safe: bool = False
) -> int:
    """A header row, then one row per event; returns how many events were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event, spreadsheet_safe))
        count += 1
    return count


def write_events(
    events: Iterable[RecordedEvent], out: IO[str], fmt: str, *, spreadsheet_safe: bool = False
) -> int:
    """Write events as ``jsonl`` or ``csv``; returns how many were written.

    ``spreadsheet_safe`` applies to CSV only (see :func:`csv_row`).
    """
    if fmt == "jsonl":
        return write_jsonl(events, out)
    if fmt == "csv":
        return write_csv(events, out, spreadsheet_safe=spreadsheet_safe)
    raise ValueError(f"unknown export format {fmt!r}; use jsonl or csv")

"""``sss events`` and ``sss export``: the commands that read the log."""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from store import EVENT_FIELDS, RecordedEvent

from ..safetext import shown, spreadsheet_cell
from .common import (
    CliError,
    add_filter_arguments,
    batched_lines,
    dumps,
    format_table_time,
    open_store,
    read_filters,
)

EXPORT_FIELDS = EVENT_FIELDS
"""CSV columns: the schema's field names, in schema order."""

_COLUMNS = ("POSITION", "RECORDED_AT (UTC)", "AGGREGATE", "VERSION", "TYPE", "ACTOR")
_MAX_WIDTH = {"AGGREGATE": 36, "TYPE": 32, "ACTOR": 32}
_SAMPLE = 500  # rows looked at to size the columns; later rows are cut to fit


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    events = subparsers.add_parser(
        "events",
        help="list events as a table (or JSON Lines)",
        description="List events: position, recorded_at, aggregate, version, type, actor.",
    )
    events.add_argument("path", metavar="PATH", help="the store")
    events.add_argument(
        "--json", action="store_true", help="JSON Lines, every field (as `sss export`)"
    )
    add_filter_arguments(events)
    events.set_defaults(func=run_events)

    export = subparsers.add_parser(
        "export",
        help="export events as JSON Lines or CSV",
        description=(
            "Export events, streaming. JSON Lines: one RecordedEvent per line, every field. "
            "CSV: one row per event, data and metadata as JSON text. Both are data: every "
            "text is exported exactly as stored, control characters included."
        ),
    )
    export.add_argument("path", metavar="PATH", help="the store")
    export.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here (replaced only once complete); default stdout",
    )
    export.add_argument(
        "--spreadsheet-safe",
        action="store_true",
        help=(
            "csv: prefix with ' every text cell a spreadsheet would evaluate as a formula "
            "(beginning with = + - @, tab or CR; OWASP CSV injection). Without it the CSV "
            "holds the exact text, so open it in a spreadsheet only if you trust the writers"
        ),
    )
    add_filter_arguments(export)
    export.set_defaults(func=run_export)


# ---------------------------------------------------------------------------
# events


def _row(event: RecordedEvent) -> tuple[str, ...]:
    return (
        str(event.position),
        format_table_time(event.recorded_at),
        shown(event.aggregate_id) if event.aggregate_id is not None else "-",
        str(event.version) if event.version is not None else "-",
        shown(event.type),
        shown(event.actor) if event.actor else "-",
    )


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(events: Iterable[RecordedEvent]) -> Iterator[str]:
    """Lines of a fixed-width table; widths come from the first rows, so it streams."""
    rows = map(_row, events)
    sample = list(itertools.islice(rows, _SAMPLE))
    widths = [len(name) for name in _COLUMNS]
    for row in sample:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    for index, name in enumerate(_COLUMNS):
        if name in _MAX_WIDTH:
            widths[index] = min(widths[index], _MAX_WIDTH[name])
    right = {0, 3}  # numbers align right

    def render(row: tuple[str, ...]) -> str:
        cells = []
        for index, cell in enumerate(row):
            cell = _fit(cell, widths[index])
            cells.append(cell.rjust(widths[index]) if index in right else cell.ljust(widths[index]))
        return "  ".join(cells).rstrip()

    yield render(_COLUMNS)
    for row in itertools.chain(sample, rows):
        yield render(row)


def run_events(args: argparse.Namespace) -> int:
    filters = read_filters(args)
    with open_store(args.path) as es:
        events = es.read(**filters)
        lines = (dumps(event.to_dict()) for event in events) if args.json else format_table(events)
        batched_lines(lines, sys.stdout, size=64)
    return 0


# ---------------------------------------------------------------------------
# export


def _csv_row(event: RecordedEvent, spreadsheet_safe: bool = False) -> list[Any]:
    record = event.to_dict()
    row: list[Any] = []
    for name in EXPORT_FIELDS:
        value = record[name]
        if name in ("data", "metadata"):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if value is None:
            value = ""
        row.append(spreadsheet_cell(value) if spreadsheet_safe else value)
    return row


def write_export(
    events: Iterable[RecordedEvent], out: IO[str], fmt: str, *, spreadsheet_safe: bool = False
) -> int:
    """Write events as ``jsonl`` or ``csv``; returns how many were written.

    Exact data by default; ``spreadsheet_safe`` neutralises CSV cells a
    spreadsheet would take for formulas (:func:`workbench.safetext.spreadsheet_cell`).
    """
    if fmt == "jsonl":
        return batched_lines((dumps(event.to_dict()) for event in events), out)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for event in events:
        writer.writerow(_csv_row(event, spreadsheet_safe))
        count += 1
    return count


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run_export(args: argparse.Namespace) -> int:
    filters = read_filters(args)
    if args.spreadsheet_safe and args.format != "csv":
        raise CliError("--spreadsheet-safe applies to --format csv only", code=2)
    safe = bool(args.spreadsheet_safe)
    with open_store(args.path) as es:
        if args.output is None or args.output == "-":
            write_export(es.read(**filters), sys.stdout, args.format, spreadsheet_safe=safe)
            return 0
        target = os.path.abspath(args.output)
        if os.path.isdir(target):
            raise IsADirectoryError(21, "Is a directory", args.output)
        # Written beside the target and renamed at the end, so a failed export
        # never leaves a truncated file that looks complete.
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - renamed or removed below
            "w",
            encoding="utf-8",
            newline="",
            dir=os.path.dirname(target),
            prefix=".sss-export-",
            delete=False,
        )
        try:
            with handle:
                count = write_export(es.read(**filters), handle, args.format, spreadsheet_safe=safe)
            os.chmod(handle.name, 0o666 & ~_umask())  # temp files are private; exports are not
            os.replace(handle.name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(handle.name)
            raise
    sys.stdout.write(f"exported {count} events to {shown(args.output)}\n")
    return 0

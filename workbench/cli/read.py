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

from . import sqlite_export
from .common import (
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
        help="export events as JSON Lines, CSV or an SQLite analysis database",
        description=(
            "Export events, streaming. JSON Lines: one RecordedEvent per line, every field. "
            "CSV: one row per event, data and metadata as JSON text. "
            "sqlite: an analysis database for Datasette and sqlite-utils (-o required): "
            "events, one table per event type with payload fields as columns, the latest "
            "state of each aggregate flattened, the field changes, full-text search, and "
            "ANALYSIS.metadata.json beside it; run again onto the same file to add only "
            "new events."
        ),
        epilog=sqlite_export.EPILOG,
    )
    export.add_argument("path", metavar="PATH", help="the store")
    export.add_argument(
        "--format", choices=("jsonl", "csv", "sqlite"), default="jsonl", help="default jsonl"
    )
    export.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here (replaced only once complete); default stdout",
    )
    add_filter_arguments(export)
    sqlite_export.add_arguments(export)
    export.set_defaults(func=run_export)


# ---------------------------------------------------------------------------
# events


def _row(event: RecordedEvent) -> tuple[str, ...]:
    return (
        str(event.position),
        format_table_time(event.recorded_at),
        event.aggregate_id if event.aggregate_id is not None else "-",
        str(event.version) if event.version is not None else "-",
        event.type,
        event.actor or "-",
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


def _csv_row(event: RecordedEvent) -> list[Any]:
    record = event.to_dict()
    row: list[Any] = []
    for name in EXPORT_FIELDS:
        value = record[name]
        if name in ("data", "metadata"):
            value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        row.append("" if value is None else value)
    return row


def write_export(events: Iterable[RecordedEvent], out: IO[str], fmt: str) -> int:
    """Write events as ``jsonl`` or ``csv``; returns how many were written."""
    if fmt == "jsonl":
        return batched_lines((dumps(event.to_dict()) for event in events), out)
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(EXPORT_FIELDS)
    count = 0
    for event in events:
        writer.writerow(_csv_row(event))
        count += 1
    return count


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def run_export(args: argparse.Namespace) -> int:
    if args.format == "sqlite":
        return sqlite_export.run(args)
    filters = read_filters(args)
    with open_store(args.path) as es:
        if args.output is None or args.output == "-":
            write_export(es.read(**filters), sys.stdout, args.format)
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
                count = write_export(es.read(**filters), handle, args.format)
            os.chmod(handle.name, 0o666 & ~_umask())  # temp files are private; exports are not
            os.replace(handle.name, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(handle.name)
            raise
    sys.stdout.write(f"exported {count} events to {args.output}\n")
    return 0

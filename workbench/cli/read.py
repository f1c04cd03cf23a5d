"""``sss events`` and ``sss export``: the commands that read the log."""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Iterable, Iterator

from store import RecordedEvent
from workbench.eventfiles import write_events
from workbench.inputs import open_store
from workbench.outputs import STREAM, open_output

from ..safetext import shown
from . import sqlite_export
from .common import (
    CliError,
    add_filter_arguments,
    batched_lines,
    dumps,
    format_table_time,
    plural,
    read_filters,
)

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
            "CSV: one row per event, data and metadata as JSON text. Both are data: every "
            "text is exported exactly as stored, control characters included. "
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
        help=(
            "write here (replaced only once complete; never a store, a device or a "
            "directory); default or -: standard output"
        ),
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
    sqlite_export.add_arguments(export)
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


def run_export(args: argparse.Namespace) -> int:
    if args.format == "sqlite":
        return sqlite_export.run(args)
    filters = read_filters(args)
    if args.spreadsheet_safe and args.format != "csv":
        raise CliError("--spreadsheet-safe applies to --format csv only", code=2)
    target = args.output if args.output is not None else STREAM
    # The output is checked before anything is read: an export never replaces a store.
    with open_store(args.path) as es, open_output(target, protect=[args.path, es.path]) as out:
        count = write_events(
            es.read(**filters), out, args.format, spreadsheet_safe=args.spreadsheet_safe
        )
    if target != STREAM:
        sys.stdout.write(f"exported {count} {plural(count, 'event')} to {shown(args.output)}\n")
    return 0

"""What the `sss` commands share: errors, read filters, user code options, output.

Command modules (and ``workbench.cli.report``) build on these so every command
takes the same filters and reports errors the same way. How what a person types
is read (times, ``module:attr``, JSON, store locations) is
:mod:`workbench.inputs`, shared with the TUI and ``frames``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import IO, Any

from store import Reducers, Upcasters
from workbench.inputs import RELATIVE_TIME, TIME_HINT, load_user_object, parse_time, time_text

__all__ = [
    "TIME_OPTIONS",
    "CliError",
    "add_filter_arguments",
    "add_reducer_arguments",
    "batched_lines",
    "dumps",
    "format_table_time",
    "join_relative_times",
    "plural",
    "read_filters",
    "user_code",
]


class CliError(Exception):
    """A user-facing error: printed as one ``sss: error: ...`` line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------
# Times

TIME_OPTIONS = ("--since", "--until", "--at", "--occurred-at", "--occurred", "--known-at")
"""Options whose value may be a relative time such as ``-2h``."""

_TIME_HELP = TIME_HINT


def join_relative_times(argv: Sequence[str]) -> list[str]:
    """Rewrite ``--since -2h`` as ``--since=-2h``.

    argparse takes a value starting with ``-`` for an option and refuses it, so
    relative times would otherwise need the ``=`` form.
    """
    out: list[str] = []
    items = list(argv)
    index = 0
    while index < len(items):
        item = items[index]
        following = items[index + 1] if index + 1 < len(items) else None
        if item in TIME_OPTIONS and following is not None and RELATIVE_TIME.match(following):
            out.append(f"{item}={following}")
            index += 2
            continue
        out.append(item)
        index += 1
    return out


def format_table_time(value: datetime) -> str:
    """UTC time to the millisecond, for tables read by people."""
    return time_text(value, "ms")


# ---------------------------------------------------------------------------
# Filters


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must not be negative")
    return value


def add_filter_arguments(parser: argparse.ArgumentParser, *, ordering: bool = True) -> None:
    """Add the read filters every reading command shares (``es.read`` arguments)."""
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--from-position",
        type=_positive_int,
        metavar="N",
        help="start at this position (the highest returned with --backwards)",
    )
    group.add_argument("--aggregate", metavar="ID", help="only events of this aggregate")
    group.add_argument(
        "--aggregate-type", metavar="TYPE", help="only events of aggregates of this type"
    )
    group.add_argument(
        "--type",
        dest="types",
        action="append",
        metavar="EVENT_TYPE",
        help="only events of this type (repeat for several)",
    )
    group.add_argument("--since", metavar="TIME", help=f"recorded at or after; {_TIME_HELP}")
    group.add_argument("--until", metavar="TIME", help=f"recorded at or before; {_TIME_HELP}")
    if ordering:
        group.add_argument("--limit", type=_positive_int, metavar="N", help="at most N events")
        group.add_argument("--backwards", action="store_true", help="newest first")


def read_filters(args: argparse.Namespace, now: datetime | None = None) -> dict[str, Any]:
    """The keyword arguments for ``EventStore.read`` from parsed filter options."""
    since = parse_time(args.since, "--since", now=now) if args.since is not None else None
    until = parse_time(args.until, "--until", now=now) if args.until is not None else None
    if since is not None and until is not None and since > until:
        raise CliError(f"--since {args.since} is after --until {args.until}")
    filters: dict[str, Any] = {
        "from_position": args.from_position,
        "aggregate_id": args.aggregate,
        "aggregate_type": args.aggregate_type,
        "types": list(args.types) if args.types else None,
        "since": since,
        "until": until,
    }
    if hasattr(args, "limit"):
        filters["limit"] = args.limit
    if hasattr(args, "backwards"):
        filters["backwards"] = bool(args.backwards)
    return filters


# ---------------------------------------------------------------------------
# Stores and user code


def add_reducer_arguments(parser: argparse.ArgumentParser, *, upcasters: bool = True) -> None:
    parser.add_argument(
        "--reducers",
        metavar="MODULE:ATTR",
        help="a store.Reducers object to rebuild state with (default: JSON merge patch)",
    )
    if upcasters:
        parser.add_argument(
            "--upcasters", metavar="MODULE:ATTR", help="a store.Upcasters object for old events"
        )


def user_code(args: argparse.Namespace) -> tuple[Reducers | None, Upcasters | None]:
    """The ``--reducers`` and ``--upcasters`` objects named by parsed options."""
    reducers = load_user_object(getattr(args, "reducers", None), "--reducers", Reducers)
    upcasters = load_user_object(getattr(args, "upcasters", None), "--upcasters", Upcasters)
    return reducers, upcasters


# ---------------------------------------------------------------------------
# Output


def plural(count: int, noun: str) -> str:
    """``noun`` for one, ``noun + "s"`` otherwise: "1 event", "2 events"."""
    return noun if count == 1 else f"{noun}s"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def batched_lines(lines: Iterator[str], out: IO[str], size: int = 512) -> int:
    """Write lines in chunks (fewer write calls when streaming large exports)."""
    count = 0
    chunk: list[str] = []
    for line in lines:
        chunk.append(line)
        count += 1
        if len(chunk) >= size:
            out.write("\n".join(chunk) + "\n")
            chunk.clear()
    if chunk:
        out.write("\n".join(chunk) + "\n")
    return count

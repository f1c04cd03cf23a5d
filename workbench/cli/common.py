"""What the `sss` commands share: errors, time parsing, read filters, opening stores, output.

Command modules (and ``workbench.cli.report``) build on these so every command
takes the same filters and reports errors the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from store import EventStore

__all__ = [
    "TIME_OPTIONS",
    "CliError",
    "add_filter_arguments",
    "add_reducer_arguments",
    "batched_lines",
    "dumps",
    "format_table_time",
    "join_relative_times",
    "load_user_object",
    "open_store",
    "parse_time",
    "read_filters",
]


class CliError(Exception):
    """A user-facing error: printed as one ``sss: error: ...`` line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------
# Times

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {
    "s": "seconds",
    "sec": "seconds",
    "m": "minutes",
    "min": "minutes",
    "h": "hours",
    "d": "days",
    "w": "weeks",
}

TIME_OPTIONS = ("--since", "--until", "--at", "--occurred-at", "--occurred", "--known-at")
"""Options whose value may be a relative time such as ``-2h``."""

_TIME_HELP = "ISO-8601 with a zone (2024-05-01T12:00Z) or relative to now (-2h, -3d, -30m)"


_DATE_WITH_ZONE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:?\d{2})$")


def parse_time(text: str, option: str = "time", now: datetime | None = None) -> datetime:
    """Parse an ISO-8601 datetime with a zone, ``now``, or a relative time like ``-2h``.

    Naive datetimes (and bare dates) are rejected rather than guessed, as the store does.

    Example:
        >>> parse_time("2024-05-01T12:00:00Z").isoformat()
        '2024-05-01T12:00:00+00:00'
    """
    value = text.strip()
    current = now if now is not None else datetime.now(UTC)
    if value.lower() == "now":
        return current
    match = _RELATIVE.match(value)
    if match:
        amount = float(match.group(1))
        try:
            return current - timedelta(**{_UNITS[match.group(2).lower()]: amount})
        except OverflowError:
            raise CliError(f"{option} {text!r} reaches out of the calendar") from None
    dated = _DATE_WITH_ZONE.match(value)
    if dated:
        # A day with a zone means its midnight there: 2024-05-01Z.
        value = f"{dated.group(1)}T00:00{dated.group(2)}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CliError(
            f"{option} {text!r} is not a time; use ISO-8601 with a zone "
            "(2024-05-01T12:00:00Z) or a relative time (-2h, -3d)"
        ) from None
    if parsed.tzinfo is None or parsed.tzinfo.utcoffset(parsed) is None:
        raise CliError(
            f"{option} {text!r} has no timezone; add one (e.g. {value}Z or {value}+02:00) "
            "or use a relative time (-2h)"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise CliError(f"{option} {text!r} is out of range in UTC") from None


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
        if item in TIME_OPTIONS and following is not None and _RELATIVE.match(following):
            out.append(f"{item}={following}")
            index += 2
            continue
        out.append(item)
        index += 1
    return out


def format_table_time(value: datetime) -> str:
    """UTC time to the millisecond, for tables read by people."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


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
    since = parse_time(args.since, "--since", now) if args.since is not None else None
    until = parse_time(args.until, "--until", now) if args.until is not None else None
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


def load_user_object(spec: str | None, option: str) -> Any:
    """Import ``module:attribute`` (``--reducers``/``--upcasters``) or fail with one line.

    The working directory is importable, as users expect when naming their own module.
    """
    if spec is None:
        return None
    from store import load_object

    if ":" not in spec:
        raise CliError(f"{option} {spec!r} must look like module:attribute")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return load_object(spec)
    except Exception as e:  # anything the user's module raises on import
        reason = str(e) or type(e).__name__
        raise CliError(f"{option} {spec}: {reason}") from e


def open_store(
    path: str,
    *,
    write: bool = False,
    reducers: Any = None,
    upcasters: Any = None,
    durable: bool = True,
) -> EventStore:
    """Open a store read-only unless writing (which creates a missing file).

    The store's own errors (missing file, not a store, locked) are one-line messages.
    """
    kwargs: dict[str, Any] = {"readonly": not write}
    if reducers is not None:
        kwargs["reducers"] = reducers
    if upcasters is not None:
        kwargs["upcasters"] = upcasters
    if not durable:
        kwargs["durable"] = False
    return EventStore(path, **kwargs)


# ---------------------------------------------------------------------------
# Output


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

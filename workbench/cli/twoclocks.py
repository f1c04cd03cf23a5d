"""``sss bisect`` (the first version at which a condition holds), and the two
clocks of ``sss replay --occurred T [--known-at K]``."""

from __future__ import annotations

import argparse
import sys
import time
from typing import IO, Any

from store import AggregateState, EventStore, NotFoundError, Step
from workbench.inputs import open_store, parse_time

from .common import (
    CliError,
    add_reducer_arguments,
    dumps,
    format_table_time,
    user_code,
)

BISECT_EPILOG = """\
The expression: JSON Pointer, operator, JSON literal, joined by 'and' / 'or'
('and' binds tighter; parentheses group):
  /status == "cancelled"          /total < 0 and /currency == "EUR"
  /refund exists                  /address/zip missing or /items/0/qty > 5
Operators: == != < <= > >= (with a JSON value), exists, missing (without).
'!=' also holds for a missing field; < <= > >= only compare two numbers or two
strings. A key holding a space or an operator character is given as a JSON
string: "/due date" exists. A bad expression is one error naming its column.

Output: for each aggregate whose state ever satisfies the expression, the
first such version: its event (version, position, recorded_at, occurred_at,
type, actor) and the fields it changed; with --json one JSON object per
aggregate. Across a type, results are printed as they are found, and a
progress line is shown on stderr when it is a terminal.
Exit status: 0 when something matched, 1 when nothing did.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bisect = subparsers.add_parser(
        "bisect",
        help="find the first version at which a condition on the state holds",
        description=(
            "Find when something went wrong: the first event after which an "
            "aggregate's state satisfies an expression (for one aggregate, or for "
            "every aggregate of a type)."
        ),
        epilog=BISECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bisect.add_argument("path", metavar="PATH", help="the store")
    bisect.add_argument("aggregate", metavar="AGGREGATE", nargs="?", help="the aggregate id")
    bisect.add_argument(
        "--aggregate-type", metavar="T", help="search every aggregate of this type instead"
    )
    bisect.add_argument(
        "--where", metavar="EXPR", required=True, help='the condition, e.g. /status == "cancelled"'
    )
    bisect.add_argument("--json", action="store_true", help="JSON Lines, one per aggregate")
    add_reducer_arguments(bisect)
    bisect.set_defaults(func=run_bisect)


def add_clock_arguments(parser: argparse.ArgumentParser) -> None:
    """``--occurred`` and ``--known-at`` for ``sss replay``."""
    parser.add_argument(
        "--occurred",
        metavar="TIME",
        help="as of this business time (occurred_at), events folded in occurred_at order",
    )
    parser.add_argument(
        "--known-at",
        metavar="TIME",
        help="using only the events recorded by this time (default: all known now)",
    )


def clock_state(es: EventStore, args: argparse.Namespace) -> AggregateState | None:
    """The state the two clocks ask for, or None when neither is given."""
    if args.occurred is None and args.known_at is None:
        return None
    for option, value in (("--version", args.version), ("--position", args.position)):
        if value is not None:
            raise CliError(f"{option} does not go with --occurred/--known-at")
    if args.at is not None:
        raise CliError("--at does not go with --occurred/--known-at (use --known-at)")
    if args.history:
        raise CliError("--history does not go with --occurred/--known-at")
    occurred = None if args.occurred is None else parse_time(args.occurred, "--occurred")
    known_at = None if args.known_at is None else parse_time(args.known_at, "--known-at")
    return es.state_at(args.aggregate, occurred=occurred, known_at=known_at)


def step_record(step: Step) -> dict[str, Any]:
    event = step.event
    stored = event.to_dict()
    return {
        "aggregate_id": event.aggregate_id,
        "aggregate_type": event.aggregate_type,
        "version": event.version,
        "position": event.position,
        "type": event.type,
        "recorded_at": stored["recorded_at"],
        "occurred_at": stored["occurred_at"],
        "actor": event.actor,
        "changes": [{"path": c.path, "old": c.old, "new": c.new} for c in step.changes],
        "state": step.after,
    }


def step_lines(step: Step) -> list[str]:
    event = step.event
    heading = (
        f"{event.aggregate_id}  v{event.version}  #{event.position}  {event.type}"
        f"  recorded {format_table_time(event.recorded_at)}"
        f"  occurred {format_table_time(event.occurred_at)}"
    )
    if event.actor:
        heading += f"  by {event.actor}"
    lines = [heading]
    for change in step.changes:
        lines.append(f"  {change.path}: {dumps(change.old)} -> {dumps(change.new)}")
    if not step.changes:
        lines.append("  (no change: the condition held from the start)")
    return lines


class _Progress:
    """A progress line on a terminal's stderr, at most ten times a second."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.live = out.isatty()
        self.found = 0
        self.last = 0.0
        self.shown = False

    def __call__(self, position: int, head: int) -> None:
        now = time.monotonic()
        if not self.live or now - self.last < 0.1:
            return
        self.last = now
        share = 100.0 * position / head if head else 100.0
        self.out.write(f"\r{share:5.1f}% of the log, {self.found:,} found ")
        self.out.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.out.write("\r\033[K")
            self.out.flush()


def run_bisect(args: argparse.Namespace) -> int:
    if (args.aggregate is None) == (args.aggregate_type is None):
        raise CliError("give an AGGREGATE or --aggregate-type T (one of them)")
    reducers, upcasters = user_code(args)
    with open_store(args.path, reducers=reducers, upcasters=upcasters) as es:
        from store.conditions import parse

        condition = parse(args.where)
        if args.aggregate is not None:
            try:
                step = es.bisect(args.aggregate, condition)
            except NotFoundError:
                raise CliError(f"no aggregate {args.aggregate!r} in {es.label}") from None
            steps = [] if step is None else [step]
            found = _print(steps, args.json, None)
        else:
            progress = _Progress(sys.stderr)
            try:
                found = _print(
                    es.bisect_type(args.aggregate_type, condition, progress), args.json, progress
                )
            finally:
                progress.done()
    if not found:
        target = args.aggregate or f"any {args.aggregate_type}"
        sys.stderr.write(f"sss: no version of {target} satisfies {args.where}\n")
        return 1
    return 0


def _print(steps: Any, as_json: bool, progress: _Progress | None) -> int:
    found = 0
    for step in steps:
        found += 1
        if progress is not None:
            progress.found = found
            if progress.shown:
                progress.out.write("\r\033[K")
        if as_json:
            sys.stdout.write(dumps(step_record(step)) + "\n")
        else:
            sys.stdout.write("\n".join(step_lines(step)) + "\n")
        sys.stdout.flush()
    return found

"""``sss replay``: rebuild an aggregate's state as of a version, position or time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from store import AggregateState, EventStore, NotFoundError, Step
from workbench.inputs import open_store, parse_time
from workbench.safetext import shown

from .common import CliError, add_reducer_arguments, dumps, format_table_time, user_code
from .twoclocks import add_clock_arguments, clock_state

REPLAY_EPILOG = """\
Output: one JSON object on stdout,
  {"aggregate_id", "aggregate_type", "version", "position", "recorded_at", "state"}
where version/position/recorded_at are those of the last event folded in (0, 0 and
null before the aggregate's first event). --state-only prints just the state.
--occurred T folds the events that occurred by business time T, in occurred_at
order, and --known-at K only those recorded by K (either or both; not with
--version, --position or --at): what was known at K about the state as of T.
--history prints each step instead: the event and the fields it changed
(+ added, - removed, ~ changed), or JSON Lines with --json.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="rebuild an aggregate's state as of a version, position or time",
        description="Rebuild an aggregate's state by folding its events (latest by default).",
        epilog=REPLAY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("path", metavar="PATH", help="the store")
    replay.add_argument("aggregate", metavar="AGGREGATE", help="the aggregate id")
    point = replay.add_mutually_exclusive_group()
    point.add_argument("--version", type=int, metavar="N", help="as of this version")
    point.add_argument("--position", type=int, metavar="N", help="as of this global position")
    point.add_argument(
        "--at", metavar="TIME", help="as recorded at this time (ISO-8601 with a zone, or -2h)"
    )
    add_clock_arguments(replay)
    replay.add_argument("--history", action="store_true", help="print each step's changes")
    replay.add_argument("--json", action="store_true", help="with --history: JSON Lines")
    replay.add_argument("--state-only", action="store_true", help="print only the state object")
    add_reducer_arguments(replay)
    replay.set_defaults(func=run_replay)


def state_to_dict(state: AggregateState) -> dict[str, Any]:
    return {
        "aggregate_id": state.aggregate_id,
        "aggregate_type": state.aggregate_type,
        "version": state.version,
        "position": state.position,
        "recorded_at": None if state.recorded_at is None else state.recorded_at.isoformat(),
        "state": state.state,
    }


def step_to_dict(step: Step) -> dict[str, Any]:
    event = step.event
    return {
        "position": event.position,
        "version": event.version,
        "type": event.type,
        "recorded_at": event.to_dict()["recorded_at"],
        "occurred_at": event.to_dict()["occurred_at"],
        "actor": event.actor,
        "changes": [
            {"path": change.path, "old": change.old, "new": change.new} for change in step.changes
        ],
    }


def _value(value: Any) -> str:
    return shown(json.dumps(value, ensure_ascii=False))


def format_step(step: Step) -> list[str]:
    """A readable block: a heading for the event, one line per changed field."""
    event = step.event
    heading = (
        f"v{event.version}  #{event.position}  {format_table_time(event.recorded_at)}  "
        f"{shown(event.type)}"
    )
    if event.actor:
        heading += f"  by {shown(event.actor)}"
    lines = [heading]
    if not step.changes:
        lines.append("    (no change)")
    for change in step.changes:
        if change.old is None and change.new is not None:
            lines.append(f"  + {shown(change.path)}: {_value(change.new)}")
        elif change.new is None and change.old is not None:
            lines.append(f"  - {shown(change.path)}: {_value(change.old)}")
        else:
            lines.append(f"  ~ {shown(change.path)}: {_value(change.old)} -> {_value(change.new)}")
    return lines


def _target(es: EventStore, args: argparse.Namespace) -> AggregateState:
    two_clocks = clock_state(es, args)
    if two_clocks is not None:
        return two_clocks
    if args.version is not None and args.version < 0:
        raise CliError("--version must not be negative")
    if args.position is not None and args.position < 0:
        raise CliError("--position must not be negative")
    at = parse_time(args.at, "--at") if args.at is not None else None
    return es.state_at(args.aggregate, version=args.version, position=args.position, at=at)


def run_replay(args: argparse.Namespace) -> int:
    if args.json and not args.history:
        raise CliError("--json goes with --history (replay prints JSON already)")
    if args.state_only and args.history:
        raise CliError("--state-only and --history do not go together")
    reducers, upcasters = user_code(args)
    with open_store(args.path, reducers=reducers, upcasters=upcasters) as es:
        try:
            info = es.aggregate(args.aggregate)
        except NotFoundError:
            raise CliError(f"no aggregate {args.aggregate!r} in {es.label}") from None
        if args.version is not None and args.version > info.version:
            raise CliError(
                f"{args.aggregate} has {info.version} versions; --version {args.version} "
                "is beyond its last"
            )
        state = _target(es, args)
        if not args.history:
            payload = state.state if args.state_only else state_to_dict(state)
            sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
            return 0
        if state.version == 0:
            return 0
        for step in es.history(args.aggregate, to_version=state.version):
            if args.json:
                sys.stdout.write(dumps(step_to_dict(step)) + "\n")
            else:
                sys.stdout.write("\n".join(format_step(step)) + "\n")
    return 0

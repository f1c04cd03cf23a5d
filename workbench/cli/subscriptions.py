"""``sss subscriptions``: which consumers there are, how far behind, stuck on what.

$ sss subscriptions shop.db
$ sss subscriptions shop.db --json
$ sss subscriptions shop.db --reset billing --to 0     # replay billing from the start
$ sss subscriptions shop.db --parked
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from store import ParkedEvent, SubscriptionInfo
from workbench.inputs import open_store
from workbench.safetext import one_line, shown

from .common import CliError, dumps, format_table_time


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "subscriptions",
        help="durable consumers: position, lag, failures; reset one",
        description=(
            "List the store's durable subscriptions (one line per group member): the "
            "position each has dealt with, its lag in events and in time (how long the "
            "first unhandled event has waited), when its position last moved, its "
            "filters, its parked events and the error it last stopped on. With --reset "
            "NAME --to N the subscription resumes after position N (0: from the start); "
            "events it parked after N are delivered again."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the store")
    parser.add_argument("--json", action="store_true", help="JSON Lines, one subscription a line")
    parser.add_argument("--reset", metavar="NAME", help="move subscription NAME (needs --to)")
    parser.add_argument(
        "--to", metavar="N", type=int, help="the position --reset moves it to (0: start over)"
    )
    parser.add_argument("--delete", metavar="NAME", help="forget subscription NAME")
    parser.add_argument(
        "--parked", action="store_true", help="list the parked events and why they were parked"
    )
    parser.set_defaults(func=run_subscriptions)


def _member(info: SubscriptionInfo) -> str:
    return "-" if info.group_size == 1 else f"{info.member}/{info.group_size}"


def _filters(info: SubscriptionInfo) -> str:
    parts = []
    if info.types is not None:
        parts.append("types=" + ",".join(info.types))
    if info.aggregate_type is not None:
        parts.append(f"aggregate_type={info.aggregate_type}")
    return " ".join(parts) or "-"


def _waited(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _record(info: SubscriptionInfo) -> dict[str, Any]:
    return {
        "name": info.name,
        "member": info.member,
        "group_size": info.group_size,
        "position": info.position,
        "lag": info.lag,
        "lag_seconds": info.lag_seconds,
        "next_position": info.next_position,
        "updated_at": info.updated_at.isoformat(),
        "created_at": info.created_at.isoformat(),
        "types": None if info.types is None else list(info.types),
        "aggregate_type": info.aggregate_type,
        "parked": info.parked,
        "failed_position": info.failed_position,
        "failure": info.failure,
    }


def format_subscriptions(infos: list[SubscriptionInfo]) -> list[str]:
    header = ("NAME", "MEMBER", "POSITION", "LAG", "WAITING", "MOVED", "FILTERS", "PARKED")
    rows = [
        (
            shown(info.name),
            _member(info),
            str(info.position),
            str(info.lag),
            _waited(info.lag_seconds) if info.lag else "-",
            format_table_time(info.updated_at),
            shown(_filters(info)),
            str(info.parked),
        )
        for info in infos
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    right = {2, 3, 4, 7}

    def render(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    lines = [render(header), *map(render, rows)]
    for info in infos:
        if info.failure is not None:
            lines.append(
                f"{shown(info.name)}{'' if info.group_size == 1 else ' ' + _member(info)} "
                f"stopped at position {info.failed_position}: {one_line(info.failure)}"
            )
    return lines


def _parked_record(event: ParkedEvent) -> dict[str, Any]:
    return {
        "name": event.name,
        "position": event.position,
        "event_id": event.event_id,
        "type": event.type,
        "reason": event.reason,
        "parked_at": event.parked_at.isoformat(),
    }


def run_subscriptions(args: argparse.Namespace) -> int:
    if (args.reset is None) != (args.to is None):
        raise CliError("--reset NAME and --to N go together", code=2)
    if args.reset is not None and args.delete is not None:
        raise CliError("give either --reset or --delete, not both", code=2)
    writing = args.reset is not None or args.delete is not None
    if writing and "://" not in args.path and not os.path.exists(args.path):
        raise CliError(f"no event store at {args.path}: the file does not exist")
    with open_store(args.path, write=writing) as es:
        if args.reset is not None:
            if args.to < 0:
                raise CliError(f"--to must be a position >= 0, not {args.to}", code=2)
            es.reset_subscription(args.reset, args.to)
            sys.stderr.write(f"{shown(args.reset)} resumes after position {args.to}\n")
        if args.delete is not None:
            es.delete_subscription(args.delete)
            sys.stderr.write(f"{shown(args.delete)} deleted\n")
        if args.parked:
            parked = es.parked_events()
            if args.json:
                for event in parked:
                    sys.stdout.write(dumps(_parked_record(event)) + "\n")
            elif not parked:
                sys.stdout.write("no parked events\n")
            else:
                for event in parked:
                    sys.stdout.write(
                        f"{shown(event.name)}  {event.position}  {shown(event.type)}  "
                        f"{format_table_time(event.parked_at)}  {one_line(event.reason)}\n"
                    )
            return 0
        infos = es.subscriptions()
    if args.json:
        for info in infos:
            sys.stdout.write(dumps(_record(info)) + "\n")
    elif not infos:
        sys.stdout.write("no subscriptions\n")
    else:
        sys.stdout.write("\n".join(format_subscriptions(infos)) + "\n")
    return 0

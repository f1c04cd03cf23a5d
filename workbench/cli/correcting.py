"""``sss revert`` and ``sss void``: corrections that append, never delete.

$ sss revert shop.db ord-000042 --to-version 3 --reason "refund entered twice"
"""

from __future__ import annotations

import argparse
import sys

from workbench.inputs import open_store, parse_json, parse_position, parse_time
from workbench.safetext import shown

from .common import CliError, add_reducer_arguments, user_code

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "revert",
        help="take an aggregate back to an earlier state with one sss.Reverted event",
        description=(
            "Append one event of type sss.Reverted to AGGREGATE so that its state becomes "
            "what it was at the target (a version, a position or a time). Nothing is "
            "deleted: the revert is a step in the history like any other, with the reason, "
            "the actor and the target version and position in its metadata. With the "
            "default reducer the event's data is the merge patch from the current state to "
            "the target's; with --reducers it is the target's whole state. The store "
            "applies sss.Reverted itself, whatever reducers are registered."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the store (a file or a postgresql:// URL)")
    parser.add_argument("aggregate", metavar="AGGREGATE", help="the aggregate id")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-version", metavar="N", help="the aggregate's version N")
    target.add_argument("--to-position", metavar="N", help="as it stood at log position N")
    target.add_argument("--to-time", metavar="T", help="as it stood at time T")
    parser.add_argument("--reason", metavar="TEXT", required=True, help="why (required)")
    parser.add_argument("--actor", metavar="NAME", help="who (default: the login name)")
    parser.add_argument("--metadata", metavar="JSON", help="more metadata, a JSON object")
    add_reducer_arguments(parser)
    parser.set_defaults(func=run_revert)

    parser = subparsers.add_parser(
        "void",
        help="mark a wrong event with one sss.Voided event; later replays skip it",
        description=(
            "Append one event of type sss.Voided (to the same aggregate) naming the event at "
            "POSITION. Replays whose point lies at or after the void skip the voided event; "
            "replays before it (an earlier version, position or time) still include it, as "
            "it was known then. Nothing is deleted and the hash chain is untouched. A void "
            "cannot be voided, and an event is voided once."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the store (a file or a postgresql:// URL)")
    parser.add_argument("position", metavar="POSITION", help="the wrong event's position")
    parser.add_argument("--reason", metavar="TEXT", required=True, help="why (required)")
    parser.add_argument("--actor", metavar="NAME", help="who (default: the login name)")
    parser.add_argument("--metadata", metavar="JSON", help="more metadata, a JSON object")
    parser.set_defaults(func=run_void)


def run_void(args: argparse.Namespace) -> int:
    position = parse_position(args.position, "POSITION")
    metadata = _metadata(args)
    with open_store(args.path, write=True, create=False) as es:
        event = es.void(position, reason=args.reason, metadata=metadata)
    sys.stdout.write(
        f"voided the event at position {position}: sss.Voided at position {event.position}\n"
    )
    return 0


def _metadata(args: argparse.Namespace) -> dict[str, object]:
    metadata: dict[str, object] = {}
    if args.metadata is not None:
        value = parse_json(args.metadata, "--metadata")
        if not isinstance(value, dict):
            raise CliError("--metadata must be a JSON object")
        metadata.update(value)
    if args.actor is not None:
        metadata["actor"] = args.actor
    return metadata


def run_revert(args: argparse.Namespace) -> int:
    version = position = at = None
    if args.to_version is not None:
        version = parse_position(args.to_version, "--to-version")
    elif args.to_position is not None:
        position = parse_position(args.to_position, "--to-position")
    else:
        at = parse_time(args.to_time, "--to-time")
    metadata = _metadata(args)
    reducers, upcasters = user_code(args)
    with open_store(
        args.path, write=True, create=False, reducers=reducers, upcasters=upcasters
    ) as es:
        event = es.revert(
            args.aggregate,
            version=version,
            position=position,
            at=at,
            reason=args.reason,
            metadata=metadata,
        )
    sys.stdout.write(
        f"reverted {shown(args.aggregate)} to version {event.metadata['reverted_to_version']}: "
        f"sss.Reverted at position {event.position} (version {event.version})\n"
    )
    return 0

"""``sss revert`` and ``sss void``: corrections that append, never delete;
``sss erase``: payloads removed for privacy law, digests kept.

$ sss revert shop.db ord-000042 --to-version 3 --reason "refund entered twice"
$ sss erase shop.db --aggregate customer-17 --reason "erasure request 2024-113"
"""

from __future__ import annotations

import argparse
import sys
import warnings

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

    parser = subparsers.add_parser(
        "erase",
        help="remove the payloads of events (privacy law); digests stay, one sss.Erased receipt",
        description=(
            "Erase the payloads of every event of an aggregate (--aggregate), or of the "
            "events at the given positions (--position, repeatable), and append one "
            "sss.Erased receipt (no aggregate) listing them, with the reason and the actor. "
            "An erased payload keeps its top-level field names, each holding the marker "
            "\u27e8erased\u27e9; its digest (data_hash), the hash chain and every other column "
            "stay, so sss verify stays ok and counts the erased payloads. The old bytes are "
            "removed from the store's files too: snapshots that held them are dropped; on SQLite "
            "the change is written with secure_delete and the WAL is checkpointed and truncated; "
            "on PostgreSQL the tables are vacuumed with VACUUM FULL (WAL segments, archives "
            "and backups are out of reach: see the README). Erasing events erased already "
            "changes nothing and prints the earlier receipt. The store's own sss.Voided "
            "events and receipts are never erased."
        ),
    )
    parser.add_argument("path", metavar="PATH", help="the store (a file or a postgresql:// URL)")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--aggregate", metavar="ID", help="every event of this aggregate so far")
    what.add_argument(
        "--position",
        metavar="N",
        action="append",
        help="the event at log position N (repeat for more)",
    )
    parser.add_argument("--reason", metavar="TEXT", required=True, help="why (required)")
    parser.add_argument("--actor", metavar="NAME", help="who (default: the login name)")
    parser.add_argument("--metadata", metavar="JSON", help="more metadata, a JSON object")
    parser.set_defaults(func=run_erase)


def run_erase(args: argparse.Namespace) -> int:
    positions = None
    if args.position is not None:
        positions = [parse_position(text, "--position") for text in args.position]
    metadata = _metadata(args)
    with open_store(args.path, write=True, create=False) as es:
        head = es.head()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            receipt = es.erase(
                positions=positions, aggregate_id=args.aggregate, reason=args.reason,
                metadata=metadata,
            )  # fmt: skip
    listed = receipt.data.get("positions", [])
    if receipt.position > head:
        sys.stdout.write(
            f"erased {len(listed)} payload{'s' if len(listed) != 1 else ''} "
            f"(position{'s' if len(listed) != 1 else ''} {_ranges(listed)}): sss.Erased at "
            f"position {receipt.position}\n"
        )
    else:
        sys.stdout.write(
            f"nothing left to erase: erased already by sss.Erased at position {receipt.position}\n"
        )
    for warning in caught:
        sys.stderr.write(f"sss: warning: {shown(str(warning.message))}\n")
    return 0


def _ranges(positions: list[int]) -> str:
    """1, 2, 3, 7 -> "1-3, 7"."""
    runs: list[list[int]] = []
    for position in sorted(positions):
        if runs and runs[-1][1] == position - 1:
            runs[-1][1] = position
        else:
            runs.append([position, position])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


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

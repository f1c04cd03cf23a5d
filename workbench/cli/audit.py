"""``sss verify`` and ``sss stats``: is the log intact, and what is in it."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import Any

from store import Checkpoint, EventStore, VerifierKey
from store.eventstore import STORAGE_CHECKS
from workbench.cli.common import CliError, _positive_int
from workbench.cli.proofs import load_checkpoint, load_public_key
from workbench.inputs import open_store
from workbench.safetext import shown


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="check the hash chain of every event",
        description=(
            "Recompute the hash chain over every event. Exit 0 and print the number "
            "checked and the head hash when intact; exit 1 naming the first bad position "
            "and the reason when not. With --from-position N --head-hash H (the head "
            "position and hash an earlier verify printed), check only the events after N, "
            "chained on from H, and the aggregates they touch. With --checkpoint FILE "
            "(from sss checkpoint), also prove that the store still extends that "
            "checkpoint: exit 1 naming what differs when history was rewritten, "
            "reordered, forked or cut; --key KEY.pub also requires its signature."
        ),
    )
    verify.add_argument("path", metavar="PATH", help="the store")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument(
        "--storage",
        choices=STORAGE_CHECKS,
        default=None,
        help=(
            "the database's own check after the chain walk: full (every page and every "
            "index against its table; the default), quick (pages only, faster) or off "
            "(the default with --from-position: the check reads the whole database)"
        ),
    )
    verify.add_argument(
        "--from-position",
        type=_positive_int,
        metavar="N",
        help="check only the events after position N (needs --head-hash)",
    )
    verify.add_argument(
        "--head-hash",
        metavar="H",
        help="the hash at position N that you trust, from an earlier verify",
    )
    verify.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a checkpoint the store must extend (every event is then walked)",
    )
    verify.add_argument(
        "--key", metavar="KEY.pub", help="the public key the checkpoint must be signed with"
    )
    verify.set_defaults(func=run_verify)

    stats = subparsers.add_parser(
        "stats",
        help="counts per event type and aggregate type, time span, size",
        description="Summarise a store: counts, time span, file size, head position.",
    )
    stats.add_argument("path", metavar="PATH", help="the store")
    stats.add_argument("--json", action="store_true", help="print as JSON")
    stats.set_defaults(func=run_stats)


def run_verify(args: argparse.Namespace) -> int:
    if (args.from_position is None) != (args.head_hash is None):
        raise CliError("--from-position and --head-hash go together: give both or neither", 2)
    if args.key is not None and args.checkpoint is None:
        raise CliError("--key checks a checkpoint's signature: give --checkpoint FILE too", 2)
    if args.checkpoint is not None and args.from_position is not None:
        raise CliError("--checkpoint walks every event; it does not go with --from-position", 2)
    against = None if args.checkpoint is None else load_checkpoint(args.checkpoint)
    key = None if args.key is None else load_public_key(args.key)
    with open_store(args.path) as es:
        report = es.verify(
            storage=args.storage,
            from_position=args.from_position,
            head_hash=args.head_hash,
            merkle=args.from_position is None,
            checkpoint=against,
            key=None if key is None else key.text,
        )
        info = es.info() if against is not None else {}
    if args.json:
        sys.stdout.write(
            json.dumps(
                {
                    "ok": report.ok,
                    "checked": report.checked,
                    "first_bad_position": report.first_bad_position,
                    "reason": report.reason,
                    "head_position": report.head_position,
                    "head_hash": report.head_hash,
                    "size": report.head_position if report.root is not None else None,
                    "root": report.root,
                    "checkpoint": checkpoint_facts(report.checkpoint, key),
                    "erased": report.erased,
                }
            )
            + "\n"
        )
        return 0 if report.ok else 1
    if report.ok:
        erased = (
            f"; {report.erased} erased payload{'s' if report.erased != 1 else ''} (digests kept)"
            if report.erased
            else ""
        )
        sys.stdout.write(
            f"ok: {report.checked} events checked; head position {report.head_position}, "
            f"hash {report.head_hash or '-'}{erased}\n"
        )
        if report.root is not None:
            sys.stdout.write(f"merkle tree: size {report.head_position}, root {report.root}\n")
        if report.checkpoint is not None:
            sys.stdout.write(f"{describe_checkpoint(report.checkpoint, key, info)}\n")
        return 0
    if report.checkpoint is not None:
        sys.stderr.write(
            f"sss: error: the store does not extend the checkpoint: {shown(report.reason)} "
            f"({report.checked} events checked)\n"
        )
        return 1
    where = (
        "the store is damaged"
        if report.first_bad_position is None
        else f"hash chain broken at position {report.first_bad_position}"
    )
    sys.stderr.write(
        f"sss: error: {where}: {shown(report.reason)} ({report.checked} events checked)\n"
    )
    return 1


def checkpoint_facts(cp: Checkpoint | None, key: VerifierKey | None) -> dict[str, Any] | None:
    """What a verify report states of the checkpoint it was checked against."""
    if cp is None:
        return None
    signature = cp.signature_state(key)
    return {
        "store_id": cp.store_id,
        "size": cp.size,
        "root": cp.root,
        "chain_head": cp.chain_head,
        "created_at": _iso(cp.created_at),
        "signature": signature,
    }


def describe_checkpoint(cp: Checkpoint, key: VerifierKey | None, info: dict[str, Any]) -> str:
    facts = checkpoint_facts(cp, key) or {}
    text = (
        f"extends the checkpoint of {cp.size} events (root {cp.root}, taken "
        f"{facts['created_at'] or 'at an unknown time'}); signature: {facts['signature']}"
    )
    if info.get("store_id") not in (None, cp.store_id):
        text += f"; the checkpoint names store {shown(cp.store_id)} (this store is a copy of it)"
    return text


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def collect_stats(es: EventStore, path: str) -> dict[str, Any]:
    """Counts, time spans and size of a store, from the counts the store keeps
    (EventStore.counts) and two point reads: the same cost at any size."""
    counts = es.counts()
    head = counts.head
    first_recorded = last_recorded = None
    if head:
        first_recorded = es.get(1).recorded_at
        last_recorded = es.get(head).recorded_at
    info = es.info()
    if "file_size" in info:
        size = int(info["file_size"]) + int(info.get("wal_size", 0))
    else:  # a server database: what the events take there
        size = int(info.get("events_size") or info.get("database_size") or 0)
    event_types = dict(sorted(counts.event_types.items(), key=lambda item: (-item[1], item[0])))
    aggregate_types = {
        ("(none)" if name is None else name): count
        for name, count in sorted(
            counts.aggregate_types.items(), key=lambda item: (-item[1], str(item[0]))
        )
    }
    system_events = counts.system_events
    first_occurred, last_occurred = counts.first_occurred_at, counts.last_occurred_at
    return {
        "path": es.label,
        "file_size": size,
        "head_position": head,
        "events": counts.events,
        "aggregates": sum(aggregate_types.values()),
        "system_events": system_events,
        "first_recorded_at": _iso(first_recorded),
        "last_recorded_at": _iso(last_recorded),
        "first_occurred_at": _iso(first_occurred),
        "last_occurred_at": _iso(last_occurred),
        "event_types": event_types,
        "aggregate_types": aggregate_types,
    }


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{count} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"  # pragma: no cover


def format_stats(stats: dict[str, Any]) -> list[str]:
    lines = [
        f"store         {shown(stats['path'])} ({_size(stats['file_size'])})",
        f"head          position {stats['head_position']}",
        f"events        {stats['events']}",
        f"aggregates    {stats['aggregates']}",
        f"system events {stats['system_events']} (without aggregate)",
    ]
    if stats["head_position"]:
        lines.append(f"recorded      {stats['first_recorded_at']} .. {stats['last_recorded_at']}")
        lines.append(f"occurred      {stats['first_occurred_at']} .. {stats['last_occurred_at']}")
    for title, counts in (
        ("event types", stats["event_types"]),
        ("aggregate types (aggregates)", stats["aggregate_types"]),
    ):
        lines.append("")
        lines.append(f"{title}: {len(counts)}")
        names = {shown(name): count for name, count in counts.items()}
        width = max((len(name) for name in names), default=0)
        lines.extend(f"  {name.ljust(width)}  {count:>8}" for name, count in names.items())
    return lines


def run_stats(args: argparse.Namespace) -> int:
    with open_store(args.path) as es:
        stats = collect_stats(es, args.path)
    if args.json:
        sys.stdout.write(json.dumps(stats, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n".join(format_stats(stats)) + "\n")
    return 0

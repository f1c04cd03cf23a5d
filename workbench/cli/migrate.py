"""``sss migrate SOURCE TARGET``: copy a store between SQLite and PostgreSQL.

The copy is row for row: positions, event ids, versions, times, payload texts
and hashes stay exactly as they are, so the copy's hash chain is the source's
and ``sss verify`` gives the same head hash on both. Stored snapshots come
along, of every reducer fingerprint. It is all or nothing: the rows go in
inside one write transaction of the target, which is verified before it
commits.

    $ sss migrate shop.db 'postgresql://me@db.example/shop'
    $ sss migrate 'postgresql://me@db.example/shop?options=-csearch_path%3Dsss' back.db
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from store import EventStore, HistoryMismatchError, VerifyReport, copy_store
from workbench.locations import label, stored_events
from workbench.safetext import shown

from .common import CliError

__all__ = ["MigrateReport", "migrate", "register"]


@dataclass(frozen=True, slots=True)
class MigrateReport:
    events: int
    aggregates: int
    head_position: int
    head_hash: str | None
    snapshots: int = 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        help="copy a store between SQLite and PostgreSQL, hashes intact",
        description=(
            "Copy every event of SOURCE into TARGET (an SQLite file or a postgresql:// URL, "
            "either way round) with its position, version, times and hash unchanged, and "
            "the aggregates table with it. TARGET is created when missing and must hold no "
            "events. The source is verified first; the copy is verified before it commits, "
            "so TARGET ends up with the whole store or with nothing. Snapshots, a cache, "
            "are not copied. Stop writers to SOURCE first: events appended during the copy are "
            "left out, and a changed aggregates table makes the copy fail verification."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="the store to copy (opened read-only)")
    parser.add_argument("target", metavar="TARGET", help="an empty or new store")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    parser.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    def show(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(shown(text) + "\n")

    report = migrate(args.source, args.target, progress=show)
    if not args.quiet:
        sys.stdout.write(
            f"ok: {report.events} events, {report.aggregates} aggregates and "
            f"{report.snapshots} snapshots copied and verified; head position "
            f"{report.head_position}, head hash {report.head_hash}\n"
        )
    return 0


def _same(a: str, b: str) -> bool:
    if "://" in a or "://" in b:
        return a == b
    return os.path.abspath(a) == os.path.abspath(b)


def migrate(
    source: str, target: str, progress: Callable[[str], None] | None = None
) -> MigrateReport:
    """Copy ``source`` into the empty store ``target``; return what was copied.

    Raises:
        CliError: the source does not verify, the target is not empty, or the
            copy does not verify (then nothing is left in the target).
        StoreError: either store cannot be opened or written.
    """
    say = progress or (lambda _: None)
    if _same(source, target):
        raise CliError("SOURCE and TARGET are the same store")
    with EventStore(source, readonly=True) as src:
        # Say at once that the target is taken, before a long verify; the
        # copy checks again inside its transaction.
        taken = stored_events(target)
        if taken:
            raise CliError(
                f"{label(target)} already holds {taken} events; migrate into an empty store"
            )
        say(f"verifying {label(source)} ...")
        checked = src.verify()
        if not checked.ok:
            raise CliError(
                f"{label(source)} does not verify (position {checked.first_bad_position}: "
                f"{checked.reason}); it is not copied"
            )
        with EventStore(target) as dst:
            return _copy(src, dst, checked, label(target), say)


def _copy(
    src: EventStore,
    dst: EventStore,
    checked: VerifyReport,
    target: str,
    say: Callable[[str], None],
) -> MigrateReport:
    if dst.head() or dst.aggregate_types():
        raise CliError(f"{target} already holds {dst.head()} events; migrate into an empty store")
    try:
        # Up to the verified head: anything appended meanwhile is not copied.
        done = copy_store(
            src,
            dst,
            until_position=checked.head_position,
            progress=lambda copied, total: say(f"copied {copied} of {total} events"),
        )
    except HistoryMismatchError as e:
        raise CliError(f"{target} already holds events; migrate into an empty store") from e
    if done.head_hash != checked.head_hash:
        raise CliError(
            f"the copy ends at {done.head_position} ({done.head_hash}), the source at "
            f"{checked.head_position} ({checked.head_hash}); nothing was written to {target}"
        )
    say(f"copied {done.aggregates} aggregates and {done.snapshots} snapshots; verified")
    return MigrateReport(
        done.events, done.aggregates, done.head_position, done.head_hash, done.snapshots
    )

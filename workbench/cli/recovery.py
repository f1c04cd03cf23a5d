"""``sss backup`` and ``sss replicate``: copies of a live store.

Both go through :func:`store.copy_store`, which copies rows exactly as stored
(positions, ids, times, payload texts, hashes), so a copy's chain is the
source's. The log is append-only, so the rows up to the source's head when a
copy starts are a consistent cut however many writers append meanwhile: the
copy is the store as it stood at that position.

    $ sss backup shop.db /backups/shop-2026-12-01.db
    $ sss backup 'postgresql://me@db/shop' shop.db --until '2026-11-30T23:59:59Z'
    $ sss replicate shop.db /mnt/standby/shop.db --follow
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

from store import (
    CorruptStoreError,
    EventStore,
    HistoryMismatchError,
    NotFoundError,
    StoreError,
    copy_store,
)
from workbench.inputs import parse_position, parse_time
from workbench.locations import is_url, label
from workbench.outputs import check_output
from workbench.safetext import shown

from .common import CliError

__all__ = ["BackupReport", "backup", "register", "replicate_once"]


@dataclass(frozen=True, slots=True)
class BackupReport:
    """What a backup wrote: the target's head (the source's hash there)."""

    events: int
    aggregates: int
    snapshots: int
    head_position: int
    head_hash: str | None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="a verified copy of a store, taken while writers run",
        description=(
            "Copy SOURCE (an SQLite file or a postgresql:// URL) into TARGET (a new file, "
            "or a URL naming an empty store), every row as stored, hashes intact. Writers "
            "may keep appending: the copy holds the log up to the source's head when it "
            "starts. With --until-position or --until it holds the log's prefix up to that "
            "point, the store as it stood then (a point-in-time restore). A file is written "
            "under a temporary name beside TARGET and appears under TARGET only once "
            "complete and verified (chain, aggregates and the database's own check), so an "
            "interrupted backup leaves nothing. TARGET is never overwritten: an existing "
            "file, or a server store holding events, is refused."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="the store to copy (opened read-only)")
    parser.add_argument("target", metavar="TARGET", help="a new file, or an empty server store")
    bound = parser.add_mutually_exclusive_group()
    bound.add_argument(
        "--until-position", metavar="N", help="copy the events up to position N (inclusive)"
    )
    bound.add_argument("--until", metavar="TIME", help="copy the events recorded at or before TIME")
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    parser.set_defaults(func=run_backup)

    parser = subparsers.add_parser(
        "replicate",
        help="append to a copy what it lacks of a store; --follow keeps it current",
        description=(
            "Append to TARGET (created when missing) the events of SOURCE it lacks, rows as "
            "stored, hashes intact. TARGET must hold a prefix of SOURCE's log: a TARGET "
            "whose history differs is refused, naming the first differing position. The "
            "first pass is verified over the whole target. With --follow it then waits on "
            "the source's live tail and appends each new batch as it commits (a warm "
            "standby, an auditor's copy); when the source or the target goes away (a "
            "locked file, a server restart) it says so on stderr, retries, and resumes from "
            "the target's head. A SOURCE that does not exist (or is not an event store) when "
            "it starts is one error at once, not a retry. SIGINT or SIGTERM stop it between "
            "batches."
        ),
    )
    parser.add_argument("source", metavar="SOURCE", help="the store to copy (opened read-only)")
    parser.add_argument("target", metavar="TARGET", help="the copy: new, empty, or a prefix")
    parser.add_argument("--follow", action="store_true", help="keep TARGET current until stopped")
    parser.add_argument(
        "--retry",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="with --follow, wait this long before retrying after an error (default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    parser.set_defaults(func=run_replicate)


# ---------------------------------------------------------------------------
# Progress


def _progress(quiet: bool) -> Callable[[int, int], None]:
    """A one-line progress bar on stderr, on a terminal only."""
    if quiet or not sys.stderr.isatty():
        return lambda copied, total: None
    started = time.monotonic()

    def show(copied: int, total: int) -> None:
        share = copied / total if total else 1.0
        filled = int(share * 30)
        rate = copied / max(time.monotonic() - started, 1e-6)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {copied}/{total} events ({rate:,.0f}/s)"
        )
        if copied >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


# ---------------------------------------------------------------------------
# Backup


def run_backup(args: argparse.Namespace) -> int:
    until_position = (
        parse_position(args.until_position, "--until-position")
        if args.until_position is not None
        else None
    )
    done = backup(
        args.source,
        args.target,
        until_position=until_position,
        until=args.until,
        progress=_progress(args.quiet),
    )
    if not args.quiet:
        sys.stdout.write(
            f"ok: {done.events} events, {done.aggregates} aggregates and {done.snapshots} "
            f"snapshots copied to {shown(label(args.target))} and verified; head position "
            f"{done.head_position}, head hash {done.head_hash}\n"
        )
    return 0


def _same_location(a: str, b: str) -> bool:
    if is_url(a) or is_url(b):
        return a == b
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def backup(
    source: str,
    target: str,
    *,
    until_position: int | None = None,
    until: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BackupReport:
    """Copy ``source`` (up to a bound) into the new store ``target``, verify
    the copy, and return what it holds.

    Raises:
        CliError: the target exists or holds events, or the bound is bad.
        StoreError: either store cannot be opened, or the copy does not verify.
    """
    if _same_location(source, target):
        raise CliError("SOURCE and TARGET are the same store")
    if not is_url(target):
        if os.path.lexists(target):
            raise CliError(f"{shown(target)} exists; a backup never overwrites a file")
        check_output(target, protect=[source], stream=False)
    with EventStore(source, readonly=True) as src:
        last = src.head()
        if until is not None:
            last = src.position_at(parse_time(until, "--until"))
        elif until_position is not None:
            if until_position > last:
                raise CliError(
                    f"--until-position {until_position} is beyond {label(source)}'s head ({last})"
                )
            last = until_position
        if is_url(target):
            return _backup_to_server(src, target, last, progress)
        whole = until is None and until_position is None and not is_url(source)
        return _backup_to_file(src, source, target, None if whole else last, progress)


def _check_copy(copy: EventStore, expected_hash: str | None, last: int, where: str) -> None:
    """The finished copy verifies, storage included, and ends at the source's hash."""
    report = copy.verify(storage="full")
    if not report.ok:
        raise StoreError(
            f"the backup in {where} does not verify (position {report.first_bad_position}: "
            f"{report.reason})"
        )
    if report.head_position != last or (last and report.head_hash != expected_hash):
        raise StoreError(
            f"the backup in {where} ends at {report.head_position} ({report.head_hash}), "
            f"not at the source's {last} ({expected_hash})"
        )


def _one_file(path: str) -> None:
    """Fold the write-ahead log into the file and leave it in rollback-journal
    mode: a backup is one self-contained file (the store turns WAL back on
    when it is opened for writing)."""
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA journal_mode=DELETE").fetchone()
    finally:
        connection.close()


def _page_copy(source: str, partial: str, progress: Callable[[int, int], None] | None) -> int:
    """SQLite's online backup of the whole file, in one step: one read
    transaction, so a consistent cut while writers go on (WAL). Returns
    the head position the copy holds."""
    from urllib.parse import quote

    src = sqlite3.connect(f"file:{quote(os.path.abspath(source))}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        say = progress or (lambda copied, total: None)
        src.backup(dst, progress=lambda status, remaining, total: say(total - remaining, total))
    finally:
        src.close()
        dst.close()
    with EventStore(partial, readonly=True) as copy:
        return copy.head()


def _snapshots_in(path: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return int(connection.execute("SELECT count(*) FROM snapshots").fetchone()[0])
    finally:
        connection.close()


def _backup_to_file(
    src: EventStore,
    source: str,
    target: str,
    last: int | None,
    progress: Callable[[int, int], None] | None,
) -> BackupReport:
    """With ``last`` None (a whole SQLite file), a page copy through SQLite's
    backup API (an order of magnitude faster than the row copy; it takes the
    subscriptions' checkpoints along); otherwise the row copy up to ``last``."""
    parent = os.path.dirname(os.path.abspath(target))
    scratch = tempfile.mkdtemp(prefix=".sss-backup-", dir=parent)
    try:
        partial = os.path.join(scratch, "store.db")
        if last is None:
            last = _page_copy(source, partial, progress)
            expected = src.get(last).hash if last else None
        else:
            with EventStore(partial) as dst:
                expected = copy_store(src, dst, until_position=last, progress=progress).head_hash
        _one_file(partial)
        with EventStore(partial, readonly=True) as copy:
            _check_copy(copy, expected, last, "the temporary file")
            aggregates = sum(copy.aggregate_types().values())
        snapshots = _snapshots_in(partial)
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(partial + suffix):
                raise StoreError(f"the backup left a {suffix} file behind; it was not kept")
        try:
            os.link(partial, target)  # fails, never replaces, when TARGET appeared meanwhile
        except FileExistsError:
            raise CliError(
                f"{shown(target)} appeared while the backup ran; it was left as it was"
            ) from None
        except OSError:
            # A file system without hard links: claim the name, then move over our own claim.
            handle = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.close(handle)
            os.replace(partial, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return BackupReport(last, aggregates, snapshots, last, expected)


def _backup_to_server(
    src: EventStore, target: str, last: int, progress: Callable[[int, int], None] | None
) -> BackupReport:
    with EventStore(target) as dst:
        if dst.head() or dst.aggregate_types():
            raise CliError(
                f"{label(target)} already holds {dst.head()} events; a backup never "
                "overwrites a store"
            )
        try:
            done = copy_store(src, dst, until_position=last, progress=progress)
        except HistoryMismatchError:
            raise CliError(
                f"{label(target)} gained events while the backup started; nothing was copied"
            ) from None
        _check_copy(dst, done.head_hash, last, label(target))
    return BackupReport(done.events, done.aggregates, done.snapshots, last, done.head_hash)


# ---------------------------------------------------------------------------
# Replicate


def replicate_once(src: EventStore, dst: EventStore, *, verify: bool = True) -> tuple[int, int]:
    """Append to ``dst`` what it lacks of ``src``; return (events appended, head).

    Raises:
        CliError: ``dst``'s history differs from ``src``'s (naming the position).
    """
    try:
        done = copy_store(src, dst, verify=verify)
    except HistoryMismatchError as e:
        raise CliError(
            f"{label(dst.label)} differs from {label(src.label)} at position {e.position}; "
            "it is not a copy of it and nothing was appended"
        ) from None
    return done.events, done.head_position


@contextmanager
def _stopping() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM (the previous handlers restored after)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_replicate(args: argparse.Namespace) -> int:
    def say(text: str) -> None:
        if not args.quiet:
            sys.stderr.write(shown(text) + "\n")
            sys.stderr.flush()

    if _same_location(args.source, args.target):
        raise CliError("SOURCE and TARGET are the same store")
    if args.retry <= 0 or args.retry != args.retry:
        raise CliError("--retry must be a number of seconds above 0")
    if not args.follow:
        with EventStore(args.source, readonly=True) as src, EventStore(args.target) as dst:
            added, head = replicate_once(src, dst)
        if not args.quiet:
            sys.stdout.write(
                f"ok: {added} events appended to {shown(label(args.target))}; head position "
                f"{head}, verified\n"
            )
        return 0
    with _stopping() as stop:
        _follow(args.source, args.target, stop, args.retry, say)
    say("stopped")
    return 0


def _follow(
    source: str,
    target: str,
    stop: threading.Event,
    retry: float,
    say: Callable[[str], None],
) -> None:
    """Keep ``target`` current until ``stop`` is set, reopening both stores
    after any error but a diverged history.

    A source that cannot be opened at the first try because it does not
    exist (a missing file, an unknown database or schema) or is not an event
    store is one error at once: waiting would not make it appear. Once it has
    been opened, the same errors are waited out (a disk unmounted and mounted
    again), as a lock or a lost connection always is."""
    first = True
    while not stop.is_set():
        try:
            try:
                opened = EventStore(source, readonly=True)
            except (NotFoundError, CorruptStoreError) as e:
                if first:
                    raise CliError(f"{e}; nothing to replicate (give an existing store)") from None
                raise
            with opened as src, EventStore(target) as dst:
                # The first pass walks the whole target; later ones check the
                # target's head hash against the source's and append verbatim.
                added, head = replicate_once(src, dst, verify=first)
                first = False
                say(f"{label(target)} at position {head} (+{added})")
                while not stop.is_set():
                    for _ in src.follow(head + 1, stop=stop):
                        break  # something new: copy the whole batch
                    if stop.is_set():
                        return
                    added, head = replicate_once(src, dst, verify=False)
                    say(f"{label(target)} at position {head} (+{added})")
        except CliError:
            raise
        except (StoreError, OSError) as e:
            say(f"waiting to retry: {e}")
            stop.wait(retry)

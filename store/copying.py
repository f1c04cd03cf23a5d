"""Copying a store, row for row: what ``sss migrate`` uses today, and what a
backup (a prefix up to a position) and a replica (appending what a copy
lacks) are built on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import verifying
from ._core import StoreCore
from .backend import ChainRow, WriteTransaction
from .checks import check_int
from .codec import loads_stored, parse_time
from .errors import ReadOnlyError, StoreError, ValidationError
from .integrity import RECEIPT
from .models import AggregateInfo

__all__ = ["CopyReport", "HistoryMismatchError", "copy_store"]

PAGE = 5000


class HistoryMismatchError(StoreError):
    """The target holds events that are not the source's.

    Attributes:
        position: the first position at which the two logs differ.
    """

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class CopyReport:
    """What :func:`copy_store` did: the ``events``, ``aggregates`` rows and
    ``snapshots`` it wrote, and the target's head afterwards (the source's
    hash at that position)."""

    events: int
    aggregates: int
    snapshots: int
    head_position: int
    head_hash: str | None


def copy_store(
    source: StoreCore,
    target: StoreCore,
    *,
    until_position: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    verify: bool = True,
) -> CopyReport:
    """Copy ``source``'s log into ``target``, every row exactly as stored.

    Positions, event ids, versions, times, payload texts and hashes are kept,
    so the target's hash chain is the source's and ``verify()`` gives the
    same head hash on both. ``target`` is empty, or holds a prefix of the
    source's log (its last hash is the source's at that position): then only
    what it lacks is appended. With ``until_position`` the copy stops there,
    a store as it stood then; otherwise at the source's head when the copy
    starts (events appended meanwhile are left for the next copy, so writers
    may go on). The aggregates table is rebuilt from the copied rows, and the
    source's stored snapshots up to the bound come along, of every reducer
    fingerprint. ``progress(copied, total)`` is called after each page.

    Erased events are copied erased (the digests kept, the payload gone).
    An ``sss.Erased`` receipt copied into a target that already holds the
    events it names erases them there too, so a replica follows erasures
    made on its source after it copied them; the target's files are then
    scrubbed as after an erasure.

    All or nothing: the rows go in inside one write transaction of the
    target, which (with ``verify``) walks the target's whole chain before it
    commits; a copy that does not verify, or does not end at the source's
    hash, is rolled back.

    Raises:
        HistoryMismatchError: the target holds events that differ from the
            source's, naming the first differing position.
        ValidationError: a bad bound, or the same store twice.
        ReadOnlyError: the target is read-only.
        StoreError: either store cannot be read or written, or the copy does
            not verify.
    """
    if source is target or (source.label == target.label and "://" not in source.label):
        raise ValidationError("the source and the target are the same store")
    if target.readonly:
        raise ReadOnlyError(f"{target.label} is open read-only; it cannot be copied into")
    source_head = source._call(source._backend.head)
    last = source_head
    if until_position is not None:
        check_int(until_position, "until_position")
        if until_position > source_head:
            raise ValidationError(
                f"until_position {until_position} is beyond {source.label}'s head ({source_head})"
            )
        last = until_position
    say = progress or (lambda copied, total: None)
    with target._lock, target._backend.write() as tx:
        start = tx.head()
        if start.position > last:
            raise HistoryMismatchError(
                f"{target.label} holds {start.position} events, more than the "
                f"{last} to copy from {source.label}",
                last + 1,
            )
        if start.position:
            _check_prefix(source, target, start.position, start.hash)
        elif target._backend.aggregate_types():
            raise StoreError(f"{target.label} has aggregates but no events; it is not a store")
        copied, head_hash, erased = _copy_rows(source, tx, start.position, last, say)
        aggregates = len(copied)
        for info in copied.values():
            tx.insert([], info)
        snapshots = _copy_snapshots(source, tx, start.position, last)
        if head_hash is None:
            head_hash = start.hash if start.position else None
        if verify:
            # Still inside the transaction: a copy that does not verify is rolled back.
            report = verifying.verify(target, storage="off")
            if not report.ok:
                raise StoreError(
                    f"the copy does not verify (position {report.first_bad_position}: "
                    f"{report.reason}); nothing was written to {target.label}"
                )
            if report.head_position != last or (last and report.head_hash != head_hash):
                raise StoreError(
                    f"the copy ends at {report.head_position} ({report.head_hash}), the "
                    f"source at {last} ({head_hash}); nothing was written to {target.label}"
                )
    if erased:
        target._states.clear()
        target._call(target._backend.scrub)
    return CopyReport(last - start.position, aggregates, snapshots, last, head_hash)


def _row(store: StoreCore, position: int) -> ChainRow | None:
    rows = store._call(store._backend.chain_page, position - 1, 1)
    return rows[0] if rows and rows[0][0] == position else None


def _check_prefix(source: StoreCore, target: StoreCore, head: int, head_hash: str) -> None:
    """Refuse a target whose log is not a prefix of the source's. Each hash
    covers everything before it, so equal hashes at the target's head mean
    equal logs, and bisecting on hashes finds the first position that differs."""
    mine = _row(source, head)
    if mine is not None and mine[12] == head_hash:
        # Equal hashes: equal events, whatever was erased on either side since.
        return
    lo, hi = 0, head  # the logs agree up to lo and differ at hi
    while hi - lo > 1:
        middle = (lo + hi) // 2
        theirs, ours = _row(target, middle), _row(source, middle)
        if theirs is not None and ours is not None and theirs[12] == ours[12]:
            lo = middle
        else:
            hi = middle
    raise HistoryMismatchError(
        f"{target.label} differs from {source.label} at position {hi}; it is not a copy "
        "of it and nothing was copied",
        hi,
    )


def _copy_rows(
    source: StoreCore,
    tx: WriteTransaction,
    after: int,
    last: int,
    say: Callable[[int, int], None],
) -> tuple[dict[str, AggregateInfo], str | None, int]:
    """Insert the source's rows after ``after`` up to ``last``; the aggregate
    rows they make, the last row's hash, and how many payloads that were in
    the target before were erased by receipts among the rows."""
    touched: dict[str, AggregateInfo] = {}
    position, head_hash, erased = after, None, 0
    while position < last:
        rows = source._call(source._backend.chain_page, position, min(PAGE, last - position))
        if not rows:
            break
        tx.insert_copies(rows)
        for row in rows:
            if row[5] == RECEIPT:
                erased += _follow_receipt(tx, row, after)
            aggregate_id = row[2]
            if aggregate_id is None:
                continue
            recorded = parse_time(row[10])
            seen = touched.get(aggregate_id)
            if seen is None:
                # A new aggregate starts here; an existing one keeps its first
                # position and creation time (the insert leaves them as they are).
                touched[aggregate_id] = AggregateInfo(
                    aggregate_id, row[3], row[4] or 0, row[0], row[0], recorded, recorded
                )
            else:
                touched[aggregate_id] = AggregateInfo(
                    aggregate_id, seen.aggregate_type, row[4] or 0, seen.first_position,
                    row[0], seen.created_at, recorded,
                )  # fmt: skip
        position, head_hash = rows[-1][0], rows[-1][12]
        say(position - after, last - after)
    return touched, head_hash, erased


def _follow_receipt(tx: WriteTransaction, row: ChainRow, after: int) -> int:
    """Erase in the target what a copied receipt names and the target held
    before this copy (what came with the copy is erased already)."""
    listed = loads_stored(row[7]).get("positions")
    if not isinstance(listed, list):
        return 0  # a receipt that lies is for verify to name
    earlier = [p for p in listed if isinstance(p, int) and 0 < p <= after]
    if not earlier:
        return 0
    note = f"not kept: the payload of this event was erased (receipt at position {row[0]})"
    return len(tx.erase(earlier, row[0], note))


def _copy_snapshots(source: StoreCore, tx: WriteTransaction, after: int, last: int) -> int:
    """The source's stored snapshots of events after ``after`` up to ``last``,
    of every fingerprint: a cache, but slow to rebuild on a large store."""
    copied, key = 0, None
    while page := source._call(source._backend.snapshot_page, key, PAGE):
        for fingerprint, snapshot, created_at in page:
            if after < snapshot.position <= last:
                tx.save_snapshot(snapshot, fingerprint, created_at)
                copied += 1
        fingerprint, snapshot, _ = page[-1]
        key = (snapshot.aggregate_id, fingerprint, snapshot.version)
    return copied

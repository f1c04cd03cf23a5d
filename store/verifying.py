"""Verification: the chain walk (:class:`~store.integrity.ChainVerifier`)
over every stored row, the aggregates table and the stored snapshots, then
the database's own check of its files. It always ends with a report."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from . import paging, replay
from ._core import PAGE, StoreCore
from .backend import ChainRow, Snapshot
from .codec import MAX_INT
from .errors import StoreError, ValidationError, describe
from .integrity import ChainVerifier
from .models import VerifyReport

__all__ = ["STORAGE_CHECKS", "verify"]

STORAGE_CHECKS = ("full", "quick", "off")
"""What :meth:`EventStore.verify <store.eventstore.EventStore.verify>` may ask
of the database's own check."""
_MISSING_ROW = re.compile(r"row (\d+) missing from index")


def verify(
    es: StoreCore,
    progress: Callable[[int, int], None] | None = None,
    *,
    storage: str = "full",
) -> VerifyReport:
    """See :meth:`EventStore.verify <store.eventstore.EventStore.verify>`."""
    if not isinstance(storage, str) or storage not in STORAGE_CHECKS:
        raise ValidationError(
            f"storage must be one of {', '.join(STORAGE_CHECKS)}, not {describe(storage)}"
        )
    verifier = ChainVerifier()
    try:
        # The walk stops at the head as it is now; writers may go on meanwhile.
        head = es._call(es._backend.head)
    except StoreError:
        head = MAX_INT  # a damaged file: walk as far as its rows can be read
    try:
        while verifier.next_position <= head:
            rows, broken = _chain_page(es, verifier.next_position - 1, head)
            if not verifier.feed(rows):
                break
            if broken is not None:
                verifier.fail(*broken)
                break
            if progress is not None and rows:
                progress(verifier.checked, head)
            if len(rows) < PAGE:
                if head != MAX_INT and verifier.next_position <= head:
                    verifier.fail(
                        verifier.next_position,
                        f"position {verifier.next_position} is missing (the head is {head})",
                    )
                break
    except (StoreError, ValueError, TypeError) as e:
        # A damaged file may fail in ways no row check foresees.
        verifier.fail(verifier.next_position, f"the store cannot be read here: {e}")
    try:
        report = verifier.finish(paging.aggregates(es, None))
    except (StoreError, ValueError, TypeError) as e:
        report = verifier.failure or VerifyReport(
            False, verifier.checked, None, f"the aggregates table cannot be read: {e}",
            verifier.next_position - 1, verifier.prev_hash,
        )  # fmt: skip
    if report.ok:
        try:
            problem = _verify_snapshots(es)
        except (StoreError, ValueError, TypeError) as e:
            problem = None, f"the snapshots cannot be read: {e}"
        if problem is None and storage != "off":
            problem = _verify_storage(es, storage == "full")
        if problem is not None:
            return replace(report, ok=False, first_bad_position=problem[0], reason=problem[1])
    return report


def _chain_page(
    es: StoreCore, after: int, head: int
) -> tuple[list[ChainRow], tuple[int, str] | None]:
    """The walk's next page, and where it cannot be read, if it cannot:
    then the rows are read one by one up to the first that cannot."""
    try:
        rows = es._call(es._backend.chain_page, after, PAGE)
    except StoreError:
        rows = []
        for position in range(after + 1, min(after + PAGE, head) + 1):
            try:
                got = es._call(es._backend.chain_page, position - 1, 1)
            except StoreError as e:
                return rows, (position, f"the row cannot be read: {e}")
            rows.extend(got)
            if not got or got[0][0] != position:
                break  # the end, or a gap the verifier names
        # Every row could be read alone: go on (the storage check names
        # what made the page fail).
    return [row for row in rows if row[0] <= head], None


def _verify_storage(es: StoreCore, full: bool) -> tuple[int | None, str] | None:
    problems = es._call(es._backend.check_storage, full)
    if not problems:
        return None
    rows = [int(m.group(1)) for m in map(_MISSING_ROW.search, problems) if m]
    check = "integrity_check" if full else "quick_check"
    more = f" and {len(problems) - 1} more" if len(problems) > 1 else ""
    return min(rows) if rows else None, (
        f"the database file is damaged ({check}): {problems[0]}{more}; "
        "restore it from a backup, or rebuild the indexes with REINDEX"
    )


def _verify_snapshots(es: StoreCore) -> tuple[int | None, str] | None:
    """Re-fold every aggregate that has snapshots this store would use and
    compare: a snapshot is a cache, but one that lies changes state_at."""
    fingerprint = es._fingerprint
    by_aggregate: dict[str, list[Snapshot]] = {}
    for snapshot in es._call(es._backend.snapshots, fingerprint):
        by_aggregate.setdefault(snapshot.aggregate_id, []).append(snapshot)
    for aggregate_id, snapshots in by_aggregate.items():
        wanted = {s.version: s for s in snapshots}
        folded = replay.states(es, aggregate_id, max(wanted))
        while True:
            try:
                event, state = next(folded)
            except StopIteration:
                break
            except StoreError as e:
                return None, str(e)
            taken = wanted.get(event.version or 0)
            if taken is not None and (taken.state != state or taken.position != event.position):
                return taken.position, (
                    f"the snapshot of {aggregate_id} at version {taken.version} "
                    "differs from its events"
                )
    return None

"""Verification: the chain walk (:class:`~store.integrity.ChainVerifier`)
over every stored row, the aggregates table and the stored snapshots, then
the database's own check of its files. It always ends with a report."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from . import paging, replay
from ._core import PAGE, StoreCore
from .aggregate_pass import aggregate_pass, agrees
from .backend import ChainRow, Snapshot
from .checks import check_int
from .codec import GENESIS_HASH, MAX_INT
from .counting import KeptCount, as_rows
from .errors import StoreError, ValidationError, describe
from .integrity import ChainVerifier
from .models import VerifyReport
from .notes import Checkpoint

__all__ = ["STORAGE_CHECKS", "verify"]

STORAGE_CHECKS = ("full", "quick", "off")
"""What :meth:`EventStore.verify <store.eventstore.EventStore.verify>` may ask
of the database's own check."""
_MISSING_ROW = re.compile(r"row (\d+) missing from index")


def verify(
    es: StoreCore,
    progress: Callable[[int, int], None] | None = None,
    *,
    storage: str | None = None,
    from_position: int | None = None,
    head_hash: str | None = None,
    checkpoint: Checkpoint | None = None,
    key: object = None,
    merkle: bool = False,
    mark: int = -1,
    walked: list[ChainVerifier] | None = None,
) -> VerifyReport:
    """See :meth:`EventStore.verify <store.eventstore.EventStore.verify>`."""
    if checkpoint is not None or key is not None:
        return _against(es, progress, storage, from_position, checkpoint, key)
    if storage is None:
        storage = "full" if from_position is None else "off"
    if not isinstance(storage, str) or storage not in STORAGE_CHECKS:
        raise ValidationError(
            f"storage must be one of {', '.join(STORAGE_CHECKS)}, not {describe(storage)}"
        )
    if (from_position is None) != (head_hash is None):
        raise ValidationError("from_position and head_hash go together: give both or neither")
    kept = None
    try:
        # The walk stops at the head as it is now; writers may go on meanwhile.
        if from_position is None:
            head, kept = es._call(es._backend.kept_counts)
        else:
            head = es._call(es._backend.head)
    except StoreError:
        head = MAX_INT  # a damaged file: walk as far as its rows can be read

    def fresh(lasts: bytearray | None = None) -> ChainVerifier:
        """A walk from position 1 (the one that ran is left in ``walked``)."""
        verifier = ChainVerifier(merkle=merkle, lasts=lasts)
        verifier.mark = mark
        if walked is not None:
            walked[:] = [verifier]
        return verifier

    if from_position is None or head_hash is None:
        report = _bounded(es, head, kept, progress, fresh)
        if report is None:  # something is wrong: the exact walk names it
            report = _exact(es, fresh(), head, progress)
    else:
        verifier = _trusted_start(es, check_int(from_position, "from_position"), head_hash, head)
        if verifier.failure is not None:
            return verifier.failure
        if walked is not None:
            walked[:] = [verifier]
        report = _exact(es, verifier, head, progress)
    if report.ok:
        try:
            problem = _verify_snapshots(es, from_position or 0)
        except (StoreError, ValueError, TypeError) as e:
            problem = None, f"the snapshots cannot be read: {e}"
        if problem is None and storage != "off":
            problem = _verify_storage(es, storage == "full")
        if problem is not None:
            return replace(report, ok=False, first_bad_position=problem[0], reason=problem[1])
    return report


def _walk(
    es: StoreCore,
    verifier: ChainVerifier,
    head: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    """Feed the verifier every row up to ``head``, a page at a time."""
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


def _bounded(
    es: StoreCore,
    head: int,
    kept: list[KeptCount] | None,
    progress: Callable[[int, int], None] | None,
    fresh: Callable[[bytearray], ChainVerifier] | None = None,
) -> VerifyReport | None:
    """The whole log in memory that does not grow with it: the pass over
    every aggregate's versions (store.aggregate_pass), then the chain walk,
    compared. The report when it is intact, or when the chain breaks where
    no aggregate is amiss (the walk's report is then exact); None when
    something else is wrong, for the exact walk to name."""
    if head == MAX_INT or kept is None:
        return None
    try:
        found = aggregate_pass(es, head)
    except (StoreError, ValueError, TypeError):
        return None
    verifier = ChainVerifier(lasts=found.lasts) if fresh is None else fresh(found.lasts)
    _walk(es, verifier, head, progress)
    if found.problem is not None:
        return None
    if verifier.failure is not None:
        return verifier.failure
    if not agrees(found, verifier):
        return None
    report = verifier.report(True, None, None)
    assert verifier.counts is not None
    problem = _counts_problem(as_rows(verifier.counts), kept)
    if problem is not None:
        return replace(report, ok=False, reason=problem)
    return report


def _counts_problem(walked: list[KeptCount], kept: list[KeptCount]) -> str | None:
    """Where the kept counts (sss stats) differ from the log, if they do."""
    log = {row[:3]: row[3:] for row in walked}
    stored = {row[:3]: row[3:] for row in kept if row[3]}
    for key in sorted(log.keys() | stored.keys()):
        if log.get(key) != stored.get(key):
            type_, aggregate_type, system = key
            where = "without aggregate" if system else f"of aggregate type {aggregate_type!r}"
            says = stored.get(key, (0,))[0]
            return (
                f"the kept counts (sss stats) differ from the log for events of type "
                f"{type_!r} {where}: kept {says} events, the log has {log.get(key, (0,))[0]} "
                "(or their aggregates or times differ); the counts were changed outside the store"
            )
    return None


def _exact(
    es: StoreCore,
    verifier: ChainVerifier,
    head: int,
    progress: Callable[[int, int], None] | None,
) -> VerifyReport:
    """The walk that keeps every aggregate it meets, then the aggregates
    table: it names the first bad position exactly (memory grows with the
    aggregates walked; the full walk takes it only when something is wrong)."""
    _walk(es, verifier, head, progress)
    try:
        if verifier.after:  # only the aggregates the walk met
            touched = (es._call(es._backend.aggregate, name) for name in sorted(verifier.versions))
            return verifier.finish(info for info in touched if info is not None)
        return verifier.finish(paging.aggregates(es, None))
    except (StoreError, ValueError, TypeError) as e:
        return verifier.failure or VerifyReport(
            False, verifier.checked, None, f"the aggregates table cannot be read: {e}",
            verifier.next_position - 1, verifier.prev_hash,
        )  # fmt: skip


def _against(
    es: StoreCore,
    progress: Callable[[int, int], None] | None,
    storage: str | None,
    from_position: int | None,
    against: Checkpoint | None,
    key: object,
) -> VerifyReport:
    """The whole walk, then whether the store extends checkpoint ``against``
    (and it is signed by ``key``, a public key)."""
    from .checkpoints import compare, verifier_key

    if against is None:
        raise ValidationError("key checks a checkpoint's signature: give the checkpoint too")
    if not isinstance(against, Checkpoint):
        raise ValidationError(f"checkpoint must be a Checkpoint, not {type(against).__name__}")
    if from_position is not None:
        raise ValidationError(
            "a checkpoint is checked against every event: it cannot go with from_position"
        )
    public = None if key is None else verifier_key(key)
    walked: list[ChainVerifier] = []
    report = verify(es, progress, storage=storage, merkle=True, mark=against.size, walked=walked)
    if not walked:  # pragma: no cover - a walk from position 1 always starts
        return report
    try:
        return compare(es, report, walked[0], against, public)
    except (StoreError, ValueError, TypeError) as e:  # a damaged sss_tree, too
        return replace(report, ok=False, checkpoint=against, reason=f"the tree cannot be read: {e}")


def _trusted_start(es: StoreCore, after: int, head_hash: str, head: int) -> ChainVerifier:
    """A verifier that goes on from position ``after``, whose hash the caller
    trusts (an earlier verify's head_hash): a failure at once when the store
    does not hold that hash there."""
    if not isinstance(head_hash, str) or not head_hash:
        raise ValidationError(f"head_hash must be a hash (text), not {describe(head_hash)}")

    def before(aggregate_id: str) -> tuple[int, str | None]:
        version = es._call(es._backend.version_at, aggregate_id, after)
        found = es._call(es._backend.aggregate, aggregate_id) if version else None
        return version, None if found is None else found.aggregate_type

    verifier = ChainVerifier(after, head_hash, before)
    if after == 0:
        if head_hash != GENESIS_HASH:
            verifier.fail(0, "the hash trusted at position 0 is not the chain's start")
        return verifier
    if after > head:
        verifier.fail(head + 1, f"the store ends at position {head}, before position {after}")
        return verifier
    try:
        rows = es._call(es._backend.chain_page, after - 1, 1)
    except StoreError as e:
        verifier.fail(after, f"the row cannot be read: {e}")
        return verifier
    if not rows or rows[0][0] != after:
        verifier.fail(after, f"position {after} is missing")
    elif rows[0][12] != head_hash:
        verifier.fail(
            after,
            f"the hash at position {after} is not the one trusted: the event or one "
            "before it was altered, or the store is another one",
        )
    else:
        verifier.last_recorded_at = rows[0][10]
    return verifier


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


def _verify_snapshots(es: StoreCore, after: int) -> tuple[int | None, str] | None:
    """Re-fold every aggregate that has snapshots this store would use (taken
    after position ``after``) and compare: a snapshot is a cache, but one that
    lies changes state_at."""
    fingerprint = es._fingerprint
    by_aggregate: dict[str, list[Snapshot]] = {}
    for snapshot in es._call(es._backend.snapshots, fingerprint):
        if snapshot.position <= after:
            continue
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

"""Appending: the rules of the log for a batch of new events.

An append is checked and encoded before any lock is taken (:func:`prepare`),
then planned once the head and the aggregate's version are known
(:func:`plan_append`: positions, versions, times, the hash chain, the rows,
the recorded events and which snapshots fall due). Both ways of writing use
that one plan: the general path inside :meth:`Backend.write`, and a server
backend's one-statement path (:meth:`Backend.append_direct`), which restates
the checks and the chain in the server and hands back what it decided, from
which the same plan is built. For PostgreSQL that restatement is the
function in :mod:`store.postgres.schema`; the contract suite runs every test
through both paths, and a test compares their rows.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import replay
from ._core import StoreCore
from .backend import DirectRow, Head, Row, WriteTransaction
from .checks import check_event_id, check_name, same_content
from .codec import (
    MAX_INT,
    chain_hash,
    chain_middle,
    data_digest,
    encode_checked,
    format_time,
    parse_time,
    require_aware,
)
from .errors import (
    ConcurrencyError,
    DuplicateEventError,
    NotFoundError,
    ReadOnlyError,
    ReducerError,
    StoreError,
    ValidationError,
    describe,
    shorten,
)
from .grouping import own_copy
from .models import (
    ANY,
    NO_STREAM,
    AggregateInfo,
    AggregateState,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    recorded_event,
)
from .reducers import RESERVED_PREFIX

__all__ = [
    "AppendPlan",
    "Prepared",
    "append",
    "append_receipt",
    "plan_append",
    "prepare",
    "snapshot",
    "write_group",
    "write_one",
]


class Prepared(NamedTuple):
    """An event validated and encoded before the write lock is taken."""

    new: NewEvent
    event_id: str
    data: str
    metadata: str
    occurred: str | None
    data_obj: dict[str, Any]
    meta_obj: dict[str, Any]
    data_hash: str


def prepare(event: object, index: int, *, receipt: bool = False) -> Prepared:
    """Check and encode one event; ``receipt=True`` (the store's own receipts
    only) lets a type in the reserved ``sss.`` namespace through."""
    if not isinstance(event, NewEvent):
        raise ValidationError(f"event {index} must be a NewEvent, not {type(event).__name__}")
    check_name(event.type, f"event {index}: type", optional=False)
    if not receipt and event.type.startswith(RESERVED_PREFIX):
        raise ValidationError(
            f"event {index}: type {shorten(event.type)} is reserved: types starting with "
            f"{RESERVED_PREFIX!r} are the store's own receipts (es.revert, es.void, es.erase "
            "append them); choose another type"
        )
    if (
        isinstance(event.schema_version, bool)
        or not isinstance(event.schema_version, int)
        or event.schema_version < 1
    ):
        raise ValidationError(f"event {index}: schema_version must be an int >= 1")
    if event.schema_version > MAX_INT:
        raise ValidationError(f"event {index}: schema_version must be at most {MAX_INT}")
    data, data_obj = encode_checked(event.data, f"event {index} ({event.type}): data")
    metadata, meta_obj = encode_checked(event.metadata, f"event {index} ({event.type}): metadata")
    occurred = (
        None
        if event.occurred_at is None
        else format_time(require_aware(event.occurred_at, f"event {index}: occurred_at"))
    )
    # The payload digest needs no lock: compute it before taking one.
    return Prepared(
        event, check_event_id(event.event_id), data, metadata, occurred, data_obj, meta_obj,
        data_digest(data_obj),
    )  # fmt: skip


def _check_call(
    events: object,
    aggregate_id: object,
    aggregate_type: object,
    expected_version: object,
    receipt: bool = False,
) -> tuple[list[Prepared], str | None, str | None]:
    if isinstance(events, NewEvent):
        events = [events]
    if not isinstance(events, Iterable):
        raise ValidationError(
            f"events must be a NewEvent or an iterable of them, not {type(events).__name__}"
        )
    try:
        batch = list(events)
    except Exception as e:  # the caller's own iterable failed
        raise ValidationError(
            f"events could not be read from the iterable: {type(e).__name__}: {e}"
        ) from e
    aggregate = check_name(aggregate_id, "aggregate_id")
    kind = check_name(aggregate_type, "aggregate_type")
    if isinstance(expected_version, bool) or not isinstance(
        expected_version, (int, ExpectedVersion)
    ):
        raise ValidationError(
            f"expected_version must be an int, ANY or NO_STREAM, not {describe(expected_version)}"
        )
    if isinstance(expected_version, int) and not 0 <= expected_version <= MAX_INT:
        raise ValidationError(
            f"expected_version must be between 0 and {MAX_INT}, not {describe(expected_version)}"
        )
    if aggregate is None:
        if expected_version is not ANY:
            raise ValidationError("expected_version needs an aggregate_id")
        if kind is not None:
            raise ValidationError("aggregate_type needs an aggregate_id")
    prepared = [prepare(event, index, receipt=receipt) for index, event in enumerate(batch)]
    ids = [p.event_id for p in prepared]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DuplicateEventError(dup, "appears twice in the batch")
    return prepared, aggregate, kind


Batch = tuple[list[Prepared], "str | None", "str | None", "int | ExpectedVersion"]
"""One caller's checked append: events, aggregate id, aggregate type, expected version."""
Queued = tuple[StoreCore, list[Prepared], "str | None", "str | None", "int | ExpectedVersion"]
"""A batch as group commit queues it, with its store."""


def type_mismatch(aggregate_id: str, stored: str | None, given: str | None) -> ValidationError:
    return ValidationError(
        f"{shorten(aggregate_id)} has aggregate type {describe(stored)}, not "
        f"{describe(given)}; an aggregate keeps its type"
    )


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """What an append writes: ``rows`` for :meth:`WriteTransaction.insert`,
    the ``recorded`` events it returns, the aggregate's new row (None without
    an aggregate) and the versions whose snapshots fall due."""

    rows: list[Row]
    recorded: list[RecordedEvent]
    aggregate: AggregateInfo | None
    snapshots_due: range
    recorded_at: str


def plan_append(
    prepared: Sequence[Prepared],
    aggregate_id: str | None,
    aggregate_type: str | None,
    *,
    first_position: int,
    version: int,
    recorded_at: str,
    prev_hash: str | None = None,
    hashes: Sequence[str] | None = None,
    snapshot_every: int | None = None,
) -> AppendPlan:
    """Assign positions from ``first_position`` and versions after
    ``version``, all recorded at ``recorded_at``. The chain is built from
    ``prev_hash``, or taken as ``hashes`` when a server built it."""
    if (prev_hash is None) == (hashes is None):
        raise ValueError("give exactly one of prev_hash and hashes")
    now = parse_time(recorded_at)
    rows: list[Row] = []
    recorded: list[RecordedEvent] = []
    for offset, p in enumerate(prepared):
        new = p.new
        position = first_position + offset
        event_version = None if aggregate_id is None else version + offset + 1
        occurred_text = p.occurred or recorded_at
        if hashes is not None:
            event_hash = hashes[offset]
        else:
            assert prev_hash is not None
            event_hash = prev_hash = chain_hash(
                prev_hash,
                position=position,
                event_id=p.event_id,
                aggregate_id=aggregate_id,
                aggregate_type=aggregate_type,
                version=event_version,
                type=new.type,
                schema_version=new.schema_version,
                data_hash=p.data_hash,
                metadata=p.meta_obj,
                occurred_at=occurred_text,
                recorded_at=recorded_at,
            )
        rows.append(
            (
                position, p.event_id, aggregate_id, aggregate_type, event_version, new.type,
                new.schema_version, p.data, p.metadata, occurred_text, recorded_at, p.data_hash,
                event_hash,
            )
        )  # fmt: skip
        recorded.append(
            recorded_event(
                position, p.event_id, aggregate_id, aggregate_type, event_version, new.type,
                new.schema_version, p.data_obj, p.meta_obj,
                now if p.occurred is None else parse_time(occurred_text), now, event_hash,
            )
        )  # fmt: skip
    info = None
    due = range(0)
    if aggregate_id is not None:
        # On an existing aggregate the backend keeps its first position and
        # creation time; these two values only matter for a new one.
        last = version + len(prepared)
        info = AggregateInfo(
            aggregate_id, aggregate_type, last, first_position,
            first_position + len(prepared) - 1, now, now,
        )  # fmt: skip
        if snapshot_every:
            due = range((version // snapshot_every + 1) * snapshot_every, last + 1, snapshot_every)
    return AppendPlan(rows, recorded, info, due, recorded_at)


@contextmanager
def writing(es: StoreCore) -> Iterator[None]:
    outer = es._writer
    es._writer = threading.get_ident()
    try:
        yield
    finally:
        es._writer = outer


@contextmanager
def transaction(es: StoreCore) -> Iterator[None]:
    """One write transaction (a savepoint when nested): see ``EventStore.transaction``."""
    with es._lock:
        if es._closed:
            raise StoreError(f"{es._label} is closed")
        with es._backend.write(), writing(es):
            yield


def append(
    es: StoreCore,
    events: object,
    aggregate_id: object,
    aggregate_type: object,
    expected_version: object,
    *,
    receipt: bool = False,
) -> list[RecordedEvent]:
    """:meth:`EventStore.append`: a user's append, which refuses the reserved
    ``sss.`` types. The store's own receipts go through :func:`append_receipt`."""
    if es.readonly:
        raise ReadOnlyError(f"{es._label} is open read-only; appends are refused")
    prepared, aggregate, kind = _check_call(
        events, aggregate_id, aggregate_type, expected_version, receipt
    )
    expected: int | ExpectedVersion = expected_version  # type: ignore[assignment]
    grouper = es._grouper
    if (
        grouper is not None
        and prepared
        and es._writer != threading.get_ident()
        and not grouper.leads()
    ):
        return grouper.append((es, prepared, aggregate, kind, expected), _alone, _together)
    with es._lock:
        return write_one(es, prepared, aggregate, kind, expected)


def _alone(queued: Queued) -> list[RecordedEvent]:
    return write_one(*queued)


def _together(queued: Sequence[Queued]) -> list[list[RecordedEvent] | BaseException]:
    return write_group(queued[0][0], [q[1:] for q in queued])


def write_one(
    es: StoreCore,
    prepared: list[Prepared],
    aggregate: str | None,
    kind: str | None,
    expected: int | ExpectedVersion,
) -> list[RecordedEvent]:
    """One batch in a transaction of its own (a savepoint inside ``transaction()``),
    or as the server's one-statement append; the caller holds the store's lock."""
    if es._closed:
        raise StoreError(f"{es._label} is closed")
    if prepared and es._writer is None and es._backend.appends_direct:
        done = _append_direct(es, prepared, aggregate, kind, expected)
        if done is not None:
            return done
    with es._backend.write() as tx:
        return _append(es, tx, prepared, aggregate, kind, expected)


def write_group(
    es: StoreCore, batches: Sequence[Batch]
) -> list[list[RecordedEvent] | BaseException]:
    """Several batches in one transaction, each in a savepoint of its own:
    a batch that fails answers its own error and leaves the others; a
    failure of the transaction (the commit, a lost connection) answers every
    batch, and nothing of the group is stored. The caller holds the lock."""
    if es._closed:
        return [StoreError(f"{es._label} is closed") for _ in batches]
    answers: list[list[RecordedEvent] | BaseException] = []
    direct = es._backend.appends_direct
    try:
        with es._backend.write() as tx:
            for batch in batches:
                try:
                    # A server's one-statement append writes nothing when it
                    # refuses a batch, so it needs no savepoint of its own.
                    done = _append_direct(es, *batch, joined=True) if direct else None
                    if done is not None:
                        answers.append(done)
                        continue
                    with es._backend.write() as savepoint:
                        answers.append(_append(es, savepoint, *batch))
                except Exception as e:
                    if not tx.usable():
                        raise  # the database ended the transaction: the group fails
                    answers.append(e)
    except BaseException as e:
        # The first batch is the leader's own: it gets the error itself.
        return [e, *(own_copy(e) for _ in batches[1:])]
    return answers


def append_receipt(
    es: StoreCore,
    events: Sequence[NewEvent],
    aggregate_id: str | None,
    aggregate_type: str | None,
    expected_version: int | ExpectedVersion,
) -> list[RecordedEvent]:
    """Append the store's own receipt events (types in the reserved ``sss.``
    namespace: ``sss.Reverted``, ``sss.Voided``, ``sss.Erased``, ...), which
    :meth:`EventStore.append` refuses from users.

    Everything else is an ordinary append: the same checks, expected version,
    hash chain and write lock, inside the caller's transaction if one is open.
    Internal: for the modules of ``store`` that write a correction (see
    :mod:`store.correcting`); never exported.

    Example:
        >>> with appending.transaction(es):  # read, decide, then write, under one lock
        ...     (event,) = append_receipt(es, [NewEvent(VOIDED, data, meta)], agg, kind, ANY)
    """
    return append(es, events, aggregate_id, aggregate_type, expected_version, receipt=True)


def _append_direct(
    es: StoreCore,
    prepared: list[Prepared],
    aggregate_id: str | None,
    aggregate_type: str | None,
    expected_version: int | ExpectedVersion,
    joined: bool = False,
) -> list[RecordedEvent] | None:
    """The append as one call into a backend that can do it whole, or None
    to take the general path; ``joined``: inside a group's transaction."""
    expected: int | None = None
    if isinstance(expected_version, int):
        expected = expected_version
    elif expected_version is NO_STREAM:
        expected = 0
    now = es._now()
    rows: list[DirectRow] = [
        (
            p.event_id, p.new.type, p.new.schema_version, p.data, p.metadata, p.occurred,
            p.data_hash, chain_middle(p.new.type, p.new.schema_version, p.data_hash, p.meta_obj),
        )
        for p in prepared
    ]  # fmt: skip
    result = es._backend.append_direct(
        rows, aggregate_id, aggregate_type, expected, format_time(now), joined=joined
    )
    if result is None:
        return None
    if result.status == "type":
        raise type_mismatch(aggregate_id or "", result.aggregate_type, aggregate_type)
    if result.status == "conflict":
        assert aggregate_id is not None  # an expected version needs one
        raise ConcurrencyError(aggregate_id, expected_version, result.version)
    if result.status != "ok" or len(result.hashes) != len(prepared):
        raise StoreError(f"{es._label}: the append returned {result.status!r}")
    plan = plan_append(
        prepared, aggregate_id, result.aggregate_type, first_position=result.first_position,
        version=result.version, recorded_at=result.recorded_at, hashes=result.hashes,
        snapshot_every=es.snapshot_every,
    )  # fmt: skip
    if plan.snapshots_due:
        assert aggregate_id is not None
        # The events are committed: a snapshot that cannot be written
        # now (a cache) must not turn the append into an error.
        try:
            with es._backend.write() as tx:
                for version in plan.snapshots_due:
                    _take_snapshot(es, tx, aggregate_id, version, plan.recorded_at)
        except StoreError as e:
            _warn_caller(f"no snapshot of {aggregate_id} at version {plan.snapshots_due[-1]}: {e}")
    return [es._upcast(event) for event in plan.recorded]


def _append(
    es: StoreCore,
    tx: WriteTransaction,
    prepared: list[Prepared],
    aggregate_id: str | None,
    aggregate_type: str | None,
    expected_version: int | ExpectedVersion,
) -> list[RecordedEvent]:
    ids = [p.event_id for p in prepared]
    if ids:
        stored = {event.event_id: event for event in tx.find_events(ids)}
        if stored:
            if len(stored) != len(ids):
                some = next(i for i in ids if i in stored)
                raise DuplicateEventError(
                    some, "is stored already, but others in the batch are new; nothing stored"
                )
            for p in prepared:
                same = None
                if stored[p.event_id].erased_by is not None:
                    # Its payload is gone: the kept digest says whether it was this one.
                    same = tx.data_hash(p.event_id) == p.data_hash
                if not same_content(
                    stored[p.event_id], p.new, aggregate_id, aggregate_type, p.occurred, same
                ):
                    raise DuplicateEventError(p.event_id, "is stored already with other content")
            return [es._upcast(stored[i]) for i in ids]
    current = 0
    if aggregate_id is not None:
        found = tx.aggregate(aggregate_id)
        if found is not None:
            current_type, current = found
            if aggregate_type is not None and aggregate_type != current_type:
                raise type_mismatch(aggregate_id, current_type, aggregate_type)
            aggregate_type = current_type
        expected = 0 if expected_version is NO_STREAM else expected_version
        if expected is not ANY and expected != current:
            raise ConcurrencyError(aggregate_id, expected_version, current)
    if not prepared:
        return []
    head: Head = tx.head()
    now = es._now()
    if head.recorded_at is not None:
        # The clock may step back; "as of T" must stay a prefix of the log.
        now = max(now, parse_time(head.recorded_at))
    plan = plan_append(
        prepared, aggregate_id, aggregate_type, first_position=head.position + 1,
        version=current, recorded_at=format_time(now), prev_hash=head.hash,
        snapshot_every=es.snapshot_every,
    )  # fmt: skip
    tx.insert(plan.rows, plan.aggregate)
    if plan.snapshots_due:
        assert aggregate_id is not None
        # The insert's own errors must not be taken for a snapshot's.
        tx.flush()
        for version in plan.snapshots_due:
            _take_snapshot(es, tx, aggregate_id, version, plan.recorded_at)
    return [es._upcast(event) for event in plan.recorded]


def _take_snapshot(
    es: StoreCore, tx: WriteTransaction, aggregate_id: str, version: int, created_at: str
) -> None:
    # A snapshot is a cache: a reducer that fails, or builds a state that is
    # not JSON, must not refuse the append. state_at will say what is wrong.
    try:
        taken = replay.fold(es, aggregate_id, version, committed=False)
        tx.save_snapshot(taken, es._fingerprint, created_at)
    except (ReducerError, ValidationError) as e:
        _warn_caller(f"no snapshot of {aggregate_id} at version {version}: {e}")


def snapshot(es: StoreCore, aggregate_id: str) -> AggregateState:
    if es.readonly:
        raise ReadOnlyError(f"{es._label} is open read-only; snapshots are refused")
    check_name(aggregate_id, "aggregate_id", optional=False)
    with es._lock, es._backend.write() as tx:
        info = es._backend.aggregate(aggregate_id)
        if info is None:
            raise NotFoundError(f"no aggregate {describe(aggregate_id)} in {es._label}")
        taken = replay.fold(es, aggregate_id, info.version)
        tx.save_snapshot(taken, es._fingerprint, format_time(es._now()))
        return AggregateState(
            aggregate_id, info.aggregate_type, info.version, info.last_position,
            info.updated_at, taken.state,
        )  # fmt: skip


_PACKAGE = __name__.partition(".")[0]


def _warn_caller(message: str) -> None:
    """A RuntimeWarning at the first frame outside this package: the line of
    the caller's own append (a group's leader warns for every batch it
    writes, at its own line), however many frames the path took (group
    commit, a receipt, a transaction)."""
    frame = sys._getframe(1)
    level = 2  # 1 is this function's own frame
    while (
        frame.f_back is not None
        and frame.f_globals.get("__name__", "").partition(".")[0] == _PACKAGE
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)

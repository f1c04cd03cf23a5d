"""The event store's public face: :class:`EventStore`.

Each method checks nothing itself and hands over to the module that holds
the rules of its job (see ARCHITECTURE.md):

- :mod:`store.appending`: validation, idempotency, expected versions, the
  hash chain (one :func:`~store.appending.plan_append` for both write paths);
- :mod:`store.paging`: filters, keyset pages, streams, counts;
- :mod:`store.replay`: folding state, ``state_at``, ``history``;
- :mod:`store.verifying`: the chain walk and the storage check;
- :mod:`store.following`: the live tail.

What they share (the backend, the lock, the reducers, the clock) is
:class:`store._core.StoreCore`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from . import appending, correcting, erasing, following, paging, replay, verifying
from ._core import StoreCore
from .checkpoints import checkpoint as make_checkpoint
from .checks import check_int, check_name
from .codec import format_time, require_aware
from .models import (
    ANY,
    AggregateInfo,
    AggregateState,
    ExpectedVersion,
    NewEvent,
    ReadStatement,
    RecordedEvent,
    Step,
    StoreCounts,
    VerifyReport,
)
from .notes import Checkpoint
from .proofs import prove as make_proof
from .subscriptions import ParkedEvent, SubscriptionInfo

__all__ = ["EventStore"]

STORAGE_CHECKS = verifying.STORAGE_CHECKS


class EventStore(StoreCore):
    """An append-only, totally ordered log of domain events.

    Args:
        path: an SQLite file (created when missing), ``":memory:"``, or a
            ``postgresql://`` URL.
        readonly: audit mode; every write raises :class:`ReadOnlyError`, and the
            database is opened read-only, so nothing can change it. A file on
            read-only media opens too (see the README).
        reducers: how state is rebuilt (default: JSON merge patch of ``data``).
        upcasters: payload upgrades applied on read, before reducers.
        snapshot_every: store a snapshot of an aggregate's state every N versions,
            inside the append's transaction.
        durable: when ``True`` (the default) an acknowledged append survives
            power loss. ``False`` trades that for speed in bulk imports; a
            crashed process still loses nothing that was committed.
        timeout: seconds to wait for another writer before :class:`LockedError`.
        clock: where ``recorded_at`` (and a snapshot's ``created_at``) comes
            from (default: the system clock in UTC). Simulations and tests pass
            their own; whatever it says, the store never lets ``recorded_at``
            decrease along the log.
        group_commit: when ``True`` (the default) appends made at the same time
            by threads sharing this store are written in one transaction with
            one fsync, each caller's batch in a savepoint of its own, so a
            conflict fails only its caller; every caller is answered after the
            commit is durable, and a lone caller waits for nobody. ``False``
            commits each append on its own (see :mod:`store.grouping`).

    Every argument is checked before anything is opened; a bad one raises
    :class:`ValidationError`.

    Example:
        >>> with EventStore(":memory:") as es:
        ...     _ = es.append([NewEvent("OrderPlaced", {"total": 30})],
        ...                   aggregate_id="order-1", aggregate_type="Order")
        ...     es.state_at("order-1").state
        {'total': 30}

    Thread-safety: one EventStore may be shared by threads; its calls are
    serialised by an internal lock, and lazy iterators take the lock one page
    at a time. Appends from several threads are group-committed (above);
    asyncio code joins the same groups with ``await asyncio.to_thread(es.append,
    ...)``. Separate processes coordinate through the database's own lock.
    """

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make several appends one atomic unit: all are stored or none.

        Example:
            >>> es = EventStore()
            >>> with es.transaction():
            ...     _ = es.append([NewEvent("A")], aggregate_id="a-1")
            ...     _ = es.append([NewEvent("B")], aggregate_id="b-1")
        """
        with appending.transaction(self):
            yield

    def append(
        self,
        events: Iterable[NewEvent],
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        expected_version: int | ExpectedVersion = ANY,
    ) -> list[RecordedEvent]:
        """Append a batch atomically and return the recorded events.

        Raises:
            ConcurrencyError: ``expected_version`` did not match; nothing stored.
            DuplicateEventError: an event id is stored with other content.
            ValidationError: malformed input; nothing stored.
            ReadOnlyError: the store is read-only.
        """
        return appending.append(self, events, aggregate_id, aggregate_type, expected_version)

    def revert(
        self,
        aggregate_id: str,
        *,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
        reason: str,
        metadata: dict[str, Any] | None = None,
    ) -> RecordedEvent:
        """Take the aggregate back to its state at ``version``, ``position``
        or ``at`` by appending one ``sss.Reverted`` event; return it.

        Afterwards ``state_at(aggregate_id).state`` equals the state at the
        target; nothing is deleted. ``reason`` (required) and the actor go
        into the event's metadata with the target version and position. See
        :mod:`store.correcting` for the event's data and custom reducers.

        Raises:
            ValidationError: no target, a blank reason, or the aggregate is
                at the target already.
            NotFoundError: no such aggregate or version.
            ConcurrencyError: the aggregate changed while the revert was made.
        """
        return correcting.revert(self, aggregate_id, version, position, at, reason, metadata)

    def void(
        self, position: int, *, reason: str, metadata: dict[str, Any] | None = None
    ) -> RecordedEvent:
        """Mark the event at ``position`` as wrong by appending one
        ``sss.Voided`` event (to the same aggregate) naming it; return it.

        Replays whose point lies at or after the void skip the voided event;
        replays before it (``state_at`` at an earlier version, position or
        time) still include it, as it was known then. Nothing is deleted and
        the hash chain is untouched. ``reason`` (required) and the actor go
        into the metadata.

        Raises:
            ValidationError: a blank reason; the event is a void, or voided already.
            NotFoundError: no event at ``position``.
        """
        return correcting.void(self, position, reason, metadata)

    def erase(
        self,
        *,
        positions: Iterable[int] | None = None,
        aggregate_id: str | None = None,
        reason: str,
        metadata: dict[str, Any] | None = None,
    ) -> RecordedEvent:
        """Erase the payloads of the events at ``positions``, or of every
        event of ``aggregate_id`` stored so far (for privacy law); return
        the one ``sss.Erased`` receipt appended.

        The values go, the top-level field names stay, each holding
        :data:`~store.ERASED`; ``data_hash``, ``hash`` and every other column
        stay, so ``verify()`` stays ok (and counts the erased payloads).
        Snapshots that carried the payloads are dropped, and the database
        removes the old bytes from its files (see :mod:`store.erasing` and
        the README for what that covers on each backend). The receipt has
        no aggregate; ``reason`` (required) and the actor go into its
        metadata. Erasing what is erased already appends nothing and returns
        the earlier receipt. A warning says when a reader kept the database
        from removing old copies from its WAL.

        Raises:
            ValidationError: a blank reason; neither or both of positions and
                aggregate_id; a void or a receipt named by position.
            NotFoundError: no event at a position, or no such aggregate.
            ReadOnlyError: the store is open read-only.
        """
        return erasing.erase(self, positions, aggregate_id, reason, metadata)

    def snapshot(self, aggregate_id: str) -> AggregateState:
        """Store a snapshot of the aggregate at its current version and return it."""
        return appending.snapshot(self, aggregate_id)

    # -- reading -------------------------------------------------------------

    def head(self) -> int:
        """The last position, 0 when the store is empty."""
        return self._call(self._backend.head)

    def read(
        self,
        from_position: int | None = None,
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        backwards: bool = False,
    ) -> Iterator[RecordedEvent]:
        """Events in position order (newest first with ``backwards``), lazily.

        Every filter combines with the others. ``since`` and ``until`` bound
        ``recorded_at`` inclusively. Pages are fetched by position keyset, so
        reading ten million events holds only one page in memory.
        """
        return paging.read(
            self, from_position, aggregate_id, aggregate_type, types, since, until, limit,
            backwards,
        )  # fmt: skip

    def read_rows(
        self,
        from_position: int | None = None,
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        backwards: bool = False,
        *,
        page_size: int = 10_000,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """What :meth:`read` yields, as pages of plain tuples, for columnar loaders.

        Each row holds the schema's fields in order (position, event_id,
        aggregate_id, aggregate_type, version, type, schema_version, data,
        metadata, occurred_at, recorded_at, hash), with ``data`` and
        ``metadata`` as JSON text and the times as ISO-8601 UTC text, as
        stored; no Python object is made per field. Upcasters still apply: an
        upcast row carries the new schema_version and payload text.
        """
        return paging.read_rows(
            self, from_position, aggregate_id, aggregate_type, types, since, until, limit,
            backwards, page_size,
        )  # fmt: skip

    def read_statement(
        self,
        from_position: int | None = None,
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        backwards: bool = False,
    ) -> ReadStatement | None:
        """What :meth:`read_rows` yields, as one SQL statement for a bulk loader
        that runs it through a driver of its own (an Arrow driver, say).

        The filters are checked as :meth:`read` checks them. ``None`` when
        nothing can match, when upcasters are set (they run in Python), when
        the backend offers no such statement (PostgreSQL, ``:memory:``), or
        while a write transaction is open on this store (another connection
        would not see its rows): read with :meth:`read_rows` then.

        Example:
            >>> with EventStore(":memory:") as es:
            ...     es.read_statement() is None
            True
        """
        return paging.read_statement(
            self, from_position, aggregate_id, aggregate_type, types, since, until, limit,
            backwards,
        )  # fmt: skip

    def count(
        self,
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many events ``read`` would yield with these filters."""
        return paging.count(self, aggregate_id, aggregate_type, types, since, until)

    def get(self, position: int) -> RecordedEvent:
        """The event at ``position``."""
        return paging.get(self, position)

    def stream(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[RecordedEvent]:
        """One aggregate's events from ``from_version`` to ``to_version`` (inclusive)."""
        check_name(aggregate_id, "aggregate_id", optional=False)
        check_int(from_version, "from_version")
        if to_version is not None:
            check_int(to_version, "to_version")
        return paging.stream(self, aggregate_id, from_version, to_version)

    def aggregate(self, aggregate_id: str) -> AggregateInfo:
        """One aggregate's facts; :class:`NotFoundError` when it has no events."""
        return paging.aggregate(self, aggregate_id)

    def aggregates(self, aggregate_type: str | None = None) -> Iterator[AggregateInfo]:
        """Every aggregate (of one type), ordered by id, from the aggregates table."""
        check_name(aggregate_type, "aggregate_type")
        return paging.aggregates(self, aggregate_type)

    def aggregate_types(self) -> dict[str | None, int]:
        """Number of aggregates per aggregate type, from the kept counts."""
        return paging.counts(self).aggregate_types

    def event_types(self) -> dict[str, int]:
        """Number of events per event type, sorted by type, from the kept counts."""
        return paging.counts(self).event_types

    def counts(self) -> StoreCounts:
        """What the log holds, from the counts the store keeps as it appends:
        events per event type and per aggregate type, aggregates per aggregate
        type, events without an aggregate, the span of ``occurred_at``; exact,
        and read from a table of one row per (event type, aggregate type), so
        it costs the same at any size. Inside :meth:`transaction` it includes
        the transaction's own appends.

        Example:
            >>> with EventStore(":memory:") as es:
            ...     _ = es.append([NewEvent("Placed", {})], aggregate_id="o-1",
            ...                   aggregate_type="Order")
            ...     es.counts().aggregate_types
            {'Order': 1}
        """
        return paging.counts(self)

    def position_at(self, at: datetime) -> int:
        """The last position recorded at or before ``at``; 0 if none."""
        moment = format_time(require_aware(at, "at"))
        return self._call(self._backend.last_position_until, moment)

    def info(self) -> dict[str, Any]:
        """Facts about the database (backend, file size) for ``sss stats``."""
        return self._call(self._backend.info)

    # -- replay --------------------------------------------------------------

    def state_at(
        self,
        aggregate_id: str,
        version: int | None = None,
        position: int | None = None,
        at: datetime | None = None,
        *,
        occurred: datetime | None = None,
        known_at: datetime | None = None,
    ) -> AggregateState:
        """The aggregate's state as of a version, a global position or a time.

        Give at most one of ``version``, ``position`` and ``at`` (matched against
        ``recorded_at``, inclusive); none means the latest state. A point before
        the aggregate's first event gives version 0 and ``{}``.

        Or the two clocks: ``occurred`` (business time B) and ``known_at``
        (system time K), either or both: the events recorded at or before K
        with ``occurred_at`` at or before B, folded in (occurred_at, position)
        order (:mod:`store.bitemporal` says when snapshots can be used).
        """
        if occurred is not None or known_at is not None:
            from .bitemporal import bitemporal_state, check_point

            check_point(version, position, at, True)
            check_name(aggregate_id, "aggregate_id", optional=False)
            return bitemporal_state(self, aggregate_id, occurred, known_at)
        return replay.state_at(self, aggregate_id, version, position, at)

    def history(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[Step]:
        """Each step of an aggregate's history: event, state before and after,
        and the fields it changed."""
        return replay.history(self, aggregate_id, from_version, to_version)

    def bisect(self, aggregate_id: str, where: Any) -> Step | None:
        """The first step after which ``where`` holds on the aggregate's state
        (an expression such as ``/status == "cancelled"``, or a callable on
        the state dict), or None; see :mod:`store.search`."""
        from .search import first_step

        check_name(aggregate_id, "aggregate_id", optional=False)
        return first_step(self, aggregate_id, where)

    def bisect_type(
        self,
        aggregate_type: str | None,
        where: Any,
        progress: Callable[[int, int], None] | None = None,
    ) -> Iterator[Step]:
        """:meth:`bisect` for every aggregate of a type, streamed as found."""
        from .search import first_steps

        return first_steps(self, check_name(aggregate_type, "aggregate_type"), where, progress)

    # -- integrity -----------------------------------------------------------

    def verify(
        self,
        progress: Callable[[int, int], None] | None = None,
        *,
        storage: str | None = None,
        from_position: int | None = None,
        head_hash: str | None = None,
        merkle: bool = False,
        checkpoint: Checkpoint | None = None,
        key: str | None = None,
    ) -> VerifyReport:
        """Walk the hash chain and the position and version sequences, then
        have the database check its own files.

        Returns a :class:`VerifyReport` naming the first bad position and why;
        it always finishes with a report, however damaged the file (a store
        that cannot be read at all reports ``ok=False``). ``progress(checked,
        head)`` is called after each page.

        ``storage`` is the database's own check after the walk: ``"full"``
        (SQLite ``PRAGMA integrity_check``: every page, and every index against
        its table, since a damaged index makes filtered reads wrong),
        ``"quick"`` (``quick_check``: the pages but not the indexes' content)
        or ``"off"``. See the README for what each costs.

        Incremental: given ``from_position`` N and the ``head_hash`` trusted
        there (an earlier report's ``head_position`` and ``head_hash``), only
        the events after N are walked, chained on from that hash, with the
        versions of the aggregates they touch going on from where each stood
        at N, and those aggregates' rows and the snapshots taken after N. The
        storage check then defaults to ``"off"`` (it reads every page of the
        database); otherwise it defaults to ``"full"``.

        ``merkle=True`` (a full walk) also recomputes the Merkle tree of the
        events from their rows: the report's ``root`` (None otherwise; it
        adds two SHA-256 per event to the walk, see ``benchmarks/
        proof_bench.py``). Given a ``checkpoint`` (from
        :meth:`checkpoint`, or ``Checkpoint.parse`` of a file), the report
        fails, naming what differs, unless the store extends it: the tail
        cut, or the first ``checkpoint.size`` events rewritten, reordered or
        forked; otherwise the consistency proof from its size to today's
        head must verify against both roots. ``key`` (a public key's text)
        also requires the checkpoint to be signed by it. See
        :mod:`store.checkpoints`.
        """
        return verifying.verify(
            self, progress, storage=storage, from_position=from_position, head_hash=head_hash,
            merkle=merkle, checkpoint=checkpoint, key=key,
        )  # fmt: skip

    # -- proof for outsiders (store.tree, store.checkpoints, store.proofs) ------

    def checkpoint(self, key: str | None = None) -> Checkpoint:
        """A checkpoint of the store as it is now: its id, size (the head),
        Merkle root (base64), chain head and time, signed with ``key`` (a
        private key's text, as ``sss keygen`` writes it) or unsigned.
        ``checkpoint.text`` is the note to hand to whoever keeps it.

        Catches the stored Merkle tree up with the events appended since
        the last checkpoint or proof (:mod:`store.tree`).
        """
        return make_checkpoint(self, key)

    def prove(self, position: int, *, checkpoint: Checkpoint | None = None) -> dict[str, Any]:
        """A self-contained inclusion proof of the event at ``position``, as a
        JSON-ready dict: its canonical leaf, the audit path and the checkpoint
        (a fresh unsigned one, or ``checkpoint``, which the store must
        extend). Anyone checks it with :func:`store.verify_proof`, or with the
        standard library as the README shows.

        Raises:
            NotFoundError: no event at ``position``.
            ValidationError: ``position`` is after the checkpoint.
            StoreError: the store does not extend ``checkpoint``.
        """
        return make_proof(self, position, checkpoint)

    # -- live ----------------------------------------------------------------

    def follow(
        self,
        from_position: int | None = 1,
        *,
        poll_interval: float = 0.1,
        stop: threading.Event | None = None,
    ) -> Iterator[RecordedEvent]:
        """Yield every event from ``from_position`` on, then block for events
        that other processes append, until ``stop`` is set or the iterator is
        closed. ``from_position=None`` yields only events appended after this
        call.

        Waiting costs one ``PRAGMA data_version`` (SQLite) per ``poll_interval``;
        on PostgreSQL a LISTEN connection wakes it as soon as an append commits
        (polling remains the fallback).

        Raises:
            StoreError: when iterated by a thread inside :meth:`transaction`,
                whose uncommitted events it would otherwise see.
        """
        return following.follow(self, from_position, poll_interval=poll_interval, stop=stop)

    # -- consumers (store.subscriptions) -----------------------------------

    def subscribe(
        self,
        name: str,
        handler: Callable[[RecordedEvent], object] | Callable[[list[RecordedEvent]], object],
        *,
        types: Iterable[str] | None = None,
        aggregate_type: str | None = None,
        from_position: int = 1,
        batch_size: int = 100,
        follow: bool = True,
        stop: threading.Event | Callable[[], bool] | None = None,
        exactly_once: bool = False,
        on_error: str = "stop",
        group_member: int | None = None,
        group_size: int | None = None,
        poll_interval: float = 0.1,
        per_batch: bool = False,
    ) -> int:
        """Call ``handler(event)`` for each matching event after the saved
        position of subscription ``name`` (created at ``from_position``), a
        batch at a time, saving the position after each batch (at least once).
        ``exactly_once=True`` runs each batch and the position save in one
        transaction, so the handler's appends to this store happen once.
        With ``follow`` it then waits for new events until ``stop`` (an Event
        or a callable) says so; otherwise it returns when caught up. Returns
        the number of events handled. ``per_batch=True`` calls
        ``handler(events)`` once per batch with the list instead (one append
        of a batch's results is much cheaper than one per event). Details:
        :mod:`store.subscriptions`.

        Raises:
            HandlerError: the handler raised; the position stays before the batch.
            SubscriptionError: another consumer moved the position meanwhile.
        """
        from . import subscriptions

        return subscriptions.subscribe(
            self, name, handler, types=types, aggregate_type=aggregate_type,
            from_position=from_position, batch_size=batch_size, follow=follow, stop=stop,
            exactly_once=exactly_once, on_error=on_error, group_member=group_member,
            group_size=group_size, poll_interval=poll_interval, per_batch=per_batch,
        )  # fmt: skip

    def subscriptions(self) -> list[SubscriptionInfo]:
        """Every subscription (one entry per group member) with its position and lag."""
        from . import subscriptions

        return subscriptions.subscriptions(self)

    def reset_subscription(self, name: str, position: int) -> None:
        """Move subscription ``name`` to ``position``: it resumes after it."""
        from . import subscriptions

        subscriptions.reset(self, name, position)

    def delete_subscription(self, name: str) -> None:
        """Forget subscription ``name``, its position(s) and parked events."""
        from . import subscriptions

        subscriptions.delete(self, name)

    def park_event(self, name: str, position: int, reason: str) -> None:
        """Park the event at ``position`` for subscription ``name``: it is skipped."""
        from . import subscriptions

        subscriptions.park(self, name, position, reason)

    def parked_events(self, name: str | None = None) -> list[ParkedEvent]:
        """The events subscriptions parked, with their reasons."""
        from . import subscriptions

        return subscriptions.parked(self, name)

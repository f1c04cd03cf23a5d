"""The event store: every rule of the log lives here, whatever the database.

One exception, by design: a server backend may restate the append rules to
append in one statement under its lock (:meth:`Backend.append_direct`; for
PostgreSQL the function in :mod:`store._pgschema`). The contract suite runs
every test through both paths.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

from .backend import Backend, Query, Row, Snapshot, WriteTransaction
from .checks import check_event_id, check_int, check_name, check_types, same_content
from .codec import (
    MAX_INT,
    chain_hash,
    chain_middle,
    data_digest,
    digest,
    encode_checked,
    encode_object,
    format_time,
    loads_stored,
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
)
from .integrity import ChainVerifier
from .models import (
    ANY,
    NO_STREAM,
    AggregateInfo,
    AggregateState,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    Step,
    VerifyReport,
    recorded_event,
)
from .reducers import Reducers, Upcasters, diff
from .statecache import StateCache

__all__ = ["EventStore"]

PAGE = 1000
T = TypeVar("T")


def _open_backend(location: str, readonly: bool, durable: bool, timeout: float) -> Backend:
    if location.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresBackend
        except ImportError as e:  # pragma: no cover - depends on the install
            raise StoreError(f"PostgreSQL support is not available: {e}") from e
        return PostgresBackend(location, readonly=readonly, timeout=timeout)
    from .sqlite import SQLiteBackend

    return SQLiteBackend(location, readonly=readonly, durable=durable, timeout=timeout)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class _Prepared(NamedTuple):
    """An event validated and encoded before the write lock is taken."""

    event_id: str
    data: str
    metadata: str
    occurred: str | None
    data_obj: dict[str, Any]
    meta_obj: dict[str, Any]
    data_hash: str


def _reducer_error(event: RecordedEvent, error: Exception) -> StoreError:
    if isinstance(error, StoreError):
        return error
    return ReducerError(
        f"the reducer for {event.type} failed on {event.aggregate_id} version "
        f"{event.version} (position {event.position}): {type(error).__name__}: {error}"
    )


def _event_position(event: RecordedEvent) -> int:
    return event.position


def _event_cursor(event: RecordedEvent, by_version: bool) -> int | None:
    return event.version if by_version else event.position


def _row_position(row: tuple[Any, ...]) -> int:
    return int(row[0])


def _row_cursor(row: tuple[Any, ...], by_version: bool) -> int | None:
    return int(row[4]) if by_version else int(row[0])


class EventStore:
    """An append-only, totally ordered log of domain events.

    Args:
        path: an SQLite file (created when missing), ``":memory:"``, or a
            ``postgresql://`` URL.
        readonly: audit mode; every write raises :class:`ReadOnlyError`, and the
            database is opened read-only, so nothing can change it.
        reducers: how state is rebuilt (default: JSON merge patch of ``data``).
        upcasters: payload upgrades applied on read, before reducers.
        snapshot_every: store a snapshot of an aggregate's state every N versions,
            inside the append's transaction.
        durable: when ``True`` (the default) an acknowledged append survives
            power loss. ``False`` trades that for speed in bulk imports; a
            crashed process still loses nothing that was committed.
        timeout: seconds to wait for another writer before :class:`LockedError`.
        clock: where ``recorded_at`` comes from (default: the system clock in
            UTC). Simulations and tests pass their own; whatever it says, the
            store never lets ``recorded_at`` decrease along the log.

    Example:
        >>> with EventStore(":memory:") as es:
        ...     _ = es.append([NewEvent("OrderPlaced", {"total": 30})],
        ...                   aggregate_id="order-1", aggregate_type="Order")
        ...     es.state_at("order-1").state
        {'total': 30}

    Thread-safety: one EventStore may be shared by threads; its calls are
    serialised by an internal lock, and lazy iterators take the lock one page
    at a time. Separate processes coordinate through the database's own lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        readonly: bool = False,
        reducers: Reducers | None = None,
        upcasters: Upcasters | None = None,
        snapshot_every: int | None = None,
        durable: bool = True,
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if snapshot_every is not None and (
            not isinstance(snapshot_every, int)
            or isinstance(snapshot_every, bool)
            or snapshot_every < 1
        ):
            raise ValidationError(f"snapshot_every must be a positive int, not {snapshot_every!r}")
        if reducers is not None and not isinstance(reducers, Reducers):
            raise ValidationError(
                f"reducers must be a store.Reducers, not {type(reducers).__name__}"
            )
        if upcasters is not None and not isinstance(upcasters, Upcasters):
            raise ValidationError(
                f"upcasters must be a store.Upcasters, not {type(upcasters).__name__}"
            )
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValidationError(f"timeout must be a number of seconds >= 0, not {timeout!r}")
        if not isinstance(path, (str, os.PathLike)):
            raise ValidationError(f"path must be a file path or a URL, not {type(path).__name__}")
        self.path = os.fspath(path)
        if "\0" in self.path:
            raise ValidationError("path holds a NUL character")
        self.readonly = readonly
        self.reducers = reducers if reducers is not None else Reducers()
        self.upcasters = upcasters if upcasters is not None else Upcasters()
        self.snapshot_every = snapshot_every
        self._clock = clock if clock is not None else _utc_now
        self._lock = threading.RLock()
        self._backend = _open_backend(self.path, readonly, durable, timeout)
        # What messages and repr show: a URL without its password.
        self._label: str = getattr(self._backend, "display", self.path)
        self._closed = False
        self._writer: int | None = None  # the thread inside transaction(), if any
        self._states = StateCache()
        self._type_counts: tuple[int, dict[str, int]] = (0, {})

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"EventStore({self._label!r}{', readonly=True' if self.readonly else ''})"

    @property
    def label(self) -> str:
        """The path or URL for messages: a URL is shown without its password."""
        return self._label

    @property
    def _fingerprint(self) -> str:
        # Computed on use: reducers may be registered after the store is opened.
        return digest(self.reducers.fingerprint + self.upcasters.fingerprint)

    @property
    def backend(self) -> Backend:
        """The database behind the store (for diagnostics such as query plans)."""
        return self._backend

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._label} is closed")
            return fn(*args)

    # -- writing -------------------------------------------------------------

    @contextmanager
    def _writing(self) -> Iterator[None]:
        outer = self._writer
        self._writer = threading.get_ident()
        try:
            yield
        finally:
            self._writer = outer

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make several appends one atomic unit: all are stored or none.

        Example:
            >>> es = EventStore()
            >>> with es.transaction():
            ...     _ = es.append([NewEvent("A")], aggregate_id="a-1")
            ...     _ = es.append([NewEvent("B")], aggregate_id="b-1")
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._label} is closed")
            with self._backend.write(), self._writing():
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
        if self.readonly:
            raise ReadOnlyError(f"{self._label} is open read-only; appends are refused")
        if isinstance(events, NewEvent):
            events = [events]
        if not isinstance(events, Iterable):
            raise ValidationError(
                f"events must be a NewEvent or an iterable of them, not {type(events).__name__}"
            )
        batch = list(events)
        aggregate_id = check_name(aggregate_id, "aggregate_id")
        aggregate_type = check_name(aggregate_type, "aggregate_type")
        if isinstance(expected_version, bool) or not isinstance(
            expected_version, (int, ExpectedVersion)
        ):
            raise ValidationError(
                f"expected_version must be an int, ANY or NO_STREAM, not {expected_version!r}"
            )
        if isinstance(expected_version, int) and not 0 <= expected_version <= MAX_INT:
            raise ValidationError(
                f"expected_version must be between 0 and {MAX_INT}, not {expected_version}"
            )
        if aggregate_id is None:
            if expected_version is not ANY:
                raise ValidationError("expected_version needs an aggregate_id")
            if aggregate_type is not None:
                raise ValidationError("aggregate_type needs an aggregate_id")
        prepared = [self._prepare(event, index) for index, event in enumerate(batch)]
        ids = [p.event_id for p in prepared]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise DuplicateEventError(dup, "appears twice in the batch")
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._label} is closed")
            if batch and self._writer is None and self._backend.appends_direct:
                done = self._append_direct(
                    batch, prepared, aggregate_id, aggregate_type, expected_version
                )
                if done is not None:
                    return done
            with self._backend.write() as tx:
                return self._append(
                    tx, batch, prepared, aggregate_id, aggregate_type, expected_version
                )

    @staticmethod
    def _prepare(event: object, index: int) -> _Prepared:
        if not isinstance(event, NewEvent):
            raise ValidationError(f"event {index} must be a NewEvent, not {type(event).__name__}")
        check_name(event.type, f"event {index}: type", optional=False)
        if (
            isinstance(event.schema_version, bool)
            or not isinstance(event.schema_version, int)
            or event.schema_version < 1
        ):
            raise ValidationError(f"event {index}: schema_version must be an int >= 1")
        if event.schema_version > MAX_INT:
            raise ValidationError(f"event {index}: schema_version must be at most {MAX_INT}")
        data, data_obj = encode_checked(event.data, f"event {index} ({event.type}): data")
        metadata, meta_obj = encode_checked(
            event.metadata, f"event {index} ({event.type}): metadata"
        )
        occurred = (
            None
            if event.occurred_at is None
            else format_time(require_aware(event.occurred_at, f"event {index}: occurred_at"))
        )
        # The payload digest needs no lock: compute it before taking one.
        return _Prepared(
            check_event_id(event.event_id), data, metadata, occurred, data_obj, meta_obj,
            data_digest(data_obj),
        )  # fmt: skip

    def _append_direct(
        self,
        batch: list[NewEvent],
        prepared: list[_Prepared],
        aggregate_id: str | None,
        aggregate_type: str | None,
        expected_version: int | ExpectedVersion,
    ) -> list[RecordedEvent] | None:
        """The append as one call into a backend that can do it whole
        (:meth:`Backend.append_direct`), or None to take the general path."""
        expected: int | None = None
        if isinstance(expected_version, int):
            expected = expected_version
        elif expected_version is NO_STREAM:
            expected = 0
        now = require_aware(self._clock(), "clock()")
        rows = [
            (
                p.event_id,
                new.type,
                new.schema_version,
                p.data,
                p.metadata,
                p.occurred,
                p.data_hash,
                chain_middle(new.type, new.schema_version, p.data_hash, p.meta_obj),
            )
            for new, p in zip(batch, prepared, strict=True)
        ]
        result = self._backend.append_direct(
            rows, aggregate_id, aggregate_type, expected, format_time(now)
        )
        if result is None:
            return None
        if result.status == "type":
            raise ValidationError(
                f"{aggregate_id} has aggregate type {result.aggregate_type!r}, not "
                f"{aggregate_type!r}; an aggregate keeps its type"
            )
        if result.status == "conflict":
            assert aggregate_id is not None  # an expected version needs one
            raise ConcurrencyError(aggregate_id, expected_version, result.version)
        if result.status != "ok" or len(result.hashes) != len(batch):
            raise StoreError(f"{self._label}: the append returned {result.status!r}")
        recorded_text = result.recorded_at
        now = parse_time(recorded_text)
        first, current = result.first_position, result.version
        aggregate_type = result.aggregate_type
        recorded = [
            recorded_event(
                first + offset,
                p.event_id,
                aggregate_id,
                aggregate_type,
                None if aggregate_id is None else current + offset + 1,
                new.type,
                new.schema_version,
                p.data_obj,
                p.meta_obj,
                now if p.occurred is None else parse_time(p.occurred),
                now,
                event_hash,
            )
            for offset, (new, p, event_hash) in enumerate(
                zip(batch, prepared, result.hashes, strict=True)
            )
        ]
        if aggregate_id is not None and self.snapshot_every:
            every = self.snapshot_every
            due = range((current // every + 1) * every, current + len(batch) + 1, every)
            if due:
                # The events are committed: a snapshot that cannot be written
                # now (a cache) must not turn the append into an error.
                try:
                    with self._backend.write() as tx:
                        for version in due:
                            self._take_snapshot(tx, aggregate_id, version, recorded_text)
                except StoreError as e:
                    warnings.warn(
                        f"no snapshot of {aggregate_id} at version {due[-1]}: {e}",
                        RuntimeWarning,
                        stacklevel=3,
                    )
        return [self._upcast(event) for event in recorded]

    def _append(
        self,
        tx: WriteTransaction,
        batch: list[NewEvent],
        prepared: list[_Prepared],
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
                for new, p in zip(batch, prepared, strict=True):
                    if not same_content(
                        stored[p.event_id], new, aggregate_id, aggregate_type, p.occurred
                    ):
                        raise DuplicateEventError(
                            p.event_id, "is stored already with other content"
                        )
                return [self._upcast(stored[i]) for i in ids]
        current_type: str | None = None
        current = 0
        if aggregate_id is not None:
            found = tx.aggregate(aggregate_id)
            if found is not None:
                current_type, current = found
                if aggregate_type is not None and aggregate_type != current_type:
                    raise ValidationError(
                        f"{aggregate_id} has aggregate type {current_type!r}, not "
                        f"{aggregate_type!r}; an aggregate keeps its type"
                    )
                aggregate_type = current_type
            expected = 0 if expected_version is NO_STREAM else expected_version
            if expected is not ANY and expected != current:
                raise ConcurrencyError(aggregate_id, expected_version, current)
        if not batch:
            return []
        head = tx.head()
        now = require_aware(self._clock(), "clock()")
        if head.recorded_at is not None:
            # The clock may step back; "as of T" must stay a prefix of the log.
            now = max(now, parse_time(head.recorded_at))
        recorded_text = format_time(now)
        prev_hash = head.hash
        rows: list[Row] = []
        recorded: list[RecordedEvent] = []
        for offset, (
            new,
            (event_id, data, metadata, occurred, data_obj, meta_obj, data_hash),
        ) in enumerate(zip(batch, prepared, strict=True)):
            position = head.position + offset + 1
            version = current + offset + 1 if aggregate_id is not None else None
            occurred_text = occurred or recorded_text
            event_hash = chain_hash(
                prev_hash,
                position=position,
                event_id=event_id,
                aggregate_id=aggregate_id,
                aggregate_type=aggregate_type,
                version=version,
                type=new.type,
                schema_version=new.schema_version,
                data_hash=data_hash,
                metadata=meta_obj,
                occurred_at=occurred_text,
                recorded_at=recorded_text,
            )
            prev_hash = event_hash
            rows.append(
                (
                    position,
                    event_id,
                    aggregate_id,
                    aggregate_type,
                    version,
                    new.type,
                    new.schema_version,
                    data,
                    metadata,
                    occurred_text,
                    recorded_text,
                    data_hash,
                    event_hash,
                )
            )
            recorded.append(
                recorded_event(
                    position,
                    event_id,
                    aggregate_id,
                    aggregate_type,
                    version,
                    new.type,
                    new.schema_version,
                    data_obj,
                    meta_obj,
                    now if occurred is None else parse_time(occurred_text),
                    now,
                    event_hash,
                )
            )
        info = None
        if aggregate_id is not None:
            # On an existing aggregate the backend keeps its first position and
            # creation time; these two values only matter for a new one.
            info = AggregateInfo(
                aggregate_id,
                aggregate_type,
                current + len(batch),
                head.position + 1,
                head.position + len(batch),
                now,
                now,
            )
        tx.insert(rows, info)
        if info is not None and self.snapshot_every:
            # The insert's own errors must not be taken for a snapshot's.
            tx.flush()
            every = self.snapshot_every
            for version in range((current // every + 1) * every, info.version + 1, every):
                self._take_snapshot(tx, aggregate_id, version, recorded_text)  # type: ignore[arg-type]
        return [self._upcast(event) for event in recorded]

    def _take_snapshot(
        self, tx: WriteTransaction, aggregate_id: str, version: int, created_at: str
    ) -> None:
        # A snapshot is a cache: a reducer that fails, or builds a state that is
        # not JSON, must not refuse the append. state_at will say what is wrong.
        try:
            snapshot = self._fold(aggregate_id, version, committed=False)
            tx.save_snapshot(snapshot, self._fingerprint, created_at)
        except (ReducerError, ValidationError) as e:
            warnings.warn(
                f"no snapshot of {aggregate_id} at version {version}: {e}",
                RuntimeWarning,
                stacklevel=4,
            )

    def snapshot(self, aggregate_id: str) -> AggregateState:
        """Store a snapshot of the aggregate at its current version and return it."""
        if self.readonly:
            raise ReadOnlyError(f"{self._label} is open read-only; snapshots are refused")
        with self._lock, self._backend.write() as tx:
            info = self._backend.aggregate(aggregate_id)
            if info is None:
                raise NotFoundError(f"no aggregate {aggregate_id!r} in {self._label}")
            snapshot = self._fold(aggregate_id, info.version)
            tx.save_snapshot(snapshot, self._fingerprint, format_time(datetime.now(UTC)))
            return AggregateState(
                aggregate_id,
                info.aggregate_type,
                info.version,
                info.last_position,
                info.updated_at,
                snapshot.state,
            )

    # -- reading -------------------------------------------------------------

    def head(self) -> int:
        """The last position, 0 when the store is empty."""
        return self._call(self._backend.head)

    def _query(
        self,
        from_position: int | None,
        aggregate_id: str | None,
        aggregate_type: str | None,
        types: Iterable[str] | None,
        since: datetime | None,
        until: datetime | None,
        backwards: bool,
    ) -> Query | None:
        """Turn read filters into a Query, or None when nothing can match."""
        if from_position is not None:
            check_int(from_position, "from_position")
        check_name(aggregate_id, "aggregate_id")
        check_name(aggregate_type, "aggregate_type")
        type_tuple: tuple[str, ...] | None = None
        if types is not None:
            type_tuple = check_types(types)
            if not type_tuple:
                return None
        lo, hi = 1, None
        if from_position is not None:
            if backwards:
                hi = from_position
            else:
                lo = max(1, from_position)
        if since is not None:
            first = self._backend.first_position_since(format_time(require_aware(since, "since")))
            if first is None:
                return None
            lo = max(lo, first)
        if until is not None:
            last = self._backend.last_position_until(format_time(require_aware(until, "until")))
            hi = last if hi is None else min(hi, last)
        if hi is not None and hi < lo:
            return None
        return Query(lo, hi, aggregate_id, aggregate_type, type_tuple)

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
        if limit is not None:
            check_int(limit, "limit")
        query = self._call(
            lambda: self._query(
                from_position, aggregate_id, aggregate_type, types, since, until, backwards
            )
        )
        return self._read(query, limit, backwards)

    def _read(
        self, query: Query | None, limit: int | None, backwards: bool
    ) -> Iterator[RecordedEvent]:
        pages = self._pages(
            self._backend.page, query, limit, backwards, PAGE, _event_position, _event_cursor
        )
        events: Iterator[RecordedEvent] = itertools.chain.from_iterable(pages)
        if self.upcasters:
            events = map(self._upcast, events)
        yield from events

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
        if limit is not None:
            check_int(limit, "limit")
        check_int(page_size, "page_size", minimum=1)
        query = self._call(
            lambda: self._query(
                from_position, aggregate_id, aggregate_type, types, since, until, backwards
            )
        )
        pages = self._pages(
            self._backend.page_rows, query, limit, backwards, page_size, _row_position,
            _row_cursor,
        )  # fmt: skip
        if not self.upcasters:
            return pages
        return ([self._upcast_row(row) for row in page] for page in pages)

    def _pages(
        self,
        fetch: Callable[[Query, str | None, int | None, bool, int], list[T]],
        query: Query | None,
        limit: int | None,
        backwards: bool,
        page_size: int,
        position: Callable[[T], int],
        cursor: Callable[[T, bool], int | None],
    ) -> Iterator[list[T]]:
        """Pages of a read, at most ``limit`` items in all."""
        if query is None or limit == 0:
            return
        if query.types is not None and len(query.types) > 1 and query.aggregate_id is None:
            # One keyset scan per type over its (type, position) index, merged:
            # no scan ever sorts more than a page.
            key = (lambda item: -position(item)) if backwards else position
            merged: Iterator[T] = heapq.merge(
                *(
                    itertools.chain.from_iterable(
                        self._scan(fetch, query, t, backwards, limit, page_size, cursor)
                    )
                    for t in query.types
                ),
                key=key,
            )
            if limit is not None:
                merged = itertools.islice(merged, limit)
            while page := list(itertools.islice(merged, page_size)):
                yield page
            return
        only = query.types[0] if query.types and query.aggregate_id is None else None
        left = limit
        for page in self._scan(fetch, query, only, backwards, limit, page_size, cursor):
            if left is not None:
                page = page[:left]
                left -= len(page)
            yield page
            if left == 0:
                return

    def _scan(
        self,
        fetch: Callable[[Query, str | None, int | None, bool, int], list[T]],
        query: Query,
        type_: str | None,
        backwards: bool,
        limit: int | None,
        page_size: int,
        cursor: Callable[[T, bool], int | None],
    ) -> Iterator[list[T]]:
        size = page_size if limit is None else max(1, min(page_size, limit))
        after: int | None = None
        while True:
            page = self._call(fetch, query, type_, after, backwards, size)
            if page:
                yield page
            if len(page) < size:
                return
            after = cursor(page[-1], query.aggregate_id is not None)
            size = page_size

    def _upcast_row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        version, data = self.upcasters.upcast(row[5], row[6], loads_stored(row[7]))
        if version == row[6]:
            return row
        return (*row[:6], version, encode_object(data, f"upcast {row[5]} data"), *row[8:])

    def _upcast(self, event: RecordedEvent) -> RecordedEvent:
        if not self.upcasters:
            return event
        try:
            version, data = self.upcasters.upcast(event.type, event.schema_version, event.data)
        except Exception as e:
            raise _reducer_error(event, e) from e
        if version == event.schema_version:
            return event
        return replace(event, schema_version=version, data=data)

    def count(
        self,
        aggregate_id: str | None = None,
        aggregate_type: str | None = None,
        types: Iterable[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many events ``read`` would yield with these filters."""

        def run() -> int:
            query = self._query(None, aggregate_id, aggregate_type, types, since, until, False)
            if query is None:
                return 0
            if query == Query(1, None):
                return self._backend.head()  # positions are gapless
            return self._backend.count(query)

        return self._call(run)

    def get(self, position: int) -> RecordedEvent:
        """The event at ``position``."""
        check_int(position, "position")
        for event in self.read(from_position=position, limit=1):
            if event.position == position:
                return event
        raise NotFoundError(f"no event at position {position} in {self._label}")

    def stream(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[RecordedEvent]:
        """One aggregate's events from ``from_version`` to ``to_version`` (inclusive)."""
        check_name(aggregate_id, "aggregate_id", optional=False)
        check_int(from_version, "from_version")
        if to_version is not None:
            check_int(to_version, "to_version")
        return self._stream(aggregate_id, from_version, to_version)

    def _stream(
        self, aggregate_id: str, from_version: int, to_version: int | None
    ) -> Iterator[RecordedEvent]:
        query = Query(1, None, aggregate_id)
        after = max(0, from_version - 1)
        while True:
            # Fetch no more than the versions still wanted (a fold from a nearby
            # snapshot often needs only a few).
            size = PAGE if to_version is None else max(1, min(PAGE, to_version - after))
            page = self._call(self._backend.page, query, None, after, False, size)
            for event in page:
                assert event.version is not None
                if to_version is not None and event.version > to_version:
                    return
                yield self._upcast(event)
            if len(page) < size:
                return
            after = page[-1].version or 0
            if to_version is not None and after >= to_version:
                return

    def aggregate(self, aggregate_id: str) -> AggregateInfo:
        """One aggregate's facts; :class:`NotFoundError` when it has no events."""
        check_name(aggregate_id, "aggregate_id", optional=False)
        info = self._call(self._backend.aggregate, aggregate_id)
        if info is None:
            raise NotFoundError(f"no aggregate {aggregate_id!r} in {self._label}")
        return info

    def aggregates(self, aggregate_type: str | None = None) -> Iterator[AggregateInfo]:
        """Every aggregate (of one type), ordered by id, from the aggregates table."""
        after: str | None = None
        while True:
            page = self._call(self._backend.aggregates, aggregate_type, after, PAGE)
            yield from page
            if len(page) < PAGE:
                return
            after = page[-1].aggregate_id

    def aggregate_types(self) -> dict[str | None, int]:
        """Number of aggregates per aggregate type."""
        return self._call(self._backend.aggregate_types)

    def event_types(self) -> dict[str, int]:
        """Number of events per event type, sorted by type.

        The log is append-only, so the counts are kept and later calls count
        only the events appended since (the first call on a large store reads
        the whole type index once).
        """

        def run() -> dict[str, int]:
            head = self._backend.head()
            seen, counts = self._type_counts
            if head != seen:
                if head < seen:  # a different database behind the same path
                    seen, counts = 0, {}
                counts = dict(counts)
                for name, count in self._backend.event_types(seen, head).items():
                    counts[name] = counts.get(name, 0) + count
                if self._writer is None:  # never keep counts of uncommitted events
                    self._type_counts = (head, counts)
            return dict(sorted(counts.items()))

        return self._call(run)

    def position_at(self, at: datetime) -> int:
        """The last position recorded at or before ``at``; 0 if none."""
        moment = format_time(require_aware(at, "at"))
        return self._call(self._backend.last_position_until, moment)

    def info(self) -> dict[str, Any]:
        """Facts about the database (backend, file size) for ``sss stats``."""
        return self._call(self._backend.info)

    # -- replay --------------------------------------------------------------

    def _fold(self, aggregate_id: str, version: int, *, committed: bool = True) -> Snapshot:
        """The state after ``version``, from the nearest stored snapshot or
        in-memory checkpoint. ``committed=False`` (inside an append) keeps the
        fold out of the checkpoints: its events may yet be rolled back."""
        fingerprint = self._fingerprint
        start = self._backend.snapshot(aggregate_id, fingerprint, version)
        cached = self._states.nearest(fingerprint, aggregate_id, version)
        if cached is not None and (start is None or cached.version > start.version):
            start = cached
        state: dict[str, Any] = start.state if start else {}
        position = start.position if start else 0
        done = start.version if start else 0
        recorded_at = start.recorded_at if start else None
        if done < version:
            apply = self.reducers.apply
            every = self._states.every
            checkpoint = committed and self._writer is None
            for event in self._stream(aggregate_id, done + 1, version):
                try:
                    state = apply(state, event)
                except Exception as e:
                    raise _reducer_error(event, e) from e
                position = event.position
                done = event.version or done
                recorded_at = event.recorded_at
                if checkpoint and (done % every == 0 or done == version):
                    self._states.put(fingerprint, aggregate_id, done, position, recorded_at, state)
        return Snapshot(aggregate_id, done, position, state, recorded_at)

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
        given = [
            name
            for name, value in (("version", version), ("position", position), ("at", at))
            if value is not None
        ]
        if len(given) > 1:
            raise ValidationError(
                f"give at most one of version, position, at (got {', '.join(given)})"
            )
        for name, value in (("version", version), ("position", position)):
            if value is not None:
                check_int(value, name)
        moment = None if at is None else format_time(require_aware(at, "at"))
        info = self.aggregate(aggregate_id)

        def run() -> AggregateState:
            if version is not None:
                if version > info.version:
                    raise NotFoundError(
                        f"{aggregate_id} has {info.version} versions; there is no version {version}"
                    )
                target = version
            elif position is not None:
                target = self._backend.version_at(aggregate_id, position)
            elif moment is not None:
                target = self._backend.version_at(
                    aggregate_id, self._backend.last_position_until(moment)
                )
            else:
                target = info.version
            if target == 0:
                return AggregateState(aggregate_id, info.aggregate_type, 0, 0, None, {})
            snap = self._fold(aggregate_id, target)
            recorded = snap.recorded_at
            if recorded is None and target == info.version:
                recorded = info.updated_at
            if recorded is None:
                event = self._backend.page(Query(1, None, aggregate_id), None, target - 1, False, 1)
                recorded = event[0].recorded_at if event else None
            return AggregateState(
                aggregate_id, info.aggregate_type, snap.version, snap.position, recorded, snap.state
            )

        return self._call(run)

    def history(
        self, aggregate_id: str, from_version: int = 1, to_version: int | None = None
    ) -> Iterator[Step]:
        """Each step of an aggregate's history: event, state before and after,
        and the fields it changed."""
        check_int(from_version, "from_version", minimum=1)
        if to_version is not None:
            check_int(to_version, "to_version")
        before = self.state_at(aggregate_id, version=from_version - 1).state
        return self._history(aggregate_id, before, from_version, to_version)

    def _history(
        self, aggregate_id: str, before: dict[str, Any], from_version: int, to_version: int | None
    ) -> Iterator[Step]:
        # The default reducer never changes its input; a user's may, so give it a copy.
        protect = not self.reducers.copy_free
        apply = self.reducers.apply
        for event in self._stream(aggregate_id, from_version, to_version):
            try:
                after = apply(copy.deepcopy(before) if protect else before, event)
            except Exception as e:
                raise _reducer_error(event, e) from e
            yield Step(event, before, after, diff(before, after))
            before = after

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

    def verify(self, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Walk the hash chain and the position and version sequences.

        Returns a :class:`VerifyReport` naming the first bad position and why.
        ``progress(checked, head)`` is called after each page.
        """
        verifier = ChainVerifier()
        # The walk stops at the head as it is now; writers may go on meanwhile.
        head = self.head()
        while verifier.next_position <= head:
            rows = self._call(self._backend.chain_page, verifier.next_position - 1, PAGE)
            rows = [row for row in rows if row[0] <= head]
            if not verifier.feed(rows) or not rows:
                break
            if progress is not None:
                progress(verifier.checked, head)
        report = verifier.finish(self.aggregates())
        if report.ok:
            problem = self._verify_snapshots()
            if problem is not None:
                return replace(report, ok=False, first_bad_position=problem[0], reason=problem[1])
        return report

    def _verify_snapshots(self) -> tuple[int | None, str] | None:
        """Re-fold every aggregate that has snapshots this store would use and
        compare: a snapshot is a cache, but one that lies changes state_at."""
        fingerprint = self._fingerprint
        by_aggregate: dict[str, list[Snapshot]] = {}
        for snapshot in self._call(self._backend.snapshots, fingerprint):
            by_aggregate.setdefault(snapshot.aggregate_id, []).append(snapshot)
        for aggregate_id, snapshots in by_aggregate.items():
            wanted = {s.version: s for s in snapshots}
            state: dict[str, Any] = {}
            for event in self._stream(aggregate_id, 1, max(wanted)):
                try:
                    state = self.reducers.apply(state, event)
                except Exception as e:
                    return event.position, str(_reducer_error(event, e))
                taken = wanted.get(event.version or 0)
                if taken is not None and (taken.state != state or taken.position != event.position):
                    return taken.position, (
                        f"the snapshot of {aggregate_id} at version {taken.version} "
                        "differs from its events"
                    )
        return None

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
        if from_position is not None:
            check_int(from_position, "from_position", minimum=1)
        start = from_position if from_position is not None else self.head() + 1
        return self._follow(start, poll_interval, stop or threading.Event())

    def _follow(
        self, start: int, poll_interval: float, stop: threading.Event
    ) -> Iterator[RecordedEvent]:
        position = start
        token = self._call(self._backend.change_token)
        while not stop.is_set():
            if self._writer == threading.get_ident():
                raise StoreError(
                    "follow() cannot run inside a transaction of its own thread: it would "
                    "see events that are not committed"
                )
            got = False
            for event in self.read(from_position=position, limit=PAGE):
                yield event
                position = event.position + 1
                got = True
                if stop.is_set():
                    return
            if got:
                continue
            while not stop.is_set():
                new_token = self._call(self._backend.change_token)
                if new_token != token or self.head() >= position:
                    token = new_token
                    break
                self._backend.wait_for_change(token, poll_interval, stop)

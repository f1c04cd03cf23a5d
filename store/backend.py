"""The boundary between the store's logic and a database.

:class:`~store.eventstore.EventStore` owns every rule (validation, idempotency,
optimistic concurrency, the hash chain, replay); a :class:`Backend` only moves
rows, except that a server backend may also take a whole append in one call
(:meth:`Backend.append_direct`), restating the append rules under its lock.
Everything SQLite-specific lives in :mod:`store.sqlite`, everything
PostgreSQL-specific in :mod:`store.postgres`; the SQL both share is
:mod:`store.sql`.

Who calls it: only the store's own modules (:mod:`store.appending`,
:mod:`store.paging`, :mod:`store.replay`, :mod:`store.verifying`,
:mod:`store.following`, :mod:`store.copying`), through
:class:`store._core.StoreCore`. What they use is declared here: the
attributes ``location``, ``display``, ``readonly`` and ``appends_direct``, and
the methods below; nothing else of a backend is reached from outside it.

The one thing a backend must guarantee for gapless positions and a correct hash
chain is in :meth:`Backend.write`: while a write transaction is open no other
writer can read the head or commit, so positions are handed out in commit
order (SQLite: ``BEGIN IMMEDIATE`` takes the single write lock; a server
database: lock a one-row head table with ``SELECT ... FOR UPDATE``).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .counting import KeptCount
from .errors import StoreError
from .models import AggregateInfo, ReadStatement, RecordedEvent

__all__ = [
    "Backend",
    "ChainRow",
    "DirectResult",
    "DirectRow",
    "Head",
    "Query",
    "Row",
    "Snapshot",
    "WriteTransaction",
]


@dataclass(frozen=True, slots=True)
class Query:
    """A read's filters, with the time range already turned into positions
    (``recorded_at`` never decreases as ``position`` grows)."""

    lo: int
    hi: int | None
    aggregate_id: str | None = None
    aggregate_type: str | None = None
    types: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class Head:
    position: int
    hash: str
    recorded_at: str | None


@dataclass(frozen=True, slots=True)
class Snapshot:
    aggregate_id: str
    version: int
    position: int
    state: dict[str, Any]
    recorded_at: datetime | None = None


Row = tuple[Any, ...]
"""An event row to insert, in this column order: position, event_id,
aggregate_id, aggregate_type, version, type, schema_version, data (text),
metadata (text), occurred_at (text), recorded_at (text), data_hash, hash."""

ChainRow = tuple[
    int, str, "str | None", "str | None", "int | None", str, int, str, str, str, str, str, str,
    "int | None",
]  # fmt: skip
"""A stored row as :meth:`Backend.chain_page` gives it, in the order of
:data:`Row` and then ``erased_by`` (the receipt's position, None when the
payload is not erased), with data and metadata as stored text and times as
ISO text."""


DirectRow = tuple[str, str, int, str, str, "str | None", str, str]
"""An event for :meth:`Backend.append_direct`: event_id, type, schema_version,
data (text), metadata (text), occurred_at (text, None for "when recorded"),
data_hash, and the middle of its hash body (:func:`store.codec.chain_middle`)."""


@dataclass(frozen=True, slots=True)
class DirectResult:
    """What :meth:`Backend.append_direct` did.

    ``status`` is ``"ok"`` (stored: the batch starts at ``first_position``, the
    aggregate was at ``version`` before it, and ``hashes`` are the events'
    hashes), ``"conflict"`` (nothing stored: the aggregate is at ``version``)
    or ``"type"`` (nothing stored: the aggregate has type ``aggregate_type``).
    """

    status: str
    first_position: int
    version: int
    aggregate_type: str | None
    recorded_at: str
    hashes: list[str]


class WriteTransaction(abc.ABC):
    """What an append may do while it holds the write lock."""

    @abc.abstractmethod
    def head(self) -> Head:
        """The last event's position, hash and recorded time (position 0 when empty)."""

    @abc.abstractmethod
    def aggregate(self, aggregate_id: str) -> tuple[str | None, int] | None:
        """The aggregate's type and version, or None when it has no events."""

    @abc.abstractmethod
    def find_events(self, event_ids: Sequence[str]) -> list[RecordedEvent]:
        """The stored events among these ids (in any order)."""

    @abc.abstractmethod
    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        """Insert the rows and create or update the aggregate's row (an existing
        row keeps its first_position and created_at)."""

    @abc.abstractmethod
    def save_snapshot(self, snapshot: Snapshot, fingerprint: str, created_at: str) -> None:
        """Store a snapshot (replacing one with the same key)."""

    def usable(self) -> bool:
        """False when the database has ended the transaction on its own (SQLite
        rolls back the whole transaction on some errors, such as a full disk):
        nothing more may be written in it. The default: always usable."""
        return True

    def data_hash(self, event_id: str) -> str | None:
        """The stored payload digest of an event (an erased event keeps it)."""
        raise StoreError("this backend cannot look up payload digests")

    def insert_copies(self, rows: Sequence[ChainRow]) -> None:
        """Insert rows copied from another store as they are (``erased_by``
        included); no aggregate rows, no snapshots."""
        raise StoreError("this backend cannot take copied rows")

    def erase(self, positions: Sequence[int], receipt: int, note: str) -> list[int]:
        """Replace the payloads at ``positions`` (those not erased already)
        by their erased form, naming the ``sss.Erased`` event at ``receipt``
        (appended in this transaction); drop the snapshots that carried
        them and replace the parked reasons and subscription failures
        recorded for those positions by ``note``. The positions erased."""
        raise StoreError("this backend cannot erase payloads")

    def flush(self) -> None:
        """Send whatever the backend holds back (to travel with COMMIT), so
        that its errors surface here. The default holds nothing back."""
        return None


class Backend(abc.ABC):
    """A database holding one event store.

    Reads made while :meth:`write` is open (a snapshot taken inside an append
    folds the rows just inserted) must see the transaction's uncommitted rows,
    so a pooled backend reads through the transaction's connection then.

    Thread-safety: a backend is used by one thread at a time; the EventStore
    serialises calls with its lock.
    """

    readonly: bool
    location: str
    display: str
    """The location as messages show it: a URL without its password."""
    appends_direct: bool = False
    """True when :meth:`append_direct` may take appends."""

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def write(self) -> AbstractContextManager[WriteTransaction]:
        """A write transaction holding the store's single write lock; nested
        calls join the outer transaction as a savepoint."""

    @abc.abstractmethod
    def head(self) -> int: ...

    @abc.abstractmethod
    def page(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        """One page of events in position order. ``type_`` narrows to one event
        type (the store merges several). With ``query.aggregate_id`` the keyset
        ``after`` is a version, otherwise a position; None starts at the end
        the direction begins from."""

    def keyset_start(self, query: Query, backwards: bool) -> int | None:
        """Where a first page starts its keyset: an aggregate's stream is paged
        by version, so a position bound becomes the version at it, rather than
        the stream being filtered from its first version. None: from the end
        the direction begins at."""
        if query.aggregate_id is None:
            return None
        if backwards and query.hi is not None:
            return self.version_at(query.aggregate_id, query.hi) + 1
        if not backwards and query.lo > 1:
            return self.version_at(query.aggregate_id, query.lo - 1)
        return None

    def read_statement(
        self, query: Query, limit: int | None, backwards: bool
    ) -> ReadStatement | None:
        """The whole read as one statement that another connection may run,
        or None where this backend offers none, or where another connection
        would not see what this one sees (a write transaction is open)."""
        return None

    def page_rows(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[tuple[Any, ...]]:
        """:meth:`page` as plain tuples in the schema's field order, with data and
        metadata as JSON text and times as ISO text. Backends override this to
        skip making objects; this default converts :meth:`page`'s events."""
        from .codec import encode_object, format_time

        return [
            (
                e.position,
                e.event_id,
                e.aggregate_id,
                e.aggregate_type,
                e.version,
                e.type,
                e.schema_version,
                encode_object(e.data, "data"),
                encode_object(e.metadata, "metadata"),
                format_time(e.occurred_at),
                format_time(e.recorded_at),
                e.hash,
            )
            for e in self.page(query, type_, after, backwards, limit)
        ]

    def payloads(self, aggregate_id: str, after_version: int, limit: int) -> list[tuple[int, str]]:
        """(version, data as stored JSON text) of an aggregate's events after
        ``after_version``, in version order, at most ``limit``: for scans that
        read only payloads (bisect), without building whole rows. This default
        narrows :meth:`page_rows`; backends override it with a narrow select."""
        rows = self.page_rows(Query(1, None, aggregate_id), None, after_version, False, limit)
        return [(row[4], row[7]) for row in rows]

    @abc.abstractmethod
    def count(self, query: Query) -> int: ...

    @abc.abstractmethod
    def first_position_since(self, since: str) -> int | None:
        """The first position whose recorded_at >= since."""

    @abc.abstractmethod
    def last_position_until(self, until: str) -> int:
        """The last position whose recorded_at <= until, 0 if none."""

    @abc.abstractmethod
    def aggregate(self, aggregate_id: str) -> AggregateInfo | None: ...

    @abc.abstractmethod
    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int
    ) -> list[AggregateInfo]:
        """A page of aggregates ordered by id (keyset ``after``)."""

    @abc.abstractmethod
    def aggregate_types(self) -> dict[str | None, int]: ...

    @abc.abstractmethod
    def event_types(self, after: int, upto: int) -> dict[str, int]:
        """Number of events per type among positions after ``after`` up to ``upto``."""

    @abc.abstractmethod
    def versions(
        self, after: tuple[str, int] | None, upto: int, limit: int
    ) -> list[tuple[str, int, int]]:
        """(aggregate_id, version, position) of the events up to position
        ``upto``, ordered by (aggregate_id, version), after that key: a walk
        of the version index for verify (Dialect.versions)."""

    @abc.abstractmethod
    def kept_counts(self) -> tuple[int, list[KeptCount]]:
        """The head and the counts kept as of it (store.counting), read together
        (one snapshot): what ``sss stats`` shows, at the same cost at any size."""

    @abc.abstractmethod
    def version_at(self, aggregate_id: str, position: int) -> int:
        """The aggregate's last version at or below ``position``, 0 if none."""

    @abc.abstractmethod
    def snapshot(self, aggregate_id: str, fingerprint: str, max_version: int) -> Snapshot | None:
        """The newest snapshot at or below ``max_version`` built with ``fingerprint``."""

    def snapshots(self, fingerprint: str) -> Iterable[Snapshot]:
        """Every snapshot built with ``fingerprint`` (for verification)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list snapshots")

    def snapshot_page(
        self, after: tuple[str, str, int] | None, limit: int
    ) -> list[tuple[str, Snapshot, str]]:
        """Stored snapshots of every fingerprint as (fingerprint, snapshot,
        created_at), ordered by (aggregate_id, fingerprint, version), after
        that key: for copying a store whole."""
        raise NotImplementedError(f"{type(self).__name__} cannot list snapshots")

    @abc.abstractmethod
    def chain_page(self, after: int, limit: int) -> list[ChainRow]:
        """Stored rows after a position, exactly as stored, for verification."""

    def scrub(self) -> str | None:
        """After an erasure committed: remove the old payload bytes from the
        database's files as far as the database allows (SQLite: a WAL
        checkpoint that truncates; PostgreSQL: VACUUM). What could not be
        done, as a sentence, or None."""
        return None

    def check_storage(self, full: bool) -> list[str]:
        """The database engine's own check of its files: pages, and with
        ``full`` every index against its table. Problems found, [] when none.
        The default knows no check."""
        return []

    @abc.abstractmethod
    def change_token(self) -> int:
        """A cheap value that changes when another connection commits."""

    def wait_for_change(self, token: int, timeout: float, stop: threading.Event) -> None:
        """Block up to ``timeout`` seconds, or until ``stop`` is set, for a commit
        by anyone. Called without the store's lock held, so a backend that
        blocks on notifications must use a connection of its own. The default
        just sleeps: the caller polls :meth:`change_token` between waits."""
        stop.wait(timeout)

    def append_direct(
        self,
        rows: Sequence[DirectRow],
        aggregate_id: str | None,
        aggregate_type: str | None,
        expected: int | None,
        recorded_at: str,
        joined: bool = False,
    ) -> DirectResult | None:
        """Optionally, a whole append in one call: for a server database, where
        the round trips of :meth:`write` are held under the write lock and bound
        throughput. The backend then applies the rules of
        :meth:`EventStore.append <store.eventstore.EventStore.append>` itself,
        under the same lock: check ``expected`` (None: any version) and the
        aggregate's type, clamp ``recorded_at`` to the head's, build the hash
        chain, write. None means "take the general path through write()": the
        backend cannot do this, or an event id of the batch is stored already
        (idempotency is decided there). With ``joined`` the call runs inside
        the open write transaction (a group commit's) instead of one of its
        own. The default returns None."""
        return None

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        """Stored Merkle subtree hashes (hex) by (level, index), of those asked
        for; derived data (:mod:`store.tree`). The default stores none."""
        return {}

    def tree_filled(self, level: int) -> int:
        """One more than the highest index stored at ``level``, 0 if none."""
        return 0

    def save_tree_nodes(self, nodes: Sequence[tuple[int, int, str]]) -> bool:
        """Store (level, index, hash) rows that are not stored yet, in a write
        transaction of their own (creating their table when missing); False
        when they cannot be stored (read-only, no right): they are then kept
        in memory only. The default stores nothing."""
        return False

    def info(self) -> dict[str, Any]:
        """Facts about the database for ``sss stats`` (file size, engine version) and
        ``store_id``, the id the store was given when it was created."""
        return {}

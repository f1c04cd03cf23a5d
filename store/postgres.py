"""The PostgreSQL backend: the one place that opens PostgreSQL connections.
Its schema, session settings and the translation of ``psycopg`` errors (in
one function) live in :mod:`store._pgschema`.

A store lives in one schema (the first of the connection's ``search_path``,
``public`` unless the URL says otherwise, e.g.
``postgresql://host/db?options=-csearch_path%3Dsss``): tables ``events``,
``aggregates``, ``snapshots``, ``sss_meta`` and the one-row ``sss_head``.

Gapless positions in commit order:
    Every append locks the single ``sss_head`` row with ``SELECT ... FOR
    UPDATE`` and updates it (position, hash, recorded_at of the new last
    event) inside the same transaction, so the row lock is held until COMMIT.
    A second writer blocks on the row until the first has committed (or
    rolled back) and then reads the head *it* wrote: the transactions run at
    READ COMMITTED, where a row lock wait re-reads the newest committed row
    version. So position N+1 is handed out only after the transaction holding
    N has committed, and PostgreSQL makes a commit visible before it releases
    its locks: no snapshot can contain N+1 without N, and a reader that
    follows the log by position never skips an event. The hash chain is built
    under the same lock, so it stays a chain. The UNIQUE constraints on
    ``event_id`` and ``(aggregate_id, version)`` back this up for anything that
    writes around the lock.

    A plain append runs as one statement, ``sss_append_1`` (a PL/pgSQL
    function installed in the store's schema, see :mod:`store._pgschema`), in
    a transaction of its own: the server takes the lock, checks the
    aggregate's type and version, builds the chain, writes and commits, and
    the lock is never held across a round trip or while a client process
    waits for a CPU. That is
    what lets many writers add up to more than one. The client sends each
    event's text and the part of its hash body that needs no head
    (:func:`store.codec.chain_middle`); the client-side verifier checks what
    the server built.

    Appends inside :meth:`EventStore.transaction
    <store.eventstore.EventStore.transaction>`, and appends whose event ids are
    stored already (the idempotency decision), take the general path through
    :meth:`PostgresBackend.write`: there the lock is taken by
    :meth:`WriteTransaction.head` at the latest; because
    :class:`~store.eventstore.EventStore` looks up event ids and the
    aggregate's version before it asks for the head, the first read of a
    write transaction takes it, so those reads are current too and ``ANY``
    appends never fail spuriously. The rows, the aggregate and head rows and
    the NOTIFY go in as one statement that travels with COMMIT: three round
    trips under the lock (lock and id lookup, version lookup, write and
    commit).

Exact hashes:
    ``data`` and ``metadata`` are stored in ``json`` columns, which keep the
    text exactly as written (and can still be queried with ``->``/``->>`` or
    cast to ``jsonb``). ``jsonb`` would not do: it rewrites numbers (Python
    writes ``1e+16``, jsonb gives back ``10000000000000000``, an int where
    Python read a float), which changes the canonical form the hash covers,
    and it cannot hold ``\u0000`` in a string at all. Times are ``timestamptz``
    (microsecond resolution, like the store's ISO text), always handed back
    formatted with :func:`store.codec.format_time`, so the chain sees the very
    text the store hashed.

Live tail:
    Each append sends ``NOTIFY`` on a channel named after the schema in its
    own transaction (delivered at commit); :meth:`PostgresBackend.wait_for_change`
    LISTENs on a dedicated connection and falls back to sleeping (the caller
    polls the head) whenever that connection is unavailable.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import errors as pgerrors
from psycopg import pq, sql
from psycopg_pool import ConnectionPool

from ._pgschema import (
    AGGREGATE_COLUMNS,
    AGGREGATE_VERSION,
    CHAIN_COLUMNS,
    COLUMNS,
    FIND_EVENTS,
    INSERT_EVENTS,
    LOCK_HEAD,
    ROW_KEYS,
    TEXT_COLUMNS,
    UPSERT_AGGREGATE,
    Conn,
    append_call,
    connection_info,
    ensure_append_function,
    ensure_schema,
    ensure_subscriptions,
    redact,
    translated,
)
from .backend import (
    Backend,
    ChainRow,
    DirectResult,
    DirectRow,
    Head,
    Query,
    Row,
    Snapshot,
    WriteTransaction,
)
from .codec import encode_object, format_time, loads, loads_stored, parse_time
from .errors import CorruptStoreError, ReadOnlyError, StoreError, ValidationError
from .models import AggregateInfo, RecordedEvent

__all__ = ["PostgresBackend", "redact"]

T = TypeVar("T")


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _event(row: tuple[Any, ...]) -> RecordedEvent:
    return RecordedEvent(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        loads_stored(row[7]),
        loads_stored(row[8]),
        _utc(row[9]),
        _utc(row[10]),
        row[11],
    )


def _aggregate(row: tuple[Any, ...]) -> AggregateInfo:
    return AggregateInfo(row[0], row[1], row[2], row[3], row[4], _utc(row[5]), _utc(row[6]))


class _PostgresWrite(WriteTransaction):
    def __init__(self, backend: PostgresBackend, conn: Conn) -> None:
        self.backend = backend
        self.conn = conn

    def _lock(self) -> Head:
        """Take the head row lock (once per transaction) and return the head."""
        self.backend._flush()
        if self.backend._head is None:
            with translated(self.backend.display):
                self._locked(self.conn.execute(LOCK_HEAD).fetchone())
        assert self.backend._head is not None
        return self.backend._head

    def _locked(self, row: tuple[Any, ...] | None) -> None:
        if row is None:
            raise CorruptStoreError(f"{self.backend.display} has lost its sss_head row")
        self.backend._head = Head(row[0], row[1], _iso(row[2]))

    def head(self) -> Head:
        return self._lock()

    def aggregate(self, aggregate_id: str) -> tuple[str | None, int] | None:
        self._lock()
        with translated(self.backend.display):
            row = self.conn.execute(AGGREGATE_VERSION, (aggregate_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def find_events(self, event_ids: Sequence[str]) -> list[RecordedEvent]:
        find = FIND_EVENTS
        ids = ",".join(event_ids)
        with translated(self.backend.display):
            if self.backend._head is None:
                # One round trip: the server runs the lookup after the lock is
                # granted, so it sees every append committed before ours.
                with self.conn.pipeline():
                    lock = self.conn.execute(LOCK_HEAD)
                    found = self.conn.execute(find, (ids,))
                self._locked(lock.fetchone())
            else:
                found = self.conn.execute(find, (ids,))
            return [_event(row) for row in found.fetchall()]

    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        self._lock()
        # One statement does it all: the rows, the aggregate's row, the head
        # row and the notification (delivered at COMMIT, never for a
        # rolled-back append). It travels with COMMIT in one round trip unless
        # the transaction does something else first (PostgresBackend._flush).
        # The rows go in as one JSON text that json_to_recordset unpacks on
        # the server: as cheap for the client as COPY, without COPY's two
        # round trips under the lock; their ISO times and JSON texts arrive
        # as strings and come out as the very same text.
        parts: list[str] = []
        params: list[Any] = []
        tail = "SELECT 1"
        if rows:
            try:
                payload = orjson.dumps([dict(zip(ROW_KEYS, row, strict=True)) for row in rows])
            except TypeError as e:  # text that is not valid Unicode
                raise ValidationError(
                    f"text that is not valid Unicode cannot be stored: {e}"
                ) from e
            parts.append(INSERT_EVENTS)
            params.append(payload.decode())
        if aggregate is not None:
            parts.append(UPSERT_AGGREGATE)
            params += [
                aggregate.aggregate_id,
                aggregate.aggregate_type,
                aggregate.version,
                aggregate.first_position,
                aggregate.last_position,
                aggregate.created_at,
                aggregate.updated_at,
            ]
        if rows:
            last = rows[-1]
            parts.append(
                "h AS (UPDATE sss_head SET position = %s, hash = %s, "
                "recorded_at = %s::timestamptz RETURNING position)"
            )
            params += [last[0], last[12], last[10]]
            tail = "SELECT pg_notify(%s, position::text) FROM h"
            params.append(self.backend.channel)
            self.backend._head = Head(last[0], last[12], last[10])
        if parts:
            self.backend._deferred = (f"WITH {', '.join(parts)} {tail}", params)

    def flush(self) -> None:
        self.backend._flush()

    def save_snapshot(self, snapshot: Snapshot, fingerprint: str, created_at: str) -> None:
        self.backend._flush()
        with translated(self.backend.display):
            self.conn.execute(
                "INSERT INTO snapshots VALUES (%s, %s, %s, %s, %s::json, %s) "
                "ON CONFLICT (aggregate_id, fingerprint, version) DO UPDATE SET "
                "position = excluded.position, state = excluded.state, "
                "created_at = excluded.created_at",
                (
                    snapshot.aggregate_id,
                    fingerprint,
                    snapshot.version,
                    snapshot.position,
                    encode_object(snapshot.state, "snapshot state"),
                    parse_time(created_at),
                ),
            )


class PostgresBackend(Backend):
    """An event store in a PostgreSQL schema.

    Args:
        location: a ``postgresql://`` URL (libpq syntax; ``options`` may set the
            ``search_path`` to pick the schema). The schema's tables are
            created when missing, unless read-only.
        readonly: every connection runs with ``default_transaction_read_only``,
            so PostgreSQL itself refuses writes.
        timeout: seconds to wait for the write lock (``lock_timeout``) or for a
            connection before failing.

    Connections come from a small pool (the store uses one at a time), so a
    connection the server dropped is replaced and the next call succeeds.

    Thread-safety: as for every backend, one thread at a time (the EventStore
    serialises calls); :meth:`wait_for_change` uses its own connection.
    """

    def __init__(self, location: str, *, readonly: bool = False, timeout: float = 5.0) -> None:
        self.location = location
        self.readonly = readonly
        self.display = redact(location)
        self._timeout = timeout
        self._conn: Conn | None = None
        self._depth = 0
        self._head: Head | None = None
        # The statement finishing an insert (aggregate row, head row, NOTIFY),
        # held back to travel with COMMIT: one round trip less under the lock.
        self._deferred: tuple[str, list[Any]] | None = None
        # The error of a held-back statement, which fails the transaction even
        # when the caller caught it.
        self._failed: BaseException | None = None
        self._listener: Conn | None = None
        self._listen_lock = threading.Lock()
        self._closed = False
        self.conninfo = connection_info(location, readonly, timeout)
        # A direct first connection gives a precise error (refused, no such
        # database, bad password) at once, where the pool would only time out.
        with translated(self.display):
            with psycopg.connect(self.conninfo, autocommit=True) as conn:
                self.schema, self.database, self.server_version = ensure_schema(
                    conn, self.display, readonly
                )
                # Appends made by one server call (append_direct), when this
                # role may install the function.
                self.appends_direct = not readonly and ensure_append_function(conn, self.schema)
                if not readonly:
                    ensure_subscriptions(conn, self.schema)
            self.channel = "sss_" + hashlib.sha256(self.schema.encode()).hexdigest()[:24]
            self._append_sql = append_call(self.schema)
            self._pool: ConnectionPool[Conn] = ConnectionPool(
                self.conninfo,
                kwargs={"autocommit": True},
                min_size=1,
                max_size=2,
                timeout=max(timeout, 1.0),
                name=f"sss:{self.display}",
                open=False,
            )
            self._pool.open(wait=False)

    def close(self) -> None:
        self._closed = True
        self._pool.close(timeout=1.0)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    # -- connections -------------------------------------------------------

    def _flush(self) -> None:
        """Send the held-back statement: every later statement of the
        transaction must see its effects."""
        if self._deferred is not None and self._conn is not None:
            statement, params = self._deferred
            self._deferred = None
            try:
                with translated(self.display):
                    self._conn.execute(statement, params)
            except BaseException as e:
                # Whoever catches this, the transaction cannot commit now.
                self._failed = e
                raise

    def _run(self, fn: Callable[[Conn], T]) -> T:
        """Run a read on the write transaction's connection, or on a pooled one.

        A pooled connection the server has dropped (restart, terminated
        backend) fails its first statement; the pool is then checked and the
        read retried once, so an idle store survives lost connections."""
        if self._conn is not None:
            self._flush()
            with translated(self.display):
                return fn(self._conn)
        with translated(self.display):
            for attempt in (1, 2):
                conn = self._pool.getconn()
                try:
                    return fn(conn)
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.broken:
                        raise
                finally:
                    self._pool.putconn(conn)
                self._pool.check()
        raise AssertionError("unreachable")  # pragma: no cover

    def _begin(self) -> Conn:
        """A pooled connection inside BEGIN; retried like :meth:`_run` when the
        connection turns out to be dead (nothing has been written yet)."""
        for attempt in (1, 2):
            conn = self._pool.getconn()
            try:
                conn.execute("BEGIN")
                return conn
            except psycopg.OperationalError:
                self._pool.putconn(conn)
                if attempt == 2 or not conn.broken:
                    raise
            except BaseException:
                self._pool.putconn(conn)
                raise
            self._pool.check()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        if self.readonly:
            raise ReadOnlyError(f"{self.display} is open read-only; writes are refused")
        if self._conn is not None:
            conn = self._conn
            name = f"sss_{self._depth}"
            self._flush()
            with translated(self.display):
                conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield _PostgresWrite(self, conn)
                self._flush()  # its failure, too, goes with the savepoint
            except BaseException:
                self._deferred = None
                with translated(self.display):
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                self._failed = None  # the failure went with the savepoint
                # A lock taken inside the savepoint went with it; take it afresh.
                self._head = None
                raise
            else:
                with translated(self.display):
                    conn.execute(f"RELEASE SAVEPOINT {name}")
            finally:
                self._depth -= 1
            return
        with translated(self.display):
            conn = self._begin()
        self._conn, self._depth, self._head, self._deferred = conn, 1, None, None
        self._failed = None
        try:
            yield _PostgresWrite(self, conn)
            if self._failed is not None:
                raise self._failed
            if conn.info.transaction_status == pq.TransactionStatus.INERROR:
                raise StoreError(
                    f"{self.display}: a statement of this write failed; nothing was stored"
                )
            deferred, self._deferred = self._deferred, None
            with translated(self.display):
                if deferred is None:
                    conn.execute("COMMIT")
                else:
                    with conn.pipeline():
                        conn.execute(*deferred)
                        conn.execute("COMMIT")
        except BaseException:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()  # a broken connection rolls back on the server
            raise
        finally:
            self._conn, self._depth, self._head, self._deferred = None, 0, None, None
            self._failed = None
            self._pool.putconn(conn)

    def append_direct(
        self,
        rows: Sequence[DirectRow],
        aggregate_id: str | None,
        aggregate_type: str | None,
        expected: int | None,
        recorded_at: str,
    ) -> DirectResult | None:
        """The whole append as one statement (the ``sss_append_*`` function of
        :mod:`store._pgschema`), in its own transaction: the head row lock is
        held only while the server runs it and commits, never across a round
        trip or while the client computes.

        Declines (None, the general path takes the append): inside an open
        write transaction; on a store whose role could not install the
        function; for names holding NUL, which PostgreSQL text cannot hold
        (the general path decides which error comes first); and when the
        function turns out to be missing, not executable, or being replaced
        by another session: the failed call wrote nothing.

        A connection found dead is replaced and the call sent again: should
        the first attempt have committed, the event ids are stored and the
        retry declines, so the general path returns the stored events."""
        if not self.appends_direct or self._conn is not None:
            return None
        if "\x00" in (aggregate_id or "") or "\x00" in (aggregate_type or ""):
            return None
        if any("\x00" in r[1] for r in rows):
            return None
        try:
            keys = ("e", "t", "sv", "d", "m", "o", "dh", "x")
            payload = orjson.dumps([dict(zip(keys, r, strict=True)) for r in rows]).decode()
        except TypeError as e:  # text that is not valid Unicode
            raise ValidationError(f"text that is not valid Unicode cannot be stored: {e}") from e
        params = (
            payload,
            aggregate_id,
            aggregate_type,
            expected,
            parse_time(recorded_at),
            recorded_at,
            self.channel,
        )

        def call(conn: Conn) -> tuple[Any, ...] | psycopg.Error | None:
            try:
                return conn.execute(self._append_sql, params).fetchone()
            except (pgerrors.UndefinedFunction, pgerrors.InsufficientPrivilege) as e:
                self.appends_direct = False  # until the store is opened again
                return e
            except pgerrors.InternalError_ as e:  # the function is being replaced
                return e

        row = self._run(call)
        if row is None:  # pragma: no cover - the function always returns a row
            raise CorruptStoreError(f"{self.display}: the append function returned nothing")
        if isinstance(row, psycopg.Error):
            return None
        status, first, version, stored_type, recorded, hashes = row
        if status == "stored":
            return None
        return DirectResult(
            status, first or 0, version or 0, stored_type, recorded or "", hashes or []
        )

    # -- reads -------------------------------------------------------------

    def head(self) -> int:
        def run(conn: Conn) -> int:
            row = conn.execute("SELECT position FROM sss_head").fetchone()
            return 0 if row is None else int(row[0])

        return self._run(run)

    def _where(self, query: Query, type_: str | None) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.aggregate_id is not None:
            clauses.append("aggregate_id = %s")
            params.append(query.aggregate_id)
        if type_ is not None:
            clauses.append("type = %s")
            params.append(type_)
        elif query.types is not None:
            clauses.append("type = ANY(%s::text[])")
            params.append(list(query.types))
        if query.aggregate_type is not None:
            clauses.append("aggregate_type = %s")
            params.append(query.aggregate_type)
        if query.lo > 1:
            clauses.append("position >= %s")
            params.append(query.lo)
        if query.hi is not None:
            clauses.append("position <= %s")
            params.append(query.hi)
        return clauses, params

    def _page_sql(
        self,
        query: Query,
        type_: str | None,
        after: int | None,
        backwards: bool,
        limit: int,
        columns: str = COLUMNS,
    ) -> tuple[str, list[Any]]:
        if after is None:
            after = self.keyset_start(query, backwards)
        clauses, params = self._where(query, type_)
        key = "version" if query.aggregate_id is not None else "position"
        if after is not None:
            clauses.append(f"{key} {'<' if backwards else '>'} %s")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = f"{key} {'DESC' if backwards else 'ASC'}"
        return f"SELECT {columns} FROM events {where} ORDER BY {order} LIMIT {int(limit)}", params

    def page(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        statement, params = self._page_sql(query, type_, after, backwards, limit)
        rows = self._run(lambda conn: conn.execute(statement, params).fetchall())
        try:
            return [_event(r) for r in rows]
        except ValueError as e:
            raise CorruptStoreError(
                f"{self.display}: a stored event cannot be decoded ({e}); run sss verify"
            ) from e

    def page_rows(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[tuple[Any, ...]]:
        statement, params = self._page_sql(query, type_, after, backwards, limit, TEXT_COLUMNS)
        return self._run(lambda conn: conn.execute(statement, params).fetchall())

    def explain(self, query: Query, type_: str | None, backwards: bool = False) -> list[str]:
        """The query plan of a page read, for tests and for curious users."""
        statement, params = self._page_sql(query, type_, None, backwards, 100)
        return self._run(
            lambda conn: [str(r[0]) for r in conn.execute(f"EXPLAIN {statement}", params)]
        )

    def count(self, query: Query) -> int:
        clauses, params = self._where(query, None)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""

        def run(conn: Conn) -> int:
            row = conn.execute(f"SELECT count(*) FROM events {where}", params).fetchone()
            return 0 if row is None else int(row[0])

        return self._run(run)

    def _position(self, statement: str, moment: str) -> int | None:
        at = parse_time(moment)

        def run(conn: Conn) -> int | None:
            row = conn.execute(statement, (at,)).fetchone()
            return None if row is None else int(row[0])

        return self._run(run)

    def first_position_since(self, since: str) -> int | None:
        return self._position(
            "SELECT position FROM events WHERE recorded_at >= %s "
            "ORDER BY recorded_at, position LIMIT 1",
            since,
        )

    def last_position_until(self, until: str) -> int:
        found = self._position(
            "SELECT position FROM events WHERE recorded_at <= %s "
            "ORDER BY recorded_at DESC, position DESC LIMIT 1",
            until,
        )
        return found or 0

    def aggregate(self, aggregate_id: str) -> AggregateInfo | None:
        def run(conn: Conn) -> AggregateInfo | None:
            row = conn.execute(
                f"SELECT {AGGREGATE_COLUMNS} FROM aggregates WHERE aggregate_id = %s",
                (aggregate_id,),
            ).fetchone()
            return None if row is None else _aggregate(row)

        return self._run(run)

    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int
    ) -> list[AggregateInfo]:
        clauses: list[str] = []
        params: list[Any] = []
        if aggregate_type is not None:
            clauses.append("aggregate_type = %s")
            params.append(aggregate_type)
        if after is not None:
            clauses.append("aggregate_id > %s")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        statement = (
            f"SELECT {AGGREGATE_COLUMNS} FROM aggregates {where} "
            f"ORDER BY aggregate_id LIMIT {int(limit)}"
        )
        return self._run(lambda conn: [_aggregate(r) for r in conn.execute(statement, params)])

    def aggregate_types(self) -> dict[str | None, int]:
        return self._run(
            lambda conn: {
                r[0]: int(r[1])
                for r in conn.execute(
                    "SELECT aggregate_type, count(*) FROM aggregates GROUP BY aggregate_type "
                    "ORDER BY aggregate_type NULLS FIRST"
                )
            }
        )

    def event_types(self, after: int, upto: int) -> dict[str, int]:
        return self._run(
            lambda conn: {
                r[0]: int(r[1])
                for r in conn.execute(
                    "SELECT type, count(*) FROM events WHERE position > %s AND position <= %s "
                    "GROUP BY type",
                    (after, upto),
                )
            }
        )

    def version_at(self, aggregate_id: str, position: int) -> int:
        def run(conn: Conn) -> int:
            row = conn.execute(
                "SELECT max(version) FROM events WHERE aggregate_id = %s AND position <= %s",
                (aggregate_id, position),
            ).fetchone()
            return int(row[0] or 0) if row is not None else 0

        return self._run(run)

    def snapshot(self, aggregate_id: str, fingerprint: str, max_version: int) -> Snapshot | None:
        def run(conn: Conn) -> Snapshot | None:
            row = conn.execute(
                "SELECT version, position, state::text FROM snapshots WHERE aggregate_id = %s "
                "AND fingerprint = %s AND version <= %s ORDER BY version DESC LIMIT 1",
                (aggregate_id, fingerprint, max_version),
            ).fetchone()
            return None if row is None else Snapshot(aggregate_id, row[0], row[1], loads(row[2]))

        return self._run(run)

    def snapshots(self, fingerprint: str) -> Iterator[Snapshot]:
        rows = self._run(
            lambda conn: conn.execute(
                "SELECT aggregate_id, version, position, state::text FROM snapshots "
                "WHERE fingerprint = %s ORDER BY aggregate_id, version",
                (fingerprint,),
            ).fetchall()
        )
        return (Snapshot(r[0], r[1], r[2], loads_stored(r[3])) for r in rows)

    def snapshot_page(
        self, after: tuple[str, str, int] | None, limit: int
    ) -> list[tuple[str, Snapshot, str]]:
        where, params = "", []
        if after is not None:
            where, params = "WHERE (aggregate_id, fingerprint, version) > (%s, %s, %s)", list(after)
        statement = (
            "SELECT aggregate_id, fingerprint, version, position, state::text, created_at "
            f"FROM snapshots {where} ORDER BY aggregate_id, fingerprint, version LIMIT %s"
        )
        rows = self._run(lambda conn: conn.execute(statement, (*params, limit)).fetchall())
        return [
            (r[1], Snapshot(r[0], r[2], r[3], loads_stored(r[4])), format_time(r[5])) for r in rows
        ]

    def chain_page(self, after: int, limit: int) -> list[ChainRow]:
        def run(conn: Conn) -> list[ChainRow]:
            rows = conn.execute(
                f"SELECT {CHAIN_COLUMNS} FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (after, limit),
            ).fetchall()
            return rows  # the times come as the ISO text the chain hashed

        return self._run(run)

    # -- live --------------------------------------------------------------

    def change_token(self) -> int:
        return self.head()

    def _listen(self) -> Conn:
        if self._listener is None or self._listener.closed:
            conn = psycopg.connect(self.conninfo, autocommit=True)
            try:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
            except BaseException:
                conn.close()
                raise
            self._listener = conn
        return self._listener

    def wait_for_change(self, token: int, timeout: float, stop: threading.Event) -> None:
        """Block on LISTEN until an append commits, ``timeout`` passes or ``stop``
        is set. Without a listening connection (another thread holds it, or it
        cannot be opened) this sleeps and the caller polls."""
        if self._closed or not self._listen_lock.acquire(blocking=False):
            stop.wait(timeout)
            return
        try:
            fresh = self._listener is None or self._listener.closed
            conn = self._listen()
            if fresh:
                # Commits between the caller's token and our LISTEN sent no
                # notification we could receive: compare once by hand.
                row = conn.execute("SELECT position FROM sss_head").fetchone()
                if row is None or int(row[0]) != token:
                    return
            remaining = timeout
            while remaining > 0 and not stop.is_set():
                step = min(remaining, 0.25)
                for _ in conn.notifies(timeout=step, stop_after=1):
                    return
                remaining -= step
        except psycopg.Error:
            listener, self._listener = self._listener, None
            if listener is not None:
                listener.close()
            stop.wait(timeout)
        finally:
            self._listen_lock.release()

    def info(self) -> dict[str, Any]:
        def run(conn: Conn) -> dict[str, Any]:
            row = conn.execute(
                "SELECT pg_total_relation_size('events'), pg_database_size(current_database())"
            ).fetchone()
            assert row is not None
            return {"events_size": int(row[0]), "database_size": int(row[1])}

        major, minor = divmod(self.server_version, 10000)
        facts: dict[str, Any] = {
            "backend": "postgresql",
            "server_version": f"{major}.{minor}",
            "database": self.database,
            "schema": self.schema,
            "url": self.display,
        }
        facts.update(self._run(run))
        return facts

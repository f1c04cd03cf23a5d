"""The PostgreSQL backend: the one place that opens PostgreSQL connections."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import errors as pgerrors
from psycopg import pq, sql
from psycopg_pool import ConnectionPool

from ..backend import (
    Backend,
    ChainRow,
    DirectResult,
    DirectRow,
    Head,
    Query,
    Snapshot,
    WriteTransaction,
)
from ..codec import format_time, loads, loads_stored, parse_time
from ..counting import KeptCount
from ..errors import CorruptStoreError, ReadOnlyError, StoreError, ValidationError
from ..models import AggregateInfo, RecordedEvent
from ..sql import POSTGRES
from . import checking, treenodes
from .appendfn import append_call, ensure_append_function
from .conninfo import connection_info, redact
from .counts import read_kept_counts
from .errors import translated
from .schema import (
    AGGREGATE_COLUMNS,
    COLUMNS,
    FIRST_SINCE,
    LAST_UNTIL,
    TEXT_COLUMNS,
    Conn,
    ensure_schema,
    ensure_subscriptions,
    read_columns,
)
from .writing import PostgresWrite, aggregate_row, event_row, vacuum

__all__ = ["PostgresBackend"]

T = TypeVar("T")


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
                self.schema, self.database, self.server_version, self.format_version = (
                    ensure_schema(conn, self.display, readonly)
                )
                self._columns, self._chain_columns = read_columns(self.format_version)
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
                yield PostgresWrite(self, conn)
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
            yield PostgresWrite(self, conn)
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
        joined: bool = False,
    ) -> DirectResult | None:
        """The whole append as one statement (the ``sss_append_*`` function of
        :mod:`store.postgres.schema`), in its own transaction: the head row lock is
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
        retry declines, so the general path returns the stored events.

        ``joined``: inside the open write transaction of a group
        (:mod:`store.grouping`), as one more statement of it; the function
        then holds the head row lock until the group commits, and a failure
        of the call fails the group."""
        if not self.appends_direct or (self._conn is not None and not joined):
            return None
        if joined and self._conn is None:
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
        if joined:
            self._head = None  # the function moved the head: the general path reads it afresh
            if isinstance(row, psycopg.Error):
                raise StoreError(f"{self.display}: the append function failed: {row}") from row
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
        return POSTGRES.page(query, type_, after, backwards, limit, columns)

    def page(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        statement, params = self._page_sql(query, type_, after, backwards, limit, self._columns)
        rows = self._run(lambda conn: conn.execute(statement, params).fetchall())
        try:
            return [event_row(r) for r in rows]
        except ValueError as e:
            raise CorruptStoreError(
                f"{self.display}: a stored event cannot be decoded ({e}); run sss verify"
            ) from e

    def page_rows(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[tuple[Any, ...]]:
        statement, params = self._page_sql(query, type_, after, backwards, limit, TEXT_COLUMNS)
        return self._run(lambda conn: conn.execute(statement, params).fetchall())

    def payloads(self, aggregate_id: str, after_version: int, limit: int) -> list[tuple[int, str]]:
        statement, params = POSTGRES.page(
            Query(1, None, aggregate_id), None, after_version, False, limit, "version, data::text"
        )
        return self._run(lambda conn: conn.execute(statement, params).fetchall())

    def explain(self, query: Query, type_: str | None, backwards: bool = False) -> list[str]:
        """The query plan of a page read, for tests and for curious users."""
        statement, params = self._page_sql(query, type_, None, backwards, 100)
        return self._run(
            lambda conn: [str(r[0]) for r in conn.execute(f"EXPLAIN {statement}", params)]
        )

    def count(self, query: Query) -> int:
        statement, params = POSTGRES.count(query)

        def run(conn: Conn) -> int:
            row = conn.execute(statement, params).fetchone()
            return 0 if row is None else int(row[0])

        return self._run(run)

    # recorded_at never decreases as position grows and positions have no
    # gaps, so a time is found by bisecting positions on the primary key, as
    # on SQLite: one statement of about 25 point reads for ten million events,
    # and no recorded_at index to keep current under the head row lock on
    # every append (stores made before keep theirs; it is no longer used).

    def _bisect(self, statement: str, moment: str) -> tuple[int, int]:
        at = parse_time(moment)

        def run(conn: Conn) -> tuple[int, int]:
            row = conn.execute(statement, (at, at)).fetchone()
            if row is None:
                raise CorruptStoreError(
                    f"{self.display}: a position below the head is missing; run sss verify"
                )
            return int(row[0]), int(row[1])

        return self._run(run)

    def first_position_since(self, since: str) -> int | None:
        found, head = self._bisect(FIRST_SINCE, since)
        return None if found > head else found

    def last_position_until(self, until: str) -> int:
        return self._bisect(LAST_UNTIL, until)[0]

    def aggregate(self, aggregate_id: str) -> AggregateInfo | None:
        def run(conn: Conn) -> AggregateInfo | None:
            row = conn.execute(
                f"SELECT {AGGREGATE_COLUMNS} FROM aggregates WHERE aggregate_id = %s",
                (aggregate_id,),
            ).fetchone()
            return None if row is None else aggregate_row(row)

        return self._run(run)

    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int
    ) -> list[AggregateInfo]:
        statement, params = POSTGRES.aggregates(aggregate_type, after, limit, AGGREGATE_COLUMNS)
        return self._run(lambda conn: [aggregate_row(r) for r in conn.execute(statement, params)])

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

    def versions(
        self, after: tuple[str, int] | None, upto: int, limit: int
    ) -> list[tuple[str, int, int]]:
        statement, params = POSTGRES.versions(after, upto, limit)
        return self._run(lambda conn: [tuple(r) for r in conn.execute(statement, params)])

    def kept_counts(self) -> tuple[int, list[KeptCount]]:
        return self._run(read_kept_counts)

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
                f"SELECT {self._chain_columns} FROM events WHERE position > %s "
                "ORDER BY position LIMIT %s",
                (after, limit),
            ).fetchall()
            return rows  # the times come as the ISO text the chain hashed

        return self._run(run)

    def check_storage(self, full: bool) -> list[str]:
        """See :func:`store.postgres.checking.amcheck`."""
        return self._run(lambda conn: checking.amcheck(conn, full))

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

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        return treenodes.nodes(self._run, keys)

    def tree_filled(self, level: int) -> int:
        return treenodes.filled(self._run, level)

    def save_tree_nodes(self, nodes: Sequence[tuple[int, int, str]]) -> bool:
        return treenodes.save(self._run, self.write, self.readonly, nodes)

    def scrub(self) -> str | None:
        if self.readonly:
            return None
        return self._run(lambda conn: vacuum(conn, self.schema, self.display, self._timeout))

    def info(self) -> dict[str, Any]:
        def run(conn: Conn) -> dict[str, Any]:
            row = conn.execute(
                "SELECT pg_total_relation_size('events'), pg_database_size(current_database())"
            ).fetchone()
            assert row is not None
            meta = conn.execute("SELECT value FROM sss_meta WHERE key = 'store_id'").fetchone()
            return {
                "events_size": int(row[0]),
                "database_size": int(row[1]),
                "store_id": meta[0] if meta else None,
            }

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

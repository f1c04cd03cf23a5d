"""The SQLite backend: the one place that opens connections, sets PRAGMAs,
owns the schema and translates ``sqlite3`` errors.

The file is meant to be read by other tools too (sqlite3, sqlite-utils,
Datasette): events live in the table ``events`` with the schema's field names,
times as ISO-8601 UTC text with microseconds (fixed width, so text order is
time order).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from .backend import Backend, ChainRow, Head, Query, Row, Snapshot, WriteTransaction
from .codec import GENESIS_HASH, format_time, loads_stored, parse_time
from .errors import (
    CorruptStoreError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    StoreError,
)
from .models import AggregateInfo, RecordedEvent, recorded_event

FORMAT = "sss-events"
FORMAT_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS sss_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    aggregate_id TEXT,
    aggregate_type TEXT,
    version INTEGER,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (aggregate_id, version),
    CHECK ((aggregate_id IS NULL) = (version IS NULL))
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
CREATE INDEX IF NOT EXISTS events_by_aggregate_type ON events (aggregate_type, position);
CREATE TRIGGER IF NOT EXISTS events_refuse_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused'); END;
CREATE TRIGGER IF NOT EXISTS events_refuse_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'events are append-only: DELETE is refused'); END;
CREATE TRIGGER IF NOT EXISTS events_refuse_replace BEFORE INSERT ON events
WHEN NEW.position <= (SELECT max(position) FROM events)
  OR EXISTS (SELECT 1 FROM events WHERE event_id = NEW.event_id)
  OR EXISTS (SELECT 1 FROM events WHERE aggregate_id = NEW.aggregate_id AND version = NEW.version)
BEGIN SELECT RAISE(ABORT, 'events are append-only: an insert may not replace a stored event'); END;
CREATE TABLE IF NOT EXISTS aggregates (
    aggregate_id TEXT PRIMARY KEY,
    aggregate_type TEXT,
    version INTEGER NOT NULL,
    first_position INTEGER NOT NULL,
    last_position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS aggregates_by_type ON aggregates (aggregate_type, aggregate_id);
CREATE TABLE IF NOT EXISTS snapshots (
    aggregate_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    version INTEGER NOT NULL,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (aggregate_id, fingerprint, version)
) WITHOUT ROWID;
"""

# Durable consumers (store.subscriptions): one row per subscription and group
# member, and the events a subscription parked. Created on every writable open
# of a store, so stores made before these tables existed get them too.
SUBSCRIPTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name TEXT NOT NULL,
    member INTEGER NOT NULL,
    group_size INTEGER NOT NULL,
    position INTEGER NOT NULL,
    types TEXT,
    aggregate_type TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    failed_position INTEGER,
    failure TEXT,
    PRIMARY KEY (name, member)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked_events (
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    reason TEXT NOT NULL,
    parked_at TEXT NOT NULL,
    PRIMARY KEY (name, position)
) WITHOUT ROWID;
"""

COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
    "data, metadata, occurred_at, recorded_at, hash"
)
CHAIN_COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
    "data, metadata, occurred_at, recorded_at, data_hash, hash"
)


def _events(rows: Iterable[tuple[Any, ...]]) -> list[RecordedEvent]:
    """Rows to events. A batch shares one recorded_at, and occurred_at mostly
    equals it, so each distinct time text is parsed once (datetimes are
    immutable, so sharing them is safe)."""
    events: list[RecordedEvent] = []
    append = events.append
    last_text = ""
    last_time = datetime.min
    for row in rows:
        recorded = row[10]
        if recorded != last_text:
            last_text, last_time = recorded, parse_time(recorded)
        occurred = row[9]
        append(
            recorded_event(
                row[0],
                row[1],
                row[2],
                row[3],
                row[4],
                row[5],
                row[6],
                loads_stored(row[7]),
                loads_stored(row[8]),
                last_time if occurred == recorded else parse_time(occurred),
                last_time,
                row[11],
            )
        )
    return events


def _aggregate(row: tuple[Any, ...]) -> AggregateInfo:
    return AggregateInfo(
        row[0], row[1], row[2], row[3], row[4], parse_time(row[5]), parse_time(row[6])
    )


def _translate(e: sqlite3.Error, location: str) -> StoreError:
    """The one place a sqlite3 error becomes a StoreError."""
    text = str(e)
    # Appends check ids and versions under the write lock first, so these
    # mean a raw write from outside, refused by the schema.
    if isinstance(e, sqlite3.IntegrityError) and ("append-only" in text or "UNIQUE" in text):
        return StoreError(f"{location}: {text}")
    if "locked" in text or "busy" in text:
        return LockedError(
            f"{location} is locked by another writer; try again, or raise timeout= ({text})"
        )
    if "readonly" in text or "read-only" in text:
        return ReadOnlyError(f"{location} is read-only: {text}")
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return CorruptStoreError(f"{location} is not a readable event store: {text}")
    if "unable to open" in text:
        return NotFoundError(f"cannot open {location}: {text}")
    return StoreError(f"{location}: {text}")


@contextmanager
def translated(location: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        raise _translate(e, location) from e


class _SQLiteWrite(WriteTransaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def head(self) -> Head:
        row = self.conn.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return Head(0, GENESIS_HASH, None)
        return Head(row[0], row[1], row[2])

    def aggregate(self, aggregate_id: str) -> tuple[str | None, int] | None:
        row = self.conn.execute(
            "SELECT aggregate_type, version FROM aggregates WHERE aggregate_id = ?",
            (aggregate_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def find_events(self, event_ids: Sequence[str]) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                _events(
                    self.conn.execute(
                        f"SELECT {COLUMNS} FROM events WHERE event_id IN ({marks})", chunk
                    )
                )
            )
        return found

    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        self.conn.executemany(
            f"INSERT INTO events ({CHAIN_COLUMNS}) VALUES ({','.join('?' * 13)})", rows
        )
        if aggregate is not None:
            self.conn.execute(
                "INSERT INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, "
                "last_position = excluded.last_position, updated_at = excluded.updated_at",
                (
                    aggregate.aggregate_id,
                    aggregate.aggregate_type,
                    aggregate.version,
                    aggregate.first_position,
                    aggregate.last_position,
                    format_time(aggregate.created_at),
                    format_time(aggregate.updated_at),
                ),
            )

    def save_snapshot(self, snapshot: Snapshot, fingerprint: str, created_at: str) -> None:
        from .codec import encode_object

        self.conn.execute(
            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
            (
                snapshot.aggregate_id,
                fingerprint,
                snapshot.version,
                snapshot.position,
                encode_object(snapshot.state, "snapshot state"),
                created_at,
            ),
        )


class SQLiteBackend(Backend):
    """An event store in one SQLite file (or ``:memory:``).

    Args:
        path: the file; created with its schema when missing (unless read-only).
        readonly: open with ``mode=ro``; SQLite itself refuses every write.
        durable: ``synchronous=FULL``, so an acknowledged append survives power
            loss. ``False`` gives ``synchronous=NORMAL``: still safe against a
            crashed process, but the last commits may be lost on power loss;
            meant for bulk imports and generated stores.
        timeout: seconds to wait for another writer's lock before LockedError.
    """

    def __init__(
        self, path: str, *, readonly: bool = False, durable: bool = True, timeout: float = 5.0
    ) -> None:
        self.location = path
        self.readonly = readonly
        self._depth = 0
        memory = path == ":memory:" or path.startswith("file::memory:")
        if not memory:
            if readonly and not os.path.exists(path):
                raise NotFoundError(f"no event store at {path}: the file does not exist")
            parent = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(parent):
                raise NotFoundError(f"cannot create {path}: directory {parent} does not exist")
            if os.path.isdir(path):
                raise NotFoundError(f"{path} is a directory, not an event store file")
        if readonly and memory:
            raise ReadOnlyError("a read-only :memory: store would always be empty")
        uri = (
            f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
            if readonly
            else f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=rwc"
            if not memory
            else ":memory:"
        )
        with translated(path):
            # Autocommit mode: transactions are opened explicitly with BEGIN
            # IMMEDIATE, so waiting for the write lock happens up front, once.
            self.conn = sqlite3.connect(
                uri,
                uri=not memory,
                timeout=timeout,
                isolation_level=None,
                check_same_thread=False,
                cached_statements=256,
            )
        try:
            self._configure(durable, memory)
        except BaseException:
            self.conn.close()
            raise

    def _configure(self, durable: bool, memory: bool) -> None:
        conn = self.conn
        with translated(self.location):
            try:
                # Fail fast on a file that is not SQLite at all.
                conn.execute("PRAGMA schema_version").fetchone()
            except sqlite3.DatabaseError as e:
                if "locked" in str(e):
                    raise LockedError(
                        f"{self.location} is locked by another process (an exclusive lock); "
                        "try again when it is done"
                    ) from e
                raise CorruptStoreError(
                    f"{self.location} is not an event store: it is not an SQLite database ({e})"
                ) from e
            if not self.readonly and not memory:
                # WAL lets readers (the TUI, follow) run while a writer appends.
                conn.execute("PRAGMA journal_mode=WAL")
            # FULL syncs the WAL on every commit: an acknowledged append survives
            # power loss. NORMAL only survives a crash of the process.
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            # REPLACE must not delete events behind the triggers' back.
            conn.execute("PRAGMA recursive_triggers=ON")
            # Keep hot index pages of large stores in memory (~64 MB).
            conn.execute("PRAGMA cache_size=-65536")
            # Temporary sort structures in memory, not on disk.
            conn.execute("PRAGMA temp_store=MEMORY")
            self._ensure_schema()

    def _ensure_schema(self) -> None:
        conn = self.conn
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "sss_meta" in tables:
            meta = dict(conn.execute("SELECT key, value FROM sss_meta").fetchall())
            if meta.get("format") != FORMAT:
                raise CorruptStoreError(
                    f"{self.location} is not an event store (format {meta.get('format')!r})"
                )
            if int(meta.get("format_version", "0")) > FORMAT_VERSION:
                raise CorruptStoreError(
                    f"{self.location} was written by a newer version (format "
                    f"{meta['format_version']}); upgrade to read it"
                )
            if not self.readonly and "subscriptions" not in tables:
                self._ensure_subscriptions()
            return
        if tables - {"sqlite_sequence"}:
            raise CorruptStoreError(
                f"{self.location} is an SQLite database but not an event store "
                f"(it has tables {', '.join(sorted(tables))})"
            )
        if self.readonly:
            raise CorruptStoreError(f"{self.location} is empty, not an event store")
        conn.execute("BEGIN IMMEDIATE")
        try:
            # executescript() would commit on its own; run statement by statement
            # so the schema and its meta rows appear atomically.
            for statement in (SCHEMA + SUBSCRIPTIONS_SCHEMA).split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT OR IGNORE INTO sss_meta VALUES (?, ?)",
                [
                    ("format", FORMAT),
                    ("format_version", str(FORMAT_VERSION)),
                    ("store_id", str(uuid.uuid4())),
                    ("created_at", format_time(datetime.now(UTC))),
                ],
            )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _ensure_subscriptions(self) -> None:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in SUBSCRIPTIONS_SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if not self.readonly:
            # Refresh the planner's statistics where they went stale, cheaply.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA optimize")
        self.conn.close()

    @contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        if self.readonly:
            raise ReadOnlyError(f"{self.location} is open read-only; writes are refused")
        conn = self.conn
        with translated(self.location):
            if self._depth:
                name = f"sss_{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield _SQLiteWrite(conn)
                except BaseException:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield _SQLiteWrite(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # Never leave the write lock held by a half-finished commit.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._depth = 0

    def head(self) -> int:
        with translated(self.location):
            row = self.conn.execute("SELECT max(position) FROM events").fetchone()
        return row[0] or 0

    def _where(self, query: Query, type_: str | None) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.aggregate_id is not None:
            clauses.append("aggregate_id = ?")
            params.append(query.aggregate_id)
        if type_ is not None:
            clauses.append("type = ?")
            params.append(type_)
        elif query.types is not None:
            clauses.append(f"type IN ({','.join('?' * len(query.types))})")
            params.extend(query.types)
        if query.aggregate_type is not None:
            clauses.append("aggregate_type = ?")
            params.append(query.aggregate_type)
        if query.lo > 1:
            clauses.append("position >= ?")
            params.append(query.lo)
        if query.hi is not None:
            clauses.append("position <= ?")
            params.append(query.hi)
        return clauses, params

    def _select(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> sqlite3.Cursor:
        if after is None:
            after = self.keyset_start(query, backwards)
        clauses, params = self._where(query, type_)
        key = "version" if query.aggregate_id is not None else "position"
        if after is not None:
            clauses.append(f"{key} {'<' if backwards else '>'} ?")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        sql = (
            f"SELECT {COLUMNS} FROM events {where} "
            f"ORDER BY {key} {'DESC' if backwards else 'ASC'} LIMIT {int(limit)}"
        )
        return self.conn.execute(sql, params)

    def page(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with translated(self.location):
            rows = self._select(query, type_, after, backwards, limit)
            try:
                return _events(rows)
            except ValueError as e:
                raise CorruptStoreError(
                    f"{self.location}: a stored event cannot be decoded ({e}); run sss verify"
                ) from e

    def page_rows(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[tuple[Any, ...]]:
        with translated(self.location):
            return self._select(query, type_, after, backwards, limit).fetchall()

    def explain(self, query: Query, type_: str | None, backwards: bool = False) -> list[str]:
        """The query plan of a page read, for tests and for curious users."""
        clauses, params = self._where(query, type_)
        key = "version" if query.aggregate_id is not None else "position"
        clauses.append(f"{key} > ?")
        params.append(0)
        sql = (
            f"EXPLAIN QUERY PLAN SELECT {COLUMNS} FROM events WHERE {' AND '.join(clauses)} "
            f"ORDER BY {key} {'DESC' if backwards else 'ASC'} LIMIT 100"
        )
        return [row[3] for row in self.conn.execute(sql, params)]

    def count(self, query: Query) -> int:
        clauses, params = self._where(query, None)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with translated(self.location):
            return int(
                self.conn.execute(f"SELECT count(*) FROM events {where}", params).fetchone()[0]
            )

    # recorded_at never decreases as position grows and positions have no gaps,
    # so a time is found by bisecting positions on the primary key: about 25
    # point reads for ten million events, and no recorded_at index to keep
    # current on every append.

    def _recorded_at(self, position: int) -> str:
        row = self.conn.execute(
            "SELECT recorded_at FROM events WHERE position = ?", (position,)
        ).fetchone()
        if row is None:
            raise CorruptStoreError(f"{self.location}: position {position} is missing; run verify")
        return str(row[0])

    def first_position_since(self, since: str) -> int | None:
        with translated(self.location):
            lo, hi = 1, self.head() + 1
            while lo < hi:
                middle = (lo + hi) // 2
                if self._recorded_at(middle) < since:
                    lo = middle + 1
                else:
                    hi = middle
            return None if lo > self.head() else lo

    def last_position_until(self, until: str) -> int:
        with translated(self.location):
            lo, hi = 0, self.head()
            while lo < hi:
                middle = (lo + hi + 1) // 2
                if self._recorded_at(middle) <= until:
                    lo = middle
                else:
                    hi = middle - 1
            return lo

    def aggregate(self, aggregate_id: str) -> AggregateInfo | None:
        with translated(self.location):
            row = self.conn.execute(
                "SELECT * FROM aggregates WHERE aggregate_id = ?", (aggregate_id,)
            ).fetchone()
        return None if row is None else _aggregate(row)

    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int
    ) -> list[AggregateInfo]:
        clauses, params = [], []
        if aggregate_type is not None:
            clauses.append("aggregate_type = ?")
            params.append(aggregate_type)
        if after is not None:
            clauses.append("aggregate_id > ?")
            params.append(after)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with translated(self.location):
            rows = self.conn.execute(
                f"SELECT * FROM aggregates {where} ORDER BY aggregate_id LIMIT {int(limit)}", params
            ).fetchall()
        return [_aggregate(row) for row in rows]

    def aggregate_types(self) -> dict[str | None, int]:
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_type, count(*) FROM aggregates GROUP BY aggregate_type "
                "ORDER BY aggregate_type"
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def event_types(self, after: int, upto: int) -> dict[str, int]:
        with translated(self.location):
            if after == 0:
                # The whole log: one pass over the covering (type, position) index.
                sql = "SELECT type, count(*) FROM events WHERE position <= ? GROUP BY type"
                rows = self.conn.execute(sql, (upto,)).fetchall()
            else:  # what came since: a range of the primary key
                sql = (
                    "SELECT type, count(*) FROM events WHERE position > ? AND position <= ? "
                    "GROUP BY type"
                )
                rows = self.conn.execute(sql, (after, upto)).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def version_at(self, aggregate_id: str, position: int) -> int:
        # Within an aggregate, position grows with version: bisect the versions
        # on the (aggregate_id, version) index instead of scanning the stream.
        with translated(self.location):
            row = self.conn.execute(
                "SELECT version, last_position FROM aggregates WHERE aggregate_id = ?",
                (aggregate_id,),
            ).fetchone()
            if row is None:
                return 0
            if row[1] <= position:
                return int(row[0])
            lo, hi = 0, int(row[0])
            while lo < hi:
                middle = (lo + hi + 1) // 2
                found = self.conn.execute(
                    "SELECT position FROM events WHERE aggregate_id = ? AND version = ?",
                    (aggregate_id, middle),
                ).fetchone()
                if found is not None and found[0] <= position:
                    lo = middle
                else:
                    hi = middle - 1
            return lo

    def snapshot(self, aggregate_id: str, fingerprint: str, max_version: int) -> Snapshot | None:
        with translated(self.location):
            row = self.conn.execute(
                "SELECT version, position, state FROM snapshots WHERE aggregate_id = ? "
                "AND fingerprint = ? AND version <= ? ORDER BY version DESC LIMIT 1",
                (aggregate_id, fingerprint, max_version),
            ).fetchone()
        return None if row is None else Snapshot(aggregate_id, row[0], row[1], loads_stored(row[2]))

    def snapshots(self, fingerprint: str) -> Iterator[Snapshot]:
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_id, version, position, state FROM snapshots "
                "WHERE fingerprint = ? ORDER BY aggregate_id, version",
                (fingerprint,),
            ).fetchall()
        return (Snapshot(row[0], row[1], row[2], loads_stored(row[3])) for row in rows)

    def snapshot_page(
        self, after: tuple[str, str, int] | None, limit: int
    ) -> list[tuple[str, Snapshot, str]]:
        where, params = "", []
        if after is not None:
            where, params = "WHERE (aggregate_id, fingerprint, version) > (?, ?, ?)", list(after)
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_id, fingerprint, version, position, state, created_at "
                f"FROM snapshots {where} ORDER BY aggregate_id, fingerprint, version LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [(r[1], Snapshot(r[0], r[2], r[3], loads_stored(r[4])), r[5]) for r in rows]

    def chain_page(self, after: int, limit: int) -> list[ChainRow]:
        with translated(self.location):
            return self.conn.execute(
                f"SELECT {CHAIN_COLUMNS} FROM events WHERE position > ? ORDER BY position LIMIT ?",
                (after, limit),
            ).fetchall()

    def change_token(self) -> int:
        with translated(self.location):
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"backend": "sqlite", "sqlite_version": sqlite3.sqlite_version}
        if self.location != ":memory:" and os.path.exists(self.location):
            size = os.path.getsize(self.location)
            wal = self.location + "-wal"
            facts["file_size"] = size
            facts["wal_size"] = os.path.getsize(wal) if os.path.exists(wal) else 0
        return facts

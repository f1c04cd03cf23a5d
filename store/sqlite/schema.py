"""The SQLite schema: the tables, indexes and append-only triggers, and the
check that a file holds an event store this code can read."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime

from ..codec import format_time
from ..errors import CorruptStoreError

__all__ = [
    "ADD_COUNTS",
    "CHAIN_COLUMNS",
    "COLUMNS",
    "COUNT_EVENTS",
    "FORMAT",
    "FORMAT_VERSION",
    "SCHEMA",
    "ensure_schema",
]

FORMAT = "sss-events"
FORMAT_VERSION = 2
"""1: the first format. 2: the kept counts (``sss_counts``, store.counting),
built once from the log when a version 1 store is first opened for writing."""

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
CREATE TABLE IF NOT EXISTS sss_counts (
    type TEXT NOT NULL,
    aggregate_type TEXT NOT NULL,
    system INTEGER NOT NULL,
    events INTEGER NOT NULL,
    aggregates INTEGER NOT NULL,
    first_occurred_at TEXT NOT NULL,
    last_occurred_at TEXT NOT NULL,
    PRIMARY KEY (type, aggregate_type, system)
) WITHOUT ROWID;
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

COUNTS_TABLE = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS sss_counts") :].split(";\n")[0]

ADD_COUNTS = (
    "INSERT INTO sss_counts VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (type, aggregate_type, system) DO UPDATE SET "
    "events = events + excluded.events, aggregates = aggregates + excluded.aggregates, "
    "first_occurred_at = min(first_occurred_at, excluded.first_occurred_at), "
    "last_occurred_at = max(last_occurred_at, excluded.last_occurred_at)"
)
"""One upsert per key of a batch (store.counting.batch_counts)."""
COUNT_EVENTS = (
    "SELECT type, coalesce(aggregate_type, ''), aggregate_id IS NULL, count(*), "
    "sum(CASE WHEN version = 1 THEN 1 ELSE 0 END), min(occurred_at), max(occurred_at) "
    "FROM events GROUP BY 1, 2, 3"
)
"""The counts from the log itself: to build them once, and to read a store of
format 1 opened read-only."""

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


def ensure_schema(conn: sqlite3.Connection, location: str, readonly: bool) -> None:
    """Check the file holds an event store of a format this code reads, or
    create the schema in an empty one, atomically."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "sss_meta" in tables:
        meta = dict(conn.execute("SELECT key, value FROM sss_meta").fetchall())
        if meta.get("format") != FORMAT:
            raise CorruptStoreError(
                f"{location} is not an event store (format {meta.get('format')!r})"
            )
        if int(meta.get("format_version", "0")) > FORMAT_VERSION:
            raise CorruptStoreError(
                f"{location} was written by a newer version (format "
                f"{meta['format_version']}); upgrade to read it"
            )
        if not readonly and "subscriptions" not in tables:
            _run_atomically(conn, SUBSCRIPTIONS_SCHEMA)
        if not readonly and "sss_counts" not in tables:
            _add_counts_table(conn)
        return
    if tables - {"sqlite_sequence"}:
        raise CorruptStoreError(
            f"{location} is an SQLite database but not an event store "
            f"(it has tables {', '.join(sorted(tables))})"
        )
    if readonly:
        raise CorruptStoreError(f"{location} is empty, not an event store")
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


def _add_counts_table(conn: sqlite3.Connection) -> None:
    """Upgrade format 1 to 2: build the kept counts from the log, once, in
    the same transaction that records the new format (a second process
    opening meanwhile waits for the lock, then finds the table)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sss_counts'"
        ).fetchone()
        if present is None:
            conn.execute(COUNTS_TABLE)
            conn.execute(f"INSERT INTO sss_counts {COUNT_EVENTS}")
            conn.execute(
                "INSERT OR REPLACE INTO sss_meta VALUES ('format_version', ?)",
                (str(FORMAT_VERSION),),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _run_atomically(conn: sqlite3.Connection, script: str) -> None:
    """Run the statements of ``script`` in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise

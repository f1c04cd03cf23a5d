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
    "ERASE",
    "FORMAT",
    "FORMAT_VERSION",
    "SCHEMA",
    "TREE_SCHEMA",
    "ensure_schema",
]

FORMAT = "sss-events"
FORMAT_VERSION = 2
"""1: the first format. 2: ``events.erased_by`` and the trigger that lets an
erasure, and nothing else, replace a payload; the kept counts (``sss_counts``,
store.counting). A version 1 file is upgraded in one transaction when first
opened for writing (the counts built once from the log), and read as it is
when opened read-only (its counts then come from the log)."""

# The one UPDATE the events table accepts (store.erasing): the payload's
# top-level field names stay, each value becomes the marker. The trigger
# below computes the same expression from the old row and compares.
ERASED_FORM = "(SELECT json_group_object(key, '\u27e8erased\u27e9') FROM json_each({}))"
ERASE = (
    f"UPDATE events SET data = {ERASED_FORM.format('events.data')}, erased_by = ? "
    "WHERE position = ? AND erased_by IS NULL"
)

# An UPDATE passes only when it erases a payload not erased before, leaves
# every other column as it was, and names a later sss.Erased receipt that
# lists this position; any other UPDATE, and every DELETE, is refused.
GUARD_UPDATE = f"""
CREATE TRIGGER IF NOT EXISTS events_guard_update BEFORE UPDATE ON events
WHEN NOT (
    OLD.erased_by IS NULL AND NEW.erased_by IS NOT NULL AND NEW.erased_by > OLD.position
    AND NEW.position IS OLD.position AND NEW.event_id IS OLD.event_id
    AND NEW.aggregate_id IS OLD.aggregate_id AND NEW.aggregate_type IS OLD.aggregate_type
    AND NEW.version IS OLD.version AND NEW.type IS OLD.type
    AND NEW.schema_version IS OLD.schema_version AND NEW.metadata IS OLD.metadata
    AND NEW.occurred_at IS OLD.occurred_at AND NEW.recorded_at IS OLD.recorded_at
    AND NEW.data_hash IS OLD.data_hash AND NEW.hash IS OLD.hash
    AND NEW.data IS {ERASED_FORM.format("OLD.data")}
    AND EXISTS (
        SELECT 1 FROM events AS receipt, json_each(receipt.data, '$.positions') AS listed
        WHERE receipt.position = NEW.erased_by AND receipt.type = 'sss.Erased'
          AND listed.value = OLD.position
    )
)
BEGIN SELECT RAISE(ABORT,
    'events are append-only: UPDATE is refused (only an erasure may replace a payload)'); END
"""

SCHEMA = (
    """
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
    erased_by INTEGER,
    UNIQUE (aggregate_id, version),
    CHECK ((aggregate_id IS NULL) = (version IS NULL))
);
CREATE INDEX IF NOT EXISTS events_by_type ON events (type, position);
CREATE INDEX IF NOT EXISTS events_by_aggregate_type ON events (aggregate_type, position);
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
    + GUARD_UPDATE
    + ";\n"
)

# Version 1 to 2, in one transaction: the column, and the guard in place of
# the trigger that refused every UPDATE (``_upgrade`` records the format).
UPGRADE_1 = (
    "ALTER TABLE events ADD COLUMN erased_by INTEGER;\n"
    "DROP TRIGGER IF EXISTS events_refuse_update;\n" + GUARD_UPDATE + ";\n"
)

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

# The Merkle tree's stored subtree hashes (store.tree): derived data, made
# from the events by whoever needs them and never trusted by verification.
TREE_SCHEMA = """CREATE TABLE IF NOT EXISTS sss_tree (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID"""

COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
    "data, metadata, occurred_at, recorded_at, hash"
)
CHAIN_COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
    "data, metadata, occurred_at, recorded_at, data_hash, hash"
)


def read_columns(version: int) -> tuple[str, str]:
    """The columns of an event and of a chain row with ``erased_by`` last; a
    version 1 file (opened read-only, so not upgraded) has no erasures."""
    erased = "erased_by" if version >= 2 else "NULL"
    return f"{COLUMNS}, {erased}", f"{CHAIN_COLUMNS}, {erased}"


def ensure_schema(conn: sqlite3.Connection, location: str, readonly: bool) -> int:
    """Check the file holds an event store of a format this code reads, or
    create the schema in an empty one, atomically; the format version."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "sss_meta" in tables:
        meta = dict(conn.execute("SELECT key, value FROM sss_meta").fetchall())
        if meta.get("format") != FORMAT:
            raise CorruptStoreError(
                f"{location} is not an event store (format {meta.get('format')!r})"
            )
        version = int(meta.get("format_version", "0"))
        if version > FORMAT_VERSION:
            raise CorruptStoreError(
                f"{location} was written by a newer version (format "
                f"{meta['format_version']}); upgrade to read it"
            )
        if not readonly and "subscriptions" not in tables:
            _run_atomically(conn, SUBSCRIPTIONS_SCHEMA)
        if not readonly and (version < 2 or "sss_counts" not in tables):
            _upgrade(conn)
            version = 2
        return version
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
    return FORMAT_VERSION


def _upgrade(conn: sqlite3.Connection) -> None:
    """Version 1 to 2, unless another process did it meanwhile (it waits for
    the write lock, then finds the work done): the erasure column and its
    guard, and the kept counts built from the log, with the new format
    version recorded in the same transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT value FROM sss_meta WHERE key = 'format_version'").fetchone()
        columns = {c[1] for c in conn.execute("PRAGMA table_info(events)")}
        if (row is None or int(row[0]) < 2) and "erased_by" not in columns:
            for statement in UPGRADE_1.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
        present = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sss_counts'"
        ).fetchone()
        if present is None:
            conn.execute(COUNTS_TABLE)
            conn.execute(f"INSERT INTO sss_counts {COUNT_EVENTS}")
        # A file with no format_version row (read as format 0) gets one.
        conn.execute("INSERT OR REPLACE INTO sss_meta VALUES ('format_version', '2')")
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

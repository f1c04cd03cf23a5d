"""The PostgreSQL schema: tables, indexes, triggers, the one-statement
append function (which restates the append rules on the server), and the
check that a schema holds an event store this code can read."""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import errors as pgerrors
from psycopg import sql

from ..codec import GENESIS_HASH, format_time
from ..errors import CorruptStoreError, NotFoundError

Conn = psycopg.Connection[tuple[Any, ...]]

FORMAT = "sss-events"
FORMAT_VERSION = 2
"""1: the first format. 2: ``events.erased_by`` and the guard that lets an
erasure, and nothing else, replace a payload; the kept counts (``sss_counts``,
store.counting). A version 1 schema is upgraded in one transaction when first
opened for writing (the counts built once from the log, the older append
functions dropped), and read as it is when opened read-only."""

_MARK = "'\u27e8erased\u27e9'::text"


def erased_form(column: str) -> str:
    """The erased form of a payload: its top-level field names in their
    order, each holding the marker, as compact JSON text: the very text
    SQLite's json_group_object writes, so copies between them agree."""
    return (
        "(SELECT coalesce('{' || string_agg(to_json(k)::text || ':' || "
        f"to_json({_MARK})::text, ',' ORDER BY n) || '}}', '{{}}')::json "
        f"FROM json_object_keys({column}) WITH ORDINALITY AS keys(k, n))"
    )


ERASE = (
    f"UPDATE events SET data = {erased_form('events.data')}, erased_by = %s "
    "WHERE position = %s AND erased_by IS NULL"
)
"""The one UPDATE the events table accepts (store.erasing)."""

# An UPDATE passes only when it erases a payload not erased before, leaves
# every other column as it was, and names a later sss.Erased receipt that
# lists this position; any other UPDATE is refused (DELETE and TRUNCATE by
# sss_refuse_change). The receipt is looked up in the trigger's own table.
GUARD_UPDATE = f"""
CREATE OR REPLACE FUNCTION sss_guard_update() RETURNS trigger LANGUAGE plpgsql AS $guard$
DECLARE
    listed boolean;
BEGIN
    IF OLD.erased_by IS NULL AND NEW.erased_by IS NOT NULL AND NEW.erased_by > OLD.position
       AND (NEW.position, NEW.event_id, NEW.aggregate_id, NEW.aggregate_type, NEW.version,
            NEW.type, NEW.schema_version, NEW.metadata::text, NEW.occurred_at,
            NEW.recorded_at, NEW.data_hash, NEW.hash)
           IS NOT DISTINCT FROM
           (OLD.position, OLD.event_id, OLD.aggregate_id, OLD.aggregate_type, OLD.version,
            OLD.type, OLD.schema_version, OLD.metadata::text, OLD.occurred_at,
            OLD.recorded_at, OLD.data_hash, OLD.hash)
       AND NEW.data::text = {erased_form("OLD.data")}::text
    THEN
        EXECUTE format(
            'SELECT EXISTS (SELECT 1 FROM %I.%I r, '
            'json_array_elements_text(r.data -> ''positions'') p '
            'WHERE r.position = $1 AND r.type = ''sss.Erased'' AND p = $2::text)',
            TG_TABLE_SCHEMA, TG_TABLE_NAME)
            INTO listed USING NEW.erased_by, OLD.position;
        IF listed THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'events are append-only: UPDATE is refused '
        '(only an erasure may replace a payload)';
END $guard$;
CREATE TRIGGER events_guard_update BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION sss_guard_update();
"""

UPGRADE_1 = (
    "ALTER TABLE events ADD COLUMN IF NOT EXISTS erased_by bigint;\n"
    "DROP TRIGGER IF EXISTS events_refuse_update_delete ON events;\n"
    "DROP TRIGGER IF EXISTS events_guard_update ON events;\n"
    "DROP TRIGGER IF EXISTS events_refuse_delete ON events;\n"
    "CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events\n"
    "    FOR EACH ROW EXECUTE FUNCTION sss_refuse_change();\n" + GUARD_UPDATE
)
"""Version 1 to 2: the column, and the guard in place of the trigger that
refused every UPDATE (``_upgrade`` records the format)."""

# Text columns compare in code point order (COLLATE "C"), as in SQLite and
# Python, whatever the database's collation.
SCHEMA = (
    f"""
CREATE TABLE sss_meta (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE sss_head (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    position bigint NOT NULL,
    hash text NOT NULL,
    recorded_at timestamptz
);
INSERT INTO sss_head VALUES (true, 0, '{GENESIS_HASH}', NULL);
CREATE TABLE events (
    position bigint PRIMARY KEY,
    event_id uuid NOT NULL,
    aggregate_id text COLLATE "C",
    aggregate_type text COLLATE "C",
    version bigint,
    type text COLLATE "C" NOT NULL,
    schema_version bigint NOT NULL DEFAULT 1,
    data json NOT NULL,
    metadata json NOT NULL,
    occurred_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL,
    data_hash text NOT NULL,
    hash text NOT NULL,
    erased_by bigint,
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_aggregate_id_version_key UNIQUE (aggregate_id, version),
    CHECK ((aggregate_id IS NULL) = (version IS NULL))
);
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_aggregate_type ON events (aggregate_type, position);
CREATE FUNCTION sss_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is refused', TG_OP;
END $$;
CREATE TRIGGER events_refuse_delete BEFORE DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION sss_refuse_change();
CREATE TRIGGER events_refuse_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION sss_refuse_change();
CREATE TABLE aggregates (
    aggregate_id text COLLATE "C" PRIMARY KEY,
    aggregate_type text COLLATE "C",
    version bigint NOT NULL,
    first_position bigint NOT NULL,
    last_position bigint NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX aggregates_by_type ON aggregates (aggregate_type, aggregate_id);
CREATE TABLE sss_counts (
    type text COLLATE "C" NOT NULL,
    aggregate_type text COLLATE "C" NOT NULL,
    system integer NOT NULL,
    events bigint NOT NULL,
    aggregates bigint NOT NULL,
    first_occurred_at timestamptz NOT NULL,
    last_occurred_at timestamptz NOT NULL,
    PRIMARY KEY (type, aggregate_type, system)
);
CREATE TABLE snapshots (
    aggregate_id text COLLATE "C" NOT NULL,
    fingerprint text NOT NULL,
    version bigint NOT NULL,
    position bigint NOT NULL,
    state json NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (aggregate_id, fingerprint, version)
);
"""
    + GUARD_UPDATE
)

# Durable consumers (store.subscriptions): one row per subscription and group
# member, and the events a subscription parked; in the store's own schema.
# Created on every writable open, so older stores get them too.
SUBSCRIPTIONS_SCHEMA = """
CREATE TABLE IF NOT EXISTS subscriptions (
    name text COLLATE "C" NOT NULL,
    member integer NOT NULL,
    group_size integer NOT NULL,
    position bigint NOT NULL,
    types text,
    aggregate_type text COLLATE "C",
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    failed_position bigint,
    failure text,
    PRIMARY KEY (name, member)
);
CREATE TABLE IF NOT EXISTS parked_events (
    name text COLLATE "C" NOT NULL,
    position bigint NOT NULL,
    event_id text NOT NULL,
    type text NOT NULL,
    reason text NOT NULL,
    parked_at timestamptz NOT NULL,
    PRIMARY KEY (name, position)
);
"""


def ensure_subscriptions(conn: Conn, schema: str) -> None:
    """Create the subscription tables when the store lacks them (a store made
    before they existed). A role that may not create them leaves them absent:
    listing subscriptions then shows none and subscribing says why."""
    present = conn.execute(
        "SELECT count(*) FROM pg_tables WHERE schemaname = %s "
        "AND tablename IN ('subscriptions', 'parked_events')",
        (schema,),
    ).fetchone()
    if present is not None and present[0] == 2:
        return
    try:
        with conn.transaction():
            # Concurrent first opens take turns, as for the schema itself.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 2))", (schema,))
            conn.execute(SUBSCRIPTIONS_SCHEMA)
    except (pgerrors.InsufficientPrivilege, pgerrors.ReadOnlySqlTransaction):
        return


COLUMNS = (
    "position, event_id::text, aggregate_id, aggregate_type, version, type, schema_version, "
    "data::text, metadata::text, occurred_at, recorded_at, hash"
)


def _iso(column: str) -> str:
    """A time as store.codec.format_time writes it, formatted by the server:
    cheaper than a datetime per value and isoformat in the client."""
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


TEXT_COLUMNS = (
    "position, event_id::text, aggregate_id, aggregate_type, version, type, schema_version, "
    f"data::text, metadata::text, {_iso('occurred_at')}, {_iso('recorded_at')}, hash"
)
"""COLUMNS with the times as ISO text, for rows handed on as plain tuples."""
CHAIN_COLUMNS = (
    "position, event_id::text, aggregate_id, aggregate_type, version, type, schema_version, "
    f"data::text, metadata::text, {_iso('occurred_at')}, {_iso('recorded_at')}, data_hash, hash"
)


def read_columns(version: int) -> tuple[str, str]:
    """COLUMNS and CHAIN_COLUMNS with ``erased_by`` last; a version 1 schema
    (opened read-only, so not upgraded) has no erasures."""
    erased = "erased_by" if version >= 2 else "NULL::bigint"
    return f"{COLUMNS}, {erased}", f"{CHAIN_COLUMNS}, {erased}"


INSERT_COPIES = (
    "INSERT INTO events (position, event_id, aggregate_id, aggregate_type, version, "
    "type, schema_version, data, metadata, occurred_at, recorded_at, data_hash, hash, erased_by) "
    "SELECT p, e, ai, at, v, t, sv, d::json, m::json, o, r, dh, h, eb "
    "FROM json_to_recordset(%s::json) AS x(p bigint, e uuid, ai text, at text, v bigint, "
    "t text, sv bigint, d text, m text, o timestamptz, r timestamptz, dh text, h text, eb bigint)"
)
"""Rows copied from another store, erased_by included (store.copying)."""
ROW_KEYS = ("p", "e", "ai", "at", "v", "t", "sv", "d", "m", "o", "r", "dh", "h")
"""Short names of the Row fields in the JSON that INSERT_EVENTS unpacks."""
INSERT_EVENTS = (
    "e AS (INSERT INTO events (position, event_id, aggregate_id, aggregate_type, version, "
    "type, schema_version, data, metadata, occurred_at, recorded_at, data_hash, hash) "
    "SELECT p, e, ai, at, v, t, sv, d::json, m::json, o, r, dh, h "
    "FROM json_to_recordset(%s::json) AS x(p bigint, e uuid, ai text, at text, v bigint, "
    "t text, sv bigint, d text, m text, o timestamptz, r timestamptz, dh text, h text))"
)
AGGREGATE_COLUMNS = (
    "aggregate_id, aggregate_type, version, first_position, last_position, created_at, updated_at"
)
UPSERT_AGGREGATE = (
    f"a AS (INSERT INTO aggregates ({AGGREGATE_COLUMNS}) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, "
    "last_position = excluded.last_position, updated_at = excluded.updated_at)"
)
COUNTS_TABLE = SCHEMA[SCHEMA.index("CREATE TABLE sss_counts") :].split(";\n")[0]
_ADD_COUNTS_SET = (
    "ON CONFLICT (type, aggregate_type, system) DO UPDATE SET "
    "events = k.events + excluded.events, aggregates = k.aggregates + excluded.aggregates, "
    "first_occurred_at = least(k.first_occurred_at, excluded.first_occurred_at), "
    "last_occurred_at = greatest(k.last_occurred_at, excluded.last_occurred_at)"
)
ADD_COUNTS = (
    "c AS (INSERT INTO sss_counts AS k "
    "SELECT t, at, s, n, a, f::timestamptz, l::timestamptz "
    "FROM json_to_recordset(%s::json) AS x(t text, at text, s integer, n bigint, a bigint, "
    f"f text, l text) {_ADD_COUNTS_SET})"
)
"""The kept counts of a batch (store.counting.batch_counts): one upsert per key."""
COUNT_EVENTS = (
    "SELECT type, coalesce(aggregate_type, ''), (aggregate_id IS NULL)::integer, count(*), "
    "count(*) FILTER (WHERE version = 1), min(occurred_at), max(occurred_at) "
    "FROM events GROUP BY 1, 2, 3"
)
"""The counts from the log itself: to build them once, and to read a store of
format 1 opened read-only."""
OLD_APPEND_FUNCTIONS = ("sss_append_1",)
"""Append functions of earlier formats, dropped at the upgrade: a writer of an
earlier release would append without keeping the counts."""
LOCK_HEAD = "SELECT position, hash, recorded_at FROM sss_head FOR UPDATE"
# One text parameter: dumping a Python list as an array costs far more.
FIND_EVENTS = (
    f"SELECT {COLUMNS}, erased_by FROM events "
    "WHERE event_id = ANY(string_to_array(%s, ',')::uuid[])"
)
AGGREGATE_VERSION = "SELECT aggregate_type, version FROM aggregates WHERE aggregate_id = %s"
# Bisections over positions (PostgresBackend.first_position_since and
# last_position_until): each step halves [lo, hi] by one primary key lookup;
# the last row has lo = hi, and no such row means a position is missing.
FIRST_SINCE = (
    "WITH RECURSIVE b(lo, hi) AS ("
    " SELECT 1::bigint, position + 1 FROM sss_head"
    " UNION ALL"
    " SELECT CASE WHEN e.recorded_at < %s THEN m.m + 1 ELSE b.lo END,"
    " CASE WHEN e.recorded_at < %s THEN b.hi ELSE m.m END"
    " FROM b CROSS JOIN LATERAL (SELECT (b.lo + b.hi) / 2 AS m) m"
    " JOIN events e ON e.position = m.m WHERE b.lo < b.hi)"
    " SELECT b.lo, h.position FROM b, sss_head h WHERE b.lo >= b.hi"
)
LAST_UNTIL = (
    "WITH RECURSIVE b(lo, hi) AS ("
    " SELECT 0::bigint, position FROM sss_head"
    " UNION ALL"
    " SELECT CASE WHEN e.recorded_at <= %s THEN m.m ELSE b.lo END,"
    " CASE WHEN e.recorded_at <= %s THEN b.hi ELSE m.m - 1 END"
    " FROM b CROSS JOIN LATERAL (SELECT (b.lo + b.hi + 1) / 2 AS m) m"
    " JOIN events e ON e.position = m.m WHERE b.lo < b.hi)"
    " SELECT b.lo, h.position FROM b, sss_head h WHERE b.lo >= b.hi"
)


def ensure_schema(conn: Conn, display: str, readonly: bool) -> tuple[str, str, int, int]:
    """The store's schema, database, server version and format version;
    creates the tables when the schema is empty (and the schema itself when
    missing) and upgrades an older format, unless read-only."""
    row = conn.execute(
        "SELECT current_schema(), current_database(), current_setting('search_path')"
    ).fetchone()
    assert row is not None
    schema, database, search_path = row
    if schema is None:
        wanted = next(
            (
                part.strip().strip('"')
                for part in search_path.split(",")
                if part.strip() and part.strip() != '"$user"'
            ),
            "public",
        )
        if readonly:
            raise NotFoundError(f"no event store at {display}: schema {wanted} does not exist")
        # Another process may create it between the check and the create.
        with contextlib.suppress(pgerrors.UniqueViolation, pgerrors.DuplicateSchema):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(wanted)))
        schema = wanted
    version = conn.info.server_version
    found = _check_tables(conn, schema, display)
    if found and (readonly or (found >= FORMAT_VERSION and has_counts_table(conn))):
        return schema, database, version, found
    if found:
        _upgrade(conn, schema)
        return schema, database, version, FORMAT_VERSION
    if readonly:
        raise NotFoundError(f"no event store at {display} (schema {schema} is empty)")
    with conn.transaction():
        # Two processes creating the same store: the second waits, then finds it.
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (schema,))
        if not _check_tables(conn, schema, display):
            conn.execute(SCHEMA)
            conn.cursor().executemany(
                "INSERT INTO sss_meta VALUES (%s, %s)",
                [
                    ("format", FORMAT),
                    ("format_version", str(FORMAT_VERSION)),
                    ("store_id", str(uuid.uuid4())),
                    ("created_at", format_time(datetime.now(UTC))),
                ],
            )
    return schema, database, version, FORMAT_VERSION


def _upgrade(conn: Conn, schema: str) -> None:
    """Version 1 to 2, in one transaction, unless another process did it:
    the erasure column and its guard, then the kept counts built from the
    log with appends held off (the head row's lock), and the append
    functions of earlier releases dropped (their writers would append
    without keeping the counts)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (schema,))
        conn.execute("SELECT position FROM sss_head FOR UPDATE")
        row = conn.execute("SELECT value FROM sss_meta WHERE key = 'format_version'").fetchone()
        if row is None or int(row[0]) < 2:
            conn.execute(UPGRADE_1)
        if not has_counts_table(conn):
            conn.execute(COUNTS_TABLE)
            conn.execute(f"INSERT INTO sss_counts {COUNT_EVENTS}")
        # A schema with no format_version row (read as format 0) gets one.
        conn.execute(
            "INSERT INTO sss_meta VALUES ('format_version', '2') "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        for name in OLD_APPEND_FUNCTIONS:
            conn.execute(
                sql.SQL("DROP FUNCTION IF EXISTS {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            )


def has_counts_table(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('sss_counts') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _check_tables(conn: Conn, schema: str, display: str) -> int:
    """The format version when the schema holds a store; 0 when it is empty."""
    tables = {
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)
        ).fetchall()
    }
    if "sss_meta" in tables:
        meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM sss_meta").fetchall())
        if meta.get("format") != FORMAT:
            raise CorruptStoreError(
                f"{display} is not an event store (format {meta.get('format')!r})"
            )
        found = int(meta.get("format_version", "0"))
        if found > FORMAT_VERSION:
            raise CorruptStoreError(
                f"{display} was written by a newer version (format "
                f"{meta['format_version']}); upgrade to read it"
            )
        return max(found, 1)
    if tables:
        raise CorruptStoreError(
            f"schema {schema} of {display} holds other tables "
            f"({', '.join(sorted(tables)[:5])}), not an event store; give the store a "
            "schema of its own, e.g. ?options=-csearch_path%3Dsss"
        )
    return 0

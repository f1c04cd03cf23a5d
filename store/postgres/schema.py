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
"""1: the first format. 2: the kept counts (``sss_counts``, store.counting),
built once from the log when a version 1 store is first opened for writing."""

# Text columns compare in code point order (COLLATE "C"), as in SQLite and
# Python, whatever the database's collation.
SCHEMA = f"""
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
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_aggregate_id_version_key UNIQUE (aggregate_id, version),
    CHECK ((aggregate_id IS NULL) = (version IS NULL))
);
CREATE INDEX events_by_type ON events (type, position);
CREATE INDEX events_by_aggregate_type ON events (aggregate_type, position);
CREATE INDEX events_by_recorded_at ON events (recorded_at, position);
CREATE FUNCTION sss_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only: % is refused', TG_OP;
END $$;
CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events
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
FIND_EVENTS = f"SELECT {COLUMNS} FROM events WHERE event_id = ANY(string_to_array(%s, ',')::uuid[])"
AGGREGATE_VERSION = "SELECT aggregate_type, version FROM aggregates WHERE aggregate_id = %s"
APPEND_FUNCTION_NAME = "sss_append_2"
"""The function's name carries its version: a release that changes it installs
a new name beside the old one, so writers of both releases keep working."""


def append_call(schema: str) -> sql.Composed:
    """The statement that appends: the function of *this* schema, by name."""
    return sql.SQL(
        "SELECT status, first_position, current_version, stored_type, recorded_text, hashes "
        "FROM {}.{}(%s::json, %s::text, %s::text, %s::bigint, %s::timestamptz, %s::text, "
        "%s::text)"
    ).format(sql.Identifier(schema), sql.Identifier(APPEND_FUNCTION_NAME))


# A whole append in one statement, for PostgresBackend.append_direct. It
# restates, on the server, the rules EventStore._append applies (the contract
# suite runs every test through both): under the head row lock it refuses
# nothing itself but reports what the caller must decide ('stored': the
# event_id constraint found an id of the batch stored, take the general path;
# 'type': the aggregate has another type; 'conflict': the expected version
# does not match), clamps recorded_at so it never decreases, builds the hash
# chain exactly as store.codec.chain_hash does, and writes the rows, the
# aggregate's row, the head row and the NOTIFY.
# The body of each hash is the canonical JSON array
#   [position, event_id, aggregate_id, aggregate_type, version, <middle>,
#    occurred_at, recorded_at]
# where <middle> (type, schema_version, data_hash, metadata) comes from the
# client (store.codec.chain_middle) and names are encoded with to_json, which
# escapes text exactly as the client's encoder does.
# The function's search_path is fixed to its own schema (ensure_append_function
# checks it on every open, so a renamed schema gets it corrected): whoever calls
# it, it writes only into the store it belongs to.
APPEND_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.{name}(
    p_rows json, p_aggregate_id text, p_aggregate_type text, p_expected bigint,
    p_recorded timestamptz, p_recorded_text text, p_channel text,
    OUT status text, OUT first_position bigint, OUT current_version bigint,
    OUT stored_type text, OUT recorded_text text, OUT hashes text[])
LANGUAGE plpgsql SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    head_position bigint;
    head_recorded timestamptz;
    prev text;
    recorded timestamptz := p_recorded;
    id_json text;
    type_json text;
    n integer := 0;
    r record;
    violated text;
    found_stored boolean;
    found_rows bigint;
BEGIN
    SELECT h.position, h.hash, h.recorded_at INTO head_position, prev, head_recorded
        FROM sss_head h FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the sss_head row is missing' USING ERRCODE = 'data_corrupted';
    END IF;
    current_version := 0;
    stored_type := p_aggregate_type;
    IF p_aggregate_id IS NOT NULL THEN
        -- EXECUTE plans each lookup afresh: a plan cached while the table was
        -- small would scan it whole for as long as the session lives.
        EXECUTE 'SELECT aggregate_type, version FROM aggregates WHERE aggregate_id = $1'
            INTO r USING p_aggregate_id;
        GET DIAGNOSTICS found_rows = ROW_COUNT;
        IF found_rows = 1 THEN
            current_version := r.version;
            stored_type := r.aggregate_type;
            IF p_aggregate_type IS NOT NULL AND r.aggregate_type IS DISTINCT FROM p_aggregate_type
            THEN
                status := 'type';
            END IF;
        END IF;
        IF status IS NULL AND p_expected IS NOT NULL AND p_expected <> current_version THEN
            status := 'conflict';
        END IF;
        IF status IS NOT NULL THEN
            -- A retry of a stored batch is answered before its checks, as the
            -- general path does: find out whether it is one.
            EXECUTE 'SELECT EXISTS (SELECT 1 FROM events WHERE event_id = ANY ($1))'
                INTO found_stored
                USING ARRAY(SELECT (x->>'e')::uuid FROM json_array_elements(p_rows) x);
            IF found_stored THEN
                status := 'stored';
            END IF;
            RETURN;
        END IF;
    END IF;
    IF head_recorded IS NOT NULL AND head_recorded > p_recorded THEN
        recorded := head_recorded;
        recorded_text := to_char(head_recorded AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
    ELSE
        recorded_text := p_recorded_text;
    END IF;
    id_json := coalesce(to_json(p_aggregate_id)::text, 'null');
    type_json := coalesce(to_json(stored_type)::text, 'null');
    hashes := '{{}}';
    FOR r IN SELECT x.e, x.o, x.x
             FROM ROWS FROM (json_to_recordset(p_rows) AS (e text, o text, x text))
                  WITH ORDINALITY AS x(e, o, x, i)
             ORDER BY x.i
    LOOP
        n := n + 1;
        prev := encode(sha256(convert_to(
            prev || E'\n[' || (head_position + n) || ',"' || r.e || '",' || id_json || ','
            || type_json || ','
            || CASE WHEN p_aggregate_id IS NULL THEN 'null'
                    ELSE (current_version + n)::text END
            || ',' || r.x || ',"' || coalesce(r.o, recorded_text) || '","'
            || recorded_text || '"]', 'UTF8')), 'hex');
        hashes[n] := prev;
    END LOOP;
    BEGIN
        INSERT INTO events (position, event_id, aggregate_id, aggregate_type, version, type,
                            schema_version, data, metadata, occurred_at, recorded_at,
                            data_hash, hash)
            SELECT head_position + x.i, x.e::uuid, p_aggregate_id, stored_type,
                   CASE WHEN p_aggregate_id IS NULL THEN NULL ELSE current_version + x.i END,
                   x.t, x.sv, x.d::json, x.m::json, coalesce(x.o::timestamptz, recorded),
                   recorded, x.dh, x.h
            FROM ROWS FROM (json_to_recordset(p_rows) AS (e text, t text, sv bigint, d text,
                                                          m text, o text, dh text),
                            unnest(hashes))
                 WITH ORDINALITY AS x(e, t, sv, d, m, o, dh, h, i);
    EXCEPTION WHEN unique_violation THEN
        -- The event_id constraint is the idempotency check: one of these
        -- events is stored, and the general path decides what that means.
        GET STACKED DIAGNOSTICS violated = CONSTRAINT_NAME;
        IF violated = 'events_event_id_key' THEN
            status := 'stored';
            hashes := NULL;
            RETURN;
        END IF;
        RAISE;
    END;
    IF p_aggregate_id IS NOT NULL THEN
        INSERT INTO aggregates VALUES (p_aggregate_id, stored_type, current_version + n,
                                       head_position + 1, head_position + n, recorded,
                                       recorded)
        ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version,
            last_position = excluded.last_position, updated_at = excluded.updated_at;
    END IF;
    -- The kept counts (store.counting.batch_counts restates this in Python):
    -- one upsert per event type of the batch, no trigger per row.
    INSERT INTO sss_counts AS k
        SELECT x.t, coalesce(stored_type, ''), (p_aggregate_id IS NULL)::integer, count(*),
               count(*) FILTER (WHERE p_aggregate_id IS NOT NULL
                                AND current_version + x.i = 1),
               min(coalesce(x.o::timestamptz, recorded)),
               max(coalesce(x.o::timestamptz, recorded))
        FROM ROWS FROM (json_to_recordset(p_rows) AS (t text, o text)) WITH ORDINALITY
             AS x(t, o, i)
        GROUP BY x.t ORDER BY x.t
    ON CONFLICT (type, aggregate_type, system) DO UPDATE SET
        events = k.events + excluded.events, aggregates = k.aggregates + excluded.aggregates,
        first_occurred_at = least(k.first_occurred_at, excluded.first_occurred_at),
        last_occurred_at = greatest(k.last_occurred_at, excluded.last_occurred_at);
    -- End of the kept counts.
    UPDATE sss_head SET position = head_position + n, hash = prev, recorded_at = recorded;
    PERFORM pg_notify(p_channel, (head_position + n)::text);
    first_position := head_position + 1;
    status := 'ok';
END $fn$;
"""


def ensure_schema(conn: Conn, display: str, readonly: bool) -> tuple[str, str, int]:
    """The store's schema, database and server version; creates the tables when
    the schema is empty (and the schema itself when missing), unless read-only."""
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
    if _check_tables(conn, schema, display):
        if not readonly:
            _add_counts_table(conn, schema)
        return schema, database, version
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
    return schema, database, version


def has_counts_table(conn: Conn) -> bool:
    row = conn.execute("SELECT to_regclass('sss_counts') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _add_counts_table(conn: Conn, schema: str) -> None:
    """Upgrade format 1 to 2: build the kept counts from the log, once, with
    appends held off (the head row's lock), and drop the append functions of
    earlier formats in the same transaction."""
    if has_counts_table(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (schema,))
        conn.execute("SELECT position FROM sss_head FOR UPDATE")
        if has_counts_table(conn):
            return
        conn.execute(COUNTS_TABLE)
        conn.execute(f"INSERT INTO sss_counts {COUNT_EVENTS}")
        conn.execute(
            "UPDATE sss_meta SET value = %s WHERE key = 'format_version'", (str(FORMAT_VERSION),)
        )
        for name in OLD_APPEND_FUNCTIONS:
            conn.execute(
                sql.SQL("DROP FUNCTION IF EXISTS {}.{}").format(
                    sql.Identifier(schema), sql.Identifier(name)
                )
            )


def ensure_append_function(conn: Conn, schema: str) -> bool:
    """Install the append function in the store's schema when it is missing
    or its ``search_path`` is not this schema (the schema was renamed);
    False when it cannot be (a role without the right, a read-only server):
    the general append path then does all appends."""
    if _append_function_ok(conn, schema):
        return True
    try:
        with conn.transaction():
            # Concurrent CREATE OR REPLACE of one function fails; take turns.
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 1))", (schema,))
            if not _append_function_ok(conn, schema):
                quoted = sql.Identifier(schema).as_string(conn)
                name = sql.Identifier(APPEND_FUNCTION_NAME).as_string(conn)
                conn.execute(APPEND_FUNCTION.format(schema=quoted, name=name).encode())
    except (pgerrors.InsufficientPrivilege, pgerrors.ReadOnlySqlTransaction):
        return False
    return True


def _append_function_ok(conn: Conn, schema: str) -> bool:
    """The function is there, with this schema as its search_path."""
    row = conn.execute(
        "SELECT p.proconfig @> ARRAY['search_path=' || quote_ident(n.nspname) || ', pg_temp'] "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = %s AND p.proname = %s",
        (schema, APPEND_FUNCTION_NAME),
    ).fetchone()
    return bool(row and row[0])


def _check_tables(conn: Conn, schema: str, display: str) -> bool:
    """True when the schema holds a store; False when it is empty."""
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
        if int(meta.get("format_version", "0")) > FORMAT_VERSION:
            raise CorruptStoreError(
                f"{display} was written by a newer version (format "
                f"{meta['format_version']}); upgrade to read it"
            )
        return True
    if tables:
        raise CorruptStoreError(
            f"schema {schema} of {display} holds other tables "
            f"({', '.join(sorted(tables)[:5])}), not an event store; give the store a "
            "schema of its own, e.g. ?options=-csearch_path%3Dsss"
        )
    return False

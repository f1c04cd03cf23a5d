"""The one-statement append of a PostgreSQL store: the PL/pgSQL function
the store installs in its own schema, and the statement that calls it."""

from __future__ import annotations

from psycopg import errors as pgerrors
from psycopg import sql

from .schema import Conn

__all__ = ["APPEND_FUNCTION_NAME", "append_call", "ensure_append_function"]

APPEND_FUNCTION_NAME = "sss_append_2"
"""The function's name carries its version: a release that changes it installs
a new name beside the old one, so writers of both releases keep working (a
store made by an older release gets this one on its first writable open)."""


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
#
# Appends queue for the head row lock, which is held until the commit's WAL
# flush, so the time under it bounds many writers (the profile is in the
# docstring of store.postgres). The function therefore works in three steps:
#   1. before the lock, what needs no head: unpack the JSON rows once into
#      arrays, with data and metadata checked as json, and the parts of each
#      hash body that do not depend on the head;
#   2. THE HOT SECTION, under the lock: head and aggregate, the chain (one
#      sha256 per event over the prepared parts), one set-based INSERT, the
#      aggregate's row, the head row, the NOTIFY;
#   3. the commit, by the caller's statement ending.
# Keep work out of the hot section unless it needs the head.
#
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
    ids uuid[];
    types text[];
    schema_versions bigint[];
    datas json[];
    metas json[];
    occurred timestamptz[];
    data_hashes text[];
    befores text[];
    afters text[];
    id_json text := coalesce(to_json(p_aggregate_id)::text, 'null');
    n integer;
    head_position bigint;
    head_recorded timestamptz;
    prev text;
    recorded timestamptz := p_recorded;
    type_json text;
    r record;
    violated text;
    found_stored boolean;
    found_rows bigint;
BEGIN
    -- 1. Before the lock: the rows unpacked and checked, and the parts of
    -- each hash body around the type and version: ',"<event_id>",<aggregate_id>,'
    -- before them and ',<middle>,"<occurred>","<recorded>"]' after.
    -- The subquery's order is the order every aggregate sees: one sort, and
    -- the arrays line up with each other and with the caller's list.
    SELECT array_agg(x.e::uuid), array_agg(x.t), array_agg(x.sv), array_agg(x.d::json),
           array_agg(x.m::json), array_agg(x.o::timestamptz), array_agg(x.dh),
           array_agg(',"' || x.e || '",' || id_json || ','),
           array_agg(',' || x.x || ',"' || coalesce(x.o, p_recorded_text) || '","'
                     || p_recorded_text || '"]')
        INTO ids, types, schema_versions, datas, metas, occurred, data_hashes, befores,
             afters
        FROM (SELECT * FROM ROWS FROM (json_to_recordset(p_rows) AS (
                                 e text, t text, sv bigint, d text, m text, o text, dh text,
                                 x text))
                  WITH ORDINALITY AS j(e, t, sv, d, m, o, dh, x, i)
              ORDER BY j.i) x;
    n := coalesce(cardinality(ids), 0);
    recorded_text := p_recorded_text;

    -- 2. THE HOT SECTION: from the head row lock to the end of the function
    -- (the lock is released when the caller's transaction commits).
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
                INTO found_stored USING ids;
            IF found_stored THEN
                status := 'stored';
            END IF;
            recorded_text := NULL;
            RETURN;
        END IF;
    END IF;
    IF head_recorded IS NOT NULL AND head_recorded > p_recorded THEN
        -- The clock stepped back: the head's time, and the hash bodies anew.
        recorded := head_recorded;
        recorded_text := to_char(head_recorded AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
        afters := ARRAY(SELECT ',' || x.x || ',"' || coalesce(x.o, recorded_text) || '","'
                               || recorded_text || '"]'
                        FROM ROWS FROM (json_to_recordset(p_rows) AS (o text, x text))
                             WITH ORDINALITY AS x(o, x, i)
                        ORDER BY x.i);
    END IF;
    type_json := coalesce(to_json(stored_type)::text, 'null');
    hashes := '{{}}';
    FOR k IN 1..n LOOP
        prev := encode(sha256(convert_to(
            prev || E'\n[' || (head_position + k) || befores[k] || type_json || ','
            || CASE WHEN p_aggregate_id IS NULL THEN 'null'
                    ELSE (current_version + k)::text END
            || afters[k], 'UTF8')), 'hex');
        hashes[k] := prev;
    END LOOP;
    BEGIN
        INSERT INTO events (position, event_id, aggregate_id, aggregate_type, version, type,
                            schema_version, data, metadata, occurred_at, recorded_at,
                            data_hash, hash)
            SELECT head_position + x.i, x.e, p_aggregate_id, stored_type,
                   CASE WHEN p_aggregate_id IS NULL THEN NULL ELSE current_version + x.i END,
                   x.t, x.sv, x.d, x.m, coalesce(x.o, recorded), recorded, x.dh, x.h
            FROM unnest(ids, types, schema_versions, datas, metas, occurred,
                        data_hashes, hashes)
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
               min(coalesce(x.o, recorded)), max(coalesce(x.o, recorded))
        FROM unnest(types, occurred) WITH ORDINALITY AS x(t, o, i)
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
    -- End of the hot section.
END $fn$;
"""


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

-- The append function as the previous release installs it (sss_append_1),
-- kept to show that a store it made is upgraded in place and that writers of
-- both releases write one chain (tests/store/test_postgres.py).

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
    hashes := '{}';
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
    UPDATE sss_head SET position = head_position + n, hash = prev, recorded_at = recorded;
    PERFORM pg_notify(p_channel, (head_position + n)::text);
    first_position := head_position + 1;
    status := 'ok';
END $fn$;

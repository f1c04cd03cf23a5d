"""The PostgreSQL backend, a package: :mod:`.backend` opens connections and
runs the backend's calls, :mod:`.writing` holds the write transaction,
:mod:`.schema` the schema and the append function, :mod:`.errors` the
translation of ``psycopg`` errors and :mod:`.conninfo` connection strings.

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

    A plain append runs as one statement, ``sss_append_2`` (a PL/pgSQL
    function installed in the store's schema, see :mod:`store.postgres.schema`), in
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

Many writers, what bounds them:
    The head row lock serialises appends from the lock to the end of the
    commit, WAL flush included (releasing it before the flush would let a
    reader see an event a crash could still take back). Sampling
    ``pg_stat_activity`` under 8 writers (``benchmarks/concurrency_bench.py
    --sample-waits``) shows about 7 of the 8 server backends waiting for the
    lock (``Lock:transactionid``, ``Lock:tuple``), the holder running the
    function or in ``IO:WALSync`` (about one part CPU to two parts flush on
    the shared machine's disk, where a commit's ``fdatasync`` takes 1-4 ms),
    and the rest idle while their clients build the next batch. Timed inside
    the function (100 events, ``clock_timestamp`` marks and ``auto_explain``),
    the previous version held the lock for about 1.8 ms: 0.6 ms unpacking the
    JSON rows and building the chain, 1.05 ms in the INSERT (0.45 ms of it the
    three secondary indexes), 0.1 ms for the aggregate and head rows. So
    ``sss_append_2`` unpacks and checks the rows and builds every part of the
    hash bodies that needs no head *before* taking the lock (about 0.6 ms
    that writers spend side by side), and under it runs only the chain
    (0.35 ms), one set-based INSERT from the unpacked arrays and the small
    updates; new stores keep no ``recorded_at`` index (time lookups bisect
    positions on the primary key, as on SQLite), which takes 0.15 ms more off
    each 100-event insert: about 1.3 ms under the lock in all, 0.7x. The WAL
    flush stays: each 100-event commit writes about 80 KB of WAL, roughly
    half heap rows and half index entries. ``json`` columns cost nothing
    under the lock (their check runs before it; ``jsonb`` would break exact
    hashes, below) and the append-only triggers fire on UPDATE, DELETE and
    TRUNCATE only, never on INSERT. With the flush taken out altogether (a
    probe with ``synchronous_commit = off``, which the store never sets: a
    reader could see an event a crash then takes back), 8 writers on the
    loaded 2-core machine gained only about 10%: the CPUs become the bound,
    about 20 µs per event in the writer process and 10 µs in its backend.

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

from .backend import PostgresBackend
from .conninfo import redact, schema_of

__all__ = ["PostgresBackend", "redact", "schema_of"]

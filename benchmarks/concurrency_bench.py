"""Append throughput with 1, 4 and 8 concurrent writer processes, SQLite and PostgreSQL.

Run from the repository root::

    .venv/bin/python benchmarks/concurrency_bench.py               # ~4 minutes
    .venv/bin/python benchmarks/concurrency_bench.py --quick       # smoke run
    .venv/bin/python benchmarks/concurrency_bench.py --postgres postgresql://u@host/db

Each writer is its own process with its own ``EventStore`` (so its own
connection, or own SQLite handle), appending batches of 100 events, one
transaction each, to an aggregate of its own with the expected version checked.
All writers start together and stop at the same deadline; throughput is every
event committed divided by the wall time. Each configuration gets a fresh store
(a new file; a new PostgreSQL database, dropped afterwards) and is checked after
the run: positions gapless, the hash chain verified, nothing lost.

Ratios are N writers against 1 writer on the same backend. Targets: on
PostgreSQL 8 writers sustain at least the throughput of 1 (the head row lock
serialises appends, but nothing collapses); on SQLite 8 writers keep at least
0.8x of 1 (the single write lock is shared without a busy-wait collapse).

What bounds the ratios: appends are serialised by design (gapless positions
and the hash chain need the previous head), so N writers can only overlap the
work outside the write lock. On SQLite the lock covers the hash chain (Python),
the insert and the commit's fsync. On PostgreSQL a plain append is one
statement: the server takes the head row lock, builds the chain, inserts and
commits, so the lock is never held across a round trip or while a client
process waits for a CPU, and the writers' own work (building and encoding
batches) and their round trips overlap. On a small machine the writers'
processes and the server's backends compete for the same cores; compare with
the peer in the same run.

The peer is the ``eventsourcing`` library (on by default when it is
installed; ``--no-peer`` skips it): it makes notification ids gapless the same
way in spirit, with ``LOCK TABLE ... IN EXCLUSIVE MODE`` on PostgreSQL and
SQLite's write lock. Two workloads (``--workloads``):

- ``rows``: this store appends ``NewEvent`` lists; the peer is handed
  ready-made ``StoredEvent`` rows for ``ApplicationRecorder.insert_events``.
- ``domain``, like for like: both build from domain objects in each writer
  process. This store's ``Ticker`` applies each event to its state and keeps
  it as a ``NewEvent`` until saved; the peer's aggregate methods (``@event``)
  make its events and ``Application.save`` maps them (JSON transcoder) and
  records them (``eventsourcing.postgres`` / ``eventsourcing.sqlite``).

Targets for PostgreSQL, 8 writers: ``domain`` at least 1.5x this store's own
single writer and 1.3x the peer's 8 writers; ``rows`` at least 0.9x the peer.

On PostgreSQL each run gets a database of its own (dropped afterwards);
``--sample-waits`` samples ``pg_stat_activity`` of that database during the
runs with the most writers and prints what the server backends spent their
time on (running, waiting for the head row lock, for the WAL flush, or for
their client).

Threads (``--threads 16``, run after the processes; ``--threads 0`` skips
them): the shape of a web service. 16 threads in one process, each appending
one durable event per call to an aggregate of its own with its expected
version, for ``--seconds``. Rows: this store with group commit (one
``EventStore`` shared by the threads, its default), the same with
``group_commit=False`` (each append its own transaction and fsync: how it
was before), ``eventsourcing`` (one ``Application`` shared by the threads,
``app.save`` of one triggered event), and raw sqlite3 with a connection per
thread (``BEGIN IMMEDIATE``, the expected-version ``SELECT``, one ``INSERT``,
``COMMIT``). Each prints events/s and the median and p99 latency of a call.
On PostgreSQL: the shared store with and without group commit, and a store
per thread (16 connections, where the server's own group commit can act).
Targets: with group commit >= 4x eventsourcing, p99 < 20 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from store import EventStore, LockedError, NewEvent

BATCH = 100
READY = "ready"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass
class Result:
    system: str
    backend: str
    writers: int
    events: int
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


# -- workers (module level, so spawned processes can import them) --------------


def _ours(location: str, writer: int, start: Any, deadline_box: Any, out: Any) -> None:
    events = errors = 0
    with EventStore(location, timeout=60.0) as es:
        aggregate = f"writer-{writer}-{uuid.uuid4().hex[:6]}"
        version = 0
        payload = {"writer": writer, "text": "x" * 60, "n": 0}
        out.put(READY)
        start.wait()
        deadline = deadline_box.value
        while time.time() < deadline:
            batch = [
                NewEvent("Ticked", {**payload, "n": version + i}, {"actor": f"w{writer}"})
                for i in range(BATCH)
            ]
            try:
                es.append(batch, aggregate_id=aggregate, expected_version=version)
            except LockedError:
                errors += 1
                continue
            version += BATCH
            events += BATCH
    out.put((events, errors))


class Ticker:
    """A domain object of this store's like-for-like workload: its methods
    apply an event to its state and keep it as a ``NewEvent`` until saved,
    as an eventsourcing aggregate keeps its pending events."""

    def __init__(self, aggregate_id: str) -> None:
        self.aggregate_id = aggregate_id
        self.version = 0
        self.saved = 0
        self.state: dict[str, Any] = {}
        self.pending: list[NewEvent] = []

    def tick(self, writer: int, text: str, n: int) -> None:
        data = {"writer": writer, "text": text, "n": n}
        self.state.update(data)
        self.version += 1
        self.pending.append(NewEvent("Ticked", data, {"actor": f"w{writer}"}))

    def save(self, es: EventStore) -> int:
        batch, self.pending = self.pending, []
        es.append(batch, aggregate_id=self.aggregate_id, aggregate_type="Ticker",
                  expected_version=self.saved)  # fmt: skip
        self.saved = self.version
        return len(batch)


def _ours_domain(location: str, writer: int, start: Any, deadline_box: Any, out: Any) -> None:
    events = errors = 0
    with EventStore(location, timeout=60.0) as es:
        ticker = Ticker(f"writer-{writer}-{uuid.uuid4().hex[:6]}")
        out.put(READY)
        start.wait()
        deadline = deadline_box.value
        while time.time() < deadline:
            for _ in range(BATCH):
                ticker.tick(writer, "x" * 60, ticker.version)
            try:
                events += ticker.save(es)
            except LockedError:
                errors += 1
                ticker.version = ticker.saved  # the events were not stored
    out.put((events, errors))


def _peer_domain(location: str, writer: int, start: Any, deadline_box: Any, out: Any) -> None:
    from eventsourcing.domain import Aggregate, event

    class PeerTicker(Aggregate):
        @event("Started")
        def __init__(self, writer: int) -> None:
            self.writer = writer
            self.n = 0

        @event("Ticked")
        def tick(self, writer: int, text: str, n: int) -> None:
            self.writer, self.text, self.n = writer, text, n

    app = _peer_app(location, create=False)
    events = errors = 0
    ticker = PeerTicker(writer)
    app.save(ticker)
    out.put(READY)
    start.wait()
    deadline = deadline_box.value
    try:
        while time.time() < deadline:
            for _ in range(BATCH):
                ticker.tick(writer, "x" * 60, ticker.version)
            try:
                app.save(ticker)
            except Exception:
                errors += 1
                ticker = app.repository.get(ticker.id)
                continue
            events += BATCH
    finally:
        app.close()
    out.put((events, errors))


def _peer_app(location: str, create: bool) -> Any:
    """An eventsourcing ``Application`` on the location: aggregates, its
    mapper (JSON transcoder) and its recorder, as a user of it would have."""
    from eventsourcing.application import Application

    if location.startswith("postgresql://"):
        from psycopg.conninfo import conninfo_to_dict

        params = {k: str(v) for k, v in conninfo_to_dict(location).items() if v is not None}
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": params["dbname"],
            "POSTGRES_HOST": params.get("host", "127.0.0.1"),
            "POSTGRES_PORT": params.get("port", "5432"),
            "POSTGRES_USER": params.get("user", "postgres"),
            "POSTGRES_PASSWORD": params.get("password", ""),
            "POSTGRES_SCHEMA": params["options"].split("search_path=")[1],
            "POSTGRES_POOL_SIZE": "1",
            "POSTGRES_MAX_OVERFLOW": "0",
        }
    else:
        env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": location}
    env["CREATE_TABLE"] = "yes" if create else "no"
    return Application(env=env)


def _peer(location: str, writer: int, start: Any, deadline_box: Any, out: Any) -> None:
    from eventsourcing.persistence import StoredEvent

    recorder, close = _peer_recorder(location, create=False)
    events = errors = 0
    aggregate = uuid.uuid4()
    version = 0
    state = b'{"writer":%d,"text":"%s","n":0}' % (writer, b"x" * 60)
    out.put(READY)
    start.wait()
    deadline = deadline_box.value
    try:
        while time.time() < deadline:
            batch = [StoredEvent(aggregate, version + i + 1, "Ticked", state) for i in range(BATCH)]
            try:
                recorder.insert_events(batch)
            except Exception:
                errors += 1
                continue
            version += BATCH
            events += BATCH
    finally:
        close()
    out.put((events, errors))


def _peer_recorder(location: str, create: bool) -> tuple[Any, Callable[[], None]]:
    if location.startswith("postgresql://"):
        from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
        from psycopg.conninfo import conninfo_to_dict

        params = {k: str(v) for k, v in conninfo_to_dict(location).items() if v is not None}
        schema = params["options"].split("search_path=")[1]
        datastore = PostgresDatastore(
            dbname=params["dbname"],
            host=params.get("host", "127.0.0.1"),
            port=params.get("port", "5432"),
            user=params.get("user", "postgres"),
            password=params.get("password", ""),
            schema=schema,
            pool_size=1,
            max_overflow=0,
        )
        recorder = PostgresApplicationRecorder(datastore, events_table_name="stored_events")
        if create:
            recorder.create_table()
        return recorder, datastore.close
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

    sqlite_store = SQLiteDatastore(location)
    sqlite_recorder = SQLiteApplicationRecorder(sqlite_store)
    if create:
        sqlite_recorder.create_table()
    return sqlite_recorder, sqlite_store.close


# -- locations -------------------------------------------------------------------


@contextmanager
def sqlite_location(root: str) -> Iterator[str]:
    path = os.path.join(root, f"{uuid.uuid4().hex}.db")
    try:
        yield path
    finally:
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


@contextmanager
def postgres_location(url: str) -> Iterator[str]:
    """A fresh database (dropped afterwards) with a schema for the store, so
    that each run starts empty and its server backends can be told apart
    from other users of the server (``pg_stat_activity.datname``)."""
    import urllib.parse

    import psycopg
    from psycopg import sql

    name = f"sss_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    parts = urllib.parse.urlsplit(url)
    query = "&".join(q for q in (parts.query, f"options=-csearch_path%3D{name}") if q)
    location = urllib.parse.urlunsplit(parts._replace(path=f"/{name}", query=query))
    try:
        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
        yield location
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


# -- running ---------------------------------------------------------------------


WORKERS: dict[tuple[str, str], Callable[..., None]] = {
    ("rows", "sss"): _ours,
    ("rows", "eventsourcing"): _peer,
    ("domain", "sss"): _ours_domain,
    ("domain", "eventsourcing"): _peer_domain,
}


class WaitSampler:
    """Samples ``pg_stat_activity`` every few milliseconds while a PostgreSQL
    run goes on: what the writers' server backends are doing (running on a
    CPU, waiting for a lock, for the WAL flush, for the client ...)."""

    def __init__(self, url: str, every: float = 0.005) -> None:
        import threading

        self.url, self.every = url, every
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.database = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self._stop.is_set():
                rows = conn.execute(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE datname = %s AND backend_type = 'client backend'",
                    (self.database,),
                ).fetchall()
                self.samples += 1
                for state, kind, name in rows:
                    if state == "active":
                        key = f"{kind}:{name}" if kind else "CPU (running)"
                    else:
                        key = f"{state} ({kind}:{name})" if kind else str(state)
                    self.counts[key] = self.counts.get(key, 0) + 1
                self._stop.wait(self.every)

    def report(self) -> str:
        total = sum(self.counts.values()) or 1
        lines = [f"    {self.samples} samples, {total / max(self.samples, 1):.1f} backends each"]
        for key, count in sorted(self.counts.items(), key=lambda kv: -kv[1])[:8]:
            lines.append(f"    {count / total:6.1%}  {key}")
        return "\n".join(lines)


def run(
    workload: str,
    system: str,
    backend: str,
    location: str,
    writers: int,
    seconds: float,
    sampler: WaitSampler | None = None,
) -> Result:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    deadline = ctx.Value("d", 0.0)
    out = ctx.Queue()
    target = WORKERS[(workload, system)]
    # Create the tables once, before the race and outside the timing.
    if system == "sss":
        EventStore(location).close()
    elif workload == "domain":
        _peer_app(location, create=True).close()
    else:
        _peer_recorder(location, create=True)[1]()
    procs = [
        ctx.Process(target=target, args=(location, w, start, deadline, out)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    # Every process imported and connected before the clock starts: on a
    # loaded machine that can take a while.
    waited_until = time.time() + 120
    ready = 0
    while ready < writers:
        try:
            if out.get(timeout=1.0) == READY:
                ready += 1
        except queue.Empty:
            if time.time() > waited_until or any(p.exitcode not in (None, 0) for p in procs):
                for p in procs:
                    p.kill()
                raise SystemExit(f"a {system} writer on {backend} failed; see above") from None
    began = time.time()
    deadline.value = began + seconds
    start.set()
    results = []
    if sampler is not None:
        from psycopg.conninfo import conninfo_to_dict

        sampler.database = str(conninfo_to_dict(location)["dbname"])
    with sampler if sampler is not None else _nothing():
        while len(results) < writers:
            try:
                results.append(out.get(timeout=1.0))
            except queue.Empty:
                if time.time() > began + seconds + 120 or any(
                    p.exitcode not in (None, 0) for p in procs
                ):
                    for p in procs:
                        p.kill()
                    raise SystemExit(f"a {system} writer on {backend} failed; see above") from None
    elapsed = time.time() - began
    for p in procs:
        p.join(timeout=30)
    events = sum(r[0] for r in results)
    if system == "sss":
        check(location, events)
    return Result(system, backend, writers, events, elapsed, sum(r[1] for r in results))


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def check(location: str, events: int) -> None:
    with EventStore(location, readonly=True) as es:
        report = es.verify()
        head = es.head()
    if not report.ok or head != events or report.checked != events:
        raise SystemExit(
            f"integrity check failed on {location}: head {head}, committed {events}, "
            f"verify {report}"
        )


# -- threads in one process ---------------------------------------------------

THREAD_SYSTEMS = {
    "sqlite": ("sss", "sss-no-group", "eventsourcing", "raw-sqlite3"),
    "postgresql": ("sss", "sss-no-group", "sss-store-per-thread"),
}


@dataclass
class ThreadResult:
    system: str
    backend: str
    events: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def quantile(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


_TICKER: list[Any] = []


def _ticker() -> Any:
    """The peer's aggregate class, made once (eventsourcing registers it by name)."""
    if not _TICKER:
        from eventsourcing.domain import Aggregate, event

        class ThreadTicker(Aggregate):
            @event("Created")
            def __init__(self, text: str, n: int) -> None:
                self.n = n

            @event("Ticked")
            def tick(self, text: str, n: int) -> None:
                self.n = n

        _TICKER.append(ThreadTicker)
    return _TICKER[0]


def _thread_callers(
    system: str, location: str, threads: int
) -> tuple[list[Any], Callable[[], None]]:
    """One function per thread appending one event per call, and a closer."""
    payload = {"text": "x" * 60, "n": 0}
    if system in ("sss", "sss-no-group", "sss-store-per-thread"):
        shared = EventStore(location, timeout=60.0, group_commit=system == "sss")
        stores = [shared] * threads
        if system == "sss-store-per-thread":
            stores = [
                EventStore(location, timeout=60.0, group_commit=False) for _ in range(threads)
            ]

        def make(t: int) -> Any:
            es, aggregate, box = stores[t], f"t{t}-{uuid.uuid4().hex[:6]}", [0]

            def call() -> None:
                es.append([NewEvent("Ticked", {**payload, "n": box[0]}, {"actor": f"t{t}"})],
                          aggregate_id=aggregate, expected_version=box[0])  # fmt: skip
                box[0] += 1

            return call

        def close() -> None:
            for es in {id(es): es for es in [shared, *stores]}.values():
                es.close()

        return [make(t) for t in range(threads)], close
    if system == "eventsourcing":
        from eventsourcing.application import Application

        Ticker = _ticker()
        app: Application[Any] = Application(
            env={"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": location}
        )
        items = [Ticker(**payload) for _ in range(threads)]
        app.save(*items)

        def make_es(t: int) -> Any:
            item = items[t]

            def call() -> None:
                item.tick(text=payload["text"], n=item.n + 1)
                app.save(item)

            return call

        return [make_es(t) for t in range(threads)], app.close
    # raw sqlite3, a connection per thread
    setup = sqlite3.connect(location, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute(
        "CREATE TABLE events (position INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, "
        "aggregate_id TEXT NOT NULL, version INTEGER NOT NULL, type TEXT NOT NULL, "
        "data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL, "
        "UNIQUE (aggregate_id, version))"
    )
    setup.close()
    conns: list[sqlite3.Connection] = []

    def make_raw(t: int) -> Any:
        conn = sqlite3.connect(location, isolation_level=None, timeout=60.0,
                               check_same_thread=False)  # fmt: skip
        conn.execute("PRAGMA synchronous=FULL")
        conns.append(conn)
        aggregate, box = str(uuid.uuid4()), [0]
        meta = json.dumps({"actor": f"t{t}"})

        def call() -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                found = conn.execute(
                    "SELECT max(version) FROM events WHERE aggregate_id = ?", (aggregate,)
                ).fetchone()[0]
                if (found or 0) != box[0]:
                    raise RuntimeError("expected version")
                conn.execute(
                    "INSERT INTO events VALUES (NULL, ?, ?, ?, 'Ticked', ?, ?, ?)",
                    (str(uuid.uuid4()), aggregate, box[0] + 1,
                     json.dumps({**payload, "n": box[0]}), meta, time.time()),
                )  # fmt: skip
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            box[0] += 1

        return call

    def close_raw() -> None:
        for conn in conns:
            conn.close()

    return [make_raw(t) for t in range(threads)], close_raw


def run_threads(
    system: str, backend: str, location: str, threads: int, seconds: float
) -> ThreadResult:
    callers, close = _thread_callers(system, location, threads)
    start = threading.Barrier(threads + 1)
    stop = threading.Event()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures: list[BaseException] = []

    def work(t: int) -> None:
        call, mine, clock = callers[t], latencies[t], time.perf_counter
        start.wait()
        try:
            while not stop.is_set():
                began = clock()
                call()
                mine.append(clock() - began)
        except BaseException as e:
            failures.append(e)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    try:
        for t in pool:
            t.start()
        start.wait()
        began = time.perf_counter()
        time.sleep(seconds)
        stop.set()
        for t in pool:
            t.join()
        elapsed = time.perf_counter() - began
    finally:
        close()
    if failures:
        raise SystemExit(f"{system} on {backend}: a thread failed: {failures[0]!r}")
    every = [x for mine in latencies for x in mine]
    if system.startswith("sss"):
        check(location, len(every))
    return ThreadResult(system, backend, len(every), elapsed, every)


def fsync_latency(directory: str, count: int = 200) -> tuple[float, float]:
    """The p50 and p99 of one 8 KiB write + fdatasync on this disk, in ms: no
    commit can be answered faster than its fsync, so this bounds every p99."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 8192)
            began = time.perf_counter()
            os.fdatasync(fd)
            times.append(time.perf_counter() - began)
    finally:
        os.close(fd)
        os.remove(path)
    times.sort()
    return times[len(times) // 2] * 1000, times[int(0.99 * len(times))] * 1000


def thread_rows(
    backends: list[tuple[str, Callable[[], Any]]],
    threads: int,
    seconds: float,
    rounds: int,
    peer: bool,
) -> bool:
    """The threads rows: medians over rounds, ratios within each round."""
    runs: dict[tuple[str, str], list[ThreadResult]] = {}
    print(f"\n{threads} threads in one process, one durable event per call with expected version")
    for round_ in range(1, rounds + 1):
        for backend, make in backends:
            systems = [s for s in THREAD_SYSTEMS[backend] if peer or s.startswith("sss")]
            for system in systems[round_ % len(systems) :] + systems[: round_ % len(systems)]:
                with make() as location:
                    result = run_threads(system, backend, location, threads, seconds)
                runs.setdefault((system, backend), []).append(result)
                print(
                    f"  round {round_}: {system:20} {backend:10} {result.rate:8,.0f} ev/s  "
                    f"p99 {result.quantile(0.99) * 1000:6.1f} ms",
                    flush=True,
                )
    print()
    print(f"{'system':20} {'backend':10} {'median ev/s':>12} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'vs eventsourcing':>17} {'vs raw':>8} {'vs no-group':>12}")  # fmt: skip

    def ratio(system: str, backend: str, peer_system: str) -> str:
        ours, theirs = runs.get((system, backend), []), runs.get((peer_system, backend), [])
        found = [a.rate / b.rate for a, b in zip(ours, theirs, strict=False) if b.rate]
        return f"{statistics.median(found):.2f}x" if found else "-"

    ok = True
    for (system, backend), results in runs.items():
        rate = statistics.median(r.rate for r in results)
        p50 = statistics.median(r.quantile(0.5) for r in results) * 1000
        p99 = statistics.median(r.quantile(0.99) for r in results) * 1000
        print(
            f"{system:20} {backend:10} {rate:>12,.0f} {p50:>8.1f} {p99:>8.1f} "
            f"{ratio(system, backend, 'eventsourcing'):>17}"
            f" {ratio(system, backend, 'raw-sqlite3'):>8}"
            f" {ratio(system, backend, 'sss-no-group'):>12}"
        )
    ours = runs.get(("sss", "sqlite"), [])
    theirs = runs.get(("eventsourcing", "sqlite"), [])
    if ours and theirs:
        found = [a.rate / b.rate for a, b in zip(ours, theirs, strict=False)]
        p99 = statistics.median(r.quantile(0.99) for r in ours) * 1000
        good = statistics.median(found) >= 4.0 and p99 < 20.0
        ok &= good
        print(
            f"target sqlite: {threads} threads >= 4x eventsourcing with p99 < 20 ms: "
            f"{statistics.median(found):.2f}x, p99 {p99:.1f} ms {'ok' if good else 'BELOW TARGET'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("SSS_TEST_POSTGRES_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=float, default=5.0, help="run time per configuration")
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--quick", action="store_true", help="1 second, 1 round per configuration")
    parser.add_argument("--rounds", type=int, default=3, help="runs per configuration (median)")
    parser.add_argument("--no-peer", action="store_true", help="skip the eventsourcing peer")
    parser.add_argument("--backends", default="sqlite,postgresql", help="which to run")
    parser.add_argument(
        "--threads", type=int, default=16, help="threads of the threads rows (0: skip them)"
    )
    parser.add_argument("--no-processes", action="store_true", help="only the threads rows")
    parser.add_argument(
        "--workloads",
        default="rows,domain",
        help="rows: the peer gets ready-made rows; domain: both build from domain objects",
    )
    parser.add_argument(
        "--sample-waits",
        action="store_true",
        help="sample pg_stat_activity during the PostgreSQL runs with the most writers",
    )
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else max(1, args.rounds)
    counts = [int(n) for n in args.writers.split(",")]
    workloads = args.workloads.split(",")
    systems = ["sss"]
    if not args.no_peer:
        try:
            import eventsourcing  # noqa: F401

            systems.append("eventsourcing")
        except ImportError:
            print("eventsourcing is not installed: no peer baseline (pip install -e '.[bench]')")
    root = tempfile.mkdtemp(prefix="sss-concurrency-")
    makers: dict[str, Callable[[], Any]] = {
        "sqlite": lambda: sqlite_location(root),
        "postgresql": lambda: postgres_location(args.postgres),
    }
    backends = [(name, makers[name]) for name in args.backends.split(",")]
    print(
        f"{BATCH} events per transaction, {seconds:g} s per run, {rounds} round(s), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    # Rounds go over every configuration in turn, so a noisy spell on the
    # machine touches all of them rather than one; each reports its median.
    runs: dict[tuple[str, str, str, int], list[Result]] = {}
    samplers: dict[tuple[str, str], WaitSampler] = {}
    try:
        for round_ in range(1, rounds + 1) if not args.no_processes else ():
            for backend, make in backends:
                for workload in workloads:
                    for system in systems:
                        for n in counts:
                            sampler = None
                            if args.sample_waits and backend == "postgresql" and n == max(counts):
                                sampler = samplers.setdefault(
                                    (workload, system), WaitSampler(args.postgres)
                                )
                                sampler = samplers[(workload, system)] = _fresh(sampler)
                            with make() as location:
                                result = run(
                                    workload, system, backend, location, n, seconds, sampler
                                )
                            runs.setdefault((workload, system, backend, n), []).append(result)
                            print(
                                f"  round {round_}: {workload:6} {system:13} {backend:10} "
                                f"{n} writer(s): {result.rate:10,.0f} events/s"
                                + (f"  ({result.errors} lock timeouts)" if result.errors else ""),
                                flush=True,
                            )
        threads_ok = True
        if args.threads and "sqlite" in args.backends:
            p50, p99 = fsync_latency(root)
            print(f"\nthis disk: 8 KiB write + fdatasync p50 {p50:.2f} ms, p99 {p99:.2f} ms")
        if args.threads:
            threads_ok = thread_rows(
                backends, args.threads, seconds, rounds, peer="eventsourcing" in systems
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    code = summarise(runs, samplers)
    return code if threads_ok else 1


def _fresh(sampler: WaitSampler) -> WaitSampler:
    """A sampler that keeps counting where the last round's left off."""
    fresh = WaitSampler(sampler.url, sampler.every)
    fresh.counts, fresh.samples = sampler.counts, sampler.samples
    return fresh


def summarise(
    runs: dict[tuple[str, str, str, int], list[Result]],
    samplers: dict[tuple[str, str], WaitSampler],
) -> int:
    median = {key: statistics.median(r.rate for r in results) for key, results in runs.items()}
    print()
    print(
        f"{'workload':8} {'system':13} {'backend':10} {'writers':>7} {'median ev/s':>12} "
        f"{'vs 1 writer':>12} {'vs peer':>8}  {'runs':>30}"
    )
    for (workload, system, backend, n), rate in median.items():
        one = median.get((workload, system, backend, 1), rate)
        ratio = rate / one if one else 0.0
        peer = median.get((workload, "eventsourcing", backend, n))
        versus = f"{rate / peer:7.2f}x" if peer and system == "sss" else " " * 8
        each = " ".join(f"{r.rate:,.0f}" for r in runs[(workload, system, backend, n)])
        print(
            f"{workload:8} {system:13} {backend:10} {n:>7} {rate:>12,.0f} {ratio:>11.2f}x "
            f"{versus}  {each:>30}"
        )
    for (workload, system), sampler in samplers.items():
        print(f"wait events of {system} ({workload}), PostgreSQL, most writers:")
        print(sampler.report())
    failed = []

    def target(label: str, value: float | None, goal: float) -> None:
        if value is None:
            return
        verdict = "ok" if value >= goal else "BELOW TARGET"
        print(f"target {label} >= {goal}x: {value:.2f}x {verdict}")
        if value < goal:
            failed.append(label)

    def ratio(a: tuple[str, str, str, int], b: tuple[str, str, str, int]) -> float | None:
        return median[a] / median[b] if a in median and b in median and median[b] else None

    for backend, goal in (("postgresql", 1.0), ("sqlite", 0.8)):
        target(
            f"{backend} rows: 8 writers vs 1",
            ratio(("rows", "sss", backend, 8), ("rows", "sss", backend, 1)),
            goal,
        )
    pg = "postgresql"
    target(
        "postgresql domain: 8 writers vs 1",
        ratio(("domain", "sss", pg, 8), ("domain", "sss", pg, 1)),
        1.5,
    )
    target(
        "postgresql domain: 8 writers vs eventsourcing's 8",
        ratio(("domain", "sss", pg, 8), ("domain", "eventsourcing", pg, 8)),
        1.3,
    )
    target(
        "postgresql rows: 8 writers vs eventsourcing's 8",
        ratio(("rows", "sss", pg, 8), ("rows", "eventsourcing", pg, 8)),
        0.9,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

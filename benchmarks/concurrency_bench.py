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
(a new file; a new PostgreSQL schema, dropped afterwards) and is checked after
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

The peer is the ``eventsourcing`` library's recorder (``--peer``, on by
default when it is installed): it makes notification ids gapless the same way
in spirit, with ``LOCK TABLE ... IN EXCLUSIVE MODE`` on PostgreSQL and
SQLite's write lock, and writes the same batches through
``ApplicationRecorder.insert_events``.
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


def _peer(location: str, writer: int, start: Any, deadline_box: Any, out: Any) -> None:
    from eventsourcing.persistence import StoredEvent

    recorder, close = _peer_recorder(location, create=False)
    events = errors = 0
    aggregate = uuid.uuid4()
    version = 0
    state = b'{"writer":%d,"text":"%s","n":0}' % (writer, b"x" * 60)
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
    import psycopg
    from psycopg import sql

    schema = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


# -- running ---------------------------------------------------------------------


def run(system: str, backend: str, location: str, writers: int, seconds: float) -> Result:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    deadline = ctx.Value("d", 0.0)
    out = ctx.Queue()
    target = _ours if system == "sss" else _peer
    # Create the tables once, before the race and outside the timing.
    if system == "sss":
        EventStore(location).close()
    else:
        _peer_recorder(location, create=True)[1]()
    procs = [
        ctx.Process(target=target, args=(location, w, start, deadline, out)) for w in range(writers)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0 + 0.1 * writers)  # every process imported and connected
    began = time.time()
    deadline.value = began + seconds
    start.set()
    results = []
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

        class Ticker(Aggregate):
            @event("Created")
            def __init__(self, text: str, n: int) -> None:
                self.n = n

            @event("Ticked")
            def tick(self, text: str, n: int) -> None:
                self.n = n

        _TICKER.append(Ticker)
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
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    rounds = 1 if args.quick else max(1, args.rounds)
    counts = [int(n) for n in args.writers.split(",")]
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
        f"{os.cpu_count()} CPUs"
    )
    # Rounds go over every configuration in turn, so a noisy spell on the
    # machine touches all of them rather than one; each reports its median.
    runs: dict[tuple[str, str, int], list[Result]] = {}
    try:
        for round_ in range(1, rounds + 1) if not args.no_processes else ():
            for backend, make in backends:
                for system in systems:
                    for n in counts:
                        with make() as location:
                            result = run(system, backend, location, n, seconds)
                        runs.setdefault((system, backend, n), []).append(result)
                        print(
                            f"  round {round_}: {system:13} {backend:10} {n} writer(s): "
                            f"{result.rate:10,.0f} events/s"
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
    median = {key: statistics.median(r.rate for r in results) for key, results in runs.items()}
    print()
    print(
        f"{'system':13} {'backend':10} {'writers':>7} {'median ev/s':>12} {'vs 1 writer':>12}"
        f"  {'runs':>30}"
    )
    for (system, backend, n), rate in median.items():
        one = median.get((system, backend, 1), rate)
        ratio = rate / one if one else 0.0
        each = " ".join(f"{r.rate:,.0f}" for r in runs[(system, backend, n)])
        print(f"{system:13} {backend:10} {n:>7} {rate:>12,.0f} {ratio:>11.2f}x  {each:>30}")
    failed = []
    for backend, target in (("postgresql", 1.0), ("sqlite", 0.8)):
        ours = {
            n: rate for (system, b, n), rate in median.items() if system == "sss" and b == backend
        }
        if 1 in ours and 8 in ours:
            ratio = ours[8] / ours[1]
            verdict = "ok" if ratio >= target else "BELOW TARGET"
            print(f"target {backend}: 8 writers >= {target}x of 1 writer: {ratio:.2f}x {verdict}")
            if ratio < target:
                failed.append(backend)
    return 1 if failed or not threads_ok else 0


if __name__ == "__main__":
    raise SystemExit(main())

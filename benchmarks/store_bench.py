"""The same workloads through this store, raw sqlite3 and the ``eventsourcing`` library.

Run from the repository root::

    .venv/bin/python benchmarks/store_bench.py            # full run, ~1-2 minutes
    .venv/bin/python benchmarks/store_bench.py --quick    # smoke run, seconds

Every system writes to a file with the same durability: WAL and
``synchronous=FULL`` (the store's default; raw sqlite3 set explicitly;
``eventsourcing`` at its own defaults, which are the same, and the script prints
them to show it). Each round uses fresh files in a fresh directory; the table
quotes the median over rounds. Ratios are "ours vs peer": for a throughput,
> 1 means this store is faster; for a rebuild time, < 1 means it is faster.

Workloads:

- ``append100``: batches of 100 events to a new aggregate, one transaction each.
  eventsourcing: an aggregate created, 99 more events triggered, ``app.save()``.
- ``append1``: one event per transaction to existing aggregates, with the
  expected version checked. eventsourcing: one event triggered, ``app.save()``.
- ``scan``: every event decoded into a record. Ours: ``es.read()`` into
  ``RecordedEvent``. eventsourcing: ``recorder.select_notifications`` pages of
  1,000 and ``mapper.to_domain_event``. Raw: one cursor over the table, data and
  metadata JSON decoded and both ISO times parsed into a frozen slotted dataclass.
- ``rebuild``: the state of one 1,000-event aggregate. Ours: ``es.state_at``
  with its in-memory checkpoints cleared before each call (repeated calls
  would otherwise fold only the last few events). eventsourcing:
  ``repository.get``. Raw: fold the payloads with ``dict.update``.
- ``rebuild_snapshot``: the same with a snapshot at head (``es.snapshot`` /
  ``app.take_snapshot``) on both sides.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from store import NO_STREAM, EventStore, NewEvent

SYSTEMS = ("ours", "eventsourcing", "raw")
META = {"actor": "bench", "correlation_id": "c-1"}


def payload(i: int) -> dict[str, Any]:
    return {"n": i, "sku": f"sku-{i % 50}", "qty": i % 7 + 1, "note": "a short note"}


# -- eventsourcing -------------------------------------------------------------


class Item(Aggregate):
    """The eventsourcing peer of an aggregate whose events carry ``payload(i)``."""

    @event("Created")
    def __init__(self, n: int, sku: str, qty: int, note: str) -> None:
        self.n, self.sku, self.qty, self.note = n, sku, qty, note

    @event("Changed")
    def change(self, n: int, sku: str, qty: int, note: str) -> None:
        self.n, self.sku, self.qty, self.note = n, sku, qty, note


def es_app(path: str, snapshots: bool = False) -> Application[Any]:
    env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": path}
    if snapshots:
        env["IS_SNAPSHOTTING_ENABLED"] = "y"
    return Application(env=env)


def es_pragmas(app: Application[Any]) -> tuple[str, int]:
    pool = app.recorder.datastore.pool  # type: ignore[attr-defined]
    conn = pool.get_connection(is_writer=False)
    try:
        raw = conn._sqlite_conn
        return raw.execute("PRAGMA journal_mode").fetchone()[0], raw.execute(
            "PRAGMA synchronous"
        ).fetchone()[0]
    finally:
        pool.put_connection(conn)


# -- raw sqlite3 ---------------------------------------------------------------

RAW_SCHEMA = """
CREATE TABLE events (
    position INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    aggregate_id TEXT,
    aggregate_type TEXT,
    version INTEGER,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    data TEXT NOT NULL,
    metadata TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (aggregate_id, version)
)
"""
RAW_INSERT = "INSERT INTO events VALUES (NULL, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?)"


@dataclass(frozen=True, slots=True)
class RawEvent:
    position: int
    event_id: str
    aggregate_id: str | None
    aggregate_type: str | None
    version: int | None
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    hash: str


def raw_open(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(RAW_SCHEMA)
    return conn


def raw_rows(
    aggregate_id: str, start_version: int, count: int, offset: int
) -> list[tuple[Any, ...]]:
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    meta = json.dumps(META)
    rows = []
    for k in range(count):
        data = json.dumps(payload(offset + k))
        rows.append(
            (
                str(uuid.uuid4()),
                aggregate_id,
                "Item",
                start_version + k,
                "Changed",
                data,
                meta,
                now,
                now,
                hashlib.sha256(data.encode()).hexdigest(),
            )
        )
    return rows


def raw_append(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(RAW_INSERT, rows)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def raw_scan(conn: sqlite3.Connection) -> int:
    loads, parse = json.loads, datetime.fromisoformat
    count = 0
    for row in conn.execute("SELECT * FROM events ORDER BY position"):
        RawEvent(
            row[0], row[1], row[2], row[3], row[4], row[5], row[6],
            loads(row[7]), loads(row[8]), parse(row[9]), parse(row[10]), row[11],
        )  # fmt: skip
        count += 1
    return count


def raw_rebuild(conn: sqlite3.Connection, aggregate_id: str) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for (data,) in conn.execute(
        "SELECT data FROM events WHERE aggregate_id = ? ORDER BY version", (aggregate_id,)
    ):
        state.update(json.loads(data))
    return state


# -- ours ----------------------------------------------------------------------


def ours_batch(i0: int, count: int) -> list[NewEvent]:
    return [NewEvent("Changed", payload(i0 + k), metadata=META) for k in range(count)]


# -- harness -------------------------------------------------------------------


CLOCK: Callable[[], float] = time.perf_counter
"""What a workload is timed by: wall time, or with --cpu-time this process's CPU time."""


@contextmanager
def timed(out: list[float]) -> Iterator[None]:
    gc.collect()
    start = CLOCK()
    yield
    out.append(CLOCK() - start)


def median_call(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm the page cache and the statement cache
    times: list[float] = []
    for _ in range(repeats):
        with timed(times):
            fn()
    return statistics.median(times)


@dataclass
class Sizes:
    rounds: int
    batches: int
    singles: int
    scan_events: int
    aggregate_events: int
    rebuilds: int


Values = dict[str, float]  # row -> events per second, or seconds for a rebuild
Bench = Callable[[str, Sizes], Values]


# -- append 100 events per transaction -------------------------------------------


def ours_append100(d: str, s: Sizes) -> Values:
    times: list[float] = []
    with EventStore(os.path.join(d, "a100.db")) as es, timed(times):
        for b in range(s.batches):
            es.append(ours_batch(b * 100, 100), aggregate_id=str(uuid.uuid4()),
                      aggregate_type="Item", expected_version=NO_STREAM)  # fmt: skip
    return {"append100": s.batches * 100 / times[-1]}


def es_append100(d: str, s: Sizes) -> Values:
    times: list[float] = []
    app = es_app(os.path.join(d, "a100-es.db"))
    with timed(times):
        for b in range(s.batches):
            item = Item(**payload(b * 100))
            for k in range(1, 100):
                item.change(**payload(b * 100 + k))
            app.save(item)
    app.close()
    return {"append100": s.batches * 100 / times[-1]}


def raw_append100(d: str, s: Sizes) -> Values:
    times: list[float] = []
    conn = raw_open(os.path.join(d, "a100-raw.db"))
    with timed(times):
        for b in range(s.batches):
            raw_append(conn, raw_rows(str(uuid.uuid4()), 1, 100, b * 100))
    conn.close()
    return {"append100": s.batches * 100 / times[-1]}


# -- append 1 event per transaction ----------------------------------------------

STREAMS = 10


def ours_append1(d: str, s: Sizes) -> Values:
    times: list[float] = []
    with EventStore(os.path.join(d, "a1.db")) as es:
        ids = [str(uuid.uuid4()) for _ in range(STREAMS)]
        versions = dict.fromkeys(ids, 0)
        with timed(times):
            for i in range(s.singles):
                aid = ids[i % STREAMS]
                es.append([NewEvent("Changed", payload(i), metadata=META)], aggregate_id=aid,
                          aggregate_type="Item", expected_version=versions[aid])  # fmt: skip
                versions[aid] += 1
    return {"append1": s.singles / times[-1]}


def es_append1(d: str, s: Sizes) -> Values:
    times: list[float] = []
    app = es_app(os.path.join(d, "a1-es.db"))
    items = [Item(**payload(0)) for _ in range(STREAMS)]
    app.save(*items)
    with timed(times):
        for i in range(s.singles):
            item = items[i % STREAMS]
            item.change(**payload(i))
            app.save(item)
    app.close()
    return {"append1": s.singles / times[-1]}


def raw_append1(d: str, s: Sizes) -> Values:
    times: list[float] = []
    conn = raw_open(os.path.join(d, "a1-raw.db"))
    ids = [str(uuid.uuid4()) for _ in range(STREAMS)]
    versions = dict.fromkeys(ids, 0)
    with timed(times):
        for i in range(s.singles):
            aid = ids[i % STREAMS]
            versions[aid] += 1
            raw_append(conn, raw_rows(aid, versions[aid], 1, i))
    conn.close()
    return {"append1": s.singles / times[-1]}


# -- scan every event ------------------------------------------------------------


def ours_scan(d: str, s: Sizes) -> Values:
    batches = max(1, s.scan_events // 100)
    times: list[float] = []
    with EventStore(os.path.join(d, "scan.db"), durable=False) as es:
        for b in range(batches):
            es.append(
                ours_batch(b * 100, 100), aggregate_id=str(uuid.uuid4()), aggregate_type="Item"
            )
        with timed(times):
            got = sum(1 for _ in es.read())
    assert got == batches * 100, got
    return {"scan": got / times[-1]}


def es_scan(d: str, s: Sizes) -> Values:
    batches = max(1, s.scan_events // 100)
    times: list[float] = []
    app = es_app(os.path.join(d, "scan-es.db"))
    for b in range(batches):
        item = Item(**payload(b * 100))
        for k in range(1, 100):
            item.change(**payload(b * 100 + k))
        app.save(item)
    recorder, to_domain_event = app.recorder, app.mapper.to_domain_event
    with timed(times):
        got, start = 0, 1
        while True:
            page = recorder.select_notifications(start=start, limit=1000)
            for notification in page:
                to_domain_event(notification)
            got += len(page)
            if len(page) < 1000:
                break
            start = page[-1].id + 1
    app.close()
    assert got == batches * 100, got
    return {"scan": got / times[-1]}


def raw_scan_bench(d: str, s: Sizes) -> Values:
    batches = max(1, s.scan_events // 100)
    times: list[float] = []
    conn = raw_open(os.path.join(d, "scan-raw.db"))
    for b in range(batches):
        raw_append(conn, raw_rows(str(uuid.uuid4()), 1, 100, b * 100))
    with timed(times):
        got = raw_scan(conn)
    conn.close()
    assert got == batches * 100, got
    return {"scan": got / times[-1]}


# -- rebuild one aggregate -------------------------------------------------------


def ours_rebuild(d: str, s: Sizes) -> Values:
    n = s.aggregate_events
    with EventStore(os.path.join(d, "rebuild.db")) as es:
        aid = str(uuid.uuid4())
        for start in range(0, n, 100):
            es.append(
                ours_batch(start, min(100, n - start)), aggregate_id=aid, aggregate_type="Item"
            )
        assert es.state_at(aid).state == payload(n - 1)

        def cold() -> object:
            # The store keeps in-memory checkpoints of states it has folded; a
            # rebuild is measured without them, as the peer has none.
            es._states.clear()
            return es.state_at(aid)

        full = median_call(cold, s.rebuilds)
        es.snapshot(aid)
        assert es.state_at(aid).state == payload(n - 1)
        snapped = median_call(cold, s.rebuilds)
    return {"rebuild": full, "rebuild_snapshot": snapped}


def es_rebuild(d: str, s: Sizes) -> Values:
    n = s.aggregate_events
    path = os.path.join(d, "rebuild-es.db")
    app = es_app(path)
    item = Item(**payload(0))
    for k in range(1, n):
        item.change(**payload(k))
        if k % 100 == 99:
            app.save(item)
    app.save(item)
    assert app.repository.get(item.id).version == n
    full = median_call(lambda: app.repository.get(item.id), s.rebuilds)
    app.close()
    app = es_app(path, snapshots=True)
    app.take_snapshot(item.id)
    assert app.repository.get(item.id).n == n - 1
    snapped = median_call(lambda: app.repository.get(item.id), s.rebuilds)
    app.close()
    return {"rebuild": full, "rebuild_snapshot": snapped}


def raw_rebuild_bench(d: str, s: Sizes) -> Values:
    n = s.aggregate_events
    conn = raw_open(os.path.join(d, "rebuild-raw.db"))
    rid = str(uuid.uuid4())
    for start in range(0, n, 100):
        raw_append(conn, raw_rows(rid, start + 1, min(100, n - start), start))
    assert raw_rebuild(conn, rid) == payload(n - 1)
    full = median_call(lambda: raw_rebuild(conn, rid), s.rebuilds)
    conn.close()
    return {"rebuild": full}


WORKLOADS: dict[str, dict[str, Bench]] = {
    "append100": {"ours": ours_append100, "eventsourcing": es_append100, "raw": raw_append100},
    "append1": {"ours": ours_append1, "eventsourcing": es_append1, "raw": raw_append1},
    "scan": {"ours": ours_scan, "eventsourcing": es_scan, "raw": raw_scan_bench},
    "rebuild": {"ours": ours_rebuild, "eventsourcing": es_rebuild, "raw": raw_rebuild_bench},
}
ROWS = ("append100", "append1", "scan", "rebuild", "rebuild_snapshot")
THROUGHPUT = {"append100", "append1", "scan"}


# -- report ----------------------------------------------------------------------

Round = dict[str, dict[str, float]]  # row -> system -> value


@dataclass(frozen=True)
class Target:
    row: str
    peer: str
    bound: float
    text: str

    def passed(self, ratio: float) -> bool:
        # Throughputs: ours/peer must reach the bound; times: ours/peer must stay under it.
        return ratio >= self.bound if self.row in THROUGHPUT else ratio <= self.bound


TARGETS = (
    Target("append100", "eventsourcing", 2.0, "append 100/tx >= 2x eventsourcing"),
    Target("append1", "eventsourcing", 1.2, "append 1/tx >= 1.2x eventsourcing"),
    Target("scan", "eventsourcing", 2.0, "scan >= 2x eventsourcing"),
    Target("scan", "raw", 0.8, "scan >= 0.8x raw sqlite3"),
    Target("rebuild", "eventsourcing", 0.3, "rebuild time <= 0.3x eventsourcing"),
    Target("rebuild_snapshot", "eventsourcing", 1.0, "rebuild (snapshot) time <= eventsourcing"),
)


def ratios(rounds: list[Round], row: str, peer: str) -> list[float]:
    """ours/peer within each round: both ran minutes apart at most, under the same load."""
    return [r[row]["ours"] / r[row][peer] for r in rounds if "ours" in r[row] and peer in r[row]]


def fmt(row: str, value: float | None) -> str:
    if value is None:
        return "-"
    if row in THROUGHPUT:
        return f"{value:,.0f} ev/s"
    return f"{value * 1000:.3f} ms"


def report(rounds: list[Round]) -> bool:
    print()
    print(f"medians over {len(rounds)} rounds; ratio = median of the per-round ours/peer")
    head = f"{'workload':<18}{'ours':>16}{'eventsourcing':>18}{'raw sqlite3':>16}"
    print(head + f"{'ratio vs es':>14}{'ratio vs raw':>14}")
    print("-" * (len(head) + 28))
    for row in ROWS:
        values = {
            system: statistics.median(r[row][system] for r in rounds)
            for system in SYSTEMS
            if all(system in r[row] for r in rounds) and rounds
        }
        if "ours" not in values:
            continue
        cells = []
        for peer in ("eventsourcing", "raw"):
            found = ratios(rounds, row, peer)
            cells.append(f"{statistics.median(found):.2f}" if found else "-")
        print(
            f"{row:<18}{fmt(row, values.get('ours')):>16}"
            f"{fmt(row, values.get('eventsourcing')):>18}{fmt(row, values.get('raw')):>16}"
            f"{cells[0]:>14}{cells[1]:>14}"
        )
    print("(a throughput ratio > 1, or a time ratio < 1, means this store is faster)")
    print()
    ok = True
    for t in TARGETS:
        found = ratios(rounds, t.row, t.peer)
        if not found:
            continue
        ratio = statistics.median(found)
        good = t.passed(ratio)
        ok &= good
        print(
            f"{'PASS' if good else 'FAIL'}  {t.text:<42} ratio {ratio:5.2f}"
            f"  (rounds {min(found):.2f}-{max(found):.2f})"
        )
    return ok


def profile(workload: str, sizes: Sizes, where: str | None) -> None:
    """Run this store's side of one workload under cProfile and print the top entries."""
    import cProfile
    import pstats

    d = tempfile.mkdtemp(prefix="sss-bench-", dir=where)
    try:
        profiler = cProfile.Profile()
        profiler.runcall(WORKLOADS[workload]["ours"], d, sizes)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds per workload (default 7)")
    parser.add_argument("--batches", type=int, default=100, help="100-event batches per round")
    parser.add_argument("--singles", type=int, default=1000, help="1-event appends per round")
    parser.add_argument("--scan-events", type=int, default=50_000, help="events in the scanned log")
    parser.add_argument(
        "--aggregate-events", type=int, default=1000, help="events in the rebuilt aggregate"
    )
    parser.add_argument("--rebuilds", type=int, default=25, help="timed rebuilds per round")
    parser.add_argument(
        "--only", nargs="+", choices=sorted(WORKLOADS), help="run only these workloads"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, 3 rounds: a smoke run")
    parser.add_argument(
        "--profile",
        choices=sorted(WORKLOADS),
        help="run this store's side of one workload once under cProfile instead",
    )
    parser.add_argument("--dir", help="where to put the temporary stores (default: system temp)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time by this process's CPU time: steadier than wall time on a loaded machine, "
        "for the read rows (scan, rebuild); an append's fsync wait is not CPU time",
    )
    args = parser.parse_args(argv)
    if args.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    if args.quick:
        sizes = Sizes(3, 10, 100, 5_000, args.aggregate_events, 5)
    else:
        sizes = Sizes(args.rounds, args.batches, args.singles, args.scan_events,
                      args.aggregate_events, args.rebuilds)  # fmt: skip
    if args.profile:
        profile(args.profile, sizes, args.dir)
        return 0
    chosen = args.only or list(WORKLOADS)

    probe_dir = tempfile.mkdtemp(prefix="sss-bench-", dir=args.dir)
    app = es_app(os.path.join(probe_dir, "probe.db"))
    journal, sync = es_pragmas(app)
    app.close()
    shutil.rmtree(probe_dir)
    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, cpus {os.cpu_count()}"
    )
    print(
        "durability: ours WAL+FULL, raw WAL+FULL, "
        f"eventsourcing at its defaults = {journal} + synchronous={sync} (2 = FULL)"
    )
    print(
        f"sizes: rounds={sizes.rounds} batches={sizes.batches}x100 singles={sizes.singles} "
        f"scan={sizes.scan_events} aggregate={sizes.aggregate_events} rebuilds={sizes.rebuilds}"
    )
    if hasattr(os, "getloadavg"):
        print("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))

    rounds: list[Round] = []
    begun = time.perf_counter()
    for i in range(sizes.rounds):
        result: Round = {row: {} for row in ROWS}
        d = tempfile.mkdtemp(prefix="sss-bench-", dir=args.dir)
        try:
            for name in chosen:
                # Rotate who goes first, so no system always meets a warmer or busier machine.
                systems = list(SYSTEMS[i % 3 :] + SYSTEMS[: i % 3])
                for system in systems:
                    for row, value in WORKLOADS[name][system](d, sizes).items():
                        result[row][system] = value
        finally:
            shutil.rmtree(d, ignore_errors=True)
        rounds.append(result)
        print(
            f"round {i + 1}/{sizes.rounds} done ({time.perf_counter() - begun:.1f} s)", flush=True
        )
    if hasattr(os, "getloadavg"):
        print("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    return 0 if report(rounds) else 1


if __name__ == "__main__":
    sys.exit(main())

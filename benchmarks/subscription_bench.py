"""Handler throughput of durable subscriptions, against eventsourcing's tracking.

Run from the repository root (eventsourcing comes with the ``bench`` extra)::

    .venv/bin/python benchmarks/subscription_bench.py            # full run, ~1 minute
    .venv/bin/python benchmarks/subscription_bench.py --quick    # smoke run, seconds

Both systems use one SQLite file each, WAL and ``synchronous=FULL`` (the
store's default and eventsourcing's), fresh files every round; the table quotes
the median events per second over rounds and the ratio ours / peer (> 1: this
store is faster).

Workloads, over N source events already stored (in aggregates of 100):

- ``noop``: every source event through a no-op handler, the position saved
  after each batch of 100 (at least once). Ours: ``es.subscribe(name, handler,
  follow=False, batch_size=100)``; the handler gets a decoded ``RecordedEvent``.
  eventsourcing: ``select_notifications(start, limit=100)`` in a loop, each
  notification's JSON state decoded for the handler, then
  ``insert_tracking(Tracking(name, last_id))`` after each batch.
- ``exactly_once``: for every source event the handler appends one derived
  event to the same store, and each batch's derived events commit together
  with the new position. Ours: ``es.subscribe(..., exactly_once=True,
  types=["Source"], batch_size=100)`` with ``es.append`` in the handler (one
  append per event, inside the batch's transaction). eventsourcing: the same
  loop over a ``SQLiteProcessRecorder``, the derived ``StoredEvent`` s of a
  batch written by one ``insert_events(events, tracking=Tracking(...))``.
- ``exactly_once_batch``: the same, with our handler called once per batch
  (``per_batch=True``) appending the batch's derived events in one
  ``es.append``, which is what the peer's loop does; the peer runs the same
  loop as above under another tracking name.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from store import EventStore, NewEvent, RecordedEvent

BATCH = 100


def _ours_source(path: str, n: int) -> None:
    with EventStore(path) as es:
        for start in range(0, n, 100):
            es.append(
                [NewEvent("Source", {"i": i, "amount": i * 3}) for i in range(start, start + 100)],
                aggregate_id=f"src-{start}",
                aggregate_type="Source",
            )


def _peer_recorder(path: str) -> Any:
    from eventsourcing.sqlite import SQLiteDatastore, SQLiteProcessRecorder

    recorder = SQLiteProcessRecorder(SQLiteDatastore(path))
    recorder.create_table()
    return recorder


def _peer_source(recorder: Any, n: int) -> None:
    from eventsourcing.persistence import StoredEvent

    for start in range(0, n, 100):
        originator = uuid.uuid4()
        recorder.insert_events(
            [
                StoredEvent(
                    originator, i - start + 1, "bench:Source",
                    json.dumps({"i": i, "amount": i * 3}).encode(),
                )
                for i in range(start, start + 100)
            ]
        )  # fmt: skip


def ours_noop(path: str, n: int) -> float:
    handled = 0

    def handler(event: RecordedEvent) -> None:
        nonlocal handled
        handled += 1

    with EventStore(path) as es:
        began = time.perf_counter()
        es.subscribe("noop", handler, follow=False, batch_size=BATCH)
        elapsed = time.perf_counter() - began
    assert handled == n, handled
    return n / elapsed


def peer_noop(recorder: Any, n: int) -> float:
    from eventsourcing.persistence import Tracking

    handled = 0

    def handler(state: dict[str, Any]) -> None:
        nonlocal handled
        handled += 1

    began = time.perf_counter()
    position = recorder.max_tracking_id("noop") or 0
    while True:
        batch = recorder.select_notifications(position + 1, BATCH)
        if not batch:
            break
        for notification in batch:
            handler(json.loads(notification.state))
        position = batch[-1].id
        recorder.insert_tracking(Tracking("noop", position))
    elapsed = time.perf_counter() - began
    assert handled == n, handled
    return n / elapsed


def ours_exactly_once(path: str, n: int) -> float:
    with EventStore(path) as es:

        def handler(event: RecordedEvent) -> None:
            es.append(
                [NewEvent("Derived", {"source": event.position, "doubled": event.data["amount"]})],
                aggregate_id="derived",
            )

        began = time.perf_counter()
        es.subscribe(
            "derive", handler, types=["Source"], follow=False, batch_size=BATCH,
            exactly_once=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - began
        assert es.count(types=["Derived"]) == n
    return n / elapsed


def ours_exactly_once_batch(path: str, n: int) -> float:
    with EventStore(path) as es:

        def handler(events: list[RecordedEvent]) -> None:
            es.append(
                [
                    NewEvent("Derived", {"source": e.position, "doubled": e.data["amount"]})
                    for e in events
                ],
                aggregate_id="derived-batch",
            )

        began = time.perf_counter()
        es.subscribe(
            "derive-batch", handler, types=["Source"], follow=False, batch_size=BATCH,
            exactly_once=True, per_batch=True,
        )  # fmt: skip
        elapsed = time.perf_counter() - began
        assert es.count(aggregate_id="derived-batch") == n
    return n / elapsed


def peer_exactly_once(recorder: Any, n: int, name: str = "derive") -> float:
    from eventsourcing.persistence import StoredEvent, Tracking

    derived = uuid.uuid4()
    version = 0
    began = time.perf_counter()
    position = recorder.max_tracking_id(name) or 0
    while True:
        batch = recorder.select_notifications(position + 1, BATCH, stop=n, topics=["bench:Source"])
        if not batch:
            break
        new = []
        for notification in batch:
            state = json.loads(notification.state)
            version += 1
            new.append(
                StoredEvent(
                    derived, version, "bench:Derived",
                    json.dumps({"source": notification.id, "doubled": state["amount"]}).encode(),
                )
            )  # fmt: skip
        position = batch[-1].id
        recorder.insert_events(new, tracking=Tracking(name, position))
    elapsed = time.perf_counter() - began
    assert version == n, version
    return n / elapsed


def _round(workdir: str, n: int) -> dict[str, tuple[float, float]]:
    ours_path = os.path.join(workdir, "ours.db")
    peer_path = os.path.join(workdir, "peer.db")
    _ours_source(ours_path, n)
    recorder = _peer_recorder(peer_path)
    _peer_source(recorder, n)
    results = {"noop": (ours_noop(ours_path, n), peer_noop(recorder, n))}
    results["exactly_once"] = (ours_exactly_once(ours_path, n), peer_exactly_once(recorder, n))
    results["exactly_once_batch"] = (
        ours_exactly_once_batch(ours_path, n),
        peer_exactly_once(recorder, n, "derive-batch"),
    )
    recorder.datastore.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--events", type=int, default=None, help="source events per round")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        import eventsourcing  # noqa: F401
    except ImportError:
        sys.stderr.write("eventsourcing is not installed: pip install -e '.[bench]'\n")
        return 1
    n = args.events or (1000 if args.quick else 10_000)
    n -= n % 100
    rounds = args.rounds or (2 if args.quick else 5)
    samples: dict[str, list[tuple[float, float]]] = {}
    for _ in range(rounds):
        workdir = tempfile.mkdtemp(prefix="sss-sub-bench-")
        try:
            for name, pair in _round(workdir, n).items():
                samples.setdefault(name, []).append(pair)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    from importlib.metadata import version

    print(
        f"subscription handler throughput, {n} events, median of {rounds} rounds "
        f"(eventsourcing {version('eventsourcing')})"
    )
    print(f"{'workload':<20} {'ours ev/s':>12} {'peer ev/s':>12} {'ours/peer':>10}")
    median: Callable[[list[float]], float] = statistics.median
    for name, pairs in samples.items():
        ours = median([p[0] for p in pairs])
        peer = median([p[1] for p in pairs])
        print(f"{name:<20} {ours:>12,.0f} {peer:>12,.0f} {ours / peer:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

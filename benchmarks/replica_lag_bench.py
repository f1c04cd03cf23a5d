"""Replication lag under a steady append load: how long after an event is
committed to the source it can be read from a ``sss replicate --follow``
replica, against a reader following the source itself in the same run.

Run from the repository root::

    .venv/bin/python benchmarks/replica_lag_bench.py                 # 100 events/s for 10 s
    .venv/bin/python benchmarks/replica_lag_bench.py --rate 200 --seconds 20
    .venv/bin/python benchmarks/replica_lag_bench.py --source postgresql://...  # a server source

A writer process appends one event every 1/rate seconds (``occurred_at`` is
left to the store; the payload carries the writer's wall-clock time just
before the commit). One thread follows the source with ``EventStore.follow``
(the live tail's own latency, the peer); another polls the replica's head
every 2 ms. Lag is the time from the writer's clock to when each reader saw
the event; medians and 95th percentiles are printed, and their ratio.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

from store import EventStore

WRITER = textwrap.dedent(
    """
    import sys, time
    from store import EventStore, NewEvent
    location, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    with EventStore(location) as es:
        end = time.time() + seconds
        n = 0
        while time.time() < end:
            es.append([NewEvent("Tick", {"n": n, "sent": time.time()})], f"a-{n % 50}")
            n += 1
            time.sleep(1 / rate)
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--source", help="a store to write to (default: a new SQLite file)")
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="lag_bench_")
    source = args.source or os.path.join(scratch, "source.db")
    replica = os.path.join(scratch, "replica.db")
    with EventStore(source) as es:
        start = es.head()
    sss = str(Path(sys.executable).with_name("sss"))
    follower = subprocess.Popen([sss, "replicate", source, replica, "--follow", "--quiet"])
    while not os.path.exists(replica):
        time.sleep(0.01)
    stop = threading.Event()
    direct: dict[int, float] = {}
    copied: dict[int, float] = {}

    def follow_source() -> None:
        with EventStore(source, readonly=True) as es:
            for event in es.follow(start + 1, poll_interval=0.002, stop=stop):
                direct[event.position] = time.time()

    def poll_replica() -> None:
        seen = start
        while not stop.is_set():
            try:
                with EventStore(replica, readonly=True) as es:
                    while not stop.is_set():
                        head = es.head()
                        now = time.time()
                        for position in range(seen + 1, head + 1):
                            copied[position] = now
                        seen = max(seen, head)
                        time.sleep(0.002)
            except Exception:
                time.sleep(0.01)

    threads = [threading.Thread(target=follow_source), threading.Thread(target=poll_replica)]
    for thread in threads:
        thread.start()
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, source, str(args.rate), str(args.seconds)], check=True
    )
    del writer
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    follower.send_signal(signal.SIGTERM)
    follower.wait(timeout=30)
    with EventStore(source, readonly=True) as es:
        sent = {e.position: e.data["sent"] for e in es.read(start + 1)}
    lags = {
        name: [seen[p] - sent[p] for p in sent if p in seen]
        for name, seen in (("follow", direct), ("replica", copied))
    }
    print(f"{len(sent)} events at {args.rate:g}/s for {args.seconds:g} s; source {source}")
    for name, values in lags.items():
        values.sort()
        p95 = values[int(0.95 * (len(values) - 1))] if values else float("nan")
        median = statistics.median(values) if values else float("nan")
        print(
            f"{name:8} seen {len(values):6}  lag median {median * 1000:7.1f} ms  "
            f"p95 {p95 * 1000:7.1f} ms"
        )
    if lags["follow"] and lags["replica"]:
        ratio = statistics.median(lags["replica"]) / statistics.median(lags["follow"])
        print(f"replica / follow median lag: {ratio:.1f}")


if __name__ == "__main__":
    main()

"""What verify's storage check costs: SQLite's integrity_check and
quick_check against verify's own chain walk, on one store.

Run from the repository root::

    .venv/bin/python benchmarks/verify_bench.py                  # 1,000,000 events, 3 rounds
    .venv/bin/python benchmarks/verify_bench.py --events 100000 --rounds 5

The store is built once (batches of 1,000 events through ``EventStore.append``
over 10,000 aggregates of 4 types and 8 event types; kept under ``--dir`` for
later runs). Each round times, in rotating order:

- ``walk``: ``verify(storage="off")``, the hash chain and sequences alone;
- ``integrity``: ``PRAGMA integrity_check`` (pages, and every index against
  its table), what ``verify()`` adds by default;
- ``quick``: ``PRAGMA quick_check`` (pages only), what ``storage="quick"`` adds.

Each check runs on a fresh connection; the file is read through the page
cache, as on a second run. Ratios are check / walk within a round, then the
median over rounds.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable

from store import EventStore, NewEvent


def build(path: str, events: int) -> None:
    with EventStore(path, durable=False) as es:
        for start in range(es.head(), events, 1000):
            batch = min(1000, events - start)
            for n in range(start, start + batch, 100):
                aggregate = n // 100 % 10_000
                es.append(
                    [
                        NewEvent(
                            f"Event{(n + i) % 8}",
                            {"n": n + i, "amount": (n + i) % 997, "note": "x" * ((n + i) % 40)},
                            metadata={"actor": "bench", "correlation_id": f"c-{n}"},
                        )
                        for i in range(min(100, start + batch - n))
                    ],
                    aggregate_id=f"agg-{aggregate}",
                    aggregate_type=f"Type{aggregate % 4}",
                )


def pragma(path: str, name: str) -> Callable[[], None]:
    def run() -> None:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            result = conn.execute(f"PRAGMA {name}").fetchall()
        conn.close()
        assert result == [("ok",)], result

    return run


def walk(path: str) -> Callable[[], None]:
    def run() -> None:
        with EventStore(path, readonly=True) as es:
            report = es.verify(storage="off")
        assert report.ok, report

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir(), help="where the store is kept")
    args = parser.parse_args()
    path = os.path.join(args.dir, f"sss-verify-bench-{args.events}.db")
    started = time.perf_counter()
    build(path, args.events)
    size = os.path.getsize(path)
    print(
        f"store: {path}, {args.events:,} events, {size / 1e6:,.0f} MB "
        f"(built or checked in {time.perf_counter() - started:.1f} s)"
    )
    jobs = {
        "walk": walk(path),
        "integrity": pragma(path, "integrity_check"),
        "quick": pragma(path, "quick_check"),
    }
    times: dict[str, list[float]] = {name: [] for name in jobs}
    names = list(jobs)
    for round_ in range(args.rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            t0 = time.perf_counter()
            jobs[name]()
            times[name].append(time.perf_counter() - t0)
    print(f"{'check':<10} {'median s':>9} {'vs walk':>8}   rounds")
    for name in names:
        ratios = [t / w for t, w in zip(times[name], times["walk"], strict=True)]
        print(
            f"{name:<10} {statistics.median(times[name]):9.2f} {statistics.median(ratios):8.2f}"
            f"   {', '.join(f'{t:.2f}' for t in times[name])}"
        )
    walk_median = statistics.median(times["walk"])
    for name in ("integrity", "quick"):
        total = walk_median + statistics.median(times[name])
        print(f"verify with storage={name[:5] if name == 'quick' else 'full'}: about {total:.1f} s")


if __name__ == "__main__":
    main()

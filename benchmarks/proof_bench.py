"""What the Merkle tree costs: appends with checkpoints taken as they go,
the verify walk with and without the tree, and a checkpoint and a proof.

Run from the repository root::

    .venv/bin/python benchmarks/proof_bench.py               # 100,000 events, 3 rounds
    .venv/bin/python benchmarks/proof_bench.py --events 20000 --rounds 5

Rows, each against a peer measured in the same round (medians over rounds):

- ``append1`` / ``append100``: events per second, one event per transaction
  (expected version checked) or batches of 100, on a durable SQLite file.
  Peer: the same appends with ``es.checkpoint()`` after every 1,000 events,
  which catches the stored tree up (the tree costs appends nothing by
  itself: they do not touch it; this is its cost when it is kept current).
- ``walk``: ``verify(storage="off", merkle=True)`` over ``--events``
  events, which also recomputes every leaf and the root (what ``sss verify``
  and ``--checkpoint`` run). Peer: ``verify(storage="off")``, the walk
  without the tree (the API's default, unchanged).
- ``checkpoint``: seconds for the first checkpoint of the whole store (every
  event read once), then for one after 1,000 more events; ``prove``: one
  inclusion proof at the full size, with the number of database calls.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from store import NO_STREAM, EventStore, NewEvent


def payload(i: int) -> dict[str, Any]:
    return {"n": i, "sku": f"sku-{i % 50}", "qty": i % 7 + 1, "note": "a short note"}


META = {"actor": "bench", "correlation_id": "c-1"}


def append1(path: str, count: int, every: int | None) -> float:
    with EventStore(path) as es:
        for a in range(10):
            es.append([NewEvent("Created", payload(a), META)], f"agg-{a}", "Item", NO_STREAM)
        versions = dict.fromkeys(range(10), 1)
        start = time.perf_counter()
        for i in range(count):
            a = i % 10
            es.append([NewEvent("Changed", payload(i), META)], f"agg-{a}", "Item", versions[a])
            versions[a] += 1
            if every and (i + 1) % every == 0:
                es.checkpoint()
        return count / (time.perf_counter() - start)


def append100(path: str, batches: int, every: int | None) -> float:
    with EventStore(path) as es:
        start = time.perf_counter()
        for b in range(batches):
            events = [NewEvent("Changed", payload(b * 100 + j), META) for j in range(100)]
            es.append(events, f"batch-{b}", "Item", NO_STREAM)
            if every and ((b + 1) * 100) % every == 0:
                es.checkpoint()
        return batches * 100 / (time.perf_counter() - start)


def build(path: str, events: int) -> None:
    with EventStore(path, durable=False) as es:
        for start in range(es.head(), events, 1000):
            with es.transaction():
                for n in range(start, min(events, start + 1000), 100):
                    batch = [NewEvent("Changed", payload(n + j), META) for j in range(100)]
                    es.append(batch, f"agg-{n // 100 % 10_000}", "Item")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Counting:
    """Counts the backend calls a piece of work makes."""

    def __init__(self, es: EventStore) -> None:
        self.calls = 0
        backend = es.backend
        for name in ("chain_page", "tree_nodes", "tree_filled", "save_tree_nodes", "head"):
            setattr(backend, name, self._wrap(getattr(backend, name)))

    def _wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            self.calls += 1
            return fn(*args)

        return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"append1": [], "append100": [], "walk": []}
    big = os.path.join(args.dir, f"proof-bench-{args.events}.db")
    build(big, args.events)
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(dir=args.dir) as d:
            order = [None, 1000] if round_ % 2 == 0 else [1000, None]
            got: dict[Any, tuple[float, float]] = {}
            for every in order:
                a1 = append1(os.path.join(d, f"a1-{every}.db"), args.singles, every)
                a100 = append100(os.path.join(d, f"a100-{every}.db"), args.batches, every)
                got[every] = (a1, a100)
            rows["append1"].append((got[None][0], got[1000][0]))
            rows["append100"].append((got[None][1], got[1000][1]))
        with EventStore(big, readonly=True) as es:
            if round_ == 0:
                es.verify(storage="off")  # warm the page cache for both
            walks: dict[bool, float] = {}
            for tree in (True, False) if round_ % 2 == 0 else (False, True):
                walks[tree] = timed(lambda es=es, t=tree: es.verify(storage="off", merkle=t))
        rows["walk"].append((walks[False], walks[True]))
    print(f"{args.events:,} events for walk/checkpoint; {args.rounds} rounds; medians")
    print(f"{'row':<12}{'without tree':>16}{'with tree':>16}{'ratio':>10}")
    for name, pairs in rows.items():
        base = statistics.median(p[0] for p in pairs)
        ours = statistics.median(p[1] for p in pairs)
        unit = "s" if name == "walk" else " ev/s"
        print(f"{name:<12}{base:>14,.2f}{unit:<2}{ours:>14,.2f}{unit:<2}{ours / base:>10.3f}")
    copy = os.path.join(args.dir, "proof-bench-copy.db")
    with EventStore(big) as src, EventStore(copy) as es:
        from store import copy_store

        copy_store(src, es, verify=False)
        first = timed(es.checkpoint)
        build_more = [NewEvent("Changed", payload(i), META) for i in range(1000)]
        es.append(build_more, "more", "Item")
        again = timed(es.checkpoint)
    with EventStore(copy, readonly=True) as es:
        counter = Counting(es)
        size = es.head()
        proof_time = timed(lambda: es.prove(size // 3))
        calls = counter.calls
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(copy + suffix):
            os.remove(copy + suffix)
    print(f"checkpoint, first of {args.events:,} events: {first:.2f} s; after 1,000 more: "
          f"{again * 1000:.1f} ms")  # fmt: skip
    print(f"prove (fresh read-only open, {size:,} events): {proof_time * 1000:.1f} ms, "
          f"{calls} database calls")  # fmt: skip


if __name__ == "__main__":
    main()

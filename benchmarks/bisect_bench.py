"""Finding the first version at which a condition holds: ``es.bisect`` and
``sss bisect`` against a plain Python fold-and-check loop.

Part 1, one long aggregate (default 100,000 events, payloads of a few
fields that change at every event, as an order's lines, notes and totals
would): the condition first holds at the last event (the worst case for a
scan) and, a second condition, at the middle. Timed per round on a freshly
opened store (no in-memory checkpoints):

- ``es.bisect``: the store's search;
- ``sss bisect``: the command in-process (``workbench.cli.main``), output
  discarded, and as a subprocess (the wall time a user sees, with start-up);
- the peer: what a user would write: ``for event in es.stream(id)``, fold
  with ``merge_patch``, test the same parsed condition after each event.

Part 2, a whole type (``es.bisect_type``): every Order of a demo store (by
default the 1,000,000-event demo, built once into a cached temp file), one
pass; the peer folds every order's events in one pass of ``es.read`` with
the same test.

    python benchmarks/bisect_bench.py                     # both parts
    python benchmarks/bisect_bench.py --events 20000 --demo-events 100000 --rounds 3
    python benchmarks/bisect_bench.py --skip-type         # only the long aggregate

Medians over rounds; ratios are ours / peer within a round (< 1: faster).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from store import EventStore, NewEvent, merge_patch
from store.conditions import parse

AGGREGATE = "long-1"


def build_long(path: str, events: int) -> None:
    with EventStore(path, durable=False) as es:
        batch: list[NewEvent] = []
        for n in range(1, events + 1):
            data: dict[str, Any] = {
                "total": round(n * 0.37 % 500, 2),
                "lines": {f"sku-{n % 7}": n % 5 + 1},
                "note": f"edit {n}",
                "status": "open" if n < events else "cancelled",
            }
            if n == events // 2:
                data["flag"] = "review"
            batch.append(NewEvent("Edited", data, metadata={"actor": f"user:{n % 13}"}))
            if len(batch) == 1000:
                es.append(batch, aggregate_id=AGGREGATE, aggregate_type="Long")
                batch = []
        if batch:
            es.append(batch, aggregate_id=AGGREGATE, aggregate_type="Long")


def peer_first(es: EventStore, aggregate_id: str, test: Callable[[dict[str, Any]], bool]) -> int:
    state: dict[str, Any] = {}
    for event in es.stream(aggregate_id):
        state = merge_patch(state, event.data)
        if test(state):
            return event.version or 0
    return 0


def peer_type(es: EventStore, aggregate_type: str, test: Callable[[dict[str, Any]], bool]) -> int:
    states: dict[str, dict[str, Any]] = {}
    done: set[str] = set()
    for event in es.read(aggregate_type=aggregate_type):
        aggregate = event.aggregate_id or ""
        if aggregate in done:
            continue
        state = merge_patch(states.get(aggregate, {}), event.data)
        if test(state):
            done.add(aggregate)
            states.pop(aggregate, None)
        else:
            states[aggregate] = state
    return len(done)


def count_type(es: EventStore, expression: str) -> int:
    return sum(1 for _ in es.bisect_type("Order", expression))


def timed(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = fn(*args)
    return time.perf_counter() - started, value


def cli_in_process(path: str, *args: str) -> int:
    from workbench.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        return main(["bisect", path, *args])


def cli_process(path: str, *args: str) -> int:
    sss = os.path.join(os.path.dirname(sys.executable), "sss")
    done = subprocess.run([sss, "bisect", path, *args], capture_output=True, check=False)
    return done.returncode


def report(name: str, ours: list[float], peer: list[float]) -> None:
    ratios = [o / p for o, p in zip(ours, peer, strict=True)]
    print(
        f"  {name:<34} {statistics.median(ours) * 1000:9.1f} ms   peer "
        f"{statistics.median(peer) * 1000:9.1f} ms   ratio {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f})"
    )


def part_long(directory: str, events: int, rounds: int) -> None:
    path = os.path.join(directory, f"long-{events}.db")
    if not os.path.exists(path):
        print(f"building one aggregate of {events:,} events ...", flush=True)
        build_long(path, events)
    print(f"one aggregate of {events:,} events, {rounds} rounds:")
    for label, expression, expected in (
        ("last event matches", '/status == "cancelled"', events),
        ("middle event matches", "/flag exists and /total >= 0", events // 2),
    ):
        test = parse(expression)
        api: list[float] = []
        inproc: list[float] = []
        proc: list[float] = []
        peer: list[float] = []
        for _ in range(rounds):
            with EventStore(path, readonly=True) as es:
                seconds, step = timed(es.bisect, AGGREGATE, expression)
                assert step is not None and step.event.version == expected, step
                api.append(seconds)
            with EventStore(path, readonly=True) as es:
                seconds, version = timed(peer_first, es, AGGREGATE, test)
                assert version == expected
                peer.append(seconds)
            seconds, code = timed(cli_in_process, path, AGGREGATE, "--where", expression)
            assert code == 0
            inproc.append(seconds)
            seconds, code = timed(cli_process, path, AGGREGATE, "--where", expression)
            assert code == 0
            proc.append(seconds)
        print(f" {label} ({expression}):")
        report("es.bisect", api, peer)
        report("sss bisect (in process)", inproc, peer)
        report("sss bisect (subprocess, wall)", proc, peer)


def part_type(directory: str, events: int, rounds: int, store: str | None) -> None:
    path = store or os.path.join(directory, f"demo-{events}.db")
    if not os.path.exists(path):
        from workbench.demo import generate

        print(f"building a demo store of {events:,} events at {path} ...", flush=True)
        generate(path, events=events, seed=7)
    with EventStore(path, readonly=True) as es:
        orders = es.aggregate_types().get("Order", 0)
        head = es.head()
    print(f"every Order of a demo store ({head:,} events, {orders:,} orders), {rounds} rounds:")
    for expression in ('/status == "returned"', "/total < 20 and /correction exists"):
        test = parse(expression)
        ours: list[float] = []
        peer: list[float] = []
        for _ in range(rounds):
            with EventStore(path, readonly=True) as es:
                seconds, found = timed(count_type, es, expression)
                ours.append(seconds)
            with EventStore(path, readonly=True) as es:
                seconds, expected = timed(peer_type, es, "Order", test)
                peer.append(seconds)
            assert found == expected, (found, expected)
        print(f" {expression}: {found:,} orders match")
        report("es.bisect_type", ours, peer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="length of the aggregate")
    parser.add_argument("--demo-events", type=int, default=1_000_000)
    parser.add_argument("--store", help="a demo store to search by type (default: built)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-type", action="store_true")
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args(argv)
    directory = os.path.join(tempfile.gettempdir(), "sss-bisect-bench")
    os.makedirs(directory, exist_ok=True)
    if not args.skip_long:
        part_long(directory, args.events, args.rounds)
    if not args.skip_type:
        part_type(directory, args.demo_events, max(1, args.rounds // 2), args.store)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How fast the TUI opens and jumps on a large store, with Textual's headless driver.

Run from the repository root::

    .venv/bin/python benchmarks/tui_bench.py                    # 1,000,000 demo events
    .venv/bin/python benchmarks/tui_bench.py --events 100000 --runs 3
    .venv/bin/python benchmarks/tui_bench.py --store big.db     # an existing store

Each run starts a fresh ``WorkbenchApp`` with ``App.run_test`` at 160x45 and
measures, by polling the widgets every millisecond until the rows are in the
table (the next frame paints them):

- first paint: from opening the store to the newest rows being in the table;
- jump to oldest (``g``) and back to newest (``G``);
- seek to the middle position, and to the time of the middle event;
- a page in at the edge: the cursor put on the loaded window's first row
  until the older page is in.

Targets (the issue's): first paint <= 1 s and jumps <= 0.2 s on 1,000,000
events; memory bounded, i.e. the timeline never holds more than its window.

The peer is what a viewer without keyset paging must do before its first
paint: read every event (``list(es.read())``), as a table widget fed the whole
log would. It is measured on the same store, once.

Not a test: building a million-event store takes a minute or two the first time
(it is kept in the temporary directory and reused).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from store import EventStore
from workbench.tui.app import WorkbenchApp

SIZE = (160, 45)


def build(events: int) -> Path:
    from workbench.demo import generate

    path = Path(tempfile.gettempdir()) / f"sss-tui-bench-{events}.db"
    if not path.exists():
        print(f"building {events:,} demo events in {path} …", flush=True)
        started = time.perf_counter()
        generate(str(path), events=events, seed=1)
        print(f"  built in {time.perf_counter() - started:.1f} s", flush=True)
    return path


async def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> float:
    started = time.perf_counter()
    while not predicate():
        if time.perf_counter() - started > timeout:
            raise TimeoutError("the TUI did not get there in time")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def one_run(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    es = EventStore(str(path), readonly=True)
    head = es.head()
    app = WorkbenchApp(es)
    timings: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.timeline

        def at(position: int) -> Callable[[], bool]:
            def check() -> bool:
                selected = timeline.selected
                return (
                    selected is not None
                    and selected.position == position
                    and timeline.table.row_count == len(timeline.window)
                )

            return check

        await wait_until(at(head))
        timings["first paint"] = time.perf_counter() - started

        # Keys are posted as a terminal would send them: Pilot.press would also
        # wait for the whole screen to go idle, which is not what a user waits for.
        # First right after the first paint, while start-up work (the
        # aggregates tree, event type counts, the chain check) still runs; then
        # once the screen is idle, as when a user has read the first page.
        for when in ("at start-up", "idle"):
            if when == "idle":
                await app.workers.wait_for_complete(
                    [w for w in app.workers if w.group != "verify"]
                )
                await pilot.pause()
            started = time.perf_counter()
            app.simulate_key("g")
            await wait_until(at(1))
            timings[f"jump to oldest, {when}"] = time.perf_counter() - started
            await pilot.pause()

            started = time.perf_counter()
            app.simulate_key("G")
            await wait_until(at(head))
            timings[f"jump to newest, {when}"] = time.perf_counter() - started
            await pilot.pause()

        middle = head // 2
        started = time.perf_counter()
        timeline.jump_to_position(middle)
        await wait_until(at(middle))
        timings["seek position"] = time.perf_counter() - started

        when = es.get(middle // 2).recorded_at
        landing = es.position_at(when)
        started = time.perf_counter()
        timeline.jump_to_time(when, when.isoformat())
        await wait_until(at(landing))
        timings["seek time"] = time.perf_counter() - started

        # Put the cursor on the window's first row: the page above is fetched
        # (older events prepended, the window trimmed at the other end).
        first = timeline.window.first_position or 1
        started = time.perf_counter()
        timeline.table.move_cursor(row=0)
        await wait_until(lambda: (timeline.window.first_position or 1) < first)
        timings["page in at the edge"] = time.perf_counter() - started
        timings["window rows"] = float(len(timeline.window))
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "verify"])
    es.close()
    return timings


def peer(path: Path) -> float:
    started = time.perf_counter()
    with EventStore(str(path), readonly=True) as es:
        every = list(es.read())
    elapsed = time.perf_counter() - started
    del every
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--store", type=Path, help="an existing store instead of demo data")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-peer", action="store_true", help="skip reading the whole log")
    args = parser.parse_args(argv)
    path = args.store or build(args.events)
    with EventStore(str(path), readonly=True) as es:
        head = es.head()
    size = os.path.getsize(path) / 1e6
    print(f"store {path} · {head:,} events · {size:,.0f} MB")
    runs = [asyncio.run(one_run(path)) for _ in range(args.runs)]
    print(f"\n{'measure':<30}{'median':>10}{'max':>10}   target")
    targets = {"first paint": 1.0}
    for name in runs[0]:
        values = [run[name] for run in runs]
        if name == "window rows":
            print(f"{name:<30}{max(values):>10.0f}{'':>10}   bounded (<= 600)")
            continue
        target = targets.get(name, 0.2)
        verdict = "ok" if statistics.median(values) <= target else "SLOW"
        print(
            f"{name:<30}{statistics.median(values) * 1000:>8.0f}ms"
            f"{max(values) * 1000:>8.0f}ms   <= {target * 1000:.0f} ms {verdict}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process (all runs): {peak:,.0f} MB")
    if not args.no_peer:
        elapsed = peer(path)
        print(f"\npeer: reading every event before a first paint took {elapsed:.2f} s")
        first = statistics.median(run["first paint"] for run in runs)
        print(f"first paint ratio (ours / peer): {first / elapsed:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

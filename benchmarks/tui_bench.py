"""How fast the TUI opens and jumps on a large store, with Textual's headless driver.

Run from the repository root::

    .venv/bin/python benchmarks/tui_bench.py                    # 1,000,000 demo events
    .venv/bin/python benchmarks/tui_bench.py --events 100000 --runs 3
    .venv/bin/python benchmarks/tui_bench.py --store big.db     # an existing store
    .venv/bin/python benchmarks/tui_bench.py --store 'postgresql://me@host/db?options=-csearch_path%3Dbig'

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
from workbench.tui.replay import ReplayScreen

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


async def one_run(path: Path | str) -> dict[str, float]:
    started = time.perf_counter()
    es = EventStore(str(path), readonly=True)
    head = es.head()
    app = WorkbenchApp(es)
    timings: dict[str, float] = {}
    async with app.run_test(size=SIZE) as pilot:
        timeline = app.main.timeline

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
                await app.workers.wait_for_complete([w for w in app.workers if w.group != "verify"])
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


BIG = "sku-big"


def build_big_aggregate(events: int, snapshots: bool) -> Path:
    """A store whose aggregate ``sku-big`` has ``events`` events, recorded a
    minute apart, among other events; with a snapshot every 1,000 versions."""
    from datetime import UTC, datetime, timedelta

    from store import NewEvent

    tag = "snap" if snapshots else "plain"
    path = Path(tempfile.gettempdir()) / f"sss-tui-bench-aggregate-{events}-{tag}.db"
    if path.exists():
        return path
    print(f"building an aggregate of {events:,} events in {path} …", flush=True)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    clock = {"now": start}
    with EventStore(
        str(path), durable=False, snapshot_every=1000 if snapshots else None,
        clock=lambda: clock["now"],
    ) as es:  # fmt: skip
        for n in range(0, events, 100):
            clock["now"] = start + timedelta(minutes=n)
            es.append(
                [
                    NewEvent("StockCounted", {"on_hand": n + k, "bin": f"b{k % 7}"})
                    for k in range(100)
                ],
                aggregate_id=BIG,
                aggregate_type="InventoryItem",
            )
            es.append([NewEvent("Noise", {"n": n})], aggregate_id=f"other-{n % 50}")
    return path


async def aggregate_run(path: Path) -> dict[str, float]:
    """Open the replay of the 100,000-event aggregate and seek it to a time."""
    from datetime import timedelta

    es = EventStore(str(path), readonly=True)
    info = es.aggregate(BIG)
    app = WorkbenchApp(es)
    timings: dict[str, float] = {}
    async with app.run_test(size=SIZE):
        await app.workers.wait_for_complete([w for w in app.workers if w.group != "verify"])
        started = time.perf_counter()
        await app.push_screen(ReplayScreen(es, BIG))
        screen = app.screen
        await wait_until(lambda: getattr(screen, "version", 0) == info.version)
        timings["open replay at the last version"] = time.perf_counter() - started
        for label, fraction in (("seek aggregate to a time", 0.5), ("seek it again", 0.31)):
            moment = info.created_at + (info.updated_at - info.created_at) * fraction
            moment += timedelta(seconds=30)  # between two events: lands on the earlier
            target = es.state_at(BIG, at=moment).version
            started = time.perf_counter()
            screen.seek(moment.isoformat())  # type: ignore[attr-defined]
            await wait_until(lambda t=target: getattr(screen, "version", 0) == t)  # type: ignore[misc]
            timings[label] = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(10):
            here = screen.version  # type: ignore[attr-defined]
            screen.action_step(1)  # type: ignore[attr-defined]  # what ] does
            await wait_until(lambda h=here: screen.version == h + 1)  # type: ignore[attr-defined,misc]
        timings["step ] (each of 10)"] = (time.perf_counter() - started) / 10
        await app.workers.wait_for_complete([w for w in app.workers if w.group == "verify"])
    es.close()
    return timings


def peer(path: Path | str) -> float:
    started = time.perf_counter()
    with EventStore(str(path), readonly=True) as es:
        every = list(es.read())
    elapsed = time.perf_counter() - started
    del every
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--store", help="an existing store (a path or a postgresql:// URL) instead of demo data"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--aggregate-events", type=int, default=100_000)
    parser.add_argument("--no-peer", action="store_true", help="skip reading the whole log")
    args = parser.parse_args(argv)
    path = args.store or build(args.events)
    with EventStore(str(path), readonly=True) as es:
        head = es.head()
        label = es.label
        size = (es.info().get("events_size") or os.path.getsize(path)) / 1e6
    print(f"store {label} · {head:,} events · {size:,.0f} MB")
    runs = [asyncio.run(one_run(path)) for _ in range(args.runs)]
    timeline_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for snapshots in (True, False):
        big = build_big_aggregate(args.aggregate_events, snapshots)
        label = "with snapshots" if snapshots else "no snapshots"
        for run, extra in zip(runs, (asyncio.run(aggregate_run(big)) for _ in runs), strict=True):
            run.update({f"{name}, {label}": value for name, value in extra.items()})
    print(f"\n{'measure':<46}{'median':>10}{'max':>10}   target")
    targets = {"first paint": 1.0}
    for name in runs[0]:
        values = [run[name] for run in runs]
        if name == "window rows":
            print(f"{name:<46}{max(values):>10.0f}{'':>10}   bounded (<= 600)")
            continue
        target = targets.get(name, 0.2)
        verdict = "ok" if statistics.median(values) <= target else "SLOW"
        print(
            f"{name:<46}{statistics.median(values) * 1000:>8.0f}ms"
            f"{max(values) * 1000:>8.0f}ms   <= {target * 1000:.0f} ms {verdict}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after the timeline runs: {timeline_peak:,.0f} MB (target < 250 MB)")
    print(f"peak RSS of this process, all runs: {peak:,.0f} MB")
    if not args.no_peer:
        elapsed = peer(path)
        print(f"\npeer: reading every event before a first paint took {elapsed:.2f} s")
        first = statistics.median(run["first paint"] for run in runs)
        print(f"first paint ratio (ours / peer): {first / elapsed:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

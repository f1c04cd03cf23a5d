"""Costs that grow with the store: ``sss stats``, ``verify`` (time and peak
RSS), the incremental verify, and the storage check, on stores of growing
size, with the growth ratio per 5x the events.

Run from the repository root on stores made by ``sss demo`` (built once and
reused; ``--build`` makes the missing ones, which takes a while at 5M)::

    .venv/bin/python benchmarks/costs_bench.py --dir /tmp/costs_stores --build
    .venv/bin/python benchmarks/costs_bench.py --dir /tmp/costs_stores --sizes 200000 1000000

Stores are ``DIR/demo-<N>.db``; a store of several million events is made
from the 1M one when it exists (its events again, with new aggregates: see
:func:`replicate`), which takes minutes where the demo's simulation takes
hours. Each measurement runs in a fresh process (``python -c``), so peak RSS
is that process's ``ru_maxrss``, and the files are read through the page
cache, as on a second run. Per store and round:

- ``stats``: ``collect_stats`` (what ``sss stats`` prints) in-process, and
  the ``sss stats`` command's wall time next to ``sss --help``'s (the
  interpreter's start and imports, the floor of any command);
- ``verify``: ``verify(storage="off")``, the whole chain walk: seconds,
  events per second and peak RSS;
- ``incremental``: ``verify(from_position=head - 10000, head_hash=...)``,
  the last 10,000 events, as an auditor who verified yesterday runs it;
- ``integrity`` / ``quick``: the storage check alone, ``PRAGMA
  integrity_check`` (pages and every index against its table, what
  ``--storage full`` adds) and ``quick_check`` (pages only).

Each also gives the CPU seconds of the measured call (``time.process_time``),
which a loaded machine inflates far less than wall time: the rate per CPU
second is the figure to compare between sizes measured at different times.

A store made by an earlier release is upgraded (its kept counts built) the
first time this release opens it for writing; ``--upgrade`` does that first
and times it. With ``--code DIR`` the measurements import the store from
another checkout (e.g. the previous release, on stores it can read), for a
before/after table from two runs. Medians over ``--rounds``; the machine
may be loaded, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INCREMENT = 10_000

MEASURE = r"""
import json, resource, sys, time
what, path = sys.argv[1], sys.argv[2]
from store import EventStore
out = {}
start, cpu = time.perf_counter(), time.process_time()
with EventStore(path, readonly=True) as es:
    if what == "stats":
        from workbench.cli.audit import collect_stats
        collect_stats(es, path)
    elif what == "verify":
        report = es.verify(storage="off")
        out["ok"], out["checked"] = report.ok, report.checked
    elif what == "incremental":
        head = es.head()
        after = max(0, head - int(sys.argv[3]))
        trusted = es.get(after).hash if after else "0" * 64
        start, cpu = time.perf_counter(), time.process_time()
        report = es.verify(from_position=after, head_hash=trusted, storage="off")
        out["ok"], out["checked"] = report.ok, report.checked
    else:
        start, cpu = time.perf_counter(), time.process_time()
        out["problems"] = es.backend.check_storage(what == "integrity")
out["seconds"] = time.perf_counter() - start
out["cpu"] = time.process_time() - cpu
out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def _env(code: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([code, env.get("PYTHONPATH", "")])
    return env


def measure(what: str, path: str, code: str | None, *extra: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, what, path, *extra],
        capture_output=True,
        text=True,
        env=_env(code),
        cwd=code or ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{what} on {path} failed: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, float] = json.loads(done.stdout)
    if result.get("ok") is False or result.get("problems"):
        raise SystemExit(f"{what} on {path} did not pass: {result}")
    return result


def wall(args: list[str], code: str | None) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from workbench.cli import main; main()", *args],
        capture_output=True,
        env=_env(code),
        cwd=code or ROOT,
        check=True,
    )
    return time.perf_counter() - start


def build(path: str, events: int) -> None:
    print(f"building {path} ({events} events) ...", flush=True)
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from workbench.cli import main; main()",
            "demo",
            "--events",
            str(events),
            "--no-open",
            path,
        ],
        check=True,
        cwd=ROOT,
    )


REPLICATE = r"""
import sqlite3, sys, uuid
from datetime import datetime, timedelta
from store import AggregateInfo, EventStore
from store.codec import GENESIS_HASH, chain_hash, format_time, loads_stored
source, path, copies = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
first, last = conn.execute(
    "SELECT min(recorded_at), max(recorded_at) FROM events").fetchone()
span = datetime.fromisoformat(last) - datetime.fromisoformat(first) + timedelta(seconds=1)
head = conn.execute("SELECT max(position) FROM events").fetchone()[0]
prev = GENESIS_HASH
with EventStore(path, durable=False) as es:
    for copy in range(copies):
        shift = span * copy
        rows = conn.execute(
            "SELECT position, aggregate_id, aggregate_type, version, type, schema_version, "
            "data, metadata, occurred_at, recorded_at, data_hash FROM events ORDER BY position")
        while page := rows.fetchmany(5000):
            out, touched = [], {}
            for (position, aggregate_id, aggregate_type, version, type_, schema_version, data,
                 metadata, occurred, recorded, data_hash) in page:
                position += copy * head
                if aggregate_id is not None:
                    aggregate_id = f"{aggregate_id}~{copy}"
                if copy:
                    occurred = format_time(datetime.fromisoformat(occurred) + shift)
                    recorded = format_time(datetime.fromisoformat(recorded) + shift)
                event_id = str(uuid.uuid4())
                prev = chain_hash(
                    prev, position=position, event_id=event_id, aggregate_id=aggregate_id,
                    aggregate_type=aggregate_type, version=version, type=type_,
                    schema_version=schema_version, data_hash=data_hash,
                    metadata=loads_stored(metadata), occurred_at=occurred, recorded_at=recorded)
                out.append((position, event_id, aggregate_id, aggregate_type, version, type_,
                            schema_version, data, metadata, occurred, recorded, data_hash, prev))
                if aggregate_id is not None:
                    at = datetime.fromisoformat(recorded)
                    seen = touched.get(aggregate_id)
                    touched[aggregate_id] = AggregateInfo(
                        aggregate_id, aggregate_type, version,
                        position if seen is None else seen.first_position, position,
                        at if seen is None else seen.created_at, at)
            with es._lock, es.backend.write() as tx:
                tx.insert(out, None)
                for info in touched.values():
                    # An aggregate met before keeps its first position and
                    # creation time: the insert only moves its end.
                    tx.insert([], info)
"""


def replicate(source: str, path: str, copies: int, code: str | None) -> None:
    """A larger store from a demo store: its rows ``copies`` times over, in
    order, each copy with its own aggregates, new event ids and times moved
    on past the copy before, the chain rebuilt with the store's own hash and
    written through the backend's bulk insert, as ``copy_store`` writes (the
    payloads and their digests stay as stored): the demo's shapes and sizes,
    in minutes rather than the simulation's hours. The result verifies."""
    print(f"building {path} ({copies} copies of {source}) ...", flush=True)
    subprocess.run(
        [sys.executable, "-c", REPLICATE, source, path, str(copies)],
        check=True,
        env=_env(code),
        cwd=code or ROOT,
    )


def upgrade(path: str) -> float:
    code = "import sys; from store import EventStore; EventStore(sys.argv[1]).close()"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, path], check=True, cwd=ROOT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", required=True, help="where the demo stores are (or go)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[200_000, 1_000_000, 5_000_000], help="events"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measurement")
    parser.add_argument("--build", action="store_true", help="make missing stores with sss demo")
    parser.add_argument("--upgrade", action="store_true", help="open each store for writing first")
    parser.add_argument("--code", help="import the store from this checkout instead")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["stats", "verify", "incremental", "integrity", "quick"],
        default=["stats", "verify", "incremental", "integrity", "quick"],
    )
    args = parser.parse_args()
    code = None if args.code is None else str(Path(args.code).resolve())
    rows: dict[int, dict[str, float]] = {}
    for size in args.sizes:
        path = os.path.join(args.dir, f"demo-{size}.db")
        if not os.path.exists(path):
            if not args.build:
                raise SystemExit(f"{path} is missing: make it with --build or sss demo")
            source = os.path.join(args.dir, "demo-1000000.db")
            if size > 1_000_000 and size % 1_000_000 == 0 and os.path.exists(source):
                replicate(source, path, size // 1_000_000, code)
            else:
                build(path, size)
        row: dict[str, float] = {}
        if args.upgrade:
            row["upgrade s"] = upgrade(path)
        samples: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for what in args.only:
                extra = (str(INCREMENT),) if what == "incremental" else ()
                got = measure(what, path, code, *extra)
                print(f"  {size} {what}: {json.dumps(got)}", flush=True)
                samples.setdefault(f"{what} s", []).append(got["seconds"])
                samples.setdefault(f"{what} cpu s", []).append(got["cpu"])
                if what == "verify":
                    samples.setdefault("verify MB", []).append(got["rss_mb"])
                    samples.setdefault("verify ev/s", []).append(got["checked"] / got["seconds"])
                    samples.setdefault("verify ev/cpu-s", []).append(got["checked"] / got["cpu"])
            if "stats" in args.only:
                samples.setdefault("sss stats s", []).append(wall(["stats", path], code))
                samples.setdefault("sss --help s", []).append(wall(["--help"], code))
        row.update({name: statistics.median(values) for name, values in samples.items()})
        rows[size] = row
        print(f"{size:>9} events: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)
    sizes = sorted(rows)
    names = list(rows[sizes[0]])
    print()
    print("| measure | " + " | ".join(f"{s:,} events" for s in sizes) + " |")
    print("|---|" + "---|" * len(sizes))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{rows[s][name]:.3g}" for s in sizes) + " |")
    print()
    print("growth per 5x the events (value at 5x / value):")
    for small, large in itertools.pairwise(sizes):
        if large != small * 5:
            continue
        ratios = ", ".join(
            f"{name} {rows[large][name] / rows[small][name]:.2f}x"
            for name in names
            if rows[small][name]
        )
        print(f"  {small:,} -> {large:,}: {ratios}")


if __name__ == "__main__":
    main()

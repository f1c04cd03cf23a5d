"""The analysis database (``sss export --format sqlite``) against what a user
would otherwise write: ``frames.events`` and ``DataFrame.to_sql``.

Peers, measured in the same run on the same store, each writing a fresh
SQLite file:

- ``frames.events(flatten=True) + to_sql``: one wide table with a column per
  payload field, the nearest a user gets to the type tables in two lines;
- ``frames.events + to_sql``: the events with their payloads as JSON text.

The export does more than either (a table per event type, states rebuilt
with the reducers, the field changes, full-text search, the source's verify),
and is timed whole. Each variant runs in a fresh subprocess, ``--runs`` times;
medians and the ratios to the peers are printed. The target: the export is
faster than the flattened peer.

    python benchmarks/analysis_bench.py                      # 1,000,000 demo events
    python benchmarks/analysis_bench.py --events 200000 --runs 3

Not a test: it takes minutes (building the store the first time takes longest).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

VARIANTS: dict[str, str] = {
    "frames.events(flatten=True) + to_sql (peer)": """
import sqlite3
from workbench import frames
ready()
df = frames.events(path, flatten=True)
conn = sqlite3.connect(target)
df.to_sql("events", conn, index=False, chunksize=50_000)
conn.commit()
conn.close()
rows = len(df)
""",
    "frames.events + to_sql": """
import sqlite3
from workbench import frames
ready()
df = frames.events(path)
conn = sqlite3.connect(target)
df.to_sql("events", conn, index=False, chunksize=50_000)
conn.commit()
conn.close()
rows = len(df)
""",
    "sss export --format sqlite": """
from workbench.analysis import export
ready()
rows = export(path, target).total
""",
}

PEER = "frames.events(flatten=True) + to_sql (peer)"

_HARNESS = """
import json, os, resource, sys, time
path, target = sys.argv[1], sys.argv[2]
marks = {}
def ready():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    marks["cpu"] = usage.ru_utime + usage.ru_stime
    marks["start"] = time.perf_counter()
%s
seconds = time.perf_counter() - marks["start"]
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - marks["cpu"]
print(json.dumps({"seconds": seconds, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024,
                  "rows": rows, "size_mb": os.path.getsize(target) / 2**20}))
"""


def run_variant(code: str, path: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sss-analysis-bench-") as directory:
        target = os.path.join(directory, "out.db")
        result = subprocess.run(
            [sys.executable, "-c", _HARNESS % code, path, target],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def build_store(path: str, events: int) -> None:
    from workbench.demo import generate

    started = time.perf_counter()
    print(f"building a demo store of {events:,} events at {path} ...", flush=True)
    generate(path, events=events, seed=7)
    print(f"  built in {time.perf_counter() - started:.0f}s", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="subprocesses per variant")
    parser.add_argument("--store", help="use (or build) this store; default a cached temp file")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)

    path = args.store or os.path.join(tempfile.gettempdir(), f"sss-bench-{args.events}.db")
    if not os.path.exists(path):
        build_store(path, args.events)
    size = os.path.getsize(path) / 2**20
    print(f"store {path}: {size:,.0f} MiB; {args.runs} runs per variant\n")

    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    # Interleaved, so a busy machine slows every variant alike.
    for _ in range(args.runs):
        for name, code in VARIANTS.items():
            results[name].append(run_variant(code, path))
    for name, runs in results.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        out = statistics.median(r["size_mb"] for r in runs)
        each = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        print(
            f"{name:46} wall {seconds:7.2f}s  cpu {cpu:7.2f}s  peak {peak:6.0f} MiB  "
            f"file {out:5.0f} MiB  rows {int(runs[0]['rows']):,}  (wall per run: {each})",
            flush=True,
        )
    # A ratio is taken within each round (both met the same machine load), then
    # the median over rounds; CPU time is what a loaded machine disturbs least.
    print("\nratio to the peer, median of the per-round ratios (below 1.00 is faster):")
    print(f"  {'':46}  wall    cpu")
    for name, runs in results.items():
        if name == PEER:
            continue
        wall = statistics.median(
            r["seconds"] / p["seconds"] for r, p in zip(runs, results[PEER], strict=True)
        )
        cpu = statistics.median(
            r["cpu"] / p["cpu"] for r, p in zip(runs, results[PEER], strict=True)
        )
        print(f"  {name:46} {wall:5.2f}x  {cpu:5.2f}x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"store": path, "events": args.events, "results": results}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

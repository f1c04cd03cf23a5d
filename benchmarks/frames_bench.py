"""Loading events into pandas: ``frames.events`` against ``pd.read_sql``,
ADBC and connectorx.

The peers are what a pandas user would otherwise write, each reading the same
rows (every column of the ``events`` table, in position order) straight from
SQLite:

- ``pd.read_sql`` over the standard library's ``sqlite3``;
- ``adbc_driver_sqlite``: ``fetch_arrow_table().to_pandas()``, what an analyst
  who knows Arrow writes; its times stay text and it has no categoricals;
- ``connectorx.read_sql(..., return_type="arrow").to_pandas()``, the same
  through connectorx (skipped when it is not installed).

Each variant runs in a fresh subprocess, several times, with the order of the
variants rotated between runs so machine load meets each alike; the subprocess
reports the load's wall time, the CPU time of the process (all threads), its
peak resident memory (``ru_maxrss``) and the memory after imports, before
loading. Medians and ratios are printed, each ratio the median of the per-run
ratios. The targets for ``frames.events``: time <= 1.0x and peak memory <=
0.6x ``pd.read_sql``; time <= 1.5x and peak memory <= 1.0x ADBC.

    python benchmarks/frames_bench.py                      # 1,000,000 demo events
    python benchmarks/frames_bench.py --events 200000 --runs 5
    python benchmarks/frames_bench.py --store big.db       # an existing store

Not a test: it takes minutes (building the store the first time takes longest).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

COLUMNS = (
    "position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
    "data, metadata, occurred_at, recorded_at, hash"
)

VARIANTS: dict[str, str] = {
    "pd.read_sql (peer)": """
import sqlite3
import pandas as pd
conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
ready()
df = pd.read_sql(f"SELECT {columns} FROM events ORDER BY position", conn)
""",
    "adbc_driver_sqlite (peer)": """
import adbc_driver_sqlite.dbapi as adbc
ready()
with adbc.connect(f"file:{path}?mode=ro") as conn, conn.cursor() as cur:
    cur.execute(f"SELECT {columns} FROM events ORDER BY position")
    df = cur.fetch_arrow_table().to_pandas()
""",
    "connectorx (peer)": """
import connectorx
ready()
df = connectorx.read_sql(
    f"sqlite://{path}", f"SELECT {columns} FROM events ORDER BY position", return_type="arrow"
).to_pandas()
""",
    "frames.events": """
from workbench import frames
ready()
df = frames.events(path)
""",
    "frames.events(flatten=True)": """
from workbench import frames
ready()
df = frames.events(path, flatten=True)
""",
    "frames.iter_events (100k chunks)": """
from workbench import frames
ready()
rows = 0
for chunk in frames.iter_events(path, chunksize=100_000):
    rows += len(chunk)
df = range(rows)  # what is reported is the total
""",
}

_HARNESS = """
import json, resource, sys, time
path, columns = sys.argv[1], sys.argv[2]
marks = {}
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def ready():
    marks["baseline_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks["cpu"] = cpu()
    marks["start"] = time.perf_counter()
%s
seconds = time.perf_counter() - marks["start"]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu() - marks["cpu"], "peak_mb": peak,
                  "baseline_mb": marks["baseline_mb"], "rows": len(df)}))
"""

OPTIONAL = {"connectorx (peer)": "connectorx", "adbc_driver_sqlite (peer)": "adbc_driver_sqlite"}
PEERS = {"pd.read_sql (peer)": (1.0, 0.6), "adbc_driver_sqlite (peer)": (1.5, 1.0)}
"""Each peer's targets for frames.events: (time ratio, peak-memory ratio) at most."""


def run_variant(code: str, path: str) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, "-c", _HARNESS % code, path, COLUMNS],
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


def _installed(name: str) -> bool:
    module = OPTIONAL.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="subprocesses per variant")
    parser.add_argument("--store", help="use (or build) this store; default a cached temp file")
    parser.add_argument(
        "--only", action="append", help="a variant's exact name, or text: run only those"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)

    path = args.store or os.path.join(tempfile.gettempdir(), f"sss-bench-{args.events}.db")
    if not os.path.exists(path):
        build_store(path, args.events)
    size = os.path.getsize(path) / 2**20
    # --only takes a variant's exact name, or else any text of names.
    only = args.only or []
    names = [
        name
        for name in VARIANTS
        if not only or name in only or any(text in name for text in only if text not in VARIANTS)
    ]
    for name in [n for n in names if not _installed(n)]:
        print(f"skipping {name}: {OPTIONAL[name]} is not installed")
        names.remove(name)
    print(f"store {path}: {size:,.0f} MiB; {args.runs} runs per variant")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    for run in range(args.runs):
        # Rotate the order so that a change in machine load meets every variant.
        order = names[run % len(names) :] + names[: run % len(names)]
        for name in order:
            results[name].append(run_variant(VARIANTS[name], path))
        print(f"run {run + 1}/{args.runs} done", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")

    def median(name: str, key: str) -> float:
        return statistics.median(r[key] for r in results[name])

    for name in names:
        print(
            f"{name:34} {median(name, 'seconds'):7.2f}s  cpu {median(name, 'cpu'):6.2f}s  "
            f"peak {median(name, 'peak_mb'):6.0f} MiB  "
            f"(after imports {median(name, 'baseline_mb'):4.0f} MiB)  "
            f"rows {int(results[name][0]['rows']):,}"
        )

    failed = False
    for peer, (time_target, memory_target) in PEERS.items():
        if peer not in results:
            continue
        print(f"\nratios to {peer} (median of per-run ratios):  time   cpu   peak memory")
        for name, runs in results.items():
            if name == peer:
                continue
            pairs = list(zip(runs, results[peer], strict=True))
            s = statistics.median(a["seconds"] / b["seconds"] for a, b in pairs)
            c = statistics.median(a["cpu"] / b["cpu"] for a, b in pairs)
            m = statistics.median(a["peak_mb"] / b["peak_mb"] for a, b in pairs)
            print(f"  {name:34} {s:5.2f}x {c:5.2f}x  {m:8.2f}x")
            if name == "frames.events":
                for what, ratio, target in (("time", s, time_target), ("peak", m, memory_target)):
                    ok = ratio <= target
                    failed |= not ok
                    print(
                        f"  {'PASS' if ok else 'FAIL'}  frames.events {what} <= {target:.2f}x "
                        f"{peer}: {ratio:.2f}x"
                    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"store": path, "events": args.events, "results": results}, out, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

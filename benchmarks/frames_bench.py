"""Loading events into pandas: ``frames.events`` against ``pd.read_sql``.

The peer is what a pandas user would otherwise write: ``pd.read_sql`` of the
same rows (every column of the ``events`` table, in position order) straight
from SQLite. Each variant runs in a fresh subprocess, several times; the
subprocess reports the load's wall time and its peak resident memory
(``ru_maxrss``), and the memory after imports, before loading. Medians and
ratios are printed; the targets are time ratio <= 1.0 and peak-memory ratio
<= 0.6. The "read_rows sketch" variant shows what ``frames.events`` costs once
the store offers the columnar ``read_rows`` that frames uses when present.

    python benchmarks/frames_bench.py                      # 1,000,000 demo events
    python benchmarks/frames_bench.py --events 200000 --runs 5
    python benchmarks/frames_bench.py --store big.db       # an existing store

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
    "frames.events": """
from workbench import frames
ready()
df = frames.events(path)
""",
    # What frames.events costs once the store has the columnar ``read_rows`` it
    # looks for: pages of rows as stored. Sketched here over SQLite directly.
    "frames.events, read_rows sketch": """
import sqlite3
from store import EventStore
from workbench import frames

class RowStore(EventStore):
    def read_rows(self, *, page_size=10_000, **filters):
        assert not any(filters.values()), "the sketch reads everything"
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        after = 0
        while rows := conn.execute(
            f"SELECT {columns} FROM events WHERE position > ? ORDER BY position LIMIT {page_size}",
            (after,),
        ).fetchall():
            yield rows
            after = rows[-1][0]

es = RowStore(path, readonly=True)
ready()
df = frames.events(es)
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
def ready():
    marks["baseline_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    marks["start"] = time.perf_counter()
%s
seconds = time.perf_counter() - marks["start"]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "baseline_mb": marks["baseline_mb"],
                  "rows": len(df)}))
"""


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="subprocesses per variant")
    parser.add_argument("--store", help="use (or build) this store; default a cached temp file")
    parser.add_argument("--only", action="append", help="run only variants containing this text")
    parser.add_argument("--json", metavar="FILE", help="also write the results here")
    args = parser.parse_args(argv)

    path = args.store or os.path.join(tempfile.gettempdir(), f"sss-bench-{args.events}.db")
    if not os.path.exists(path):
        build_store(path, args.events)
    size = os.path.getsize(path) / 2**20
    print(f"store {path}: {size:,.0f} MiB; {args.runs} runs per variant\n")

    results: dict[str, list[dict[str, float]]] = {}
    for name, code in VARIANTS.items():
        if args.only and not any(text in name for text in args.only):
            continue
        runs = [run_variant(code, path) for _ in range(args.runs)]
        results[name] = runs
        seconds = statistics.median(r["seconds"] for r in runs)
        peak = statistics.median(r["peak_mb"] for r in runs)
        base = statistics.median(r["baseline_mb"] for r in runs)
        print(
            f"{name:34} {seconds:7.2f}s  peak {peak:7.0f} MiB  (after imports {base:4.0f} MiB)  "
            f"rows {int(runs[0]['rows']):,}",
            flush=True,
        )

    peer = results.get("pd.read_sql (peer)")
    if peer:
        peer_s = statistics.median(r["seconds"] for r in peer)
        peer_mb = statistics.median(r["peak_mb"] for r in peer)
        peer_net = statistics.median(r["peak_mb"] - r["baseline_mb"] for r in peer)
        print("\nratios to the peer (median):  time   peak memory   memory above imports")
        for name, runs in results.items():
            if runs is peer:
                continue
            s = statistics.median(r["seconds"] for r in runs) / peer_s
            m = statistics.median(r["peak_mb"] for r in runs) / peer_mb
            n = statistics.median(r["peak_mb"] - r["baseline_mb"] for r in runs) / peer_net
            print(f"  {name:34} {s:5.2f}x  {m:8.2f}x  {n:12.2f}x")
        print("targets for frames.events: time <= 1.00x, peak memory <= 0.60x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"store": path, "events": args.events, "results": results}, out, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

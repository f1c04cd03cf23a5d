"""WAL pages per 100-event commit and bytes per event: this store, eventsourcing, raw sqlite3.

Run from the repository root::

    .venv/bin/python benchmarks/wal_pages.py                 # 20,000 events first
    .venv/bin/python benchmarks/wal_pages.py --events 100000

Each system first writes ``--events`` events in 100-event transactions (a new
aggregate each, the payloads of ``store_bench.py``'s ``append100``), so its
B-trees have the depth of a store in use. The file is then checkpointed
(``wal_checkpoint(TRUNCATE)``) and ``--commits`` more transactions of
``--size`` events (100 by default; ``--size 1`` for single-event commits) are
made. The WAL file is read frame by frame: a commit writes
one frame per page it changed, and the last frame of a commit carries the
database size. So the count is exact, not estimated from file sizes. With
``dbstat`` (compiled into most SQLite builds) each page is named by the table
or index it belongs to, which shows what a commit's pages are spent on.

Bytes per event: the file after a full checkpoint, divided by the events it
holds, and the same per table and index from ``dbstat``.

No timing: pages and bytes do not depend on the machine's load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import struct
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from store_bench import Item, es_app, ours_batch, payload, raw_append, raw_open, raw_rows

from store import NO_STREAM, EventStore

Committer = Callable[[int, int], None]
"""commit(b, size): the b-th commit, of ``size`` events."""


def commits_in_wal(path: str) -> list[list[int]]:
    """The page numbers each commit in the WAL file wrote, oldest first."""
    with open(path + "-wal", "rb") as f:
        data = f.read()
    if len(data) < 32:
        return []
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = data[16:24]
    commits: list[list[int]] = []
    pages: list[int] = []
    offset = 32
    while offset + 24 + page_size <= len(data):
        number, size_after = struct.unpack(">II", data[offset : offset + 8])
        if data[offset + 8 : offset + 16] != salts:
            break  # a frame of an earlier generation of the WAL: the end
        pages.append(number)
        if size_after:
            commits.append(pages)
            pages = []
        offset += 24 + page_size
    return commits


def page_owners(path: str) -> dict[int, str]:
    conn = sqlite3.connect(path)
    try:
        return {pageno: name for name, pageno in conn.execute("SELECT name, pageno FROM dbstat")}
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()


def sizes(path: str, events: int) -> tuple[float, dict[str, float]]:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        count, size = (
            conn.execute("PRAGMA page_count").fetchone()[0],
            conn.execute("PRAGMA page_size").fetchone()[0],
        )
        try:
            rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:
            rows = []
    finally:
        conn.close()
    return count * size / events, {name: total / events for name, total in rows}


def checkpoint(path: str) -> None:
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise SystemExit(f"{path}: the checkpoint could not finish (a reader is open)")
    finally:
        conn.close()


def measure(
    name: str, path: str, commit: Committer, events: int, commits: int, size: int
) -> dict[str, object]:
    for b in range(events // 100):
        commit(b, 100)
    checkpoint(path)
    for b in range(events // 100, events // 100 + commits):
        commit(b, size)
    found = commits_in_wal(path)[-commits:]
    owners = page_owners(path)
    spent: Counter[str] = Counter()
    for pages in found:
        for page in pages:
            spent[owners.get(page, "(new or free page)")] += 1
    per_byte, per_object = sizes(path, events + size * commits)
    return {
        "system": name,
        "pages": statistics.median(len(p) for p in found),
        "spent": {k: v / len(found) for k, v in spent.most_common()},
        "bytes": per_byte,
        "objects": per_object,
    }


def ours(path: str) -> Committer:
    es = EventStore(path)

    def commit(b: int, size: int) -> None:
        es.append(ours_batch(b * 100, size), aggregate_id=str(uuid.uuid4()),
                  aggregate_type="Item", expected_version=NO_STREAM)  # fmt: skip

    return commit


def peer(path: str) -> Committer:
    app = es_app(path)

    def commit(b: int, size: int) -> None:
        item = Item(**payload(b * 100))
        for k in range(1, size):
            item.change(**payload(b * 100 + k))
        app.save(item)

    return commit


def raw(path: str) -> Committer:
    conn = raw_open(path)

    def commit(b: int, size: int) -> None:
        raw_append(conn, raw_rows(str(uuid.uuid4()), 1, size, b * 100))

    return commit


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events written first")
    parser.add_argument("--commits", type=int, default=10, help="commits counted")
    parser.add_argument("--size", type=int, default=100, help="events per counted commit")
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(prefix="sss-wal-")
    results = []
    try:
        for name, make in (("ours", ours), ("eventsourcing", peer), ("raw sqlite3", raw)):
            path = os.path.join(root, f"{name.split()[0]}.db")
            results.append(measure(name, path, make(path), args.events, args.commits, args.size))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"{args.events:,} events written first, then {args.commits} commits of "
        f"{args.size} events (each to a new aggregate)"
    )
    print(f"{'system':15} {'WAL pages/commit':>17} {'bytes/event':>12}")
    for r in results:
        print(f"{r['system']:15} {r['pages']:>17} {r['bytes']:>12,.0f}")
    for r in results:
        spent = ", ".join(f"{k} {v:.1f}" for k, v in r["spent"].items())  # type: ignore[attr-defined]
        objects = ", ".join(
            f"{k} {v:.0f}"
            for k, v in sorted(r["objects"].items(), key=lambda kv: -kv[1])  # type: ignore[attr-defined]
            if v >= 1
        )
        print(f"\n{r['system']}: pages per commit by b-tree: {spent}")
        print(f"{r['system']}: bytes per event by b-tree: {objects}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

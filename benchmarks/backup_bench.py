"""What a backup of an SQLite store costs: ``sss backup`` (the row copy,
verified) against a plain file copy, SQLite's online backup API (what
``sqlite3 .backup`` uses) and ``VACUUM INTO``, on one store.

Run from the repository root::

    .venv/bin/python benchmarks/backup_bench.py                  # 1,000,000 events, 3 rounds
    .venv/bin/python benchmarks/backup_bench.py --events 100000 --rounds 3

The store is built once (batches of 1,000 events over 10,000 aggregates;
kept under ``--dir``). Each round times, in rotating order:

- ``cp``: the ``cp`` command on the database file (not consistent while
  writers run; the floor); ``copyfile``: ``shutil.copyfile``, the same in
  process;
- ``sqlite3_backup``: the ``sqlite3`` command's ``.backup`` (when the
  command is installed);
- ``backup_api``: ``sqlite3.Connection.backup`` into a new file (what
  ``.backup`` calls, from Python);
- ``vacuum_into``: ``VACUUM INTO`` a new file;
- ``row_copy``: ``copy_store`` into a new file, verified inside its
  transaction (no storage check), what ``sss backup`` does before its final
  check;
- ``sss_backup``: the whole ``backup()``: the backup API page copy, the final full verify
  (chain and ``integrity_check``), the rename into place.

Ratios are each method / ``backup_api`` within a round, then the median.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from store import EventStore, NewEvent, copy_store
from workbench.cli.recovery import backup


def build(path: str, events: int) -> None:
    with EventStore(path, durable=False) as es:
        for start in range(es.head(), events, 1000):
            with es.transaction():
                for n in range(start, min(start + 1000, events)):
                    es.append([NewEvent(f"E{n % 8}", {"n": n, "note": "x" * 40})], f"a-{n % 10000}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", default=tempfile.gettempdir())
    args = parser.parse_args()
    source = os.path.join(args.dir, f"backup_bench_{args.events}.db")
    build(source, args.events)
    with sqlite3.connect(source) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    scratch = tempfile.mkdtemp(dir=args.dir, prefix="backup_bench_")

    def cp(target: str) -> None:
        subprocess.run(["cp", source, target], check=True)

    def copyfile(target: str) -> None:
        shutil.copyfile(source, target)

    def sqlite3_backup(target: str) -> None:
        subprocess.run(["sqlite3", source, f".backup '{target}'"], check=True)

    def backup_api(target: str) -> None:
        src, dst = sqlite3.connect(source), sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            src.close()
            dst.close()

    def vacuum_into(target: str) -> None:
        src = sqlite3.connect(source)
        try:
            src.execute("VACUUM INTO ?", (target,))
        finally:
            src.close()

    def row_copy(target: str) -> None:
        with EventStore(source, readonly=True) as src, EventStore(target) as dst:
            copy_store(src, dst)

    def sss_backup(target: str) -> None:
        backup(source, target)

    methods: dict[str, Callable[[str], None]] = {
        "cp": cp,
        "copyfile": copyfile,
        "backup_api": backup_api,
        "vacuum_into": vacuum_into,
        "row_copy": row_copy,
        "sss_backup": sss_backup,
    }
    if shutil.which("sqlite3"):
        methods["sqlite3_backup"] = sqlite3_backup
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    try:
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                target = os.path.join(scratch, f"{name}.db")
                started = time.perf_counter()
                methods[name](target)
                times[name].append(time.perf_counter() - started)
                for suffix in ("", "-wal", "-shm"):
                    if os.path.exists(target + suffix):
                        os.remove(target + suffix)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{args.events} events, {os.path.getsize(source) / 2**20:.0f} MiB, {args.rounds} rounds")
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times["backup_api"], strict=True)]
        print(
            f"{name:14} median {statistics.median(times[name]):8.3f} s   "
            f"x backup_api {statistics.median(ratios):6.2f}"
        )


if __name__ == "__main__":
    main()

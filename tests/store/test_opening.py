"""Opening a store where it is hard: read-only media, a directory this user
may not write, and several processes creating one new file at once."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
from pathlib import Path

import pytest

from store import CorruptStoreError, EventStore, NewEvent, ReadOnlyError
from tests.store.media import read_only_directory, seal


def _fill(es: EventStore) -> None:
    for i in range(30):
        es.append(
            [NewEvent("Changed", {"n": i, "flag": i % 3 == 0})],
            aggregate_id=f"item-{i % 4}",
            aggregate_type="Item",
        )


def _read_everything(es: EventStore) -> tuple[object, ...]:
    report = es.verify()
    assert report.ok, report
    return (
        [e.hash for e in es.read()],
        [e.version for e in es.stream("item-1")],
        es.state_at("item-2").state,
        es.state_at("item-3", version=2).state,
        [step.changes for step in es.history("item-0")],
        [e.position for e in es.read(types=["Changed"], backwards=True, limit=5)],
        report.head_hash,
        es.head(),
    )


def test_a_closed_store_on_read_only_media_opens_read_only_and_reads(tmp_path: Path) -> None:
    reference = tmp_path / "reference.db"
    with EventStore(str(reference)) as es:
        _fill(es)
    with EventStore(str(reference), readonly=True) as es:
        expected = _read_everything(es)
    with read_only_directory(tmp_path) as media:
        shutil.copyfile(reference, media / "events.db")
        seal(media)
        with EventStore(str(media / "events.db"), readonly=True) as es:
            assert _read_everything(es) == expected
            assert es.verify(storage="full").ok
        with pytest.raises(ReadOnlyError, match="open it read-only"):
            EventStore(str(media / "events.db"))
        assert sorted(p.name for p in media.iterdir()) == ["events.db"]


def test_a_wal_holding_committed_events_is_read_from_read_only_media(tmp_path: Path) -> None:
    live = tmp_path / "live.db"
    writer = EventStore(str(live))
    _fill(writer)
    # A second connection keeps the WAL from being checkpointed away on close.
    with EventStore(str(live), readonly=True) as es:
        expected = _read_everything(es)
    with read_only_directory(tmp_path) as media:
        shutil.copyfile(live, media / "events.db")
        shutil.copyfile(str(live) + "-wal", media / "events.db-wal")
        writer.close()
        assert (media / "events.db-wal").stat().st_size > 0
        seal(media)
        with EventStore(str(media / "events.db"), readonly=True) as es:
            assert es.head() == 30
            assert _read_everything(es) == expected


def test_a_file_that_is_not_sqlite_on_read_only_media_is_named_as_such(tmp_path: Path) -> None:
    with read_only_directory(tmp_path) as media:
        (media / "notes.db").write_bytes(b"these are not the events you are looking for\n" * 200)
        (media / "empty.db").write_bytes(b"")
        seal(media)
        with pytest.raises(CorruptStoreError, match="not an SQLite database"):
            EventStore(str(media / "notes.db"), readonly=True)
        with pytest.raises(CorruptStoreError, match="empty, not an event store"):
            EventStore(str(media / "empty.db"), readonly=True)


def _open_many(path: str, barrier: object, rounds: int, results: object) -> None:
    failures = []
    for round_ in range(rounds):
        barrier.wait()  # type: ignore[attr-defined]
        try:
            with EventStore(f"{path}.{round_}") as es:
                es.append([NewEvent("Opened", {"pid": os.getpid()})])
        except Exception as e:
            failures.append(f"round {round_}: {type(e).__name__}: {e}")
    results.put(failures)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_processes_creating_one_new_file_at_once_all_succeed(tmp_path: Path) -> None:
    processes, rounds = 4, 20
    context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    barrier = context.Barrier(processes)
    results = context.Queue()
    base = str(tmp_path / "new.db")
    workers = [
        context.Process(target=_open_many, args=(base, barrier, rounds, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    failures = [f for _ in workers for f in results.get(timeout=120)]
    for worker in workers:
        worker.join(timeout=30)
    assert failures == [], failures
    for round_ in range(rounds):
        with EventStore(f"{base}.{round_}", readonly=True) as es:
            assert es.head() == processes
            assert es.verify().ok

"""Group commit when the group's transaction itself fails: every caller of
the group gets that error (each its own copy), and nothing of the group is
stored. Real threads queue while the store's lock is held, so they form one
group; another connection holds SQLite's write lock, so the group's
transaction cannot begin."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from store import EventStore, LockedError, NewEvent, RecordedEvent

Outcome = list[RecordedEvent] | BaseException


def _queued(es: EventStore, n: int) -> None:
    assert es._grouper is not None
    deadline = time.monotonic() + 30
    while len(es._grouper._queue) < n:
        assert time.monotonic() < deadline, "the callers did not queue"
        time.sleep(0.001)


def test_a_group_that_cannot_begin_answers_every_caller_with_its_own_copy_of_the_error(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path, timeout=0.2) as es:
        assert es._grouper is not None
        outcomes: dict[int, Outcome] = {}

        def run(i: int) -> None:
            try:
                outcomes[i] = es.append([NewEvent("E", {"i": i})], aggregate_id=f"a-{i}")
            except BaseException as e:
                outcomes[i] = e

        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # SQLite's one write lock, held elsewhere
            threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
            with es._lock:
                for thread in threads:
                    thread.start()
                _queued(es, 3)
            for thread in threads:
                thread.join(30)
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert es._grouper.groups == 1 and es._grouper.grouped == 3  # one group of three
        errors = [outcomes[i] for i in range(3)]
        for error in errors:
            assert type(error) is LockedError, repr(error)
            assert "locked by another writer" in str(error)
        assert len({id(e) for e in errors}) == 3  # each caller raises its own copy
        assert es.head() == 0
        (event,) = es.append([NewEvent("E", {"i": 9})], aggregate_id="a-9")
        assert event.position == 1 and es.verify().ok

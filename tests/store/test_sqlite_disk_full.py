"""A write that the disk cannot take: SQLite then rolls back the whole
transaction on its own, and the store reports the disk's error (not a failed
rollback of a transaction that is gone), keeps what was committed and takes
the next append that fits."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from store import EventStore, NewEvent, StoreError

from .media import tmpfs

DISK_ERROR = r"(database or disk is full|disk I/O error)$"


@contextlib.contextmanager
def small_disk(where: Path) -> Iterator[Path]:
    """A directory on which no file grows past about a megabyte: a 1 MB
    tmpfs as root, else a file size limit for this process (writes past it
    fail with EFBIG rather than ENOSPC: SQLite's I/O error then)."""
    target = where / "small"
    target.mkdir()
    if os.geteuid() == 0:
        with tmpfs(target, "1m"):
            yield target
        return
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1_000_000, limit[1]))
    try:
        yield target
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limit)
        signal.signal(signal.SIGXFSZ, previous)


def _big() -> NewEvent:
    return NewEvent("Big", {"blob": os.urandom(500_000).hex()})


def _still_whole(es: EventStore) -> None:
    assert es.head() == 1
    assert [e.type for e in es.read()] == ["Small"]
    assert es.verify().ok
    (after,) = es.append([NewEvent("Small")])
    assert after.position == 2


def test_an_append_whose_commit_does_not_fit_reports_the_disk(tmp_path: Path) -> None:
    with small_disk(tmp_path) as disk, EventStore(str(disk / "events.db")) as es:
        es.append([NewEvent("Small")])
        with pytest.raises(StoreError, match=DISK_ERROR) as caught:
            es.append([NewEvent("Big", {"blob": os.urandom(1_000_000).hex()})])
        assert "cannot rollback" not in str(caught.value)
        _still_whole(es)


def test_an_append_inside_a_transaction_that_does_not_fit_reports_the_disk(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path) as disk, EventStore(str(disk / "events.db")) as es:
        es.append([NewEvent("Small")])
        # More than the page cache (64 MB) holds: SQLite spills pages to the
        # WAL file within the transaction, and the append that spills fails.
        with pytest.raises(StoreError, match=DISK_ERROR) as caught, es.transaction():
            for _ in range(100):
                es.append([_big()])
        assert "cannot rollback" not in str(caught.value)
        _still_whole(es)

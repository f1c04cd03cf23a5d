"""A path that exists but is not a regular file is refused before SQLite sees it.

SQLite would block forever opening a FIFO and read a character device as if it
were a database; the store names the path and what it is instead. The device
is made with ``mknod`` in the test's own temporary directory, which needs root:
as another user the list of kinds holds the FIFO, the socket and the directory.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from store import EventStore, NewEvent, StoreError, ValidationError


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _device(path: Path) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # a copy of /dev/null, made here


def _directory(path: Path) -> None:
    path.mkdir()


@contextmanager
def _socket(path: Path) -> Iterator[None]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(path))
        yield


KINDS: dict[str, tuple[Callable[[Path], None], str]] = {
    "fifo": (_fifo, "a FIFO"),
    "directory": (_directory, "a directory"),
}
if os.geteuid() == 0:
    KINDS["device"] = (_device, "a device")


@pytest.mark.timeout(20)  # the bug this guards against blocks forever
@pytest.mark.parametrize("readonly", [False, True])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_a_special_file_is_refused_with_one_line_naming_it(
    tmp_path: Path, kind: str, readonly: bool
) -> None:
    make, what = KINDS[kind]
    target = tmp_path / "events.db"
    make(target)
    before = os.stat(target)
    with pytest.raises(ValidationError) as caught:
        EventStore(target, readonly=readonly)
    message = str(caught.value)
    assert message == f"{target} is {what}, not an event store file"
    assert "\n" not in message
    after = os.stat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.db"]  # no -wal, no -shm


@pytest.mark.timeout(20)
def test_a_symlink_to_a_fifo_is_refused_and_one_to_a_store_opens(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "to-pipe").symlink_to(tmp_path / "pipe")
    with pytest.raises(ValidationError, match="to-pipe is a FIFO"):
        EventStore(tmp_path / "to-pipe")
    with EventStore(tmp_path / "real.db") as es:
        es.append([NewEvent("Made", {"n": 1})], aggregate_id="a-1")
    (tmp_path / "to-real").symlink_to(tmp_path / "real.db")
    with EventStore(tmp_path / "to-real", readonly=True) as es:
        assert es.head() == 1


@pytest.mark.timeout(20)
def test_a_unix_socket_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A short relative name: an AF_UNIX path is limited to about 100 bytes.
    monkeypatch.chdir(tmp_path)
    refused = pytest.raises(ValidationError, match=r"^s\.db is a socket, not an event store")
    with _socket(Path("s.db")), refused:
        EventStore("s.db")


def test_missing_files_keep_their_own_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for path, readonly in [
        (tmp_path / "nope.db", True),
        (tmp_path / "no-dir" / "x.db", False),
        (tmp_path / "file" / "x.db", False),
    ]:
        with pytest.raises(StoreError) as caught:
            EventStore(path, readonly=readonly)
        assert not isinstance(caught.value, ValidationError), caught.value
        assert "does not exist" in str(caught.value)

"""Writing a file a person named: exports and reports, from the CLI and the TUI.

Every command that writes a file the user names (``sss export -o``,
``sss report -o``, the TUI's export) goes through :func:`open_output`, so
the rules hold everywhere:

* an output is never a store: not the store being read, not its ``-wal``,
  ``-shm`` or ``-journal`` file, not any other event store (an SQLite file
  holding an ``events`` table, or the side file of one), not a
  ``postgresql://`` URL;
* an output is never a directory, a device, a FIFO or a socket: to stream,
  name ``-`` (standard output) and redirect it wherever you like;
* the file is written under a temporary name beside the target and renamed
  into place once complete, so a failure (a full disk, an interrupt, a bad
  event) leaves the old file exactly as it was; a symbolic link is followed
  (the file it points to is replaced, the link stays); a replaced file keeps
  its permission bits, a new one gets the umask's;
* every error is an :class:`OutputError` naming the path as the user typed
  it, never the temporary file.

    >>> with open_output("orders.jsonl", protect=["shop.db"]) as out:  # doctest: +SKIP
    ...     out.write("{}\\n")
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import sys
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from workbench.inputs import InputError, shown
from workbench.locations import is_url

__all__ = ["STREAM", "OutputError", "check_output", "is_event_store", "open_output"]

STREAM = "-"
"""The output name meaning standard output."""

_SIDE_FILES = ("-wal", "-shm", "-journal")
_SQLITE_MAGIC = b"SQLite format 3\x00"


class OutputError(InputError):
    """A named output cannot or must not be written; the message names it as typed."""


def is_event_store(path: str) -> bool:
    """True when ``path`` is an SQLite file holding an ``events`` table.

    Opened immutable and read-only, so looking creates no side file and takes
    no lock. An SQLite file that cannot be inspected counts as a store: the
    safe side when the question is whether to overwrite it.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                return False
    except OSError:
        return False
    from urllib.parse import quote

    uri = f"file:{quote(os.path.abspath(path))}?mode=ro&immutable=1"
    try:
        connection = sqlite3.connect(uri, uri=True)
        try:
            row = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'"
            ).fetchone()
        finally:
            connection.close()
    except sqlite3.Error:
        return True
    return row is not None


def _store_files(locations: Iterable[str]) -> list[str]:
    files: list[str] = []
    for location in locations:
        if not location or location == ":memory:" or is_url(location):
            continue
        real = os.path.realpath(location)
        files.extend([real, *(real + suffix for suffix in _SIDE_FILES)])
    return files


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(target: str, *, protect: Iterable[str] = (), stream: bool = True) -> str:
    """Refuse an output that must not be written; return the real path to write.

    ``protect`` lists the stores being read (their side files are protected
    with them). ``stream`` allows ``-`` for standard output (returned as is).
    """
    typed = target
    if not isinstance(target, str):
        raise OutputError(f"an output must be a file name, not {type(target).__name__}")
    if not target.strip():
        raise OutputError("give a file name for the output")
    if target == STREAM:
        if not stream:
            raise OutputError("'-' (standard output) cannot be written here; give a file name")
        return STREAM
    if "\0" in target:
        raise OutputError(f"{shown(typed)} holds a NUL character, which no file name can")
    if is_url(target):
        raise OutputError(f"{typed} is a database URL (a store), not an output file")
    real = os.path.realpath(os.path.expanduser(target))
    for store_file in _store_files(protect):
        if real == store_file or _same_file(real, store_file):
            raise OutputError(f"{typed} is the store being read (or one of its files)")
    try:
        info = os.stat(real)
    except FileNotFoundError:
        info = None
    except OSError as e:
        raise OutputError(f"cannot write {typed}: {e.strerror or e}") from None
    if info is not None:
        mode = info.st_mode
        if stat.S_ISDIR(mode):
            raise OutputError(f"{typed} is a directory; give a file name")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            raise OutputError(f"{typed} is a device, not a file; to stream, use -o - instead")
        if stat.S_ISFIFO(mode):
            raise OutputError(f"{typed} is a FIFO, not a file; to stream, use -o - instead")
        if not stat.S_ISREG(mode):
            raise OutputError(f"{typed} is not a regular file")
        if is_event_store(real):
            raise OutputError(f"{typed} is an event store; refusing to overwrite it")
    for suffix in _SIDE_FILES:
        if real.endswith(suffix) and is_event_store(real[: -len(suffix)]):
            raise OutputError(f"{typed} belongs to the event store {real[: -len(suffix)]}")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {typed}: its directory does not exist")
    return real


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def open_output(
    target: str,
    *,
    binary: bool = False,
    protect: Iterable[str] = (),
    stream: bool = True,
) -> Iterator[IO[Any]]:
    """A handle writing ``target`` (text, UTF-8, ``\\n`` kept as is; or binary).

    The file appears under its name only when the block completes; an error
    inside the block removes the partial file and leaves any old file intact.
    ``-`` yields standard output when ``stream`` is allowed.
    """
    real = check_output(target, protect=protect, stream=stream)
    if real == STREAM:
        out: Any = sys.stdout.buffer if binary else sys.stdout
        yield out
        out.flush()
        return
    try:
        previous = os.stat(real).st_mode & 0o7777
    except OSError:
        previous = None
    folder, name = os.path.split(real)
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".partial", dir=folder)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    try:
        try:
            handle: IO[Any] = (
                os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8", newline="")
            )
        except BaseException:
            os.close(fd)
            raise
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, previous if previous is not None else 0o666 & ~_umask())
        os.replace(temp, real)
    except OSError as e:
        with contextlib.suppress(OSError):
            os.remove(temp)
        if isinstance(e, InterruptedError):  # a cancel, not a failure to write
            raise
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise

"""Where an analysis database may be written: never onto an event store.

A new file, or an existing analysis database (which is brought up to date),
is accepted; the source store itself, any other event store (an SQLite file
with an ``events`` table that is not an analysis database), a directory, a
device, a FIFO, or any other file is refused with an error naming the path.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3

from store import StoreError

__all__ = ["META", "AnalysisError", "check_metadata_file", "check_target", "metadata_path"]

META = "_sss_analysis"
"""The table that marks an analysis database (and records what it was made from)."""


class AnalysisError(StoreError):
    """The analysis export cannot go ahead (a target it must not write, a mismatch)."""


def metadata_path(target: str | os.PathLike[str]) -> str:
    """Where the Datasette metadata of ``target`` goes: ``x.db`` -> ``x.metadata.json``."""
    return os.path.splitext(os.fspath(target))[0] + ".metadata.json"


# -- the target ------------------------------------------------------------------


def _tables_of(path: str) -> set[str] | None:
    """The table names of an SQLite file, or None when it is not one."""
    with open(path, "rb") as handle:
        if handle.read(16) != b"SQLite format 3\x00":
            return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def check_target(target: str | os.PathLike[str], source: str | None = None) -> bool:
    """Whether ``target`` may receive an analysis export: False for a new file,
    True for an existing analysis database (written into); anything else raises
    :class:`AnalysisError` naming ``target``: the source store itself, any other
    event store (an SQLite file with an ``events`` table that is not an
    analysis database), a directory, a device or FIFO, or another file.
    """
    name = os.fspath(target)
    if "://" in name:
        raise AnalysisError(f"{name}: an analysis database is an SQLite file, not a URL")
    if source is not None and "://" not in source and os.path.exists(source):
        with contextlib.suppress(OSError):
            if os.path.exists(name) and os.path.samefile(name, source):
                raise AnalysisError(f"{name} is the store being exported; choose another file")
    if not os.path.exists(name):
        if os.path.islink(name):
            raise AnalysisError(f"{name} is a dangling symbolic link; choose another file")
        parent = os.path.dirname(os.path.abspath(name))
        if not os.path.isdir(parent):
            raise AnalysisError(f"{name}: directory {parent} does not exist")
        return False
    if os.path.isdir(name):
        raise AnalysisError(f"{name} is a directory; give a file name for the analysis database")
    if not os.path.isfile(name):
        raise AnalysisError(f"{name} is not a regular file (a device or FIFO); refusing to write")
    if os.path.getsize(name) == 0:
        return False
    tables = _tables_of(name)
    if tables is None:
        raise AnalysisError(f"{name} exists and is not an SQLite database; refusing to overwrite")
    if META in tables:
        return True
    if "events" in tables:
        raise AnalysisError(f"{name} is an event store; refusing to write onto it")
    raise AnalysisError(
        f"{name} is an SQLite database but not an analysis database; refusing to write onto it"
    )


def check_metadata_file(path: str) -> None:
    """The metadata file beside the database is replaced, unless it is something
    else than a file or an SQLite database (an event store, whatever its name)."""
    if os.path.islink(path) or (os.path.exists(path) and not os.path.isfile(path)):
        raise AnalysisError(f"{path} exists and is not a regular file; refusing to replace it")
    if os.path.exists(path):
        with open(path, "rb") as handle:
            if handle.read(16) == b"SQLite format 3\x00":
                raise AnalysisError(f"{path} is an SQLite database; refusing to replace it")

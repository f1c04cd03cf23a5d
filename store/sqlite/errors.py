"""The one place a ``sqlite3`` error becomes a :class:`~store.errors.StoreError`,
recognised by its SQLite error name (``sqlite_errorname``), not its text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CorruptStoreError, LockedError, NotFoundError, ReadOnlyError, StoreError

__all__ = ["busy", "errorname", "translate", "translated"]


def errorname(e: sqlite3.Error) -> str:
    """SQLite's name of the error (``SQLITE_BUSY_SNAPSHOT``), "" for errors
    raised by Python's module itself."""
    return str(getattr(e, "sqlite_errorname", "") or "")


def busy(e: sqlite3.Error) -> bool:
    return errorname(e).startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def translate(e: sqlite3.Error, location: str) -> StoreError:
    """The one place a sqlite3 error becomes a StoreError."""
    name, text = errorname(e), str(e)
    # Appends check ids and versions under the write lock first, so a
    # constraint (a trigger's RAISE, UNIQUE) means a raw write from outside.
    if name.startswith("SQLITE_CONSTRAINT"):
        return StoreError(f"{location}: {text}")
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return LockedError(
            f"{location} is locked by another writer; try again, or raise timeout= ({text})"
        )
    if name.startswith("SQLITE_READONLY"):
        return ReadOnlyError(f"{location} is read-only: {text}")
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
        return CorruptStoreError(f"{location} is not a readable event store: {text}")
    if name.startswith("SQLITE_CANTOPEN"):
        return NotFoundError(f"cannot open {location}: {text}")
    return StoreError(f"{location}: {text}")


@contextmanager
def translated(location: str) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as e:
        raise translate(e, location) from e

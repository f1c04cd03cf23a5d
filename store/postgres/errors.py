"""The one place a ``psycopg`` (or pool) error becomes a
:class:`~store.errors.StoreError`, recognised by its exception class
(SQLSTATE) and diagnostics, not its message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import errors as pgerrors
from psycopg_pool import PoolTimeout

from ..errors import (
    ConcurrencyError,
    CorruptStoreError,
    DuplicateEventError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    StoreError,
    ValidationError,
)

__all__ = ["translate", "translated"]


def _key(detail: str | None) -> list[str]:
    """The values of 'Key (a, b)=(x, y) already exists.'"""
    if not detail or ")=(" not in detail:
        return []
    inside = detail.split(")=(", 1)[1].rsplit(")", 1)[0]
    return [part.strip() for part in inside.rsplit(", ", 1)]


def translate(e: BaseException, location: str) -> StoreError:
    """The one place a psycopg (or pool) error becomes a StoreError."""
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, pgerrors.UniqueViolation):
        constraint = e.diag.constraint_name or ""
        key = _key(e.diag.message_detail)
        if constraint == "events_event_id_key":
            return DuplicateEventError(key[0] if key else "?", "is stored already")
        if constraint == "events_aggregate_id_version_key":
            if len(key) == 2 and key[1].isdigit():
                return ConcurrencyError(key[0], int(key[1]) - 1, int(key[1]))
            return ConcurrencyError("?", "a free version", -1)
        return StoreError(f"{location}: {text}")
    if isinstance(e, pgerrors.DataCorrupted):
        return CorruptStoreError(f"{location}: {text}")
    if isinstance(e, pgerrors.RaiseException) and "append-only" in text:
        return StoreError(text)
    if isinstance(e, pgerrors.ReadOnlySqlTransaction):
        return ReadOnlyError(f"{location} is read-only: {text}")
    if isinstance(e, (pgerrors.LockNotAvailable, pgerrors.DeadlockDetected)):
        return LockedError(
            f"{location} is locked by another writer; try again, or raise timeout= ({text})"
        )
    if isinstance(e, pgerrors.InvalidCatalogName):
        return NotFoundError(f"cannot open {location}: {text}")
    if isinstance(e, (pgerrors.UndefinedTable, pgerrors.UndefinedColumn)):
        return CorruptStoreError(f"{location} is not a readable event store: {text}")
    if isinstance(e, UnicodeEncodeError):
        return ValidationError(f"text that is not valid Unicode cannot be stored: {e}")
    if isinstance(e, pgerrors.UntranslatableCharacter) or "NUL (0x00)" in text:
        return ValidationError(
            f"{location} cannot store a NUL character (\\u0000) in a name or type: "
            "PostgreSQL text cannot hold it"
        )
    if isinstance(e, psycopg.DataError):
        return ValidationError(f"{location} cannot store this value: {text}")
    if isinstance(e, PoolTimeout):
        return StoreError(
            f"cannot reach the PostgreSQL server of {location}: no connection within the "
            f"timeout ({text}); is the server running?"
        )
    if isinstance(e, psycopg.OperationalError) and text.startswith("connection failed:"):
        reason = text.rsplit(" failed: ", 1)[-1].removeprefix("FATAL:").strip()
        if re.search(r'database ".*" does not exist', reason):
            return NotFoundError(f"no event store at {location}: {reason}")
        hint = "; is the server running?" if "refused" in reason or "timeout" in reason else ""
        return StoreError(f"cannot connect to {location}: {reason}{hint}")
    if isinstance(e, psycopg.OperationalError):
        return StoreError(f"lost the connection to {location}: {text}; try again")
    return StoreError(f"{location}: {text}")


@contextmanager
def translated(location: str) -> Iterator[None]:
    try:
        yield
    except (psycopg.Error, PoolTimeout, UnicodeEncodeError) as e:
        raise translate(e, location) from e

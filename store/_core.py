"""What every part of the store shares: the open backend, the lock, the
reducers and the clock (:class:`StoreCore`), and how a call takes the lock.

:class:`~store.eventstore.EventStore` is this core plus its public methods,
each handing over to the module that holds the rules of its job:
:mod:`store.appending`, :mod:`store.paging`, :mod:`store.replay`,
:mod:`store.verifying` and :mod:`store.following`. Those modules take the
core as their first argument and never import the facade.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from .backend import Backend
from .codec import digest, encode_object, loads_stored, require_aware
from .errors import ReducerError, StoreError, ValidationError, describe
from .grouping import Grouper
from .models import RecordedEvent
from .reducers import Reducers, Upcasters
from .statecache import StateCache

__all__ = ["MAX_TIMEOUT", "PAGE", "StoreCore", "reducer_error"]

PAGE = 1000
"""Events per page of a read, a stream or the verifier's walk."""

MAX_TIMEOUT = 86_400 * 365
"""The longest lock wait accepted (a year): beyond it a timeout means "never"."""

T = TypeVar("T")


def open_backend(location: str, readonly: bool, durable: bool, timeout: float) -> Backend:
    if location.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresBackend
        except ImportError as e:  # pragma: no cover - depends on the install
            raise StoreError(f"PostgreSQL support is not available: {e}") from e
        return PostgresBackend(location, readonly=readonly, timeout=timeout)
    from .sqlite import SQLiteBackend

    return SQLiteBackend(location, readonly=readonly, durable=durable, timeout=timeout)


def check_path(path: object) -> str:
    """The path as text SQLite and PostgreSQL can take, or a ValidationError."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValidationError(f"path must be a file path or a URL, not {type(path).__name__}")
    try:
        text = os.fspath(path)
    except Exception as e:  # a PathLike of the caller's own may raise anything
        raise ValidationError(f"path: {type(path).__name__}.__fspath__ failed: {e}") from None
    if not isinstance(text, str):
        raise ValidationError(
            f"path must be text; {type(path).__name__}.__fspath__ returned "
            f"{type(text).__name__}, not str"
        )
    if "\0" in text:
        raise ValidationError("path holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # How Linux hands over a file name that is not UTF-8 (surrogateescape).
        raise ValidationError(
            f"path {describe(text)} is not valid Unicode (a file name that is not UTF-8); "
            "rename the file"
        ) from None
    return text


def _utc_now() -> datetime:
    return datetime.now(UTC)


def reducer_error(event: RecordedEvent, error: Exception) -> StoreError:
    if isinstance(error, StoreError):
        return error
    return ReducerError(
        f"the reducer for {event.type} failed on {event.aggregate_id} version "
        f"{event.version} (position {event.position}): {type(error).__name__}: {error}"
    )


class StoreCore:
    """The state one open store holds; see :class:`~store.eventstore.EventStore`
    for the arguments. Construction checks every argument before anything
    is opened."""

    def __init__(
        self,
        path: str | os.PathLike[str] = ":memory:",
        *,
        readonly: bool = False,
        reducers: Reducers | None = None,
        upcasters: Upcasters | None = None,
        snapshot_every: int | None = None,
        durable: bool = True,
        timeout: float = 5.0,
        clock: Callable[[], datetime] | None = None,
        group_commit: bool = True,
    ) -> None:
        if snapshot_every is not None and (
            not isinstance(snapshot_every, int)
            or isinstance(snapshot_every, bool)
            or snapshot_every < 1
        ):
            raise ValidationError(
                f"snapshot_every must be a positive int, not {describe(snapshot_every)}"
            )
        if reducers is not None and not isinstance(reducers, Reducers):
            raise ValidationError(
                f"reducers must be a store.Reducers, not {type(reducers).__name__}"
            )
        if upcasters is not None and not isinstance(upcasters, Upcasters):
            raise ValidationError(
                f"upcasters must be a store.Upcasters, not {type(upcasters).__name__}"
            )
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 <= timeout <= MAX_TIMEOUT
        ):
            raise ValidationError(
                f"timeout must be a number of seconds from 0 to {MAX_TIMEOUT:,}, "
                f"not {describe(timeout)}"
            )
        for name, flag in (
            ("readonly", readonly),
            ("durable", durable),
            ("group_commit", group_commit),
        ):
            if not isinstance(flag, bool):
                raise ValidationError(f"{name} must be True or False, not {describe(flag)}")
        if clock is not None and not callable(clock):
            raise ValidationError(
                f"clock must be a function returning a datetime, not {describe(clock)}"
            )
        self.path = check_path(path)
        self.readonly = readonly
        self.reducers = reducers if reducers is not None else Reducers()
        self.upcasters = upcasters if upcasters is not None else Upcasters()
        self.snapshot_every = snapshot_every
        self._clock = clock if clock is not None else _utc_now
        self._lock = threading.RLock()
        self._backend = open_backend(self.path, readonly, durable, timeout)
        # What messages and repr show: a URL without its password.
        self._label: str = self._backend.display
        self._closed = False
        self._writer: int | None = None  # the thread inside transaction(), if any
        # Concurrent appends of this process share one transaction and one
        # fsync (store.grouping); off, each append commits on its own.
        self.group_commit = group_commit and not readonly
        self._grouper: Grouper[Any, list[RecordedEvent]] | None = (
            Grouper(self._lock) if self.group_commit else None
        )
        self._states = StateCache()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._backend.close()

    def __repr__(self) -> str:
        return f"EventStore({self._label!r}{', readonly=True' if self.readonly else ''})"

    @property
    def label(self) -> str:
        """The path or URL for messages: a URL is shown without its password."""
        return self._label

    @property
    def backend(self) -> Backend:
        """The database behind the store, for diagnostics such as query plans.
        Writing through it bypasses every rule of the log; copies go through
        :func:`store.copy_store`."""
        return self._backend

    @property
    def _fingerprint(self) -> str:
        # Computed on use: reducers may be registered after the store is opened.
        return digest(self.reducers.fingerprint + self.upcasters.fingerprint)

    def _now(self) -> datetime:
        try:
            now = self._clock()
        except Exception as e:
            raise ValidationError(f"clock() raised {type(e).__name__}: {e}") from e
        return require_aware(now, "clock()")

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self._label} is closed")
            return fn(*args)

    def _upcast(self, event: RecordedEvent) -> RecordedEvent:
        # An erased payload has nothing left to upgrade.
        if not self.upcasters or event.erased_by is not None:
            return event
        try:
            version, data = self.upcasters.upcast(event.type, event.schema_version, event.data)
        except Exception as e:
            raise reducer_error(event, e) from e
        if version == event.schema_version:
            return event
        return replace(event, schema_version=version, data=data)

    def _upcast_row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        version, data = self.upcasters.upcast(row[5], row[6], loads_stored(row[7]))
        if version == row[6]:
            return row
        return (*row[:6], version, encode_object(data, f"upcast {row[5]} data"), *row[8:])

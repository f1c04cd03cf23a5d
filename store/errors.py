"""Errors raised by the store.

Every error derives from :class:`StoreError`, so ``except StoreError`` catches
anything the store raises; driver errors (``sqlite3``, ``psycopg``) are
translated in the backend and never leak out raw::

    StoreError
    ├── ValidationError        bad input: types, JSON, naive datetimes (also a ValueError)
    ├── ConcurrencyError       expected_version did not match the aggregate's version
    ├── DuplicateEventError    an event_id is stored already with other content
    ├── NotFoundError          unknown aggregate, position or event; missing file read-only
    ├── ReadOnlyError          a write on a store opened with readonly=True
    ├── LockedError            another process held the write lock past the timeout
    ├── CorruptStoreError      the file is not an event store, or is damaged
    ├── ReducerError           a reducer or upcaster raised while rebuilding state
    └── SubscriptionError      a subscription cannot go on (moved by another consumer)
        └── HandlerError       a subscription's handler raised on an event
"""

from __future__ import annotations

import reprlib

__all__ = [
    "ConcurrencyError",
    "CorruptStoreError",
    "DuplicateEventError",
    "HandlerError",
    "LockedError",
    "NotFoundError",
    "ReadOnlyError",
    "ReducerError",
    "StoreError",
    "SubscriptionError",
    "ValidationError",
]


class StoreError(Exception):
    """Root of every error the store raises."""


class ValidationError(StoreError, ValueError):
    """An argument or event was malformed; nothing was stored."""


class ConcurrencyError(StoreError):
    """The aggregate was not at the expected version; nothing was stored.

    Attributes:
        aggregate_id: the aggregate appended to.
        expected: the version the caller expected (an int, or ``"no stream"``).
        actual: the version the aggregate is at.
    """

    def __init__(self, aggregate_id: str, expected: object, actual: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"expected version {expected} of {shorten(aggregate_id)} but it is at {actual}; "
            "reload and retry"
        )


class DuplicateEventError(StoreError):
    """An event id is stored already with different content (or a batch mixes
    stored and new ids); nothing was stored."""

    def __init__(self, event_id: str, reason: str) -> None:
        self.event_id = event_id
        super().__init__(f"event {event_id} {reason}")


class NotFoundError(StoreError, LookupError):
    """An aggregate, position, event or file does not exist."""


class ReadOnlyError(StoreError):
    """A write was attempted on a store opened read-only."""


class LockedError(StoreError):
    """The store stayed locked by another writer for longer than the timeout."""


class CorruptStoreError(StoreError):
    """The file is not an event store or is damaged."""


class ReducerError(StoreError):
    """A reducer or upcaster raised; the original exception is its ``__cause__``."""


# Helpers for messages (not errors, so not in __all__).

_REPR = reprlib.Repr()
_REPR.maxlevel = 3
_REPR.maxstring = 60
_REPR.maxother = 60
_REPR.maxlong = 40


def describe(value: object) -> str:
    """A short, safe description of a value for an error message.

    ``repr()`` is unbounded: a dict nested ten thousand deep exhausts the
    stack, a 5,000-digit int exceeds Python's digit limit, and a caller's
    own ``__repr__`` may raise. This never raises and stays short.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an int of {value.bit_length()} bits"
    try:
        return _REPR.repr(value)
    except Exception:  # a hostile __repr__, or a value reprlib cannot walk
        return f"a {type(value).__name__}"


def shorten(text: str, width: int = 80) -> str:
    """Text for a one-line message: cut to ``width`` characters (a name may
    be huge), with line breaks and other control characters escaped."""
    if len(text) > width:
        text = text[: width - 3] + "..."
    return text if text.isprintable() else repr(text)[1:-1]


class SubscriptionError(StoreError):
    """A subscription cannot go on: another consumer (or a reset) moved its
    saved position while it ran, or it is configured against its stored group."""


class HandlerError(SubscriptionError):
    """A subscription's handler raised; the original exception is its ``__cause__``.

    Attributes:
        subscription: the subscription's name.
        event: the event the handler raised on.
        position: the saved position the subscription resumes after (the one
            before the failing batch).
    """

    def __init__(self, subscription: str, event: object, position: int, message: str) -> None:
        self.subscription = subscription
        self.event = event
        self.position = position
        super().__init__(message)

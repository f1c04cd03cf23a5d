"""Records the store hands out and takes in: frozen, slotted dataclasses."""

from __future__ import annotations

import enum
import os
import time
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from .codec import format_time
from .notes import Checkpoint

__all__ = [
    "ANY",
    "ERASED",
    "EVENT_FIELDS",
    "NO_STREAM",
    "AggregateInfo",
    "AggregateState",
    "Change",
    "ExpectedVersion",
    "NewEvent",
    "ReadStatement",
    "RecordedEvent",
    "Step",
    "StoreCounts",
    "VerifyReport",
]


class ExpectedVersion(enum.Enum):
    """Symbolic values for ``expected_version`` besides an exact int."""

    ANY = "any"
    """Skip the concurrency check."""
    NO_STREAM = "no stream"
    """The aggregate must have no events yet (the same as ``0``)."""

    def __repr__(self) -> str:
        return self.name

    def __str__(self) -> str:
        return self.value


ANY = ExpectedVersion.ANY
NO_STREAM = ExpectedVersion.NO_STREAM

ERASED = "\u27e8erased\u27e9"
"""What an erased payload's fields hold (``⟨erased⟩``): see :meth:`EventStore.erase
<store.eventstore.EventStore.erase>`."""


def _new_id() -> str:
    """A random UUID whose first 48 bits are the Unix time in milliseconds (the
    UUIDv7 layout), so new ids land at the end of the event_id index: an append
    then dirties a few index pages instead of one random page per event."""
    # Formatted by hand: uuid.UUID would double the cost of making an event.
    random = int.from_bytes(os.urandom(10), "big") & _ID_MASK | _ID_BITS
    h = "%032x" % ((time.time_ns() // 1_000_000) << 80 | random)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_MASK = ~(0xF << 76) & ~(0x3 << 62)
_ID_BITS = 0x7 << 76 | 0x2 << 62  # version 7, RFC 4122 variant


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append.

    The ``event_id`` is generated when the object is made, so appending the
    same ``NewEvent`` again is an idempotent retry.

    Example:
        >>> NewEvent("OrderPlaced", {"total": 30}, metadata={"actor": "alice"}).type
        'OrderPlaced'
    """

    type: str
    data: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: str = field(default_factory=_new_id)
    occurred_at: datetime | None = None
    schema_version: int = 1


def _metadata_text(metadata: dict[str, Any], key: str) -> str | None:
    value = metadata.get(key)
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored, with its position in the log and its hash.

    ``erased_by`` is the position of the ``sss.Erased`` receipt that erased
    the payload, else ``None``; an erased event's ``data`` keeps its
    top-level field names, each holding :data:`ERASED`.
    """

    position: int
    event_id: str
    aggregate_id: str | None
    aggregate_type: str | None
    version: int | None
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    hash: str
    erased_by: int | None = None

    @property
    def erased(self) -> bool:
        """Whether the payload was erased (``data`` then holds only :data:`ERASED`)."""
        return self.erased_by is not None

    @property
    def actor(self) -> str | None:
        return _metadata_text(self.metadata, "actor")

    @property
    def correlation_id(self) -> str | None:
        return _metadata_text(self.metadata, "correlation_id")

    @property
    def causation_id(self) -> str | None:
        return _metadata_text(self.metadata, "causation_id")

    def to_dict(self) -> dict[str, Any]:
        """Every field, keyed by the schema's names, times as ISO-8601 UTC text."""
        return {
            "position": self.position,
            "event_id": self.event_id,
            "aggregate_id": self.aggregate_id,
            "aggregate_type": self.aggregate_type,
            "version": self.version,
            "type": self.type,
            "schema_version": self.schema_version,
            "data": self.data,
            "metadata": self.metadata,
            "occurred_at": format_time(self.occurred_at),
            "recorded_at": format_time(self.recorded_at),
            "hash": self.hash,
            # Only erased events carry the key, so exports of stores without
            # erasures keep their shape.
            **({"erased_by": self.erased_by} if self.erased_by is not None else {}),
        }


EVENT_FIELDS: tuple[str, ...] = tuple(
    f.name for f in fields(RecordedEvent) if f.name != "erased_by"
)
"""The event schema's field names in order: columns of exports and of ``read_rows``
(``erased_by`` is not one: an erased row shows itself by its :data:`ERASED` fields)."""


class _RecordedEventBuilder:
    """A mutable twin of RecordedEvent with the same slots, so the read path can
    build events with plain attribute stores and then turn them into
    RecordedEvents: about five times faster than the frozen ``__init__``."""

    # RecordedEvent's own field order, so the two slot layouts match.
    __slots__ = (*EVENT_FIELDS, "erased_by")
    position: int
    event_id: str
    aggregate_id: str | None
    aggregate_type: str | None
    version: int | None
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime
    recorded_at: datetime
    hash: str
    erased_by: int | None


def recorded_event(
    position: int,
    event_id: str,
    aggregate_id: str | None,
    aggregate_type: str | None,
    version: int | None,
    type: str,
    schema_version: int,
    data: dict[str, Any],
    metadata: dict[str, Any],
    occurred_at: datetime,
    recorded_at: datetime,
    hash: str,
    erased_by: int | None = None,
) -> RecordedEvent:
    """``RecordedEvent(...)`` for the hot paths (reading a page, appending)."""
    event = _RecordedEventBuilder()
    event.position = position
    event.event_id = event_id
    event.aggregate_id = aggregate_id
    event.aggregate_type = aggregate_type
    event.version = version
    event.type = type
    event.schema_version = schema_version
    event.data = data
    event.metadata = metadata
    event.occurred_at = occurred_at
    event.recorded_at = recorded_at
    event.hash = hash
    event.erased_by = erased_by
    event.__class__ = RecordedEvent  # type: ignore[assignment]
    return event  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class ReadStatement:
    """A whole read as one SQL statement, for bulk loaders that run it through
    a database driver of their own (``frames`` reads SQLite this way, straight
    into Arrow). See :meth:`EventStore.read_statement`.

    ``database`` is what to connect to (for SQLite a ``file:`` URI that opens
    read-only); ``sql`` selects :data:`EVENT_FIELDS` in that order, in the order
    ``read`` yields events, with ``params`` for its ``?`` placeholders.
    """

    dialect: str
    database: str
    sql: str
    params: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AggregateInfo:
    """One aggregate (stream) and where it lies in the log."""

    aggregate_id: str
    aggregate_type: str | None
    version: int
    first_position: int
    last_position: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class AggregateState:
    """The state of an aggregate as of one of its versions.

    ``version`` 0 (and ``position`` 0) means before its first event.
    """

    aggregate_id: str
    aggregate_type: str | None
    version: int
    position: int
    recorded_at: datetime | None
    state: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Change:
    """One field changed by an event. ``path`` is a JSON Pointer (``/addr/zip``);
    ``old`` or ``new`` is ``None`` where the field was absent."""

    path: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class Step:
    """One step of an aggregate's history: the event, the state before and after
    it, and the fields it changed."""

    event: RecordedEvent
    before: dict[str, Any]
    after: dict[str, Any]
    changes: list[Change]


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The result of :meth:`EventStore.verify`.

    ``first_bad_position`` is ``None`` when ``ok``; ``head_hash`` is the hash of
    the last event checked, the value an auditor writes down; ``root`` the
    Merkle root a checkpoint of that size states; ``erased`` is
    how many of the checked events have an erased payload.
    """

    ok: bool
    checked: int
    first_bad_position: int | None
    reason: str | None
    head_position: int = 0
    head_hash: str | None = None
    root: str | None = None
    """The Merkle root (base64) of the ``head_position`` events, recomputed
    from the stored rows; None after an incremental walk, which does not
    read the events before it."""
    checkpoint: Checkpoint | None = None
    """The checkpoint the store was verified against, when one was given."""
    erased: int = 0


@dataclass(frozen=True, slots=True)
class StoreCounts:
    """What the log holds, from the counts the store keeps as it appends
    (:meth:`EventStore.counts`): exact, and as cheap at any size.

    ``aggregate_types`` counts aggregates per aggregate type,
    ``aggregate_type_events`` their events; ``None`` is the type of
    aggregates appended without one. ``system_events`` have no aggregate.
    The occurred span is business time, which position does not order.
    """

    head: int
    events: int
    system_events: int
    event_types: dict[str, int]
    aggregate_types: dict[str | None, int]
    aggregate_type_events: dict[str | None, int]
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None

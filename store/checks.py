"""Argument checks shared by the store's public methods: each bad value
becomes a ValidationError that names it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable

from .codec import MAX_INT, canonical, check_unicode, format_time
from .errors import ValidationError, describe
from .models import NewEvent, RecordedEvent

__all__ = [
    "check_event_id",
    "check_int",
    "check_name",
    "check_types",
    "same_content",
]


def check_int(value: object, name: str, minimum: int = 0) -> int:
    """An int argument within what the database can hold; bool is not an int here."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{name} must be an int, not {describe(value)}")
    if not minimum <= value <= MAX_INT:
        raise ValidationError(
            f"{name} must be between {minimum} and {MAX_INT}, not {describe(value)}"
        )
    return value


def check_types(types: object) -> tuple[str, ...]:
    if isinstance(types, str):
        types = [types]
    if not isinstance(types, Iterable):
        raise ValidationError(f"types must be a list of event type names, not {describe(types)}")
    try:
        names = list(types)
    except Exception as e:  # the caller's own iterable failed
        raise ValidationError(f"types could not be read: {type(e).__name__}: {e}") from e
    return tuple(sorted({check_name(t, "event type", optional=False) or "" for t in names}))


def check_name(value: object, what: str, optional: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{what} must be a non-empty string, not {describe(value)}")
    check_unicode(value, what)
    return value


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def check_event_id(value: object) -> str:
    if isinstance(value, str) and _CANONICAL_UUID.fullmatch(value):
        return value
    if not isinstance(value, str):
        raise ValidationError(f"event_id must be a UUID string, not {describe(value)}")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ValidationError(f"event_id {describe(value)} is not a UUID") from None


def same_content(
    stored: RecordedEvent,
    new: NewEvent,
    aggregate_id: str | None,
    aggregate_type: str | None,
    occurred_at: str | None,
    same_data: bool | None = None,
) -> bool:
    """Whether a retry carries the stored event's content. An erased event's
    payload is compared by the caller through its kept digest (``same_data``)."""
    return (
        stored.type == new.type
        and stored.aggregate_id == aggregate_id
        and (aggregate_type is None or stored.aggregate_type == aggregate_type)
        and stored.schema_version == new.schema_version
        and (canonical(stored.data) == canonical(new.data) if same_data is None else same_data)
        and canonical(stored.metadata) == canonical(new.metadata)
        and (occurred_at is None or format_time(stored.occurred_at) == occurred_at)
    )

"""Field blame: which events set a field of an aggregate's state (no widgets)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from store import EventStore, RecordedEvent

from .jsonview import resolve_pointer

__all__ = ["BlameEntry", "blame"]


@dataclass(frozen=True)
class BlameEntry:
    """An event that set (or removed) a field, and the field's value after it."""

    event: RecordedEvent
    present: bool
    value: Any


def _touches(path: str, changed: str) -> bool:
    return changed == path or changed.startswith(path + "/") or path.startswith(changed + "/")


def blame(es: EventStore, aggregate_id: str, path: str, to_version: int) -> list[BlameEntry]:
    """Every event up to ``to_version`` that changed the field at ``path``.

    The last entry is the event that last set it; the list is its history of values.
    """
    entries: list[BlameEntry] = []
    if to_version < 1:
        return entries
    for step in es.history(aggregate_id, 1, to_version):
        if any(_touches(path, change.path) for change in step.changes):
            present, value = resolve_pointer(step.after, path)
            entries.append(BlameEntry(step.event, present, value))
    return entries

"""Two clocks in DataFrames: states as of a business time as known at a
system time, and restatements (what a late correction changed about a
past date).

Both replay with :mod:`store.bitemporal`: the events recorded by the
cut-off whose ``occurred_at`` is at or before the business time, folded in
(occurred_at, position) order with the store's reducers.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pandas as pd

from store import VOIDED, Change, EventStore, RecordedEvent, diff
from store.bitemporal import bitemporal_states

__all__ = [
    "RESTATEMENT_COLUMNS",
    "late_events",
    "restatement_frame",
    "restatement_rows",
    "state_rows",
]

RESTATEMENT_COLUMNS: tuple[str, ...] = (
    "aggregate_id",
    "aggregate_type",
    "path",
    "then",
    "now",
    "positions",
    "recorded_at",
    "occurred_at",
    "actor",
)
"""Columns of :func:`workbench.frames.restatements`."""


def state_rows(
    es: EventStore, aggregate_type: str | None, occurred: datetime | None, known_at: datetime | None
) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
    """Rows (aggregate_id, aggregate_type, version, position, updated_at) and states."""
    found = bitemporal_states(es, aggregate_type, occurred, known_at)
    rows = [
        (s.aggregate_id, s.aggregate_type, s.version, s.position, s.recorded_at)
        for s in found.values()
    ]
    return rows, [s.state for s in found.values()]


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")


def late_events(
    es: EventStore,
    aggregate_id: str,
    occurred: datetime,
    known_at: datetime,
    compared_to: datetime | None,
) -> list[tuple[RecordedEvent, list[Change]]]:
    """The aggregate's events recorded after ``known_at`` (and by
    ``compared_to``) that occurred by ``occurred``, each with the fields it
    changed in the fold as known at ``compared_to``; and the voids recorded
    in that window of events in the fold, each with the fields its removal
    changed (a void counts by system time, whatever its own occurred_at)."""
    recorded = [
        e for e in es.stream(aggregate_id) if compared_to is None or e.recorded_at <= compared_to
    ]
    voids = {e.data["voided_position"]: e for e in recorded if e.type == VOIDED}
    known = [e for e in recorded if e.occurred_at <= occurred]
    known.sort(key=lambda e: (e.occurred_at, e.position))
    # The default reducer never changes its input; a user's may, so give it a copy.
    protect = not es.reducers.copy_free

    def fold(leave_out: set[int]) -> tuple[dict[str, Any], list[tuple[RecordedEvent, Any]]]:
        state: dict[str, Any] = {}
        steps: list[tuple[RecordedEvent, Any]] = []
        for event in known:
            if event.position in leave_out:
                continue
            after = es.reducers.apply(copy.deepcopy(state) if protect else state, event)
            steps.append((event, diff(state, after)))
            state = after
        return state, steps

    now, steps = fold(set(voids))
    late = [(e, found) for e, found in steps if e.recorded_at > known_at]
    positions = {e.position for e in known}
    for voided, void in voids.items():
        if void.recorded_at > known_at and voided in positions:
            with_it, _ = fold(set(voids) - {voided})
            late.append((void, diff(with_it, now)))
    return late


def restatement_rows(
    es: EventStore,
    aggregate_type: str | None,
    occurred: datetime,
    known_at: datetime,
    compared_to: datetime | None,
) -> list[tuple[Any, ...]]:
    """The rows of :func:`workbench.frames.restatements`, in RESTATEMENT_COLUMNS order."""
    then = bitemporal_states(es, aggregate_type, occurred, known_at)
    now = bitemporal_states(es, aggregate_type, occurred, compared_to)
    rows: list[tuple[Any, ...]] = []
    for aggregate_id, current in now.items():
        earlier = then.get(aggregate_id)
        before = {} if earlier is None else earlier.state
        if before == current.state:
            continue
        late = late_events(es, aggregate_id, occurred, known_at, compared_to)
        for change in diff(before, current.state):
            causes = [e for e, found in late if any(_overlaps(change.path, c.path) for c in found)]
            if not causes:  # a reducer's effect the field diffs cannot trace
                causes = [e for e, _ in late]
            last = max(causes, key=lambda e: e.position) if causes else None
            rows.append(
                (
                    aggregate_id,
                    current.aggregate_type,
                    change.path,
                    change.old,
                    change.new,
                    [e.position for e in causes],
                    None if last is None else last.recorded_at,
                    None if last is None else last.occurred_at,
                    None if last is None else last.actor,
                )
            )
    return rows


def restatement_frame(rows: Iterable[tuple[Any, ...]]) -> pd.DataFrame:
    listed = list(rows)
    columns = list(zip(*listed, strict=True)) if listed else [()] * len(RESTATEMENT_COLUMNS)
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object)
            for name, values in zip(RESTATEMENT_COLUMNS, columns, strict=True)
        }
    )
    for name in ("recorded_at", "occurred_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
    frame["aggregate_id"] = frame["aggregate_id"].astype("str")
    frame["path"] = frame["path"].astype("str")
    return frame

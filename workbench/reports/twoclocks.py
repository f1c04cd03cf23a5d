"""The two clocks in reports: each event's business time beside its system
time, a mark on back-dated events, and the restatements section.

An event is *back-dated* when it was recorded more than :data:`BACK_DATED`
after it occurred (a late correction, a delayed webhook): the timeline shows
its ``occurred_at`` with the delay. A report given ``occurred`` (a business
date) and ``known_at`` (a cut-off, e.g. the day the quarter's figures were
published) also lists its restatements: each field of each aggregate's state
as of that date that events recorded after the cut-off changed, from what to
what, and which events did it (:func:`workbench.frames.restatements`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from store import EventStore, RecordedEvent
from workbench.late import LATE_AFTER, lateness

from .texts import time_text

__all__ = [
    "BACK_DATED",
    "RESTATEMENT_HEADINGS",
    "Restatements",
    "back_dated",
    "build_restatements",
    "delay_text",
    "restatement_cells",
]

BACK_DATED = LATE_AFTER
"""Recorded this long after it occurred, an event is marked as back-dated (the
one rule of :mod:`workbench.late`, which the TUI's timeline follows too)."""

RESTATEMENT_HEADINGS = [
    "Aggregate",
    "Field",
    "Then",
    "Now",
    "Late events",
    "Recorded at (UTC)",
    "Occurred at (UTC)",
    "Actor",
]


def back_dated(event: RecordedEvent) -> timedelta | None:
    """How long after it occurred the event was recorded, when that is more
    than :data:`BACK_DATED`; None otherwise."""
    return lateness(event.occurred_at, event.recorded_at)


def delay_text(delay: timedelta) -> str:
    """``"back-dated 3 d 4 h"``: days and hours, or hours and minutes."""
    hours, rest = divmod(int(delay.total_seconds()), 3600)
    days, hours = divmod(hours, 24)
    if days:
        return f"back-dated {days} d {hours} h"
    return f"back-dated {hours} h {rest // 60} min"


@dataclass(frozen=True, slots=True)
class Restatements:
    """The restatements section: the business date, the cut-off, the rows
    (in :data:`workbench.frames.RESTATEMENT_COLUMNS` order)."""

    occurred: datetime
    known_at: datetime
    rows: list[tuple[Any, ...]]

    def intro(self) -> str:
        count = len({row[0] for row in self.rows})
        return (
            f"State as of business time {time_text(self.occurred)}: what was known at "
            f"{time_text(self.known_at)} against what is known now. "
            f"{count} aggregate(s), {len(self.rows)} field(s) restated."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "occurred": time_text(self.occurred),
            "known_at": time_text(self.known_at),
            "rows": [
                {
                    "aggregate_id": row[0],
                    "aggregate_type": row[1],
                    "path": row[2],
                    "then": row[3],
                    "now": row[4],
                    "positions": row[5],
                    "recorded_at": time_text(row[6]) or None,
                    "occurred_at": time_text(row[7]) or None,
                    "actor": row[8],
                }
                for row in self.rows
            ],
        }


def build_restatements(
    es: EventStore,
    aggregate_type: str | None,
    occurred: datetime,
    known_at: datetime,
    aggregate_id: str | None = None,
) -> Restatements:
    from workbench.frames.twoclocks import restatement_rows

    rows = restatement_rows(es, aggregate_type, occurred, known_at, None)
    if aggregate_id is not None:
        rows = [row for row in rows if row[0] == aggregate_id]
    return Restatements(occurred, known_at, rows)


def restatement_cells(row: tuple[Any, ...], json_text: Any) -> list[str]:
    """One restatement row as plain text cells (writers escape them)."""
    then = "(absent)" if row[3] is None else json_text(row[3])
    now = "(absent)" if row[4] is None else json_text(row[4])
    return [
        str(row[0]),
        str(row[2]),
        then,
        now,
        ", ".join(f"#{p}" for p in row[5]),
        time_text(row[6]),
        time_text(row[7]),
        "" if row[8] is None else str(row[8]),
    ]

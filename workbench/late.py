"""Late events: recorded long after they occurred (back-dated corrections,
webhooks that land hours later). One rule for the TUI and the reports.

An event is *late* when its ``recorded_at`` is more than :data:`LATE_AFTER`
(one hour) after its ``occurred_at``. An hour is well above the lag of a
system that records what happens as it happens (milliseconds to minutes, a
retried webhook included) and well below a correction dated back to the
order it corrects (days or weeks), so the mark singles out the events whose
place in the log is not their place in business time.

    >>> from datetime import UTC, datetime
    >>> lateness_text(datetime(2024, 5, 30, tzinfo=UTC), datetime(2024, 6, 25, 3, tzinfo=UTC))
    '26 d 3 h'
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["LATE_AFTER", "LATE_MARK", "is_late", "late_note", "lateness", "lateness_text"]

LATE_AFTER = timedelta(hours=1)
"""How much later than it occurred an event must be recorded to count as late."""

LATE_MARK = "↶"
"""The mark shown next to a late event's time (the event points back in time)."""


def lateness(occurred_at: datetime, recorded_at: datetime) -> timedelta | None:
    """How long after it occurred the event was recorded, when that is late; else None."""
    lag = recorded_at - occurred_at
    return lag if lag > LATE_AFTER else None


def is_late(occurred_at: datetime, recorded_at: datetime) -> bool:
    return lateness(occurred_at, recorded_at) is not None


def lateness_text(occurred_at: datetime, recorded_at: datetime) -> str:
    """The lag in days, hours and minutes ('26 d 3 h', '2 h 5 min')."""
    lag = recorded_at - occurred_at
    minutes = int(lag.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = []
    if days:
        parts.append(f"{days} d")
    if hours:
        parts.append(f"{hours} h")
    if mins and not days:
        parts.append(f"{mins} min")
    return " ".join(parts) or "under a minute"


def late_note(occurred_at: datetime, recorded_at: datetime) -> str | None:
    """For a late event, what reports say next to its recorded time; else None.

    >>> from datetime import UTC, datetime
    >>> late_note(datetime(2024, 5, 30, tzinfo=UTC), datetime(2024, 6, 25, 3, tzinfo=UTC))
    '↶ late: occurred 2024-05-30 00:00:00 UTC, 26 d 3 h earlier'
    """
    if not is_late(occurred_at, recorded_at):
        return None
    when = occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{LATE_MARK} late: occurred {when}, {lateness_text(occurred_at, recorded_at)} earlier"

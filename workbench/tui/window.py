"""A bounded window of timeline events, like Toolong's line cache.

The timeline never holds the whole log: it holds at most ``max_size`` matching
events in ascending position order, and grows at one end by keyset pages while
dropping events from the other end.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

from store import RecordedEvent

__all__ = ["Window"]


class Window:
    """Consecutive matching events, oldest first.

    ``at_start``/``at_end`` say whether no older/newer matching event existed
    when that end was last read.
    """

    def __init__(self, max_size: int = 600) -> None:
        self.max_size = max_size
        self.events: list[RecordedEvent] = []
        self.positions: list[int] = []
        self.at_start = True
        self.at_end = True

    def __len__(self) -> int:
        return len(self.events)

    @property
    def first_position(self) -> int | None:
        return self.positions[0] if self.positions else None

    @property
    def last_position(self) -> int | None:
        return self.positions[-1] if self.positions else None

    def reset(self, events: Sequence[RecordedEvent], *, at_start: bool, at_end: bool) -> None:
        self.events = list(events)[-self.max_size :]
        self.positions = [event.position for event in self.events]
        self.at_start = at_start and len(self.events) == len(events)
        self.at_end = at_end

    def append(self, events: Sequence[RecordedEvent], *, complete: bool) -> int:
        """Add newer events; return how many old events were dropped from the start."""
        last = self.last_position or 0
        fresh = [event for event in events if event.position > last]
        self.events.extend(fresh)
        self.positions.extend(event.position for event in fresh)
        self.at_end = complete
        dropped = max(0, len(self.events) - self.max_size)
        if dropped:
            del self.events[:dropped]
            del self.positions[:dropped]
            self.at_start = False
        return dropped

    def prepend(self, events: Sequence[RecordedEvent], *, complete: bool) -> int:
        """Add older events; return how many new events were dropped from the end."""
        first = self.first_position
        fresh = [event for event in events if first is None or event.position < first]
        self.events[:0] = fresh
        self.positions[:0] = [event.position for event in fresh]
        self.at_start = complete
        dropped = max(0, len(self.events) - self.max_size)
        if dropped:
            del self.events[-dropped:]
            del self.positions[-dropped:]
            self.at_end = False
        return dropped

    def index_of(self, position: int) -> int | None:
        index = bisect_left(self.positions, position)
        if index < len(self.positions) and self.positions[index] == position:
            return index
        return None

    def index_at_or_before(self, position: int) -> int:
        """Index of the last event at or before ``position`` (0 if none)."""
        return max(0, bisect_right(self.positions, position) - 1)

"""How the timeline's columns share the width they are given (no UI code).

Position, time and version have fixed widths. Aggregate, Type and Actor start
at a minimum and grow towards the width of their longest value in view: first
each up to a fair share (Type 20, Actor 14, Aggregate 10), then each up to its
longest value, Type first, then Actor, then Aggregate, so Type and Actor are
never cut while there is room for them. Width left over once nothing is cut goes to the last
column, so the table always spans its pane. Below :data:`WIDE` the time
column drops its year, below :data:`SMALL` its date.

    >>> widths = fit(120, {"aggregate": 12, "type": 19, "actor": 14})
    >>> widths["type"], widths["actor"]
    (19, 14)
"""

from __future__ import annotations

__all__ = ["FIXED", "GROWING", "MIN", "PADDING", "SMALL", "WIDE", "fit", "time_width"]

PADDING = 2
"""Cells pad one space on each side."""

WIDE = 100
"""From this width on, the time column shows the full date."""
SMALL = 72
"""Below this width, the time column shows the time of day alone."""

FIXED = {"pos": 7, "ver": 4}
GROWING = ("type", "actor", "aggregate")  # the order in which they grow to their longest
FAIR_FIRST = ("aggregate", "type", "actor")  # and to their fair share
MIN = {"aggregate": 8, "type": 10, "actor": 6}
FAIR = {"aggregate": 10, "type": 20, "actor": 14}
MAX = {"aggregate": 40, "type": 40, "actor": 32}
ORDER = ("pos", "time", "aggregate", "ver", "type", "actor")


def time_width(width: int) -> int:
    """The time column: 'YYYY-MM-DD HH:MM:SS', 'MM-DD HH:MM:SS' below WIDE, 'HH:MM:SS'
    below SMALL, and two cells for the late mark."""
    return (19 if width >= WIDE else 14 if width >= SMALL else 8) + 2


def fit(width: int, natural: dict[str, int]) -> dict[str, int]:
    """Column widths (without padding) for a table ``width`` cells wide.

    ``natural`` is the longest value of each growing column in view.
    """
    widths = {**FIXED, "time": time_width(width)}
    widths.update(MIN)
    spare = width - sum(widths.values()) - PADDING * len(ORDER)
    # First every column up to a fair share, then up to its longest value.
    for caps, order in ((FAIR, FAIR_FIRST), (MAX, GROWING)):
        for name in order:
            want = max(MIN[name], min(natural.get(name, 0), caps[name]))
            grow = max(0, min(spare, want - widths[name]))
            widths[name] += grow
            spare -= grow
    if spare > 0:
        widths[ORDER[-1]] += spare
    return {name: widths[name] for name in ORDER}

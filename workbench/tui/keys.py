"""Words the help screen, the command palette and the README share.

The pivot keys (``c`` ``a`` ``o``) follow one model, stated once here in
:data:`PIVOT_RULE`; the README quotes it word for word (a test holds the two
equal), F1 shows it, and each pivot's palette entry and key tooltip is built
from :data:`PIVOTS`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["HELP_INTRO", "MIN_SIZE", "PIVOTS", "PIVOT_RULE", "Pivot"]

MIN_SIZE = (80, 24)
"""The smallest terminal the workbench is laid out for (columns, rows)."""


class Pivot(NamedTuple):
    key: str  # lower case adds; upper case replaces
    field: str  # the Filters field it sets
    noun: str  # what it is called on screen


PIVOTS = (
    Pivot("c", "correlation_id", "correlation id"),
    Pivot("a", "actor", "actor"),
    Pivot("o", "aggregate_id", "aggregate"),
)

PIVOT_RULE = (
    "c, a and o add the selected event's correlation id, actor or aggregate to the "
    "filters as one more chip (replacing a chip of the same kind); C, A and O show "
    "only that one chip, dropping every other filter."
)


def pivot_help(pivot: Pivot, *, only: bool) -> str:
    """The tooltip and palette help of one pivot key."""
    if only:
        return f"Show only the selected event's {pivot.noun}, dropping every other filter"
    return f"Add the selected event's {pivot.noun} to the filters"


HELP_INTRO = (
    "The timeline lists events by global position; the detail pane shows the one under the "
    "cursor. Times are UTC; ↶ marks an event recorded more than an hour after it occurred. "
    "Filters combine; the bar above the timeline shows them as chips, a click drops one and "
    "x clears them all. "
    + PIVOT_RULE
    + " Text, actor and correlation filters scan the log page by page in the background, so "
    "the screen never freezes. Below 160 columns the detail pane, and below 110 the "
    "aggregates too, are hidden: F2 and F3 show them. Ctrl+P opens the command palette; Tab "
    "moves between panes; the mouse works everywhere.\n"
)

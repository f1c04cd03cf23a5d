"""What the lines above and below the timeline say (no widgets)."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.markup import escape

from .fmt import shown
from .query import Filters
from .window import Window

__all__ = ["TimelineState", "filter_bar", "status_line"]


def filter_bar(filters: Filters) -> str:
    """The filter chips as markup; each chip is a link whose click drops that filter."""
    chips = filters.chips()
    if not chips:
        return "[b]All events[/b]   [dim]f filter · x clear · t live tail[/dim]"
    parts = [
        f"[reverse @click=screen.remove_filter('{name}')] {escape(shown(label))} ✕ [/]"
        for name, label in chips
    ]
    return "[b]Filters[/b]  " + "  ".join(parts) + "   [dim]x clears all[/dim]"


@dataclass
class TimelineState:
    """What the status line reports about the timeline."""

    window: Window
    cursor_row: int
    following: bool = False
    scanning: int | None = None  # None: no scan; 0: started; else the position reached
    matching: int | None = None
    filtered: bool = False
    pending_new: int = 0
    note: str | None = None


def status_line(state: TimelineState) -> Text:
    """``row 8 of 150 · #2,851–#3,000 · 3,000 matching``, with live, scan and notes."""
    window = state.window
    text = Text()
    if state.following:
        text.append("● LIVE ", style="bold green")
    if state.scanning == 0:
        text.append("searching…  ", style="yellow")
    elif state.scanning is not None:
        text.append(f"searching… at #{state.scanning:,}  ", style="yellow")
    if window.events:
        text.append(f"row {state.cursor_row + 1} of {len(window)}", style="bold")
        text.append(f" · #{window.first_position:,}–#{window.last_position:,}")
        if state.matching is not None:
            text.append(f" · {state.matching:,} matching")
        if not window.at_end:
            text.append("  more below ↓", style="dim")
    elif state.scanning is None:
        text.append("No events match." if state.filtered else "The store is empty.")
    if state.pending_new:
        text.append(f"  ▼ {state.pending_new} new (G to see)", style="bold yellow")
    if state.note:
        text.append(f"\n{state.note}", style="italic cyan")
    return text

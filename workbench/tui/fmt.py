"""How values look on screen. Every time is shown in UTC.

Text from the store reaches the screen through :func:`shown` (control
characters and bidi overrides as visible escapes, see
:mod:`workbench.safetext`): :func:`truncate` and :func:`value_text` apply it,
and a widget showing a name whole wraps it in :func:`shown`. What is copied
to the clipboard (:func:`event_json`) is data and stays exact.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text

from store import RecordedEvent
from workbench import inputs

from ..safetext import pictured, shown

__all__ = [
    "SAFE_INPUT",
    "SafeInputHighlighter",
    "event_json",
    "short_time",
    "shown",
    "time_text",
    "truncate",
    "value_text",
]


class SafeInputHighlighter(Highlighter):
    """For an ``Input`` that may hold text from the store (a filter prefilled with
    an aggregate id, a path made from one): each unsafe character is drawn as
    one visible character (:func:`workbench.safetext.pictured`), so the cursor
    stays true, while the input's value stays exact."""

    def highlight(self, text: Text) -> None:
        plain = text.plain
        safe = pictured(plain)
        if safe != plain:
            text.plain = safe


SAFE_INPUT = SafeInputHighlighter()


def time_text(value: datetime | None) -> str:
    """Full UTC time with microseconds, for the detail pane."""
    if value is None:
        return "—"
    return f"{inputs.time_text(value)} UTC"


def short_time(value: datetime | None) -> str:
    """UTC time to the second, for table cells."""
    return inputs.time_text(value, "s")


def truncate(text: str | None, width: int) -> str:
    """``text`` shown safely and cut to ``width`` characters (``—`` for none)."""
    if text is None:
        return "—"
    text = shown(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def event_json(event: RecordedEvent) -> str:
    """The event as pretty JSON in the export format (what "copy" puts on the clipboard)."""
    return json.dumps(event.to_dict(), indent=2, ensure_ascii=False)


def value_text(value: Any, width: int = 40) -> str:
    """A JSON value on one line, cut to ``width``; ``absent`` for a missing field."""
    return truncate(json.dumps(value, ensure_ascii=False), width)

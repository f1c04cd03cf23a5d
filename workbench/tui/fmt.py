"""How values look on screen. Every time is shown in UTC."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from store import RecordedEvent
from workbench import inputs

__all__ = ["event_json", "short_time", "time_text", "truncate"]


def time_text(value: datetime | None) -> str:
    """Full UTC time with microseconds, for the detail pane."""
    if value is None:
        return "—"
    return f"{inputs.time_text(value)} UTC"


def short_time(value: datetime | None) -> str:
    """UTC time to the second, for table cells."""
    return inputs.time_text(value, "s")


def truncate(text: str | None, width: int) -> str:
    if text is None:
        return "—"
    return text if len(text) <= width else text[: width - 1] + "…"


def event_json(event: RecordedEvent) -> str:
    """The event as pretty JSON in the export format (what "copy" puts on the clipboard)."""
    return json.dumps(event.to_dict(), indent=2, ensure_ascii=False)


def value_text(value: Any, width: int = 40) -> str:
    """A JSON value on one line, cut to ``width``; ``absent`` for a missing field."""
    return truncate(json.dumps(value, ensure_ascii=False), width)

"""How reports write times and JSON values: one rule for every format."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

__all__ = ["json_text", "time_text"]


def time_text(value: datetime | None) -> str:
    """ISO-8601 UTC with microseconds, as in every export of the store."""
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def json_text(value: Any, *, spaced: bool = False) -> str:
    """Compact JSON; ``spaced`` puts a space after commas and colons, so long
    values wrap at natural points when read by people."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": ") if spaced else (",", ":"))

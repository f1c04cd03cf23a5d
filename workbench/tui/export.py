"""Writing the filtered timeline to JSON Lines or CSV, streaming."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from store import EVENT_FIELDS, EventStore, RecordedEvent

from .query import Filters, iter_matching

__all__ = ["FIELDS", "export_events", "write_csv", "write_jsonl"]

FIELDS = list(EVENT_FIELDS)
"""Column order of the CSV export: the event schema's field names."""


def write_jsonl(events: Iterable[RecordedEvent], out: IO[str]) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event.to_dict(), ensure_ascii=False))
        out.write("\n")
        count += 1
    return count


def write_csv(events: Iterable[RecordedEvent], out: IO[str]) -> int:
    """One row per event; ``data`` and ``metadata`` as compact JSON text."""
    writer = csv.DictWriter(out, fieldnames=FIELDS)
    writer.writeheader()
    count = 0
    for event in events:
        row = event.to_dict()
        row["data"] = json.dumps(row["data"], ensure_ascii=False, separators=(",", ":"))
        row["metadata"] = json.dumps(row["metadata"], ensure_ascii=False, separators=(",", ":"))
        writer.writerow(row)
        count += 1
    return count


def export_events(
    es: EventStore,
    filters: Filters,
    path: str | os.PathLike[str],
    fmt: str,
    *,
    cancelled: Callable[[], bool] = lambda: False,
) -> int:
    """Write every event matching ``filters`` to ``path``; return how many.

    The file is written under a temporary name and renamed at the end, so a
    cancelled or failed export never leaves half a file behind.
    """
    writers = {"jsonl": write_jsonl, "csv": write_csv}
    if fmt not in writers:
        raise ValueError(f"unknown export format {fmt!r}; use jsonl or csv")
    target = Path(path).expanduser()
    partial = target.with_name(target.name + ".partial")
    events = iter_matching(es, filters, cancelled=cancelled)
    try:
        with partial.open("w", encoding="utf-8", newline="") as out:
            count = writers[fmt](events, out)
        if cancelled():
            raise InterruptedError("export cancelled")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return count

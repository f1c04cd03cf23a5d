"""Writing the filtered timeline to JSON Lines or CSV, streaming.

The bytes are those of ``sss export`` (:mod:`workbench.eventfiles`), and the
file rules those of every named output (:mod:`workbench.outputs`).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from store import EventStore
from workbench.eventfiles import EXPORT_FIELDS, FORMATS, write_events
from workbench.outputs import open_output

from .query import Filters, iter_matching

__all__ = ["FIELDS", "export_events"]

FIELDS = list(EXPORT_FIELDS)
"""Column order of the CSV export: the event schema's field names."""


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
    cancelled or failed export never leaves half a file behind; ``path`` is
    never the store itself, nor any other store, device or directory
    (:class:`workbench.outputs.OutputError`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use jsonl or csv")
    events = iter_matching(es, filters, cancelled=cancelled)
    with open_output(os.fspath(path), protect=[es.path], stream=False) as out:
        count = write_events(events, out, fmt)
        if cancelled():
            raise InterruptedError("export cancelled")
    return count

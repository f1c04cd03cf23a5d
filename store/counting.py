"""The counts the store keeps as it appends, so that ``sss stats`` and the
counts per type cost the same at any size.

One table, ``sss_counts``, holds a row per (event type, aggregate type,
system) key: how many events, how many aggregates began there (events at
version 1), and the span of their ``occurred_at``. An append adds its batch
inside its own transaction with one upsert per distinct key of the batch,
counted here in Python (no trigger per row: that would cost every append a
statement per event), so the counts commit or roll back with the events.
A store made before the table existed gets it built once, when it is first
opened for writing (format version 2); ``verify`` compares it with the log.

The aggregate type is kept as ``''`` when an aggregate has none (names are
never empty), and ``system`` is 1 for events without an aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .models import StoreCounts

__all__ = ["KeptCount", "Totals", "as_rows", "batch_counts", "merge", "summarize"]

KeptCount = tuple[str, str, int, int, int, str, str]
"""(type, aggregate_type or '', system, events, aggregates, first occurred_at,
last occurred_at), the times as stored text (fixed-width UTC, so text order
is time order)."""


Totals = dict[tuple[str, str, int], list[Any]]
"""Counts being added up: key -> [events, aggregates, first, last]."""


def batch_counts(rows: Iterable[Sequence[Any]]) -> list[KeptCount]:
    """The counts of a batch of rows (in the layout of :data:`store.backend.Row`
    or a chain row), one per key, sorted by key so that concurrent upserts
    take their row locks in one order. About 0.15 us a row: an append's
    cost is its hashing, encoding and commit."""
    if isinstance(rows, Sequence) and len(rows) == 1:
        row = rows[0]
        occurred = row[9]
        return [(row[5], row[3] or "", 1 if row[2] is None else 0, 1,
                 1 if row[4] == 1 else 0, occurred, occurred)]  # fmt: skip
    return _counts_by_row(rows)


def _counts_by_row(rows: Iterable[Sequence[Any]]) -> list[KeptCount]:
    found: Totals = {}
    for row in rows:
        key = (row[5], row[3] or "", 1 if row[2] is None else 0)
        occurred = row[9]
        entry = found.get(key)
        if entry is None:
            found[key] = [1, 1 if row[4] == 1 else 0, occurred, occurred]
            continue
        entry[0] += 1
        if row[4] == 1:
            entry[1] += 1
        if occurred < entry[2]:
            entry[2] = occurred
        elif occurred > entry[3]:
            entry[3] = occurred
    return [(*key, *entry) for key, entry in sorted(found.items())]


def merge(total: Totals, rows: Iterable[KeptCount]) -> None:
    """Add kept counts into ``total`` (for verify, which counts page by page)."""
    for type_, aggregate_type, system, events, aggregates, first, last in rows:
        key = (type_, aggregate_type, system)
        entry = total.get(key)
        if entry is None:
            total[key] = [events, aggregates, first, last]
        else:
            entry[0] += events
            entry[1] += aggregates
            entry[2] = min(entry[2], first)
            entry[3] = max(entry[3], last)


def as_rows(total: Totals) -> list[KeptCount]:
    return [(*key, *entry) for key, entry in sorted(total.items())]


def _none_first(item: tuple[str | None, int]) -> tuple[bool, str]:
    return item[0] is not None, item[0] or ""


def summarize(head: int, kept: Iterable[KeptCount]) -> StoreCounts:
    """The kept rows folded into what a person reads."""
    from .codec import parse_time

    event_types: dict[str, int] = {}
    aggregates: dict[str | None, int] = {}
    aggregate_events: dict[str | None, int] = {}
    system = events = 0
    first = last = None
    for type_, aggregate_type, is_system, count, began, low, high in kept:
        if not count:
            continue
        events += count
        event_types[type_] = event_types.get(type_, 0) + count
        if is_system:
            system += count
        else:
            name = aggregate_type or None
            aggregates[name] = aggregates.get(name, 0) + began
            aggregate_events[name] = aggregate_events.get(name, 0) + count
        first = low if first is None else min(first, low)
        last = high if last is None else max(last, high)
    return StoreCounts(
        head=head,
        events=events,
        system_events=system,
        event_types=dict(sorted(event_types.items())),
        aggregate_types=dict(sorted(aggregates.items(), key=_none_first)),
        aggregate_type_events=dict(sorted(aggregate_events.items(), key=_none_first)),
        first_occurred_at=None if first is None else parse_time(first),
        last_occurred_at=None if last is None else parse_time(last),
    )

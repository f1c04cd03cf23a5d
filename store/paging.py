"""Reading the log: filters into a :class:`~store.backend.Query`, keyset
pages (a heap merge of one scan per event type), an aggregate's stream, and
the counts kept of what the log holds."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any, TypeVar

from ._core import PAGE, StoreCore
from .backend import Query
from .checks import check_int, check_name, check_types
from .codec import format_time, require_aware
from .counting import summarize
from .errors import NotFoundError, describe
from .models import AggregateInfo, ReadStatement, RecordedEvent, StoreCounts

__all__ = [
    "aggregates",
    "count",
    "counts",
    "get",
    "query",
    "read",
    "read_rows",
    "read_statement",
    "stream",
]

T = TypeVar("T")
Fetch = Callable[[Query, "str | None", "int | None", bool, int], list[T]]


def _event_position(event: RecordedEvent) -> int:
    return event.position


def _event_cursor(event: RecordedEvent, by_version: bool) -> int | None:
    return event.version if by_version else event.position


def _row_position(row: tuple[Any, ...]) -> int:
    return int(row[0])


def _row_cursor(row: tuple[Any, ...], by_version: bool) -> int | None:
    return int(row[4]) if by_version else int(row[0])


def query(
    es: StoreCore,
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    backwards: bool,
) -> Query | None:
    """Turn read filters into a Query, or None when nothing can match."""
    if from_position is not None:
        check_int(from_position, "from_position")
    check_name(aggregate_id, "aggregate_id")
    check_name(aggregate_type, "aggregate_type")
    type_tuple: tuple[str, ...] | None = None
    if types is not None:
        type_tuple = check_types(types)
        if not type_tuple:
            return None
    lo, hi = 1, None
    if from_position is not None:
        if backwards:
            hi = from_position
        else:
            lo = max(1, from_position)
    if since is not None:
        first = es._backend.first_position_since(format_time(require_aware(since, "since")))
        if first is None:
            return None
        lo = max(lo, first)
    if until is not None:
        last = es._backend.last_position_until(format_time(require_aware(until, "until")))
        hi = last if hi is None else min(hi, last)
    if hi is not None and hi < lo:
        return None
    return Query(lo, hi, aggregate_id, aggregate_type, type_tuple)


def read(
    es: StoreCore,
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    backwards: bool,
) -> Iterator[RecordedEvent]:
    found = _query(
        es, from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
    )
    return _read(es, found, limit, backwards)


def _query(
    es: StoreCore,
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    backwards: bool,
) -> Query | None:
    """The checked ``limit`` and the :func:`query` of a read (read, read_rows,
    read_statement)."""
    if limit is not None:
        check_int(limit, "limit")
    return es._call(
        query, es, from_position, aggregate_id, aggregate_type, types, since, until, backwards
    )


def _read(
    es: StoreCore, found: Query | None, limit: int | None, backwards: bool
) -> Iterator[RecordedEvent]:
    # The pages are a generator, so nothing is read before the first next();
    # the chain hands each event over in C, with no generator frame per event.
    pages = _pages(
        es, es._backend.page, found, limit, backwards, PAGE, _event_position, _event_cursor
    )
    events: Iterator[RecordedEvent] = itertools.chain.from_iterable(pages)
    if es.upcasters:
        events = map(es._upcast, events)
    return events


def read_rows(
    es: StoreCore,
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    backwards: bool,
    page_size: int,
) -> Iterator[list[tuple[Any, ...]]]:
    if limit is not None:
        check_int(limit, "limit")
    check_int(page_size, "page_size", minimum=1)
    found = _query(
        es, from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
    )
    pages = _pages(
        es, es._backend.page_rows, found, limit, backwards, page_size, _row_position, _row_cursor
    )
    if not es.upcasters:
        return pages
    return ([es._upcast_row(row) for row in page] for page in pages)


def read_statement(
    es: StoreCore,
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
    limit: int | None,
    backwards: bool,
) -> ReadStatement | None:
    with es._lock:
        found = _query(
            es, from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
        )
        if found is None or limit == 0 or es.upcasters:
            return None
        return es._backend.read_statement(found, limit, backwards)


def _pages(
    es: StoreCore,
    fetch: Fetch[T],
    found: Query | None,
    limit: int | None,
    backwards: bool,
    page_size: int,
    position: Callable[[T], int],
    cursor: Callable[[T, bool], int | None],
) -> Iterator[list[T]]:
    """Pages of a read, at most ``limit`` items in all."""
    if found is None or limit == 0:
        return
    if found.types is not None and len(found.types) > 1 and found.aggregate_id is None:
        # One keyset scan per type over its (type, position) index, merged:
        # no scan ever sorts more than a page.
        key = (lambda item: -position(item)) if backwards else position
        merged: Iterator[T] = heapq.merge(
            *(
                itertools.chain.from_iterable(
                    _scan(es, fetch, found, t, backwards, limit, page_size, cursor)
                )
                for t in found.types
            ),
            key=key,
        )
        if limit is not None:
            merged = itertools.islice(merged, limit)
        while page := list(itertools.islice(merged, page_size)):
            yield page
        return
    only = found.types[0] if found.types and found.aggregate_id is None else None
    left = limit
    for page in _scan(es, fetch, found, only, backwards, limit, page_size, cursor):
        if left is not None:
            page = page[:left]
            left -= len(page)
        yield page
        if left == 0:
            return


def _scan(
    es: StoreCore,
    fetch: Fetch[T],
    found: Query,
    type_: str | None,
    backwards: bool,
    limit: int | None,
    page_size: int,
    cursor: Callable[[T, bool], int | None],
) -> Iterator[list[T]]:
    size = page_size if limit is None else max(1, min(page_size, limit))
    after: int | None = None
    while True:
        page = es._call(fetch, found, type_, after, backwards, size)
        if page:
            yield page
        if len(page) < size:
            return
        after = cursor(page[-1], found.aggregate_id is not None)
        size = page_size


def count(
    es: StoreCore,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | None,
    since: datetime | None,
    until: datetime | None,
) -> int:
    def run() -> int:
        found = query(es, None, aggregate_id, aggregate_type, types, since, until, False)
        if found is None:
            return 0
        if found == Query(1, None):
            return es._backend.head()  # positions are gapless
        return es._backend.count(found)

    return es._call(run)


def get(es: StoreCore, position: int) -> RecordedEvent:
    check_int(position, "position")
    for event in read(es, position, None, None, None, None, None, 1, False):
        if event.position == position:
            return event
    raise NotFoundError(f"no event at position {position} in {es._label}")


def stream(
    es: StoreCore, aggregate_id: str, from_version: int, to_version: int | None
) -> Iterator[RecordedEvent]:
    """An aggregate's events from ``from_version`` to ``to_version`` (None: to
    its last), upcast, a page at a time; arguments checked by the caller."""
    found = Query(1, None, aggregate_id)
    after = max(0, from_version - 1)
    while True:
        # Fetch no more than the versions still wanted (a fold from a nearby
        # snapshot often needs only a few).
        size = PAGE if to_version is None else max(1, min(PAGE, to_version - after))
        page = es._call(es._backend.page, found, None, after, False, size)
        for event in page:
            assert event.version is not None
            if to_version is not None and event.version > to_version:
                return
            yield es._upcast(event)
        if len(page) < size:
            return
        after = page[-1].version or 0
        if to_version is not None and after >= to_version:
            return


def aggregate(es: StoreCore, aggregate_id: str) -> AggregateInfo:
    check_name(aggregate_id, "aggregate_id", optional=False)
    info = es._call(es._backend.aggregate, aggregate_id)
    if info is None:
        raise NotFoundError(f"no aggregate {describe(aggregate_id)} in {es._label}")
    return info


def aggregates(es: StoreCore, aggregate_type: str | None) -> Iterator[AggregateInfo]:
    after: str | None = None
    while True:
        page = es._call(es._backend.aggregates, aggregate_type, after, PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].aggregate_id


def counts(es: StoreCore) -> StoreCounts:
    """The kept counts (store.counting), read with the head they are as of."""
    head, kept = es._call(es._backend.kept_counts)
    return summarize(head, kept)

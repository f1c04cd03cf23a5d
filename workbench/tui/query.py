"""Timeline filters and keyset paging, free of any UI code.

The store filters by aggregate, aggregate type, event types and a time range
itself. Full text, actor and correlation id are not store filters, so they are
applied here while paging through :meth:`EventStore.read` by position: a page is
filled by reading forward (or backward) from a position until enough events
match, never by loading the whole log.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from store import EventStore, RecordedEvent
from workbench.inputs import time_text

__all__ = [
    "Filters",
    "Page",
    "fetch_page",
    "iter_matching",
]

# Built once: a scan encodes every event it reads (about 20% faster than json.dumps).
_encode = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode

PROGRESS_EVERY = 20_000
"""How many events a scan reads between progress reports."""


@dataclass(frozen=True)
class Filters:
    """What the timeline shows. Empty fields do not filter.

    ``since_text`` and ``until_text`` keep what the user typed (``-2h``) so the
    filter bar can show it; ``since``/``until`` hold the resolved instants.
    """

    aggregate_id: str | None = None
    aggregate_type: str | None = None
    types: frozenset[str] = field(default_factory=frozenset)
    since: datetime | None = None
    until: datetime | None = None
    since_text: str | None = None
    until_text: str | None = None
    text: str | None = None
    actor: str | None = None
    correlation_id: str | None = None

    @property
    def is_empty(self) -> bool:
        return not self.chips()

    @property
    def needs_scan(self) -> bool:
        """True when some filter is applied in Python rather than by the store."""
        return bool(self.text or self.actor or self.correlation_id)

    def store_kwargs(self) -> dict[str, Any]:
        """The part of the filter the store applies itself, as ``read``/``count`` arguments."""
        kwargs: dict[str, Any] = {}
        if self.aggregate_id:
            kwargs["aggregate_id"] = self.aggregate_id
        if self.aggregate_type:
            kwargs["aggregate_type"] = self.aggregate_type
        if self.types:
            kwargs["types"] = sorted(self.types)
        if self.since is not None:
            kwargs["since"] = self.since
        if self.until is not None:
            kwargs["until"] = self.until
        return kwargs

    def matches(self, event: RecordedEvent) -> bool:
        """The Python-side part of the filter (full text, actor, correlation id).

        Full text looks in the aggregate id, the event type, data and metadata,
        case-insensitively.
        """
        if self.actor and (event.actor or "").lower() != self.actor.lower():
            return False
        if self.correlation_id and event.correlation_id != self.correlation_id:
            return False
        if self.text:
            needle = self.text.lower()
            haystack = _encode([event.aggregate_id, event.type, event.data, event.metadata])
            haystack = haystack.lower()
            if needle not in haystack:
                return False
        return True

    def matches_all(self, event: RecordedEvent) -> bool:
        """Every filter, checked in Python (for events that arrive by live tail)."""
        if self.aggregate_id and event.aggregate_id != self.aggregate_id:
            return False
        if self.aggregate_type and event.aggregate_type != self.aggregate_type:
            return False
        if self.types and event.type not in self.types:
            return False
        if self.since is not None and event.recorded_at < self.since:
            return False
        if self.until is not None and event.recorded_at > self.until:
            return False
        return self.matches(event)

    def chips(self) -> list[tuple[str, str]]:
        """(field name, label) for every active filter, in a stable order."""
        chips: list[tuple[str, str]] = []
        if self.aggregate_type:
            chips.append(("aggregate_type", f"type:{self.aggregate_type}"))
        if self.aggregate_id:
            chips.append(("aggregate_id", f"aggregate:{self.aggregate_id}"))
        if self.types:
            chips.append(("types", "event:" + ",".join(sorted(self.types))))
        if self.since is not None:
            chips.append(("since", f"since:{self.since_text or _short(self.since)}"))
        if self.until is not None:
            chips.append(("until", f"until:{self.until_text or _short(self.until)}"))
        if self.text:
            chips.append(("text", f"text:{self.text!r}"))
        if self.actor:
            chips.append(("actor", f"actor:{self.actor}"))
        if self.correlation_id:
            chips.append(("correlation_id", f"correlation:{self.correlation_id}"))
        return chips

    def without(self, name: str) -> Filters:
        """This filter with one field cleared (``since`` also clears its text)."""
        if name == "types":
            return replace(self, types=frozenset())
        cleared: dict[str, Any] = {name: None}
        if name in ("since", "until"):
            cleared[f"{name}_text"] = None
        return replace(self, **cleared)


def _short(value: datetime) -> str:
    return time_text(value, "s")


@dataclass(frozen=True)
class Page:
    """Matching events in ascending position order.

    ``complete`` is True when reading reached the end of the log in the
    direction read (no more matching events exist there as of this read).
    """

    events: list[RecordedEvent]
    complete: bool


def iter_matching(
    es: EventStore,
    filters: Filters,
    *,
    from_position: int | None = None,
    backwards: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
    progress_every: int | None = None,
    read_limit: int | None = None,
) -> Iterator[RecordedEvent]:
    """Every event matching ``filters``, lazily, in read order.

    Python-side filters are checked while the store pages by position, so
    memory stays bounded however rare the matches are. ``cancelled`` is polled
    so a thread worker can stop a long scan; ``progress`` is told the position
    reached every ``progress_every`` events read.
    """
    scan = filters.needs_scan
    # Without Python-side filters the store can stop reading at the page size.
    limit = None if scan else read_limit
    reader = es.read(
        from_position=from_position, backwards=backwards, limit=limit, **filters.store_kwargs()
    )
    every = progress_every or PROGRESS_EVERY
    seen = 0
    try:
        for event in reader:
            seen += 1
            if seen % 256 == 0 and cancelled():
                return
            if progress is not None and seen % every == 0:
                progress(event.position)
            if not scan or filters.matches(event):
                yield event
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()


def fetch_page(
    es: EventStore,
    filters: Filters,
    *,
    limit: int,
    from_position: int | None = None,
    backwards: bool = False,
    cancelled: Callable[[], bool] = lambda: False,
    progress: Callable[[int], None] | None = None,
    partial: Callable[[list[RecordedEvent]], None] | None = None,
) -> Page:
    """Up to ``limit`` matching events starting at ``from_position``.

    Forwards, ``from_position`` is the lowest position considered; backwards,
    the highest (``None``: the oldest or the newest event). The result is
    always in ascending position order. During a long scan, ``partial`` gets
    the matches found so far (ascending) each time ``progress`` is told.
    """
    events: list[RecordedEvent] = []
    complete = True
    if partial is not None:
        report = progress

        def progress(position: int) -> None:
            if report is not None:
                report(position)
            if events:
                partial(sorted(events, key=lambda e: e.position))

    for event in iter_matching(
        es,
        filters,
        from_position=from_position,
        backwards=backwards,
        cancelled=cancelled,
        progress=progress,
        read_limit=limit + 1,
    ):
        if len(events) == limit:
            complete = False
            break
        events.append(event)
    if backwards:
        events.reverse()
    return Page(events=events, complete=complete)

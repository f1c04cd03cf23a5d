"""The live tail: every event from a position on, then those other
processes append, waking on the backend's change signal."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from . import paging
from ._core import PAGE, StoreCore
from .checks import check_int
from .errors import StoreError
from .models import RecordedEvent

__all__ = ["follow"]


def follow(
    es: StoreCore,
    from_position: int | None,
    *,
    poll_interval: float = 0.1,
    stop: threading.Event | None = None,
) -> Iterator[RecordedEvent]:
    """See :meth:`EventStore.follow <store.eventstore.EventStore.follow>`."""
    if from_position is not None:
        check_int(from_position, "from_position", minimum=1)
    start = from_position if from_position is not None else es._call(es._backend.head) + 1
    return _follow(es, start, poll_interval, stop or threading.Event())


def _follow(
    es: StoreCore, start: int, poll_interval: float, stop: threading.Event
) -> Iterator[RecordedEvent]:
    position = start
    token = es._call(es._backend.change_token)
    while not stop.is_set():
        if es._writer == threading.get_ident():
            raise StoreError(
                "follow() cannot run inside a transaction of its own thread: it would "
                "see events that are not committed"
            )
        got = False
        for event in paging.read(es, position, None, None, None, None, None, PAGE, False):
            yield event
            position = event.position + 1
            got = True
            if stop.is_set():
                return
        if got:
            continue
        while not stop.is_set():
            new_token = es._call(es._backend.change_token)
            if new_token != token or es._call(es._backend.head) >= position:
                token = new_token
                break
            es._backend.wait_for_change(token, poll_interval, stop)

"""The live tail's own rules: its start is checked when it is asked for, and
an idle tail waits on the backend's change signal instead of spinning."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from store import EventStore, NewEvent, ValidationError, paging


def test_a_bad_start_is_refused_before_the_first_event(store: EventStore) -> None:
    for bad in (0, -1, "1", 1.5, True):
        with pytest.raises(ValidationError, match="from_position"):
            store.follow(bad)  # type: ignore[arg-type]  # not iterated: refused at the call


def test_an_idle_follow_waits_instead_of_reading_again_and_again(
    make_store: Callable[..., EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.append([NewEvent("Seen", {"n": n}) for n in range(3)], aggregate_id="a")
    reads = 0
    real = paging.read

    def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        reads += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(paging, "read", counted)
    stop = threading.Event()
    seen: list[int] = []

    def tail() -> None:
        for event in store.follow(1, poll_interval=0.05, stop=stop):
            seen.append(event.position)

    thread = threading.Thread(target=tail)
    thread.start()
    time.sleep(0.6)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    assert seen == [1, 2, 3]
    # 0.6 s at one look per 0.05 s is about 12 reads; a tail that spins makes thousands.
    assert 1 <= reads <= 40


def test_a_stop_set_by_the_consumer_ends_the_tail_at_once(store: EventStore) -> None:
    store.append([NewEvent("Seen", {"n": n}) for n in range(5)], aggregate_id="a")
    stop = threading.Event()
    seen: list[int] = []
    for event in store.follow(1, stop=stop):
        seen.append(event.position)
        stop.set()  # the rest of the page is not yielded
    assert seen == [1]

"""Durable consumers and their tables, on every backend: a subscription
needs a name; the parked events are listed whole, by name and position; an
idle follower leaves its row alone and waits between polls; a read-only
store names each edit it refuses."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from store import (
    EventStore,
    HandlerError,
    NewEvent,
    ParkedEvent,
    ReadOnlyError,
    ValidationError,
    group_member,
)

NOON = datetime(2030, 6, 1, 12, 0, 0, tzinfo=UTC)


def test_a_subscription_needs_a_name(store: EventStore) -> None:
    store.append([NewEvent("Placed", {"i": 1})])
    seen: list[int] = []
    with pytest.raises(ValidationError, match="name must be a non-empty string, not None"):
        store.subscribe(None, seen.append, follow=False)  # type: ignore[arg-type]
    assert seen == []
    assert store.subscriptions() == []


def test_parked_events_are_listed_with_every_field(make_store: Callable[..., EventStore]) -> None:
    es = make_store(clock=lambda: NOON)
    events = es.append([NewEvent("Placed", {"i": i}) for i in range(3)], aggregate_id="o-1")
    for name in ("b", "a"):
        es.subscribe(name, lambda e: None, follow=False)
    es.park_event("b", 3, "poison")
    es.park_event("a", 2, "bad total")
    es.park_event("a", 1, "bad id")

    def expected(name: str, event_index: int, reason: str) -> ParkedEvent:
        event = events[event_index]
        return ParkedEvent(name, event.position, event.event_id, "Placed", reason, NOON)

    a = [expected("a", 0, "bad id"), expected("a", 1, "bad total")]
    b = [expected("b", 2, "poison")]
    assert es.parked_events() == a + b  # by name, then position
    assert es.parked_events("a") == a
    assert es.parked_events("b") == b
    assert es.parked_events("nobody") == []


def test_a_following_subscription_that_is_idle_does_not_touch_its_row(
    make_store: Callable[..., EventStore],
) -> None:
    """While it waits for new events with nothing unsaved, a subscription's row
    stays as it was: ``updated_at`` is when the position last moved."""
    later = datetime(2030, 6, 1, 13, 0, 0, tzinfo=UTC)
    now = [NOON]
    es = make_store(clock=lambda: now[0])
    es.append([NewEvent("Placed", {"i": 1})], aggregate_id="o-1")
    seen: list[int] = []
    polls = [0]

    def stop() -> bool:
        if seen:  # handled and saved at NOON: from now on the clock says later
            now[0] = later
            polls[0] += 1
        return polls[0] > 8

    es.subscribe("s", lambda e: seen.append(e.position), stop=stop, poll_interval=0.001)
    assert seen == [1] and polls[0] > 8
    (info,) = es.subscriptions()
    assert (info.position, info.lag, info.updated_at) == (1, 0, NOON)


def test_a_read_only_store_names_each_edit_it_refuses(
    make_store: Callable[..., EventStore], location: str
) -> None:
    writer = make_store()
    if location == ":memory:":  # private to its connection: no second, read-only open
        with pytest.raises(ReadOnlyError):
            make_store(readonly=True)
        return
    writer.append([NewEvent("Placed", {"i": i}) for i in range(3)], aggregate_id="o-1")
    writer.subscribe("s", lambda e: None, follow=False)
    writer.park_event("s", 1, "by hand")
    before = (writer.subscriptions(), writer.parked_events())
    reader = make_store(readonly=True)
    refusals: list[tuple[Callable[[], object], str]] = [
        (lambda: reader.park_event("s", 2, "poison"), "parking is refused"),
        (lambda: reader.reset_subscription("s", 0), "resets are refused"),
        (lambda: reader.delete_subscription("s"), "deletes are refused"),
        (lambda: reader.subscribe("s", lambda e: None), "a subscription saves its position"),
    ]
    for call, message in refusals:
        with pytest.raises(ReadOnlyError, match=f"open read-only; {message}"):
            call()
    assert (writer.subscriptions(), writer.parked_events()) == before
    assert (reader.subscriptions(), reader.parked_events()) == before


def test_an_idle_follower_waits_between_polls(store: EventStore) -> None:
    """Caught up, a following subscription waits ``poll_interval`` for a change
    before it looks again: it does not spin."""
    store.append([NewEvent("Placed", {"i": 1})], aggregate_id="o-1")
    seen: list[int] = []
    polls = [0]
    idle_since = [0.0]

    def stop() -> bool:
        if seen:
            if not polls[0]:
                idle_since[0] = time.monotonic()
            polls[0] += 1
        return polls[0] > 8

    store.subscribe("s", lambda e: seen.append(e.position), stop=stop, poll_interval=0.05)
    waited = time.monotonic() - idle_since[0]
    assert seen == [1]
    assert waited >= 6 * 0.05  # at least six waits of a full interval: no new event came


def test_a_handler_error_names_the_subscription_and_only_a_group_member_by_number(
    store: EventStore,
) -> None:
    store.append([NewEvent("Placed", {"i": 1})], aggregate_id="o-1")
    member = group_member("o-1", 2)

    def fail(event: object) -> None:
        raise ValueError("no such customer")

    with pytest.raises(HandlerError) as alone:
        store.subscribe("s", fail, follow=False)
    assert str(alone.value).startswith("subscription 's' stopped: its handler raised on position 1")
    with pytest.raises(HandlerError) as grouped:
        store.subscribe("g", fail, follow=False, group_member=member, group_size=2)
    assert str(grouped.value).startswith(
        f"subscription 'g (member {member} of 2)' stopped: its handler raised on position 1"
    )
    assert (alone.value.subscription, grouped.value.subscription) == ("s", "g")

"""Durable subscriptions, on every backend: positions, filters, batches, the two
delivery modes, failing handlers, parking, groups, live waking and lag."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import (
    EventStore,
    HandlerError,
    NewEvent,
    NotFoundError,
    ReadOnlyError,
    RecordedEvent,
    SubscriptionError,
    ValidationError,
    group_member,
)


def _fill(es: EventStore, n: int, start: int = 0) -> None:
    for i in range(start, start + n):
        kind = "Placed" if i % 2 == 0 else "Paid"
        if i % 5 == 4:
            es.append([NewEvent("Tick", {"i": i})])  # no aggregate
        else:
            es.append([NewEvent(kind, {"i": i})], aggregate_id=f"o-{i % 7}", aggregate_type="Order")


def _collect(es: EventStore, name: str, **kwargs: Any) -> list[int]:
    seen: list[int] = []
    es.subscribe(name, lambda e: seen.append(e.position), follow=False, **kwargs)
    return seen


def test_handles_everything_in_order_and_resumes(store: EventStore) -> None:
    _fill(store, 12)
    assert _collect(store, "s", batch_size=5) == list(range(1, 13))
    assert _collect(store, "s") == []  # saved
    _fill(store, 3, 12)
    assert _collect(store, "s") == [13, 14, 15]
    (info,) = store.subscriptions()
    assert (info.name, info.position, info.lag, info.next_position) == ("s", 15, 0, None)
    assert info.lag_seconds == 0.0


def test_from_position_only_for_a_new_subscription(store: EventStore) -> None:
    _fill(store, 10)
    assert _collect(store, "s", from_position=8) == [8, 9, 10]
    assert _collect(store, "s", from_position=1) == []


def test_filters_by_types_and_aggregate_type(store: EventStore) -> None:
    _fill(store, 20)
    every = list(store.read())
    assert _collect(store, "paid", types=["Paid"]) == [
        e.position for e in every if e.type == "Paid"
    ]
    assert _collect(store, "orders", aggregate_type="Order") == [
        e.position for e in every if e.aggregate_type == "Order"
    ]
    assert _collect(store, "none", types=[]) == []
    info = {i.name: i for i in store.subscriptions()}
    assert info["paid"].types == ("Paid",)
    assert info["orders"].aggregate_type == "Order"
    # A filtered subscription that saw no more matches moved to the head.
    assert info["paid"].position == store.head()


def test_lag_counts_matching_events_and_their_wait(store: EventStore) -> None:
    _fill(store, 10)
    store.subscribe("paid", lambda e: None, types=["Paid"], follow=False)
    store.subscribe("all", lambda e: None, follow=False)
    _fill(store, 10, 10)
    info = {i.name: i for i in store.subscriptions()}
    after = [e for e in store.read(from_position=11)]
    assert info["all"].lag == 10 and info["all"].next_position == 11
    paid = [e for e in after if e.type == "Paid"]
    assert info["paid"].lag == len(paid)
    assert info["paid"].next_position == paid[0].position
    assert info["all"].lag_seconds > 0


def test_position_is_saved_after_each_batch_and_stays_before_a_failing_one(
    store: EventStore,
) -> None:
    _fill(store, 10)
    seen: list[int] = []

    def handler(event: RecordedEvent) -> None:
        if event.position == 7:
            raise ValueError("no such customer")
        seen.append(event.position)

    with pytest.raises(HandlerError) as raised:
        store.subscribe("s", handler, batch_size=3, follow=False)
    error = raised.value
    assert error.subscription == "s" and error.position == 6
    assert isinstance(error.event, RecordedEvent) and error.event.position == 7
    assert "position 7" in str(error) and "no such customer" in str(error)
    assert isinstance(error.__cause__, ValueError)
    assert seen == [1, 2, 3, 4, 5, 6]
    (info,) = store.subscriptions()
    assert info.position == 6
    assert (info.failed_position, info.failure) == (7, "ValueError: no such customer")
    # Fixed, it resumes after the saved position and the failure is cleared.
    assert _collect(store, "s") == [7, 8, 9, 10]
    (info,) = store.subscriptions()
    assert (info.position, info.failed_position, info.failure) == (10, None, None)


def _derive(es: EventStore, fail_at: int | None = None) -> Callable[[RecordedEvent], None]:
    def handler(event: RecordedEvent) -> None:
        es.append([NewEvent("Derived", {"source": event.position})], aggregate_id="derived")
        if event.position == fail_at:
            raise RuntimeError("after appending")

    return handler


def test_exactly_once_commits_appends_with_the_position(store: EventStore) -> None:
    _fill(store, 9)
    with pytest.raises(HandlerError, match="rolled back"):
        store.subscribe(
            "d", _derive(store, 6), types=["Placed", "Paid"], exactly_once=True, batch_size=2,
            follow=False,
        )  # fmt: skip
    sources = [e.data["source"] for e in store.read(types=["Derived"])]
    (info,) = store.subscriptions()
    # The batch holding 6 was rolled back whole: nothing derived past the position.
    assert sources and max(sources) <= info.position < 6
    store.subscribe("d", _derive(store), types=["Placed", "Paid"], exactly_once=True, follow=False)
    sources = [e.data["source"] for e in store.read(types=["Derived"])]
    wanted = [e.position for e in store.read(types=["Placed", "Paid"], until=None)]
    assert sources == wanted  # each once, in order
    assert store.verify().ok


def test_per_batch_handlers_get_lists_and_commit_with_the_position(store: EventStore) -> None:
    _fill(store, 10)
    batches: list[list[int]] = []

    def derive(events: list[RecordedEvent]) -> None:
        batches.append([e.position for e in events])
        store.append([NewEvent("Derived", {"source": e.position}) for e in events], "derived")
        if events[-1].position >= 7:
            raise ValueError("full")

    with pytest.raises(HandlerError, match="the batch of positions 4 to 7") as raised:
        store.subscribe(
            "b", derive, types=["Placed", "Paid"], batch_size=3, exactly_once=True,
            per_batch=True, follow=False,
        )  # fmt: skip
    assert raised.value.event.position == 4 and raised.value.position == 3
    assert batches == [[1, 2, 3], [4, 6, 7]]
    derived = [e.data["source"] for e in store.read(types=["Derived"])]
    assert derived == [1, 2, 3]  # the failing batch's appends rolled back
    with pytest.raises(ValidationError, match="per_batch"):
        store.subscribe("b", derive, per_batch=True, on_error="park")


def test_park_skips_a_poison_event_and_records_why(store: EventStore) -> None:
    _fill(store, 6)
    seen: list[int] = []

    def handler(event: RecordedEvent) -> None:
        if event.position in (2, 5):
            raise KeyError(f"bad {event.position}")
        seen.append(event.position)

    for exactly_once in (False, True):
        seen.clear()
        name = f"p{int(exactly_once)}"
        assert (
            store.subscribe(name, handler, on_error="park", follow=False, exactly_once=exactly_once)
            == 4
        )
        assert seen == [1, 3, 4, 6]
        parked = store.parked_events(name)
        assert [(p.position, p.reason) for p in parked] == [
            (2, "KeyError: 'bad 2'"),
            (5, "KeyError: 'bad 5'"),
        ]
        assert {i.name: i.parked for i in store.subscriptions()}[name] == 2
        # Reset to before a parked event: it is delivered again.
        store.reset_subscription(name, 4)
        assert store.parked_events(name)[-1].position == 2
        seen.clear()
        store.subscribe(name, lambda e: seen.append(e.position), follow=False)
        assert seen == [5, 6]


def test_park_by_hand_after_a_stop(store: EventStore) -> None:
    _fill(store, 4)

    def handler(event: RecordedEvent) -> None:
        if event.position == 3:
            raise ValueError("poison")

    with pytest.raises(HandlerError):
        store.subscribe("s", handler, follow=False, batch_size=1)
    store.park_event("s", 3, "poison; see ticket")
    assert store.subscribe("s", handler, follow=False) == 1
    (info,) = store.subscriptions()
    assert (info.position, info.lag, info.parked) == (4, 0, 1)
    with pytest.raises(NotFoundError):
        store.park_event("nobody", 3, "x")
    with pytest.raises(NotFoundError):
        store.park_event("s", 99, "x")


def test_reset_and_delete(store: EventStore) -> None:
    _fill(store, 5)
    _collect(store, "s")
    store.reset_subscription("s", 2)
    assert _collect(store, "s") == [3, 4, 5]
    store.reset_subscription("s", 0)
    assert store.subscriptions()[0].lag == 5
    with pytest.raises(NotFoundError, match="nobody"):
        store.reset_subscription("nobody", 0)
    with pytest.raises(ValidationError, match="past the head"):
        store.reset_subscription("s", 6)
    store.delete_subscription("s")
    assert store.subscriptions() == []
    with pytest.raises(NotFoundError):
        store.delete_subscription("s")


def test_a_group_splits_aggregates_between_members(store: EventStore) -> None:
    _fill(store, 40)
    handled: dict[int, list[RecordedEvent]] = {}
    for member in range(3):
        handled[member] = []
        store.subscribe(
            "g", handled[member].append, group_member=member, group_size=3, follow=False,
            batch_size=4,
        )  # fmt: skip
    positions = sorted(e.position for events in handled.values() for e in events)
    assert positions == list(range(1, 41))  # each exactly once
    for member, events in handled.items():
        assert all(group_member(e.aggregate_id, 3) == member for e in events)
        assert [e.position for e in events] == sorted(e.position for e in events)
    assert all(e.aggregate_id is not None for e in handled[1] + handled[2])
    assert any(e.aggregate_id is None for e in handled[0])
    infos = store.subscriptions()
    assert [(i.member, i.group_size, i.lag) for i in infos] == [(0, 3, 0), (1, 3, 0), (2, 3, 0)]
    with pytest.raises(SubscriptionError, match="group of 3"):
        store.subscribe("g", lambda e: None, follow=False)
    with pytest.raises(ValidationError):
        store.subscribe("g", lambda e: None, group_member=3, group_size=3)
    _fill(store, 10, 40)
    lags = {i.member: i.lag for i in store.subscriptions()}
    later = list(store.read(from_position=41))
    for member in range(3):
        assert lags[member] == sum(1 for e in later if group_member(e.aggregate_id, 3) == member)


def test_group_member_is_a_stable_hash() -> None:
    # Fixed values: a change would move aggregates between running members.
    assert [group_member(f"order-{i}", 4) for i in range(8)] == [
        group_member(f"order-{i}", 4) for i in range(8)
    ]
    assert group_member(None, 5) == 0
    assert group_member("anything", 1) == 0
    assert {group_member(f"a-{i}", 3) for i in range(50)} == {0, 1, 2}


def test_a_second_consumer_moving_the_position_stops_the_first(store: EventStore) -> None:
    _fill(store, 6)

    def meddle(event: RecordedEvent) -> None:
        if event.position == 5:
            store.reset_subscription("s", 1)

    with pytest.raises(SubscriptionError, match="moved from 3 to 1"):
        store.subscribe("s", meddle, batch_size=3, follow=False)
    assert store.subscriptions()[0].position == 1


def test_follow_wakes_for_new_events_and_stops(make_store: Callable[..., EventStore]) -> None:
    store = make_store()
    writer = store if store.path == ":memory:" else make_store()
    _fill(store, 2)
    seen: list[int] = []
    stop = threading.Event()

    def handler(event: RecordedEvent) -> None:
        seen.append(event.position)
        if len(seen) == 5:
            stop.set()

    thread = threading.Thread(
        target=lambda: store.subscribe("live", handler, stop=stop, poll_interval=0.05)
    )
    thread.start()
    time.sleep(0.2)
    _fill(writer, 3, 2)
    thread.join(10)
    assert not thread.is_alive()
    assert seen == [1, 2, 3, 4, 5]
    # A callable works as stop too.
    deadline = time.monotonic() + 0.3
    assert store.subscribe("idle", lambda e: None, stop=lambda: time.monotonic() > deadline) == 5


def test_bad_arguments(store: EventStore) -> None:
    with pytest.raises(ValidationError):
        store.subscribe("", lambda e: None)
    with pytest.raises(ValidationError):
        store.subscribe("s", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.subscribe("s", lambda e: None, batch_size=0)
    with pytest.raises(ValidationError):
        store.subscribe("s", lambda e: None, on_error="ignore")
    with pytest.raises(ValidationError):
        store.subscribe("s", lambda e: None, group_member=0)
    with pytest.raises(ValidationError):
        store.subscribe("s", lambda e: None, stop=3)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        store.reset_subscription("s", -1)
    assert store.subscriptions() == []
    with store.transaction(), pytest.raises(Exception, match="inside a transaction"):
        store.subscribe("s", lambda e: None, follow=False)


def test_read_only_stores_list_but_never_subscribe(
    make_store: Callable[..., EventStore], location: str
) -> None:
    store = make_store()
    if location == ":memory:":
        with pytest.raises(ReadOnlyError):
            make_store(readonly=True)
        return
    _fill(store, 3)
    _collect(store, "s")
    reader = make_store(readonly=True)
    assert [i.name for i in reader.subscriptions()] == ["s"]
    with pytest.raises(ReadOnlyError):
        reader.subscribe("s", lambda e: None)
    with pytest.raises(ReadOnlyError):
        reader.reset_subscription("s", 0)


def _drop_tables(location: str) -> None:
    """Make the store look like one made before subscriptions existed."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP TABLE subscriptions, parked_events")
    else:
        import sqlite3

        with sqlite3.connect(location) as conn:
            conn.execute("DROP TABLE subscriptions")
            conn.execute("DROP TABLE parked_events")
        conn.close()


def test_an_older_store_gets_the_tables_when_opened_writable(
    make_store: Callable[..., EventStore], location: str
) -> None:
    if location == ":memory:":
        assert make_store().subscriptions() == []  # a new store has them from the start
        return
    _fill(make_store(), 3)
    _drop_tables(location)
    reader = make_store(readonly=True)
    assert reader.subscriptions() == [] and reader.parked_events() == []
    assert reader.read(limit=1) is not None
    writer = make_store()
    assert _collect(writer, "s") == [1, 2, 3]
    assert [i.position for i in make_store(readonly=True).subscriptions()] == [3]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    kinds=st.lists(st.sampled_from(["A", "B", "C"]), max_size=30),
    wanted=st.sets(st.sampled_from(["A", "B", "C"])),
    batch_size=st.integers(1, 7),
    cuts=st.lists(st.integers(0, 30), max_size=3),
)
def test_handled_events_equal_a_plain_filter(
    kinds: list[str], wanted: set[str], batch_size: int, cuts: list[int]
) -> None:
    """Appends interleaved with catching up, in any batch size: the handler sees
    exactly the matching events, in order, once."""
    with EventStore(":memory:") as es:
        seen: list[int] = []
        types = sorted(wanted) or None
        done = 0
        for cut in sorted({*cuts, len(kinds)}):
            for kind in kinds[done:cut]:
                es.append([NewEvent(kind)], aggregate_id=f"x-{len(seen) % 3}")
            done = max(done, cut)
            es.subscribe(
                "p", lambda e: seen.append(e.position), types=types, batch_size=batch_size,
                follow=False,
            )  # fmt: skip
        expected = [i + 1 for i, kind in enumerate(kinds) if types is None or kind in wanted]
        assert seen == expected
        assert es.subscriptions()[0].lag == 0

"""``bitemporal_states`` folds an aggregate whose events, as the two clocks
select them, are in log order while it reads the log, and holds back only the
back-dated ones to sort at the end (its memory bound). An event left out of
the fold (voided, or occurred after the business bound) does not make an
aggregate back-dated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from store import EventStore, NewEvent, RecordedEvent, Reducers
from store.bitemporal import bitemporal_states

BASE = datetime(2024, 1, 1, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def recording() -> tuple[Reducers, list[tuple[str | None, int | None]]]:
    calls: list[tuple[str | None, int | None]] = []

    def record(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        calls.append((event.aggregate_id, event.version))
        return {**state, **event.data}

    return Reducers(record), calls


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


def test_a_voided_event_does_not_hold_its_aggregate_back(
    make_store: Callable[..., EventStore],
) -> None:
    reducers, calls = recording()
    clock = Clock(at(0))
    es = make_store(clock=clock, reducers=reducers)
    es.append([NewEvent("Set", {"a": 1}, occurred_at=at(0))], "a-1", "T")
    # Occurred far later than anything after it; voided, so out of the fold.
    (late,) = es.append([NewEvent("Set", {"a": 2}, occurred_at=at(50))], "a-1", "T")
    clock.now = at(1)
    es.void(late.position, reason="entered by mistake")  # a void occurred at hour 1
    clock.now = at(2)
    es.append([NewEvent("Set", {"b": 1}, occurred_at=at(2))], "b-1", "T")
    calls.clear()
    found = bitemporal_states(es, "T", None, None)
    assert found["a-1"].state == {"a": 1} and found["b-1"].state == {"b": 1}
    assert list(found) == ["a-1", "b-1"]
    # a-1's events are in order once the voided one is left out: folded as read.
    assert calls == [("a-1", 1), ("b-1", 1)]


def test_an_event_after_the_business_bound_does_not_hold_its_aggregate_back(
    make_store: Callable[..., EventStore],
) -> None:
    reducers, calls = recording()
    clock = Clock(at(0))
    es = make_store(clock=clock, reducers=reducers)
    es.append([NewEvent("Set", {"a": 1}, occurred_at=at(0))], "a-1", "T")
    es.append([NewEvent("Set", {"a": 2}, occurred_at=at(50))], "a-1", "T")
    es.append([NewEvent("Set", {"c": 3}, occurred_at=at(3))], "a-1", "T")
    es.append([NewEvent("Set", {"b": 1}, occurred_at=at(4))], "b-1", "T")
    calls.clear()
    found = bitemporal_states(es, "T", at(10), None)
    assert found["a-1"].state == {"a": 1, "c": 3} and found["a-1"].version == 3
    assert calls == [("a-1", 1), ("a-1", 3), ("b-1", 1)]


def test_a_back_dated_aggregate_is_folded_after_the_read(
    make_store: Callable[..., EventStore],
) -> None:
    # The other side: an event really back-dated holds its aggregate to the end.
    reducers, calls = recording()
    clock = Clock(at(0))
    es = make_store(clock=clock, reducers=reducers)
    es.append([NewEvent("Set", {"a": 1}, occurred_at=at(5))], "a-1", "T")
    es.append([NewEvent("Set", {"a": 2}, occurred_at=at(1))], "a-1", "T")
    es.append([NewEvent("Set", {"b": 1}, occurred_at=at(6))], "b-1", "T")
    calls.clear()
    found = bitemporal_states(es, "T", None, None)
    assert found["a-1"].state == {"a": 1} and found["a-1"].version == 2
    assert list(found) == ["a-1", "b-1"]
    assert calls == [("b-1", 1), ("a-1", 2), ("a-1", 1)]

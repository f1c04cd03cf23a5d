"""Two clocks: state as of a business time, known at a system time, against a
plain reference fold (filter, then sort, then fold with the same reducers).
Voids count by system time: one recorded by the cut-off removes the event it
names, whatever the business time."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, Reducers, ValidationError, merge_patch
from store.bitemporal import bitemporal_states, usable_prefix

BASE = datetime(2024, 1, 1, tzinfo=UTC)
_epochs = itertools.count()


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def reference(
    es: EventStore, aggregate_id: str, occurred: datetime | None, known_at: datetime | None
) -> tuple[dict[str, Any], int]:
    known = [e for e in es.stream(aggregate_id) if known_at is None or e.recorded_at <= known_at]
    voided = {e.data["voided_position"] for e in known if e.type == "sss.Voided"}
    events = [
        e
        for e in known
        if e.position not in voided and (occurred is None or e.occurred_at <= occurred)
    ]
    events.sort(key=lambda e: (e.occurred_at, e.position))
    state: dict[str, Any] = {}
    for event in events:
        state = es.reducers.apply(state, event)
    return state, max((e.version or 0 for e in events), default=0)


patches = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.one_of(
        st.none(),
        st.integers(-3, 3),
        st.dictionaries(st.sampled_from(["x", "y"]), st.integers(0, 2), max_size=2),
    ),
    min_size=1,
    max_size=2,
)
# (patch, occurred_at as hours from the epoch, hours the clock moves before it,
# None or which still voidable event to void after it is appended)
events_st = st.lists(
    st.tuples(
        patches,
        st.integers(0, 12),
        st.integers(0, 2),
        st.one_of(st.none(), st.none(), st.integers(0, 20)),
    ),
    min_size=1,
    max_size=12,
)
# A bound as an hour from the epoch (+ half an hour to fall between events), or None.
bound_st = st.one_of(st.none(), st.integers(-1, 13).map(lambda h: h + 0.5), st.integers(0, 12))


def _hours(epoch: datetime, h: float | None) -> datetime | None:
    return None if h is None else epoch + timedelta(hours=h)


@pytest.fixture
def opened(location: str) -> Iterator[Callable[[int | None, bool], tuple[EventStore, Clock]]]:
    """Stores on this test's location, one per (snapshot_every, counting
    reducer), opened once and shared by the examples (a connection per
    example would cost most of the test on a server)."""
    stores: dict[tuple[int | None, bool], tuple[EventStore, Clock]] = {}

    def get(every: int | None, counting: bool) -> tuple[EventStore, Clock]:
        if (every, counting) not in stores:
            reducers = Reducers()
            if counting:  # a reducer whose result depends on order, not a merge patch
                reducers.register(None, "Count", lambda s, e: {**s, "n": s.get("n", 0) * 2 + 1})
            clock = Clock(BASE)
            es = EventStore(location, snapshot_every=every, clock=clock, reducers=reducers)
            stores[(every, counting)] = (es, clock)
        return stores[(every, counting)]

    yield get
    for es, _ in stores.values():
        es.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    events=events_st,
    every=st.sampled_from([None, 1, 2, 3]),
    batch=st.integers(1, 3),
    occurred=bound_st,
    known=bound_st,
    warm=st.booleans(),
    counting=st.booleans(),
)
def test_two_clocks_equal_a_plain_fold(
    opened: Callable[[int | None, bool], tuple[EventStore, Clock]],
    events: list[tuple[dict[str, Any], int, int, int | None]],
    every: int | None,
    batch: int,
    occurred: float | None,
    known: float | None,
    warm: bool,
    counting: bool,
) -> None:
    # Every example appends to the same store under a fresh aggregate, a
    # month after the previous one, so recorded_at keeps rising. The memory
    # backend gives each EventStore a database of its own; the others share one.
    epoch = BASE + timedelta(days=31 * next(_epochs))
    es, clock = opened(every, counting)
    clock.now = epoch
    aggregate = f"agg-{uuid.uuid4().hex[:8]}"
    pending: list[NewEvent] = []
    voidable: list[int] = []
    for index, (patch, when, step, void) in enumerate(events):
        kind = "Count" if counting and index % 2 else "P"
        pending.append(NewEvent(kind, patch, occurred_at=epoch + timedelta(hours=when)))
        if len(pending) >= batch or index == len(events) - 1:
            clock.now += timedelta(hours=step)
            stored = es.append(pending, aggregate_id=aggregate, aggregate_type="T")
            voidable.extend(e.position for e in stored)
            pending = []
        if void is not None and voidable:
            clock.now += timedelta(hours=1)  # a cut-off can fall between the event and its void
            es.void(voidable.pop(void % len(voidable)), reason="wrong")
    if warm:  # in-memory checkpoints of every version
        for v in range(1, es.aggregate(aggregate).version + 1):
            es.state_at(aggregate, version=v)
    b, k = _hours(epoch, occurred), _hours(epoch, known)
    expected, version = reference(es, aggregate, b, k)
    if b is None and k is None:
        b = epoch + timedelta(days=30)  # no bound at all: give one past everything
    got = es.state_at(aggregate, occurred=b, known_at=k)
    assert got.state == expected
    assert got.version == version
    assert (got.position == 0) == (version == 0)
    whole = bitemporal_states(es, "T", b, k)
    if version:
        assert whole[aggregate].state == expected
        assert whole[aggregate].version == version
    else:
        assert aggregate not in whole


@given(st.lists(st.integers(0, 5), max_size=10), st.one_of(st.none(), st.integers(0, 5)))
def test_usable_prefix_is_the_longest_prefix_a_position_fold_gets_right(
    times: list[int], bound: int | None
) -> None:
    texts = [str(t) for t in times]
    b = None if bound is None else str(bound)
    got = usable_prefix(texts, b)
    chosen = sorted((t, i) for i, t in enumerate(texts) if b is None or t <= b)
    # The first `got` entries of the fold order are versions 1..got, in order ...
    assert [i for _, i in chosen[:got]] == list(range(got))
    # ... and one more would not be.
    if got < len(texts):
        assert [i for _, i in chosen[: got + 1]] != list(range(got + 1))


def test_a_late_correction_changes_the_past_only_as_known_later(
    make_store: Callable[..., EventStore],
) -> None:
    clock = Clock(datetime(2024, 3, 30, tzinfo=UTC))
    es = make_store(clock=clock, snapshot_every=1)
    march_31 = datetime(2024, 3, 31, 23, 59, tzinfo=UTC)
    es.append([NewEvent("Placed", {"total": 100})], aggregate_id="o-1", aggregate_type="Order")
    clock.now = datetime(2024, 4, 2, tzinfo=UTC)
    es.append([NewEvent("Shipped", {"status": "shipped"})], aggregate_id="o-1")
    clock.now = datetime(2024, 4, 10, tzinfo=UTC)
    fix = NewEvent("Corrected", {"total": 90}, occurred_at=datetime(2024, 3, 30, 12, tzinfo=UTC))
    es.append([fix], aggregate_id="o-1")
    then = es.state_at("o-1", occurred=march_31, known_at=datetime(2024, 4, 1, tzinfo=UTC))
    now = es.state_at("o-1", occurred=march_31)
    assert then.state == {"total": 100}
    assert (then.version, then.position) == (1, 1)
    assert now.state == {"total": 90}
    assert now.version == 3
    # Known now, as of now: the correction was folded before the shipment.
    assert es.state_at("o-1", known_at=clock.now).state == {"total": 90, "status": "shipped"}
    assert merge_patch({"total": 100}, {"total": 90}) == {"total": 90}


def test_two_clocks_refuse_a_log_point_and_naive_times(store: EventStore) -> None:
    store.append([NewEvent("A", {"a": 1})], aggregate_id="a-1")
    with pytest.raises(ValidationError, match="do not go with"):
        store.state_at("a-1", version=1, occurred=datetime.now(UTC))
    with pytest.raises(ValidationError, match="occurred"):
        store.state_at("a-1", occurred=datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="known_at"):
        store.state_at("a-1", known_at=datetime(2024, 1, 1))

"""Contract: replay, reducers, upcasters and snapshots."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import (
    AggregateState,
    Change,
    EventStore,
    NewEvent,
    NotFoundError,
    RecordedEvent,
    Reducers,
    Upcasters,
    ValidationError,
    diff,
    merge_patch,
)


def order(es: EventStore) -> list[RecordedEvent]:
    return es.append(
        [
            NewEvent(
                "OrderPlaced", {"status": "new", "total": 30, "addr": {"zip": "1000", "city": "X"}}
            ),
            NewEvent("AddressChanged", {"addr": {"zip": "2000"}}),
            NewEvent("ItemAdded", {"total": 45, "note": "gift"}),
            NewEvent("NoteRemoved", {"note": None}),
            NewEvent("OrderShipped", {"status": "shipped"}),
        ],
        aggregate_id="order-7",
        aggregate_type="Order",
    )


STATES = [
    {},
    {"status": "new", "total": 30, "addr": {"zip": "1000", "city": "X"}},
    {"status": "new", "total": 30, "addr": {"zip": "2000", "city": "X"}},
    {"status": "new", "total": 45, "note": "gift", "addr": {"zip": "2000", "city": "X"}},
    {"status": "new", "total": 45, "addr": {"zip": "2000", "city": "X"}},
    {"status": "shipped", "total": 45, "addr": {"zip": "2000", "city": "X"}},
]


def test_merge_patch_rfc7396() -> None:
    assert merge_patch({"a": "b"}, {"a": "c"}) == {"a": "c"}
    assert merge_patch({"a": "b"}, {"b": "c"}) == {"a": "b", "b": "c"}
    assert merge_patch({"a": "b"}, {"a": None}) == {}
    assert merge_patch({"a": [{"b": "c"}]}, {"a": [1]}) == {"a": [1]}
    assert merge_patch({"e": None}, {"a": 1}) == {"e": None, "a": 1}
    assert merge_patch({"a": "x"}, {"a": {"b": "c", "d": None}}) == {"a": {"b": "c"}}
    target = {"a": {"b": 1}}
    merge_patch(target, {"a": {"b": 2}})
    assert target == {"a": {"b": 1}}  # never changed in place


def test_diff_paths_are_json_pointers() -> None:
    assert diff({"a": {"b/c": 1, "k": 2}}, {"a": {"b/c": 2, "k": 2}, "n": [1]}) == [
        Change("/a/b~1c", 1, 2),
        Change("/n", None, [1]),
    ]
    assert diff({"x": 1}, {}) == [Change("/x", 1, None)]
    assert diff({"x": 1}, {"x": 1.5}) == [Change("/x", 1, 1.5)]
    assert diff({"x": True}, {"x": 1}) == [Change("/x", True, 1)]


def test_state_at_every_version(store: EventStore) -> None:
    order(store)
    for version, expected in enumerate(STATES):
        state = store.state_at("order-7", version=version)
        assert state.state == expected
        assert state.version == version
    latest = store.state_at("order-7")
    assert latest.state == STATES[-1] and latest.version == 5 and latest.position == 5
    assert latest.aggregate_type == "Order"


def test_state_at_position_and_time(store: EventStore) -> None:
    store.append([NewEvent("Other", {"x": 1})], aggregate_id="c")
    events = order(store)  # positions 2..6
    store.append([NewEvent("Other", {"x": 2})], aggregate_id="c")
    assert store.state_at("order-7", position=1).version == 0
    assert store.state_at("order-7", position=1).state == {}
    assert store.state_at("order-7", position=4).state == STATES[3]
    assert store.state_at("order-7", position=99).version == 5
    at = events[2].recorded_at
    state = store.state_at("order-7", at=at)
    assert state.version == 5  # one batch, one recorded_at
    assert store.state_at("order-7", at=at - timedelta(microseconds=1)).version == 0


def test_state_at_arguments(store: EventStore) -> None:
    order(store)
    with pytest.raises(ValidationError, match="at most one"):
        store.state_at("order-7", version=1, position=2)
    with pytest.raises(NotFoundError):
        store.state_at("order-7", version=6)
    with pytest.raises(NotFoundError, match="ghost"):
        store.state_at("ghost")
    with pytest.raises(ValidationError):
        store.state_at("order-7", version=-1)


def test_history_steps(store: EventStore) -> None:
    order(store)
    steps = list(store.history("order-7"))
    assert [s.event.version for s in steps] == [1, 2, 3, 4, 5]
    assert [s.after for s in steps] == STATES[1:]
    assert [s.before for s in steps] == STATES[:-1]
    assert steps[1].changes == [Change("/addr/zip", "1000", "2000")]
    assert steps[3].changes == [Change("/note", "gift", None)]
    assert [s.event.version for s in store.history("order-7", from_version=4)] == [4, 5]
    assert next(iter(store.history("order-7", from_version=4))).before == STATES[3]


def test_custom_reducers(make_store: Any) -> None:
    reducers = Reducers()

    @reducers.on("Order", "ItemAdded")
    def add(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        state.setdefault("items", []).append(event.data["sku"])  # mutates: allowed
        return state

    @reducers.on(None, "Cleared")
    def clear(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        return {}

    es = make_store(reducers=reducers)
    es.append(
        [
            NewEvent("OrderPlaced", {"total": 1}),
            NewEvent("ItemAdded", {"sku": "a"}),
            NewEvent("ItemAdded", {"sku": "b"}),
        ],
        aggregate_id="o",
        aggregate_type="Order",
    )
    assert es.state_at("o").state == {"total": 1, "items": ["a", "b"]}
    steps = list(es.history("o"))
    assert steps[1].before == {"total": 1}  # the mutating reducer did not touch "before"
    assert steps[2].changes == [Change("/items", ["a"], ["a", "b"])]
    es.append([NewEvent("Cleared", {})], aggregate_id="o")
    assert es.state_at("o").state == {}


def test_reducers_fingerprint_follows_code() -> None:
    def make(body: int) -> Reducers:
        r = Reducers()
        if body == 1:
            r.register("A", "B", lambda s, e: s)
        else:
            r.register("A", "B", lambda s, e: {**s, "x": 1})
        return r

    assert make(1).fingerprint == make(1).fingerprint
    assert make(1).fingerprint != make(2).fingerprint
    assert Reducers().fingerprint != make(1).fingerprint


def test_upcasters_apply_on_read_and_before_reducers(make_store: Any) -> None:
    upcasters = Upcasters()

    @upcasters.on("OrderPlaced", 1)
    def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
        return {"amount": data["total"], "currency": "EUR"}

    @upcasters.on("OrderPlaced", 2)
    def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
        return {**data, "amount_cents": data["amount"] * 100}

    plain = make_store()
    plain.append([NewEvent("OrderPlaced", {"total": 3})], aggregate_id="o")
    plain.append(
        [NewEvent("OrderPlaced", {"amount": 4, "currency": "USD"}, schema_version=2)],
        aggregate_id="p",
    )
    if plain.path == ":memory:":
        es = plain
        es.upcasters = upcasters  # same connection, new view
    else:
        es = make_store(upcasters=upcasters)
    (old,) = es.stream("o")
    assert old.schema_version == 3
    assert old.data == {"amount": 3, "currency": "EUR", "amount_cents": 300}
    assert es.state_at("o").state == old.data
    assert next(es.read(aggregate_id="p")).data == {
        "amount": 4,
        "currency": "USD",
        "amount_cents": 400,
    }
    # Stored rows never change: the raw rows, as verify reads them, keep the old shapes.
    stored = {row[2]: (row[6], json.loads(row[7])) for row in es.backend.chain_page(0, 10)}
    assert stored == {"o": (1, {"total": 3}), "p": (2, {"amount": 4, "currency": "USD"})}
    assert es.verify().ok


def test_snapshots_are_taken_every_n_versions(make_store: Any) -> None:
    es = make_store(snapshot_every=2)
    order(es)
    calls: list[int] = []
    real = es.backend.page

    def spy(query: Any, type_: Any, after: Any, backwards: bool, limit: int) -> Any:
        calls.append(after)
        return real(query, type_, after, backwards, limit)

    es.backend.page = spy  # type: ignore[method-assign]
    assert es.state_at("order-7").state == STATES[5]
    # One probe of the type index for voids (after position 0), then only
    # version 5, from the snapshot at 4.
    assert calls == [0, 4]
    calls.clear()
    assert es.state_at("order-7", version=3).state == STATES[3]
    assert calls == [0, 2]


def test_snapshot_from_other_reducers_is_ignored(tmp_path: Any) -> None:
    location = str(tmp_path / "events.db")
    first = Reducers()

    @first.on("Order", "OrderPlaced")
    def wrong(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        return {"poisoned": True}

    with EventStore(location, reducers=first, snapshot_every=1) as es:
        order(es)
        assert es.state_at("order-7").state["poisoned"] is True
    with EventStore(location, snapshot_every=1) as es:
        assert es.state_at("order-7").state == STATES[5]
        assert es.state_at("order-7", version=1).state == STATES[1]


def test_explicit_snapshot_at_head(store: EventStore) -> None:
    order(store)
    snap = store.snapshot("order-7")
    assert snap.version == 5 and snap.state == STATES[5]
    assert store.state_at("order-7").state == STATES[5]
    with pytest.raises(NotFoundError):
        store.snapshot("ghost")


patches = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.none()
    | st.integers(-5, 5)
    | st.dictionaries(st.sampled_from(["x", "y"]), st.none() | st.integers(0, 3), max_size=2),
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(
    batches=st.lists(st.lists(patches, min_size=1, max_size=5), min_size=1, max_size=8),
    every=st.integers(min_value=1, max_value=4),
    data=st.data(),
)
def test_replay_from_snapshots_equals_full_fold(
    batches: list[list[dict[str, Any]]], every: int, data: Any
) -> None:
    with EventStore(":memory:", snapshot_every=every) as es:
        for batch in batches:
            es.append([NewEvent("P", p) for p in batch], aggregate_id="agg")
        head = es.aggregate("agg").version
        target = data.draw(st.integers(min_value=0, max_value=head))
        full: dict[str, Any] = {}
        for event in es.stream("agg", to_version=target):
            full = merge_patch(full, event.data)
        assert es.state_at("agg", version=target).state == full
        position = data.draw(st.integers(min_value=0, max_value=es.head()))
        expected_version = max(
            [e.version or 0 for e in es.stream("agg") if e.position <= position], default=0
        )
        assert es.state_at("agg", position=position).version == expected_version


def test_fingerprint_follows_reducers_registered_after_opening(tmp_path: Any) -> None:
    path = str(tmp_path / "f.db")
    reducers = Reducers()
    with EventStore(path, reducers=reducers, snapshot_every=1) as es:
        es.append([NewEvent("Deposited", {"amount": 10})], aggregate_id="acct")

        @reducers.on(None, "Deposited")
        def deposit(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
            return {"balance": state.get("balance", 0) + event.data["amount"]}

        assert es.state_at("acct").state == {"balance": 10}  # the old snapshot is not used


def test_reducers_version_changes_the_fingerprint() -> None:
    assert Reducers(version="1").fingerprint != Reducers(version="2").fingerprint
    assert Upcasters(version="1").fingerprint != Upcasters().fingerprint


def test_history_copies_for_a_mutating_default_reducer(store: EventStore) -> None:
    def mutate(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        state.update(event.data)
        return state

    store.reducers = Reducers(default=mutate)
    store.append([NewEvent("A", {"a": 1}), NewEvent("B", {"b": 2})], aggregate_id="x")
    steps = list(store.history("x"))
    assert [s.changes for s in steps] == [[Change("/a", None, 1)], [Change("/b", None, 2)]]


def test_a_failing_reducer_is_a_reducer_error(store: EventStore) -> None:
    from store import ReducerError

    reducers = Reducers()
    reducers.register(None, "Boom", lambda state, event: 1 / 0)  # type: ignore[arg-type,return-value]
    store.reducers = reducers
    store.append([NewEvent("Boom", {})], aggregate_id="x")
    with pytest.raises(ReducerError, match=r"Boom.*ZeroDivisionError"):
        store.state_at("x")
    with pytest.raises(ReducerError):
        list(store.history("x"))


def test_snapshot_failure_does_not_refuse_the_append(make_store: Any) -> None:
    reducers = Reducers()
    reducers.register(None, "Odd", lambda state, event: {1: "int key"})  # type: ignore[arg-type,return-value,dict-item]
    es = make_store(reducers=reducers, snapshot_every=1)
    with pytest.warns(RuntimeWarning, match="no snapshot"):
        es.append([NewEvent("Odd", {})], aggregate_id="x")
    assert es.head() == 1 and es.verify().ok


def test_checkpoints_make_stepping_through_a_long_history_cheap(store: EventStore) -> None:
    for start in range(0, 2000, 500):
        store.append([NewEvent("N", {"n": start + k}) for k in range(500)], aggregate_id="long")
    assert store.state_at("long", version=1500).state == {"n": 1499}  # folds 1500 once
    folded: list[int] = []
    real = store.backend.page

    def spy(query: Any, type_: Any, after: Any, backwards: bool, limit: int) -> Any:
        page = real(query, type_, after, backwards, limit)
        folded.append(len(page))
        return page

    store.backend.page = spy  # type: ignore[method-assign]
    for version in range(1501, 1511):  # a user pressing ] ten times
        (step,) = store.history("long", version, version)
        assert step.after == {"n": version - 1}
    assert sum(folded) < 10 * 30
    folded.clear()
    assert store.state_at("long", version=1300).state == {"n": 1299}
    assert sum(folded) <= store._states.every


def test_checkpoints_are_copies(store: EventStore) -> None:
    store.append([NewEvent("N", {"n": 1, "tags": ["a"]})], aggregate_id="x")
    first = store.state_at("x")
    first.state["tags"].append("changed by the caller")
    assert store.state_at("x").state == {"n": 1, "tags": ["a"]}


def test_a_rolled_back_transaction_leaves_no_checkpoint(store: EventStore) -> None:
    store.append([NewEvent("N", {"n": 1})], aggregate_id="x")
    with pytest.raises(RuntimeError), store.transaction():
        store.append([NewEvent("N", {"n": 2})], aggregate_id="x")
        assert store.state_at("x").state == {"n": 2}  # sees its own write
        raise RuntimeError("roll back")
    assert store.state_at("x").version == 1
    store.append([NewEvent("N", {"n": 3})], aggregate_id="x")
    assert store.state_at("x").state == {"n": 3}
    assert store.state_at("x", version=2).state == {"n": 3}


def test_a_state_is_dated_by_the_last_event_it_folds(tmp_path: Any) -> None:
    """``recorded_at`` of a state is its last event's, whether the state
    came from events, a checkpoint, a stored snapshot exactly at that
    version, or the head (whose time the aggregates table holds)."""
    path = str(tmp_path / "s.db")
    ticks = iter(datetime(2026, 1, 1, 0, 0, k, tzinfo=UTC) for k in range(1, 60))
    with EventStore(path, snapshot_every=2, clock=lambda: next(ticks)) as es:
        for k in range(5):
            es.append([NewEvent("Set", {"k": k})], "a")
            if k == 0:
                es.snapshot("a")  # the first event is at position 1
        times = {e.version: e.recorded_at for e in es.stream("a")}
        assert len(set(times.values())) == 5
        for version in range(1, 6):
            assert es.state_at("a", version=version).recorded_at == times[version]
    # A fresh process has no checkpoints: versions 1, 2 and 4 come from
    # stored snapshots, which keep no time of their own.
    with EventStore(path, readonly=True) as es:
        for version in (4, 2, 5, 3, 1):
            state = es.state_at("a", version=version)
            assert state.version == version and state.recorded_at == times[version]
        assert es.state_at("a").recorded_at == times[5]
        assert es.state_at("a", position=4).recorded_at == times[4]
        # Before the first event there is no state, and no time.
        assert es.state_at("a", version=0) == AggregateState("a", None, 0, 0, None, {})


def _counting() -> tuple[Reducers, list[int]]:
    """Reducers that note the version of every event they fold."""
    folded: list[int] = []
    reducers = Reducers()

    @reducers.on(None, "Set")
    def set_(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        folded.append(event.version or 0)
        return {**state, **event.data}

    return reducers, folded


def test_a_replay_starts_from_the_nearest_checkpoint() -> None:
    """Checkpoints are kept every ``every`` versions and where a fold ended;
    a replay folds only the events after the nearest one."""
    reducers, folded = _counting()
    with EventStore(":memory:", reducers=reducers) as es:
        es._states.every = 4
        for k in range(1, 11):
            es.append([NewEvent("Set", {"k": k})], "a")
        folded.clear()
        assert es.state_at("a").state == {"k": 10} and folded == list(range(1, 11))
        folded.clear()
        assert es.state_at("a").state == {"k": 10} and folded == []
        assert es.state_at("a", version=7).state == {"k": 7} and folded == [5, 6, 7]
        folded.clear()
        assert es.state_at("a", version=7).state == {"k": 7} and folded == []


def test_a_replay_past_a_void_starts_below_the_voided_event() -> None:
    """A checkpoint that folded in an event voided later is not a start;
    the replay goes back to the nearest one below the voided event, and no
    further."""
    reducers, folded = _counting()
    with EventStore(":memory:", reducers=reducers) as es:
        es._states.every = 2
        for k in range(1, 7):
            es.append([NewEvent("Set", {f"k{k}": k})], "a")
        es.state_at("a")  # checkpoints at 2, 4 and 6
        fifth = next(iter(es.stream("a", from_version=5, to_version=5)))
        es.void(fifth.position, reason="wrong")  # the void is version 7
        folded.clear()
        state = es.state_at("a").state
        assert state == {f"k{k}": k for k in (1, 2, 3, 4, 6)} and folded == [6]
        # The state at the void's own version knows of the void: a start.
        es.append([NewEvent("Set", {"k8": 8})], "a")
        folded.clear()
        assert es.state_at("a").state == {**state, "k8": 8} and folded == [8]


def test_a_replay_past_a_void_of_the_second_event_starts_at_the_first() -> None:
    reducers, folded = _counting()
    with EventStore(":memory:", reducers=reducers) as es:
        es._states.every = 1
        for k in range(1, 4):
            es.append([NewEvent("Set", {f"k{k}": k})], "a")
        es.state_at("a")  # a checkpoint at every version
        second = next(iter(es.stream("a", from_version=2, to_version=2)))
        es.void(second.position, reason="wrong")
        folded.clear()
        assert es.state_at("a").state == {"k1": 1, "k3": 3} and folded == [3]

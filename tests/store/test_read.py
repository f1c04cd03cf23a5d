"""Contract: retrieving streams."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import store.paging as paging_module
from store import (
    EventStore,
    NewEvent,
    NotFoundError,
    RecordedEvent,
    StoreError,
    ValidationError,
)
from store.backend import Query


def fill(es: EventStore) -> list[RecordedEvent]:
    """12 events: orders o1, o2, customer c1, a system event."""
    out = []
    out += es.append(
        [NewEvent("OrderPlaced", {"n": 1}), NewEvent("ItemAdded", {"n": 2})],
        aggregate_id="o1",
        aggregate_type="Order",
    )
    out += es.append(
        [NewEvent("CustomerRegistered", {"n": 3})], aggregate_id="c1", aggregate_type="Customer"
    )
    out += es.append([NewEvent("OrderPlaced", {"n": 4})], aggregate_id="o2", aggregate_type="Order")
    out += es.append(
        [NewEvent("ItemAdded", {"n": 5}), NewEvent("ItemAdded", {"n": 6})], aggregate_id="o1"
    )
    out += es.append([NewEvent("Tick", {"n": 7})])
    out += es.append([NewEvent("CustomerRenamed", {"n": 8})], aggregate_id="c1")
    out += es.append([NewEvent("OrderShipped", {"n": 9})], aggregate_id="o2")
    out += es.append(
        [NewEvent("OrderShipped", {"n": 10}), NewEvent("OrderClosed", {"n": 11})], aggregate_id="o1"
    )
    out += es.append([NewEvent("Tick", {"n": 12})])
    return out


def positions(events: Any) -> list[int]:
    return [e.position for e in events]


def test_read_everything_forwards_and_backwards(store: EventStore) -> None:
    fill(store)
    assert positions(store.read()) == list(range(1, 13))
    assert positions(store.read(backwards=True)) == list(range(12, 0, -1))


def test_from_position(store: EventStore) -> None:
    fill(store)
    assert positions(store.read(from_position=10)) == [10, 11, 12]
    assert positions(store.read(from_position=3, backwards=True)) == [3, 2, 1]
    assert positions(store.read(from_position=99)) == []
    assert positions(store.read(from_position=0)) == list(range(1, 13))


def test_filters(store: EventStore) -> None:
    fill(store)
    assert positions(store.read(aggregate_id="o1")) == [1, 2, 5, 6, 10, 11]
    assert positions(store.read(aggregate_type="Customer")) == [3, 8]
    assert positions(store.read(types=["ItemAdded"])) == [2, 5, 6]
    assert positions(store.read(types=["Tick", "OrderShipped"])) == [7, 9, 10, 12]
    assert positions(store.read(types="Tick")) == [7, 12]
    assert positions(store.read(types=[])) == []
    assert positions(store.read(limit=3)) == [1, 2, 3]
    assert positions(store.read(limit=0)) == []


def test_filters_combined(store: EventStore) -> None:
    fill(store)
    assert positions(store.read(aggregate_id="o1", types=["ItemAdded", "OrderClosed"])) == [
        2,
        5,
        6,
        11,
    ]
    assert positions(
        store.read(aggregate_type="Order", types=["OrderShipped", "OrderPlaced"], backwards=True)
    ) == [10, 9, 4, 1]
    assert positions(store.read(aggregate_id="o1", from_position=5, limit=2)) == [5, 6]
    assert positions(store.read(aggregate_id="o1", from_position=6, backwards=True)) == [6, 5, 2, 1]
    assert positions(store.read(aggregate_type="Order", aggregate_id="c1")) == []
    assert positions(store.read(types=["Tick", "ItemAdded"], from_position=6, limit=2)) == [6, 7]


def test_time_range_is_inclusive_on_recorded_at(store: EventStore) -> None:
    events = fill(store)
    t5 = events[4].recorded_at
    t9 = events[8].recorded_at
    got = list(store.read(since=t5, until=t9))
    assert got and all(t5 <= e.recorded_at <= t9 for e in got)
    assert {e.position for e in events if t5 <= e.recorded_at <= t9} == set(positions(got))
    assert positions(store.read(since=events[-1].recorded_at + timedelta(seconds=1))) == []
    assert positions(store.read(until=events[0].recorded_at - timedelta(seconds=1))) == []
    assert positions(store.read(types=["Tick"], since=t5)) == [
        e.position for e in events if e.type == "Tick" and e.recorded_at >= t5
    ]


def test_naive_times_are_refused(store: EventStore) -> None:
    fill(store)
    with pytest.raises(ValidationError, match="naive"):
        list(store.read(since=datetime(2026, 1, 1)))
    with pytest.raises(ValidationError, match="naive"):
        store.position_at(datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="naive"):
        store.state_at("o1", at=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": -1}, {"limit": "3"}, {"from_position": "1"}, {"aggregate_id": ""}, {"types": [""]}],
)
def test_bad_read_arguments(store: EventStore, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        list(store.read(**kwargs))


def test_paging_is_by_keyset(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages of 3: reading 20 events needs 7 small queries, each after a position."""
    monkeypatch.setattr(paging_module, "PAGE", 3)
    for i in range(20):
        store.append([NewEvent("T" if i % 2 else "U", {"i": i})], aggregate_id=f"a{i % 3}")
    calls: list[tuple[Any, ...]] = []
    real = store.backend.page

    def spy(query: Query, type_: Any, after: Any, backwards: bool, limit: int) -> Any:
        calls.append((type_, after, limit))
        return real(query, type_, after, backwards, limit)

    monkeypatch.setattr(store.backend, "page", spy)
    assert positions(store.read()) == list(range(1, 21))
    assert [c[1] for c in calls] == [None, 3, 6, 9, 12, 15, 18]
    assert all(c[2] == 3 for c in calls)
    calls.clear()
    assert positions(store.read(types=["T", "U"])) == list(range(1, 21))
    assert {c[0] for c in calls} == {"T", "U"}
    calls.clear()
    assert [e.version for e in store.read(aggregate_id="a1", backwards=True)] == [
        7,
        6,
        5,
        4,
        3,
        2,
        1,
    ]
    assert calls[1][1] == 5  # keyset on version within an aggregate


def test_read_is_lazy(store: EventStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(paging_module, "PAGE", 2)
    fill(store)
    it = store.read()
    assert next(it).position == 1
    # Appending while a reader is part-way through is fine; it sees the new events.
    store.append([NewEvent("Late", {})])
    assert positions(it)[-1] == 13


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(min_value=0, max_value=14),
    types=st.none()
    | st.lists(st.sampled_from(["OrderPlaced", "ItemAdded", "Tick", "Nope"]), max_size=3),
    limit=st.none() | st.integers(min_value=0, max_value=13),
    aggregate_type=st.sampled_from([None, "Order", "Customer"]),
)
def test_forwards_then_backwards_agree(
    make_store: Any, start: int, types: Any, limit: Any, aggregate_type: Any
) -> None:
    es = getattr(test_forwards_then_backwards_agree, "_es", None)
    if es is None or es._closed:
        es = make_store()
        fill(es)
        test_forwards_then_backwards_agree._es = es  # type: ignore[attr-defined]
    every = list(es.read())
    expected = [
        e
        for e in every
        if (types is None or e.type in types)
        and (aggregate_type is None or e.aggregate_type == aggregate_type)
    ]
    forwards = list(es.read(from_position=start, types=types, aggregate_type=aggregate_type))
    assert forwards == [e for e in expected if e.position >= start]
    backwards = list(
        es.read(from_position=start, types=types, aggregate_type=aggregate_type, backwards=True)
    )
    assert backwards == [e for e in reversed(expected) if e.position <= start]
    limited = list(es.read(types=types, aggregate_type=aggregate_type, limit=limit))
    assert limited == expected[:limit]


def test_stream(store: EventStore) -> None:
    fill(store)
    assert [e.version for e in store.stream("o1")] == [1, 2, 3, 4, 5, 6]
    assert [e.version for e in store.stream("o1", from_version=2, to_version=4)] == [2, 3, 4]
    assert list(store.stream("ghost")) == []


def test_aggregates(store: EventStore) -> None:
    events = fill(store)
    infos = {a.aggregate_id: a for a in store.aggregates()}
    assert set(infos) == {"o1", "o2", "c1"}
    o1 = infos["o1"]
    assert (o1.aggregate_type, o1.version, o1.first_position, o1.last_position) == (
        "Order",
        6,
        1,
        11,
    )
    assert o1.created_at == events[0].recorded_at and o1.updated_at == events[10].recorded_at
    assert [a.aggregate_id for a in store.aggregates("Order")] == ["o1", "o2"]
    assert store.aggregate("c1").version == 2
    with pytest.raises(NotFoundError, match="ghost"):
        store.aggregate("ghost")
    assert store.aggregate_types() == {"Customer": 1, "Order": 2}


def test_counts_and_types(store: EventStore) -> None:
    fill(store)
    assert store.count() == 12
    assert store.count(aggregate_type="Order") == 8
    assert store.count(types=["Tick", "ItemAdded"]) == 5
    assert store.count(aggregate_id="o1", types=["ItemAdded"]) == 3
    assert store.event_types()["ItemAdded"] == 3
    assert sum(store.event_types().values()) == 12


def test_head_and_get(store: EventStore) -> None:
    assert store.head() == 0
    events = fill(store)
    assert store.head() == 12
    assert store.get(5) == events[4]
    with pytest.raises(NotFoundError):
        store.get(13)


def test_position_at(store: EventStore) -> None:
    events = fill(store)
    assert store.position_at(events[0].recorded_at - timedelta(days=1)) == 0
    assert store.position_at(events[-1].recorded_at) == 12
    mid = events[5]
    assert store.position_at(mid.recorded_at) >= 6
    assert all(
        e.recorded_at <= mid.recorded_at for e in events[: store.position_at(mid.recorded_at)]
    )


def test_follow_yields_backlog_then_new_events_from_a_thread(store: EventStore) -> None:
    fill(store)
    stop = threading.Event()
    seen: list[int] = []

    def writer() -> None:
        for i in range(5):
            time.sleep(0.02)
            store.append([NewEvent("Live", {"i": i})])

    thread = threading.Thread(target=writer)
    thread.start()
    for event in store.follow(from_position=11, poll_interval=0.01, stop=stop):
        seen.append(event.position)
        if len(seen) == 7:
            stop.set()
    thread.join()
    assert seen == list(range(11, 18))


def test_follow_defaults_to_the_whole_log_then_tails(store: EventStore) -> None:
    fill(store)
    stop = threading.Event()
    threading.Timer(0.1, lambda: store.append([NewEvent("New", {})])).start()
    threading.Timer(0.5, stop.set).start()
    got = [e.position for e in store.follow(poll_interval=0.01, stop=stop)]
    assert got == list(range(1, 14))


def test_follow_none_starts_at_the_call_and_stops_promptly(store: EventStore) -> None:
    fill(store)
    stop = threading.Event()
    follower = store.follow(None, poll_interval=0.01, stop=stop)
    store.append([NewEvent("AfterTheCall", {})])  # before the first next(): still seen
    threading.Timer(0.1, lambda: store.append([NewEvent("New", {})])).start()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    assert [e.position for e in follower] == [13, 14]
    assert time.monotonic() - started < 3


def test_follow_refuses_to_read_inside_its_own_transaction(store: EventStore) -> None:
    fill(store)
    with store.transaction():
        store.append([NewEvent("Doomed", {})])
        with pytest.raises(StoreError, match="transaction"):
            next(store.follow(12, stop=threading.Event()))


def test_explain_query_plan_uses_an_index_for_every_filter() -> None:
    """SQLite's plans; the PostgreSQL backend checks its own in test_postgres.py."""
    es = EventStore(":memory:")
    fill(es)
    backend = es.backend
    cases = {
        "all": (Query(1, None), None, "INTEGER PRIMARY KEY"),
        "aggregate": (Query(1, None, aggregate_id="o1"), None, "(aggregate_id=? AND version"),
        "aggregate_type": (
            Query(1, None, aggregate_type="Order"),
            None,
            "events_by_aggregate_type",
        ),
        "type": (Query(1, None, types=("Tick",)), "Tick", "events_by_type"),
        "type+aggregate_type": (
            Query(1, None, aggregate_type="Order", types=("Tick",)),
            "Tick",
            "USING INDEX events_by_",
        ),
        "aggregate+types": (
            Query(1, None, aggregate_id="o1", types=("Tick", "ItemAdded")),
            None,
            "(aggregate_id=? AND version",
        ),
        "positions": (Query(5, 9), None, "INTEGER PRIMARY KEY (rowid>? AND rowid<?)"),
    }
    for name, (query, type_, index) in cases.items():
        for backwards in (False, True):
            plan = " ".join(backend.explain(query, type_, backwards))  # type: ignore[attr-defined]
            assert plan.startswith("SEARCH events USING"), (name, plan)
            assert index in plan, (name, plan)
            assert "TEMP B-TREE" not in plan, (name, plan)
    assert store_time_is_utc(es)


def test_time_lookups_bisect_positions(tmp_path: Any) -> None:
    """recorded_at never decreases, so a time is a bisection over the primary key."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = iter(start + timedelta(minutes=i // 3) for i in range(3000))
    es = EventStore(str(tmp_path / "t.db"), durable=False, clock=lambda: next(times))
    for i in range(3000):
        es.append([NewEvent("T", {"i": i})])
    statements: list[str] = []
    es.backend.conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    assert es.position_at(start + timedelta(minutes=500)) == 1503
    assert es.position_at(start + timedelta(minutes=500, seconds=30)) == 1503
    assert es.position_at(start - timedelta(seconds=1)) == 0
    assert es.position_at(start + timedelta(days=9)) == 3000
    assert len(statements) < 4 * 16
    got = list(es.read(since=start + timedelta(minutes=10), until=start + timedelta(minutes=11)))
    assert [e.position for e in got] == list(range(31, 37))
    plan = es.backend.conn.execute(  # type: ignore[attr-defined]
        "EXPLAIN QUERY PLAN SELECT recorded_at FROM events WHERE position = 5"
    ).fetchone()[3]
    assert "INTEGER PRIMARY KEY" in plan
    es.close()


def store_time_is_utc(es: EventStore) -> bool:
    return all(e.recorded_at.utcoffset() == timedelta(0) for e in es.read())


def test_times_compare_across_zones(store: EventStore) -> None:
    events = fill(store)
    cet = events[3].recorded_at.astimezone(datetime.now(UTC).astimezone().tzinfo)
    assert store.position_at(cet) == store.position_at(events[3].recorded_at)


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"backwards": True},
        {"types": ["Tick", "ItemAdded"]},
        {"types": ["Tick", "ItemAdded"], "backwards": True, "limit": 3},
        {"aggregate_id": "o1", "from_position": 2},
        {"aggregate_type": "Order", "limit": 5},
    ],
)
def test_read_rows_match_read(store: EventStore, filters: dict[str, Any]) -> None:
    fill(store)
    pages = list(store.read_rows(page_size=2, **filters))
    assert all(0 < len(page) <= 2 for page in pages)
    rows = [row for page in pages for row in page]
    expected = [tuple(e.to_dict().values()) for e in store.read(**filters)]
    decoded = [(*r[:7], json.loads(r[7]), json.loads(r[8]), *r[9:]) for r in rows]
    assert decoded == expected
    assert all(isinstance(r[7], str) and isinstance(r[10], str) for r in rows)


def test_read_rows_apply_upcasters(make_store: Any) -> None:
    from store import Upcasters

    upcasters = Upcasters()
    upcasters.register("OrderPlaced", 1, lambda data: {**data, "currency": "EUR"})
    es = make_store(upcasters=upcasters)
    es.append([NewEvent("OrderPlaced", {"total": 1}), NewEvent("Other", {"x": 1})],
              aggregate_id="o")  # fmt: skip
    (page,) = es.read_rows()
    assert (page[0][6], json.loads(page[0][7])) == (2, {"total": 1, "currency": "EUR"})
    assert (page[1][6], json.loads(page[1][7])) == (1, {"x": 1})


def test_positions_within_a_long_stream_are_found_by_bisection(tmp_path: Any) -> None:
    es = EventStore(str(tmp_path / "long.db"), durable=False)
    for i in range(0, 3000, 100):
        es.append([NewEvent("Other", {})])
        es.append([NewEvent("T", {"i": i + k}) for k in range(100)], aggregate_id="long")
    stream = list(es.stream("long"))
    statements: list[str] = []
    es.backend.conn.set_trace_callback(statements.append)  # type: ignore[attr-defined]
    expected = max(e.version or 0 for e in stream if e.position <= 1500)
    assert es.state_at("long", position=1500, version=None).version == expected
    assert len(statements) < 40
    forwards = [e.position for e in es.read(aggregate_id="long", from_position=2900)]
    assert forwards == [e.position for e in stream if e.position >= 2900]
    backwards = [e.position for e in es.read(aggregate_id="long", from_position=2000,
                                              backwards=True, limit=3)]  # fmt: skip
    assert backwards == [e.position for e in reversed(stream) if e.position <= 2000][:3]
    es.close()


def test_event_type_counts_follow_appends_and_rollbacks(make_store: Any) -> None:
    es = make_store()
    fill(es)
    assert es.event_types() == {
        "CustomerRegistered": 1, "CustomerRenamed": 1, "ItemAdded": 3, "OrderClosed": 1,
        "OrderPlaced": 2, "OrderShipped": 2, "Tick": 2,
    }  # fmt: skip
    es.append([NewEvent("Tick", {}), NewEvent("Brand", {})])
    counts = es.event_types()
    assert (counts["Tick"], counts["Brand"]) == (3, 1)
    with pytest.raises(RuntimeError), es.transaction():
        es.append([NewEvent("Doomed", {})])
        assert es.event_types()["Doomed"] == 1  # sees its own write
        raise RuntimeError("roll back")
    assert "Doomed" not in es.event_types()
    assert sum(es.event_types().values()) == es.head() == 14


def test_a_count_that_nothing_can_match_is_zero(store: EventStore) -> None:
    store.append([NewEvent("T", {})], aggregate_id="a", aggregate_type="A")
    future = datetime.now(UTC) + timedelta(days=1)
    for kwargs in ({"types": []}, {"since": future}, {"until": datetime(2000, 1, 1, tzinfo=UTC)}):
        count = store.count(**kwargs)
        assert count == 0 and type(count) is int, kwargs
    assert store.count() == 1 and store.count(aggregate_type="A") == 1


def test_aggregates_are_listed_past_one_page(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(paging_module, "PAGE", 2)
    for name in ("e", "b", "d", "a", "c"):
        store.append(
            [NewEvent("T", {})], aggregate_id=name, aggregate_type="X" if name < "d" else "Y"
        )
    assert [info.aggregate_id for info in store.aggregates()] == ["a", "b", "c", "d", "e"]
    assert [info.aggregate_id for info in store.aggregates("X")] == ["a", "b", "c"]
    assert [info.aggregate_id for info in store.aggregates("Y")] == ["d", "e"]


def test_get_on_a_log_with_a_hole_names_the_missing_position(tmp_path: Any) -> None:
    """A row removed by hand (the triggers dropped first) leaves a hole: get
    of that position says it is missing rather than giving the next event."""
    import sqlite3

    path = str(tmp_path / "s.db")
    with EventStore(path) as es:
        for i in range(3):
            es.append([NewEvent("T", {"i": i})], aggregate_id="a")
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_refuse_delete")
    conn.execute("DELETE FROM events WHERE position = 2")
    conn.commit()
    conn.close()
    with EventStore(path, readonly=True) as es:
        assert es.get(3).data == {"i": 2}
        with pytest.raises(NotFoundError, match="no event at position 2"):
            es.get(2)


def test_rows_come_in_pages_of_any_size(store: EventStore) -> None:
    for i in range(5):
        store.append([NewEvent("T", {"i": i})])
    for size in (1, 2, 5, 6):
        pages = list(store.read_rows(page_size=size))
        assert [row[0] for page in pages for row in page] == [1, 2, 3, 4, 5]
        assert all(len(page) <= size for page in pages)
        assert [row[0] for page in store.read_rows(limit=3, page_size=size) for row in page] == [
            1,
            2,
            3,
        ]


def test_an_aggregate_needs_a_name(store: EventStore) -> None:
    store.append([NewEvent("T", {})], aggregate_id="a")
    for name in (None, "", 3):
        with pytest.raises(ValidationError, match="aggregate_id"):
            store.aggregate(name)  # type: ignore[arg-type]


def test_type_counts_seen_inside_a_rolled_back_transaction_are_not_kept(
    store: EventStore,
) -> None:
    store.append([NewEvent("T", {})])
    with pytest.raises(RuntimeError), store.transaction():
        store.append([NewEvent("U", {})])
        assert store.event_types() == {"T": 1, "U": 1}
        raise RuntimeError("roll back")
    store.append([NewEvent("V", {})])  # the same head as inside the transaction
    assert store.event_types() == {"T": 1, "V": 1}

"""Contract: publishing events."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from store import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    NewEvent,
    ReadOnlyError,
    StoreError,
    ValidationError,
)


def placed(total: int = 30, **meta: Any) -> NewEvent:
    return NewEvent("OrderPlaced", {"total": total}, metadata=meta)


def snapshot_rows(es: EventStore) -> list[dict[str, Any]]:
    return [e.to_dict() for e in es.read()]


def test_batch_gets_consecutive_positions_and_versions(store: EventStore) -> None:
    first = store.append([placed(1), placed(2)], aggregate_id="order-1", aggregate_type="Order")
    second = store.append([placed(3)], aggregate_id="order-2", aggregate_type="Order")
    third = store.append([placed(4), placed(5)], aggregate_id="order-1")
    assert [e.position for e in first + second + third] == [1, 2, 3, 4, 5]
    assert [e.version for e in first] == [1, 2]
    assert [e.version for e in third] == [3, 4]
    assert third[0].aggregate_type == "Order"  # kept from the aggregate
    assert store.head() == 5


def test_append_returns_what_read_returns(store: EventStore) -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    recorded = store.append(
        [
            NewEvent(
                "OrderPlaced",
                {"total": 30, "lines": [{"sku": "a"}]},
                {"actor": "alice"},
                occurred_at=when,
            )
        ],
        aggregate_id="order-1",
        aggregate_type="Order",
    )
    assert list(store.read()) == recorded
    event = recorded[0]
    assert event.occurred_at == when and event.occurred_at.tzinfo == UTC
    assert event.recorded_at.tzinfo == UTC
    assert event.actor == "alice"
    assert len(event.hash) == 64
    uuid.UUID(event.event_id)


def test_occurred_at_defaults_to_recorded_at(store: EventStore) -> None:
    (event,) = store.append([placed()], aggregate_id="order-1")
    assert event.occurred_at == event.recorded_at


def test_recorded_at_is_utc_with_microseconds_and_never_decreases(store: EventStore) -> None:
    events = [store.append([placed(i)], aggregate_id="o")[0] for i in range(20)]
    times = [e.recorded_at for e in events]
    assert times == sorted(times)
    assert all(t.tzinfo == UTC for t in times)


def test_clock_stepping_back_is_clamped(make_store: Any) -> None:
    now = [datetime(2024, 5, 1, 12, tzinfo=UTC)]
    es = make_store(clock=lambda: now[0])
    (first,) = es.append([placed()], aggregate_id="o")
    now[0] = datetime(2000, 1, 1, tzinfo=UTC)  # the clock jumps back 24 years
    (second,) = es.append([placed()], aggregate_id="o")
    assert second.recorded_at == first.recorded_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert es.get(2).recorded_at == first.recorded_at


def test_snapshots_take_their_time_from_the_clock(make_store: Any) -> None:
    es = make_store(clock=lambda: datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC))
    es.append([placed()], aggregate_id="o")
    es.snapshot("o")
    rows = es.backend.snapshot_page(None, 10)
    assert [created_at for _, _, created_at in rows] == ["2031-03-04T05:06:07.000000+00:00"]


def test_clock_supplies_recorded_at_and_is_clamped(make_store: Any) -> None:
    times = iter([datetime(2024, 1, 1, 12, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)])
    es = make_store(clock=lambda: next(times))
    (first,) = es.append([placed()], aggregate_id="o")
    (second,) = es.append([placed()], aggregate_id="o")
    assert first.recorded_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert second.recorded_at == first.recorded_at  # a clock going back is clamped
    naive = make_store(clock=lambda: datetime(2024, 1, 1))
    with pytest.raises(ValidationError, match="naive"):
        naive.append([placed()], aggregate_id="o")


def test_system_events_without_aggregate(store: EventStore) -> None:
    (event,) = store.append([NewEvent("MaintenanceStarted", {"by": "ops"})])
    assert event.aggregate_id is None and event.version is None and event.aggregate_type is None
    assert list(store.aggregates()) == []
    assert store.verify().ok


@pytest.mark.parametrize("expected", [NO_STREAM, 0])
def test_no_stream(store: EventStore, expected: Any) -> None:
    store.append([placed()], aggregate_id="o", expected_version=expected)
    with pytest.raises(ConcurrencyError) as info:
        store.append([placed()], aggregate_id="o", expected_version=expected)
    assert info.value.actual == 1
    assert store.head() == 1


def test_exact_expected_version(store: EventStore) -> None:
    store.append([placed(), placed()], aggregate_id="o")
    store.append([placed()], aggregate_id="o", expected_version=2)
    before = snapshot_rows(store)
    with pytest.raises(ConcurrencyError) as info:
        store.append([placed(), placed()], aggregate_id="o", expected_version=2)
    assert (info.value.expected, info.value.actual, info.value.aggregate_id) == (2, 3, "o")
    assert "expected version 2 of o but it is at 3" in str(info.value)
    assert snapshot_rows(store) == before


def test_expected_version_of_unknown_aggregate(store: EventStore) -> None:
    with pytest.raises(ConcurrencyError) as info:
        store.append([placed()], aggregate_id="ghost", expected_version=3)
    assert info.value.actual == 0
    assert store.head() == 0


def test_any_skips_the_check(store: EventStore) -> None:
    store.append([placed()], aggregate_id="o", expected_version=ANY)
    store.append([placed()], aggregate_id="o", expected_version=ANY)
    assert store.aggregate("o").version == 2


def test_identical_retry_is_a_no_op(store: EventStore) -> None:
    batch = [placed(1, actor="a"), placed(2)]
    first = store.append(
        batch, aggregate_id="o", aggregate_type="Order", expected_version=NO_STREAM
    )
    again = store.append(
        batch, aggregate_id="o", aggregate_type="Order", expected_version=NO_STREAM
    )
    assert again == first
    assert store.head() == 2


def test_retry_with_equal_but_reordered_content_is_identical(store: EventStore) -> None:
    event_id = str(uuid.uuid4())
    store.append([NewEvent("T", {"a": 1, "b": 2}, event_id=event_id)], aggregate_id="o")
    again = store.append([NewEvent("T", {"b": 2, "a": 1}, event_id=event_id)], aggregate_id="o")
    assert again[0].position == 1 and store.head() == 1


@pytest.mark.parametrize(
    "change",
    [
        {"type": "Other"},
        {"data": {"total": 31}},
        {"metadata": {"actor": "mallory"}},
        {"occurred_at": datetime(2020, 1, 1, tzinfo=UTC)},
    ],
)
def test_same_id_other_content_is_refused(store: EventStore, change: dict[str, Any]) -> None:
    event = placed()
    store.append([event], aggregate_id="o")
    fields = {"type": event.type, "data": event.data, "metadata": event.metadata, **change}
    with pytest.raises(DuplicateEventError) as info:
        store.append([NewEvent(event_id=event.event_id, **fields)], aggregate_id="o")
    assert event.event_id in str(info.value)
    assert store.head() == 1


def test_same_id_other_aggregate_is_refused(store: EventStore) -> None:
    event = placed()
    store.append([event], aggregate_id="o")
    with pytest.raises(DuplicateEventError):
        store.append([event], aggregate_id="other")


def test_same_id_under_another_aggregate_type_is_refused(store: EventStore) -> None:
    """The aggregate's type is part of identical content: a retry naming
    another type is not the same event, so it is refused, not ignored; a
    retry that leaves the type out means the stored one."""
    event = placed()
    first = store.append([event], aggregate_id="o", aggregate_type="Order")
    with pytest.raises(DuplicateEventError) as info:
        store.append([event], aggregate_id="o", aggregate_type="Invoice")
    assert event.event_id in str(info.value)
    assert store.append([event], aggregate_id="o") == first
    assert store.append([event], aggregate_id="o", aggregate_type="Order") == first
    assert store.head() == 1 and store.aggregate("o").aggregate_type == "Order"


def test_same_id_other_schema_version_is_refused(store: EventStore) -> None:
    event = placed()
    store.append([event], aggregate_id="o")
    again = NewEvent(event.type, event.data, event.metadata, event_id=event.event_id,
                     schema_version=2)  # fmt: skip
    with pytest.raises(DuplicateEventError):
        store.append([again], aggregate_id="o")
    assert store.head() == 1


def test_batch_mixing_stored_and_new_ids_stores_nothing(store: EventStore) -> None:
    event = placed()
    store.append([event], aggregate_id="o")
    with pytest.raises(DuplicateEventError):
        store.append([event, placed()], aggregate_id="o")
    assert store.head() == 1


def test_duplicate_ids_within_a_batch(store: EventStore) -> None:
    event = placed()
    with pytest.raises(DuplicateEventError):
        store.append([event, event], aggregate_id="o")
    assert store.head() == 0


def test_aggregate_keeps_its_type(store: EventStore) -> None:
    store.append([placed()], aggregate_id="o", aggregate_type="Order")
    with pytest.raises(ValidationError, match="keeps its type"):
        store.append([placed()], aggregate_id="o", aggregate_type="Customer")
    assert store.head() == 1


def test_batch_is_all_or_nothing_on_bad_event(store: EventStore) -> None:
    with pytest.raises(ValidationError, match="event 1"):
        store.append([placed(), NewEvent("Bad", {"x": float("nan")})], aggregate_id="o")
    assert store.head() == 0
    assert list(store.aggregates()) == []


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (NewEvent(""), "type"),
        (NewEvent(123), "type"),  # type: ignore[arg-type]
        (NewEvent("T", [1, 2]), "data must be a JSON object"),  # type: ignore[arg-type]
        (NewEvent("T", {"x": math.nan}), "NaN|nan"),
        (NewEvent("T", {"x": math.inf}), "inf"),
        (NewEvent("T", {"x": b"bytes"}), "bytes"),
        (NewEvent("T", {"x": {1, 2}}), "set"),
        (NewEvent("T", {1: "int key"}), "non-string key"),  # type: ignore[dict-item]
        (NewEvent("T", {"when": datetime.now(UTC)}), "datetime"),
        (NewEvent("T", {}, metadata=["x"]), "metadata must be a JSON object"),  # type: ignore[arg-type]
        (NewEvent("T", {}, occurred_at=datetime(2026, 1, 1)), "naive"),
        (NewEvent("T", {}, occurred_at="2026-01-01"), "datetime"),  # type: ignore[arg-type]
        (NewEvent("T", {}, event_id="not-a-uuid"), "UUID"),
        (NewEvent("T", {}, schema_version=0), "schema_version"),
        ({"type": "T"}, "NewEvent"),
    ],
)
def test_bad_events_are_refused_clearly(store: EventStore, event: Any, message: str) -> None:
    store.append([placed()], aggregate_id="o")
    before = snapshot_rows(store)
    with pytest.raises(ValidationError, match=message):
        store.append([event], aggregate_id="o")
    assert snapshot_rows(store) == before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aggregate_id": ""}, "aggregate_id"),
        ({"aggregate_id": 7}, "aggregate_id"),
        ({"aggregate_id": "o", "aggregate_type": ""}, "aggregate_type"),
        ({"aggregate_id": "o", "expected_version": -1}, "between 0 and"),
        ({"aggregate_id": "o", "expected_version": 2**63}, "between 0 and 9223372036854775807"),
        ({"aggregate_id": "o", "expected_version": "3"}, "expected_version"),
        ({"aggregate_id": "o", "expected_version": True}, "expected_version"),
        ({"expected_version": 0}, "needs an aggregate_id"),
        ({"aggregate_type": "Order"}, "needs an aggregate_id"),
    ],
)
def test_bad_arguments_are_refused(store: EventStore, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        store.append([placed()], **kwargs)
    assert store.head() == 0


def test_validation_error_is_a_store_error_and_value_error() -> None:
    assert issubclass(ValidationError, StoreError) and issubclass(ValidationError, ValueError)


def test_empty_batch_checks_version_and_stores_nothing(store: EventStore) -> None:
    assert store.append([], aggregate_id="o", expected_version=NO_STREAM) == []
    store.append([placed()], aggregate_id="o")
    with pytest.raises(ConcurrencyError):
        store.append([], aggregate_id="o", expected_version=NO_STREAM)


def test_transaction_makes_several_appends_atomic(store: EventStore) -> None:
    with store.transaction():
        store.append([placed()], aggregate_id="a")
        store.append([placed()], aggregate_id="b")
    assert store.head() == 2
    with pytest.raises(ConcurrencyError), store.transaction():
        store.append([placed()], aggregate_id="c")
        store.append([placed()], aggregate_id="a", expected_version=NO_STREAM)
    assert store.head() == 2
    assert [a.aggregate_id for a in store.aggregates()] == ["a", "b"]
    assert store.verify().ok


def test_failed_append_inside_transaction_keeps_the_others(store: EventStore) -> None:
    with store.transaction():
        store.append([placed()], aggregate_id="a")
        with pytest.raises(ConcurrencyError):
            store.append([placed()], aggregate_id="a", expected_version=5)
        store.append([placed()], aggregate_id="a")
    assert [e.version for e in store.stream("a")] == [1, 2]
    assert store.verify().ok


def test_readonly_refuses_every_write(make_store: Any, backend_name: str) -> None:
    if backend_name == "memory":
        with pytest.raises(ReadOnlyError):
            make_store(readonly=True)
        return
    writer = make_store()
    writer.append([placed()], aggregate_id="o")
    reader = make_store(readonly=True)
    with pytest.raises(ReadOnlyError):
        reader.append([placed()], aggregate_id="o")
    with pytest.raises(ReadOnlyError):
        reader.snapshot("o")
    with pytest.raises(ReadOnlyError), reader.transaction():
        pass
    assert reader.head() == 1 and reader.verify().ok


def test_closed_store_says_so(make_store: Any) -> None:
    es = make_store()
    es.close()
    with pytest.raises(StoreError, match="closed"):
        es.head()
    with pytest.raises(StoreError, match="closed"):
        es.append([placed()])


def test_appending_a_single_new_event_without_a_list(store: EventStore) -> None:
    (event,) = store.append(placed(), aggregate_id="o")  # type: ignore[arg-type]
    assert event.version == 1


def test_default_event_ids_are_canonical_time_ordered_uuids() -> None:
    ids = [NewEvent("A").event_id for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    for text in ids[:200]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    # The first 48 bits are the time in milliseconds: ids never go back in time.
    stamps = [int(text.replace("-", "")[:12], 16) for text in ids]
    assert stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time() * 1000) < 60_000


def test_schema_version_is_bounded_by_what_the_database_holds(store: EventStore) -> None:
    from store.codec import MAX_INT

    [event] = store.append([NewEvent("T", {}, schema_version=MAX_INT)])
    assert store.get(event.position).schema_version == MAX_INT
    with pytest.raises(ValidationError, match="schema_version must be at most"):
        store.append([NewEvent("T", {}, schema_version=MAX_INT + 1)])
    assert store.head() == 1


def test_events_that_are_not_a_list_are_refused_by_name(store: EventStore) -> None:
    with pytest.raises(
        ValidationError, match="events must be a NewEvent or an iterable of them, not int"
    ):
        store.append(42)  # type: ignore[arg-type]
    assert store.head() == 0


def test_a_closed_store_refuses_writes_with_one_message(make_store: Any) -> None:
    es = make_store()
    es.append([NewEvent("T", {})])
    es.close()
    with pytest.raises(StoreError, match="is closed"):
        es.append([NewEvent("T", {})])
    with pytest.raises(StoreError, match="is closed"), es.transaction():
        pass


def test_a_read_only_store_names_what_it_refuses(tmp_path: Any) -> None:
    path = str(tmp_path / "s.db")
    with EventStore(path) as es:
        es.append([NewEvent("T", {})], aggregate_id="a")
    with EventStore(path, readonly=True) as es:
        with pytest.raises(ReadOnlyError, match="appends are refused"):
            es.append([NewEvent("T", {})], aggregate_id="a")
        with pytest.raises(ReadOnlyError, match="snapshots are refused"):
            es.snapshot("a")
        assert es.head() == 1


def test_an_empty_append_changes_nothing(store: EventStore) -> None:
    store.append([NewEvent("T", {})], aggregate_id="old")
    before = list(store.aggregates())
    assert store.append([], aggregate_id="new", aggregate_type="X") == []
    assert store.append([], aggregate_id="old", expected_version=1) == []
    assert list(store.aggregates()) == before and store.head() == 1
    assert store.verify().ok


def test_event_type_and_expected_version_limits(store: EventStore) -> None:
    from store.codec import MAX_INT

    for bad in (None, "", 3):
        with pytest.raises(ValidationError, match="event 0: type"):
            store.append([NewEvent(bad, {})])  # type: ignore[arg-type]
    # The largest expected version is a fair question (with a plain "no").
    with pytest.raises(ConcurrencyError):
        store.append([NewEvent("T", {})], aggregate_id="a", expected_version=MAX_INT)
    with pytest.raises(ValidationError, match="expected_version must be between"):
        store.append([NewEvent("T", {})], aggregate_id="a", expected_version=MAX_INT + 1)
    assert store.head() == 0


def test_a_snapshot_needs_an_aggregate_name(store: EventStore) -> None:
    store.append([NewEvent("T", {})], aggregate_id="a")
    for name in (None, ""):
        with pytest.raises(ValidationError, match="aggregate_id"):
            store.snapshot(name)  # type: ignore[arg-type]

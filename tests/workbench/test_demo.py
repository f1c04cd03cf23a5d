"""The demo generator: deterministic, exact in size, and realistic enough to audit."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from store import EventStore, NewEvent, RecordedEvent
from workbench.demo import START, DemoSummary, generate, iter_event_types


def build(events: int, seed: int) -> tuple[DemoSummary, list[RecordedEvent]]:
    with EventStore(":memory:") as es:
        summary = generate(es, events=events, seed=seed)
        return summary, list(es.read())


@pytest.fixture(scope="module")
def demo() -> tuple[DemoSummary, list[RecordedEvent]]:
    return build(4000, seed=21)


def fingerprint(events: list[RecordedEvent]) -> list[tuple[object, ...]]:
    return [
        (e.event_id, e.aggregate_id, e.aggregate_type, e.version, e.type, e.data, e.metadata,
         e.occurred_at)
        for e in events
    ]  # fmt: skip


def test_same_seed_same_events(demo: tuple[DemoSummary, list[RecordedEvent]]) -> None:
    _, events = demo
    _, again = build(4000, seed=21)
    assert fingerprint(again) == fingerprint(events)


def test_other_seed_other_events(demo: tuple[DemoSummary, list[RecordedEvent]]) -> None:
    _, events = demo
    _, other = build(4000, seed=22)
    assert {e.event_id for e in other}.isdisjoint({e.event_id for e in events})
    assert [e.type for e in other] != [e.type for e in events]


def test_exact_size_and_an_intact_chain(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    summary = generate(path, events=777, seed=2)
    assert summary.events == 777 and summary.path == str(path)
    with EventStore(str(path), readonly=True) as es:
        assert es.head() == 777
        assert es.verify().ok
        assert sum(es.event_types().values()) == 777
        assert summary.event_types == es.event_types()


def test_summary_describes_the_store(demo) -> None:
    summary, events = demo
    assert summary.events == len(events) == 4000
    assert summary.system_events == sum(1 for e in events if e.aggregate_id is None)
    assert summary.first_occurred_at == min(e.occurred_at for e in events) == START
    assert summary.last_occurred_at == max(e.occurred_at for e in events)
    text = summary.describe()
    assert "4000 events (seed 21)" in text and "concurrency retries" in text


def test_many_aggregate_and_event_types(demo) -> None:
    summary, events = demo
    assert set(summary.aggregates) >= {"Order", "Customer", "InventoryItem", "Payment",
                                       "Shipment", "Invoice", "SupportTicket"}  # fmt: skip
    types = Counter(e.type for e in events)
    assert len(types) >= 40
    assert set(types) <= set(iter_event_types())


def test_actors_correlation_and_causation(demo) -> None:
    _, events = demo
    actors = {e.actor for e in events}
    assert all(e.actor for e in events)
    assert any(a.startswith("user:") for a in actors)
    assert any(a.startswith("svc:") for a in actors)
    assert any(a.startswith("customer:") for a in actors)
    assert all(e.correlation_id for e in events)
    by_id = {e.event_id: e for e in events}
    caused = [e for e in events if e.causation_id]
    assert len(caused) > len(events) / 2
    # A cause is always an earlier event (a late correction names its order's placement).
    assert all(by_id[e.causation_id].position < e.position for e in caused)  # type: ignore[index]
    # Flows share a correlation id across aggregates: an order's payment, shipment, invoice.
    per_flow = Counter(e.correlation_id for e in events)
    flow = next(c for c, n in per_flow.most_common() if n >= 8)
    assert len({e.aggregate_type for e in events if e.correlation_id == flow}) >= 4


def test_system_events_have_no_aggregate(demo) -> None:
    _, events = demo
    system = [e for e in events if e.aggregate_id is None]
    assert {"SystemStarted", "CatalogImported", "NightlyReconciliationCompleted"} <= {
        e.type for e in system
    }
    assert all(e.version is None and e.aggregate_type is None for e in system)


def test_months_of_business_time(demo) -> None:
    summary, _ = demo
    big, _ = build(12000, seed=4)
    assert big.last_occurred_at and big.first_occurred_at
    assert (big.last_occurred_at - big.first_occurred_at).days >= 60
    assert summary.last_occurred_at and (summary.last_occurred_at - START).days >= 20


def test_concurrency_retries_really_happened(demo) -> None:
    summary, events = demo
    retried = [e for e in events if e.metadata.get("attempt") == 2]
    assert summary.retries == len(retried) >= 1
    streams: dict[str, list[RecordedEvent]] = {}
    for event in events:
        if event.aggregate_id:
            streams.setdefault(event.aggregate_id, []).append(event)
    for event in retried:
        assert event.aggregate_id is not None and event.version is not None
        # The write that won the race sits just before the retry, from another flow.
        winner = streams[event.aggregate_id][event.version - 2]
        assert winner.version == event.version - 1
        assert winner.correlation_id != event.correlation_id


def test_late_corrections_are_dated_back(demo) -> None:
    summary, events = demo
    corrections = [e for e in events if e.type == "OrderTotalCorrected"]
    assert summary.corrections == len(corrections) >= 1
    for fix in corrections:
        placed = next(e for e in events if e.event_id == fix.causation_id)
        assert placed.type == "OrderPlaced" and placed.aggregate_id == fix.aggregate_id
        # Recorded days later, but dated back to the order's delivery.
        delivered = next(
            e for e in events if e.aggregate_id == fix.aggregate_id and e.type == "OrderDelivered"
        )
        assert timedelta(0) < fix.occurred_at - delivered.occurred_at < timedelta(minutes=1)
        assert fix.occurred_at < events[fix.position - 2].occurred_at - timedelta(days=1)
        assert fix.data["total"] == round(fix.data["previous_total"] + fix.data["correction"], 2)
    # Events recorded after others that happened later: corrections and late webhooks.
    late: list[RecordedEvent] = []
    latest = events[0].occurred_at
    for event in events[1:]:
        if event.occurred_at < latest:
            late.append(event)
        latest = max(latest, event.occurred_at)
    assert summary.late_events >= len(corrections)
    assert any(e.type == "PaymentCaptured" and e.actor == "svc:psp-webhook" for e in late)
    assert {e.type for e in late} >= {"OrderTotalCorrected", "InvoiceCorrected"}


def test_state_rebuilt_by_the_default_reducer_is_consistent() -> None:
    with EventStore(":memory:") as es:
        generate(es, events=2500, seed=8)
        for info in es.aggregates(aggregate_type="InventoryItem"):
            state = es.state_at(info.aggregate_id).state
            assert state["available"] == state["on_hand"] - state["reserved"]
            assert state["reserved"] >= 0 and state["on_hand"] >= 0
        statuses = Counter(es.state_at(i.aggregate_id).state["status"]
                           for i in es.aggregates(aggregate_type="Order"))  # fmt: skip
        assert {"delivered", "cancelled"} <= set(statuses)


def test_refuses_a_non_empty_store_and_bad_sizes() -> None:
    with EventStore(":memory:") as es:
        es.append([NewEvent("Existing")])
        with pytest.raises(ValueError, match="already holds events"):
            generate(es, events=10)
        assert es.head() == 1
        for events in (0, -5, True):
            with pytest.raises(ValueError, match="events must be a positive int"):
                generate(es, events=events)

"""The order in which the kept counts (``EventStore.counts``) list their
names: what ``sss stats`` prints, whatever order the counts were kept in."""

from __future__ import annotations

from store import EventStore, NewEvent


def test_counts_list_names_in_order_with_no_aggregate_type_first(store: EventStore) -> None:
    # Kept by (event type, aggregate type): (Alpha, Zed), (Beta, Ant), (Gamma, none);
    # the counts per aggregate type are in neither order.
    store.append([NewEvent("Alpha", {})], aggregate_id="z0", aggregate_type="Zed")
    for i in range(3):
        store.append([NewEvent("Beta", {})], aggregate_id=f"a{i}", aggregate_type="Ant")
    for i in range(2):
        store.append([NewEvent("Gamma", {})], aggregate_id=f"n{i}")
    store.append([NewEvent("Tick", {})])
    counts = store.counts()
    assert list(counts.aggregate_types.items()) == [(None, 2), ("Ant", 3), ("Zed", 1)]
    assert list(counts.aggregate_type_events.items()) == [(None, 2), ("Ant", 3), ("Zed", 1)]
    assert list(counts.event_types) == ["Alpha", "Beta", "Gamma", "Tick"]
    assert (counts.events, counts.system_events) == (7, 1)

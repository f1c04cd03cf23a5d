"""Filters, time parsing, keyset pages and the bounded window, without a screen."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from store import EventStore
from workbench.tui import query as query_module
from workbench.tui.query import Filters, fetch_page, iter_matching
from workbench.tui.window import Window

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_chips_and_without() -> None:
    f = Filters(
        aggregate_type="Order",
        types=frozenset({"B", "A"}),
        since=NOW,
        since_text="-2h",
        text="pen",
        correlation_id="checkout-1",
    )
    labels = [label for _, label in f.chips()]
    assert labels == [
        "type:Order",
        "event:A,B",
        "since:-2h",
        "text:'pen'",
        "correlation:checkout-1",
    ]
    assert f.needs_scan
    cleared = f.without("since").without("text").without("correlation_id")
    assert cleared.since is None and cleared.since_text is None
    assert not cleared.needs_scan
    assert Filters().is_empty and not f.is_empty


def test_store_kwargs_only_carry_store_filters() -> None:
    f = Filters(aggregate_id="order-1", types=frozenset({"X"}), actor="bob", text="t")
    assert f.store_kwargs() == {"aggregate_id": "order-1", "types": ["X"]}


def test_python_side_filters_page_by_position(shop: Path) -> None:
    with EventStore(str(shop), readonly=True) as es:
        f = Filters(text="pen-3")
        page = fetch_page(es, f, limit=10)
        assert [e.type for e in page.events] == ["ItemAdded"]
        assert page.events[0].aggregate_id == "order-3" and page.complete

        bob = Filters(actor="BOB")  # actors match case-insensitively
        events = list(iter_matching(es, bob))
        assert events and {e.actor for e in events} == {"bob"}

        corr = list(iter_matching(es, Filters(correlation_id="checkout-2")))
        assert [e.version for e in corr] == [1, 2, 3, 4]


def test_pages_forwards_and_backwards_agree(shop: Path) -> None:
    with EventStore(str(shop), readonly=True) as es:
        f = Filters(aggregate_type="Order", actor="alice")
        every = [e.position for e in iter_matching(es, f)]
        first = fetch_page(es, f, limit=3)
        assert [e.position for e in first.events] == every[:3] and not first.complete
        rest = fetch_page(es, f, limit=100, from_position=first.events[-1].position + 1)
        assert [e.position for e in first.events + rest.events] == every and rest.complete
        last = fetch_page(es, f, limit=3, backwards=True)
        assert [e.position for e in last.events] == every[-3:]
        older = fetch_page(es, f, limit=100, from_position=every[-4], backwards=True)
        assert [e.position for e in older.events] == every[:-3] and older.complete


def test_a_long_scan_reports_partial_results(shop: Path, monkeypatch) -> None:
    monkeypatch.setattr(query_module, "PROGRESS_EVERY", 4)
    seen: list[int] = []
    partials: list[list[int]] = []
    with EventStore(str(shop), readonly=True) as es:
        page = fetch_page(
            es,
            Filters(actor="alice"),
            limit=100,
            backwards=True,
            progress=seen.append,
            partial=lambda events: partials.append([e.position for e in events]),
        )
    assert seen == sorted(seen, reverse=True) and len(seen) >= 5
    assert partials and all(p == sorted(p) for p in partials)
    assert partials[-1] == [e.position for e in page.events][-len(partials[-1]) :]


def test_matches_all_mirrors_the_store_filters(shop: Path) -> None:
    """Both the in-memory test and the store-side scan agree with a plain
    predicate written here, for every half of each filter."""
    with EventStore(str(shop), readonly=True) as es:
        events = list(es.read())
        t = events[10].recorded_at
        cases = [
            (Filters(aggregate_type="Customer"), lambda e: e.aggregate_type == "Customer"),
            (Filters(aggregate_id="order-1"), lambda e: e.aggregate_id == "order-1"),
            (
                Filters(types=frozenset({"OrderShipped", "ItemAdded"})),
                lambda e: e.type in {"OrderShipped", "ItemAdded"},
            ),
            (Filters(since=t), lambda e: e.recorded_at >= t),
            (
                Filters(until=t, actor="carol"),
                lambda e: e.recorded_at <= t and e.metadata.get("actor") == "carol",
            ),
            (Filters(actor="Bob"), lambda e: e.metadata.get("actor") == "bob"),
        ]
        for f, predicate in cases:
            expected = [e.position for e in events if predicate(e)]
            assert expected, f  # every case selects something, and not everything
            assert len(expected) < len(events), f
            assert [e.position for e in events if f.matches_all(e)] == expected, f
            assert [e.position for e in iter_matching(es, f)] == expected, f


def test_window_is_bounded_and_tracks_its_ends(shop: Path) -> None:
    with EventStore(str(shop), readonly=True) as es:
        events = list(es.read())
    w = Window(max_size=10)
    w.reset(events[:6], at_start=True, at_end=False)
    dropped = w.append(events[6:12], complete=False)
    assert dropped == 2 and len(w) == 10 and not w.at_start
    assert w.first_position == events[2].position
    dropped = w.prepend(events[:2], complete=True)
    assert dropped == 2 and w.at_start and not w.at_end
    assert w.positions == [e.position for e in events[:10]]
    assert w.index_of(events[3].position) == 3 and w.index_of(10_000) is None
    assert w.index_at_or_before(events[4].position) == 4
    # Appending what is already there (a live tail racing a page) adds nothing twice.
    w.append(events[5:11], complete=True)
    assert w.positions == sorted(set(w.positions))


def test_filters_are_hashable_values() -> None:
    a = Filters(types=frozenset({"A"}))
    assert a == replace(Filters(), types=frozenset({"A"}))
    assert len({a, replace(a)}) == 1

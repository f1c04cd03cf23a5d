"""The main screen at the sizes terminals come in, its status line, and the live tail."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from textual.widgets import Static, Tree

from store import EventStore, NewEvent
from workbench.tui.app import WorkbenchApp
from workbench.tui.panes import AggregatesPane, DetailPane

from .helpers import settle, text_of


def open_app(path: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=True))


def status(app: WorkbenchApp) -> str:
    return text_of(app.query_one("#timeline-status", Static))


async def wait_for(pilot, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await pilot.pause(0.05)


async def test_the_status_line_follows_the_cursor(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        total = app.store.head()
        assert status(app).startswith(f"row {total} of {total} ")
        await pilot.press(*["up"] * 7)
        await settle(pilot)
        assert status(app).startswith(f"row {total - 7} of {total} ")
        await pilot.press("pageup")
        await settle(pilot)
        row = app.main.timeline.table.cursor_row + 1
        assert row < total - 7 and status(app).startswith(f"row {row} of {total} ")
        await pilot.press("g")
        await settle(pilot)
        assert status(app).startswith(f"row 1 of {total} ")


@pytest.mark.parametrize(
    ("size", "aggregates", "detail"),
    [((80, 24), False, False), ((100, 30), False, False), ((120, 30), True, False),
     ((200, 50), True, True)],
)  # fmt: skip
async def test_panes_shown_by_width_and_columns_never_cut_while_there_is_room(
    shop: Path, size: tuple[int, int], aggregates: bool, detail: bool
) -> None:
    app = open_app(shop)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        assert app.query_one(AggregatesPane).display is aggregates
        assert app.query_one(DetailPane).display is detail
        timeline = app.main.timeline
        widths = timeline.widths
        events = timeline.window.events
        assert widths["type"] >= max(len(e.type) for e in events)
        assert widths["actor"] >= max(len(e.actor or "") for e in events)
        assert widths["aggregate"] >= max(len(e.aggregate_id or "") for e in events)
        table = timeline.table
        # Every column fits: no horizontal scrolling, and the columns span the pane
        # (less room kept for a vertical scrollbar, which a short log may not need).
        region = table.scrollable_content_region.width
        assert region - 2 <= table.virtual_size.width <= region


async def test_under_110_columns_f2_and_f3_put_a_pane_in_the_timelines_place(
    shop: Path,
) -> None:
    app = open_app(shop)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        timeline, detail = app.main.timeline, app.query_one(DetailPane)
        await pilot.press("f3")
        await settle(pilot)
        assert detail.display and not timeline.display
        assert detail.outer_size.width == 80
        assert "order-5" in text_of(app.query_one("#detail-header", Static))
        await pilot.press("escape")
        await settle(pilot)
        assert timeline.display and not detail.display
        assert app.focused is timeline.table
        await pilot.press("f2")
        await settle(pilot)
        assert app.query_one(AggregatesPane).display and not timeline.display
        assert isinstance(app.focused, Tree)
        tree = app.query_one("#aggregate-tree", Tree)
        await pilot.press("down")
        chosen = tree.cursor_node.data  # type: ignore[union-attr]
        assert chosen is not None and chosen[0] == "type"
        await pilot.press("enter")  # choosing goes back to the timeline, filtered
        await settle(pilot)
        assert timeline.display and app.main.timeline.filters.aggregate_type == chosen[1]


async def test_between_110_and_160_columns_one_side_pane_at_a_time(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        aggregates, detail = app.query_one(AggregatesPane), app.query_one(DetailPane)
        await pilot.press("f3")
        await settle(pilot)
        assert detail.display and not aggregates.display and app.main.timeline.display
        await pilot.press("f2")
        await settle(pilot)
        assert aggregates.display and not detail.display


async def test_live_tail_moves_the_header_and_the_aggregate_versions(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        head = app.store.head()
        assert f"chain ✓ through #{head}" in app.main.sub_title
        tree = app.query_one("#aggregate-tree", Tree)
        orders = next(n for n in tree.root.children if n.data == ("type", "Order"))
        customers = next(n for n in tree.root.children if n.data == ("type", "Customer"))
        orders.expand()
        await settle(pilot)

        def label(node_id: str) -> str:
            leaf = next(n for n in orders.children if n.data == ("aggregate", node_id))
            return str(leaf.label)

        assert label("order-1") == "order-1  v4"
        await pilot.press("t")
        with EventStore(str(shop)) as writer:
            writer.append([NewEvent("NoteAdded", {"n": 1})], aggregate_id="order-1")
            writer.append([NewEvent("NoteAdded", {"n": 2})], aggregate_id="order-1")
            writer.append(
                [NewEvent("CustomerRegistered", {})],
                aggregate_id="customer-9",
                aggregate_type="Customer",
            )
        timeline = app.main.timeline
        await wait_for(pilot, lambda: timeline.window.last_position == head + 3)
        for _ in range(3):  # the same tail tick's message, up the DOM to the screen
            await pilot.pause()
        assert f"{head + 3} events" in app.main.sub_title
        assert label("order-1") == "order-1  v6"
        assert str(customers.label) == "Customer  3"
        # The chain is checked again, through the new head.
        await wait_for(pilot, lambda: f"chain ✓ through #{head + 3}" in app.main.sub_title)

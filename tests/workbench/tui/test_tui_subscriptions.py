"""The subscriptions view: positions on the timeline, lag, failures, the jump."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from store import EventStore, HandlerError, RecordedEvent
from workbench.tui.app import WorkbenchApp
from workbench.tui.subscriptions import SubscriptionsScreen, position_bar

from .helpers import settle, text_of

SIZE = (160, 45)


def _consumers(path: Path) -> None:
    with EventStore(str(path)) as es:
        es.subscribe("projector", lambda e: None, follow=False)

        def mail(event: RecordedEvent) -> None:
            if event.position == 9:
                raise ConnectionError("smtp refused")

        with pytest.raises(HandlerError):
            es.subscribe("mailer", mail, follow=False, batch_size=4)


def test_position_bar() -> None:
    assert position_bar(0, 10, 10) == "░" * 10
    assert position_bar(10, 10, 10) == "█" * 10
    assert position_bar(5, 10, 10) == "█" * 5 + "░" * 5
    assert position_bar(99, 100, 10) == "█" * 9 + "░"  # behind is never drawn full
    assert position_bar(0, 0, 4) == "████"  # an empty log: nothing to be behind on


async def test_lists_consumers_and_jumps_to_the_first_unhandled_event(shop: Path) -> None:
    _consumers(shop)
    app = WorkbenchApp(EventStore(str(shop), readonly=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.action_subscriptions()
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SubscriptionsScreen)
        await app.workers.wait_for_complete()
        await settle(pilot)
        head = app.store.head()
        summary = text_of(screen.query_one("#subs-summary", Static))
        assert f"head position {head}" in summary and "1 behind" in summary
        assert "1 stopped" in summary
        table = screen.query_one("#subs-table", DataTable)
        assert table.row_count == 2
        names = [str(table.get_row_at(i)[0]) for i in range(2)]
        assert names == ["mailer", "projector"]
        mailer = table.get_row_at(0)
        assert mailer[2] == "8" and str(mailer[3]) == f"{head - 8}"
        assert str(mailer[6]) == position_bar(8, head)
        failure = text_of(screen.query_one("#subs-failure", Static))
        assert "Stopped at position 9: ConnectionError: smtp refused" in failure
        # The caught-up one has nowhere to go.
        await pilot.press("down", "enter")
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("up", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, SubscriptionsScreen)
        assert app.main.timeline.selected is not None and app.main.timeline.selected.position == 9


async def test_a_store_without_subscriptions_says_so(shop: Path) -> None:
    app = WorkbenchApp(EventStore(str(shop), readonly=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.action_subscriptions()
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert "No subscriptions" in text_of(app.screen.query_one("#subs-summary", Static))
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, SubscriptionsScreen)

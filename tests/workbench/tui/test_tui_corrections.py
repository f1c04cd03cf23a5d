"""Revert and void from the TUI (reason, confirmation, then one event), voided
events struck through and marked, and replay's time seek in business time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from textual.widgets import DataTable, Input, Static

from store import EventStore
from workbench.tui.app import WorkbenchApp
from workbench.tui.correcting import VOID_MARK, ReasonDialog
from workbench.tui.panes import DetailPane
from workbench.tui.replay import ReplayScreen
from workbench.tui.writing import READ_ONLY, ConfirmDialog

from .helpers import settle, text_of

SIZE = (160, 45)


def open_app(path: Path, *, readonly: bool = True) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=readonly))


async def _give_reason(pilot, reason: str) -> ReasonDialog:  # type: ignore[no-untyped-def]
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, ReasonDialog)
    dialog.query_one("#reason", Input).value = reason
    await pilot.press("enter")
    await settle(pilot)
    return dialog


async def test_read_only_refuses_void_and_revert(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await pilot.press("V")
        await settle(pilot)
        assert not isinstance(app.screen, ReasonDialog)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ReplayScreen)
        await pilot.press("[", "R", "V")
        await settle(pilot)
        assert isinstance(app.screen, ReplayScreen)
        assert sum(n.message == READ_ONLY for n in app._notifications) >= 2
    with EventStore(str(shop), readonly=True) as es:
        assert es.head() == head


async def test_void_asks_a_reason_and_a_confirmation_then_strikes_the_event(shop: Path) -> None:
    app = open_app(shop, readonly=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await pilot.press("up")  # order-5 version 3, AddressChanged
        await settle(pilot)
        wrong = app.main.selected
        assert wrong is not None and wrong.type == "AddressChanged"
        await pilot.press("V")
        dialog = await _give_reason(pilot, "   ")  # a blank reason is refused in place
        assert app.screen is dialog
        assert "reason is required" in text_of(dialog.query_one("#reason-error", Static))
        await _give_reason(pilot, "address typed for the wrong customer")
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        assert f"Void event #{wrong.position}" in confirm.question
        assert "address typed for the wrong customer" in confirm.question
        await pilot.press("n")
        await settle(pilot)
        assert app.store.head() == head  # no: nothing written

        await pilot.press("V")
        await _give_reason(pilot, "address typed for the wrong customer")
        await pilot.press("y")
        await settle(pilot)
        assert app.store.head() == head + 1
        void = app.store.get(head + 1)
        assert void.type == "sss.Voided" and void.data["voided_position"] == wrong.position
        assert void.metadata["reason"] == "address typed for the wrong customer"
        assert "address" not in app.store.state_at("order-5").state
        # The timeline marks the voided row; the detail pane says by what and why.
        table = app.main.timeline.table
        row = table.get_row(str(wrong.position))
        assert str(row[4]).startswith(f"{VOID_MARK} ")
        assert any("strike" in str(span.style) for span in row[4].spans)
        app.main.timeline.jump_to_position(wrong.position)
        await settle(pilot)
        detail = app.main.query_one(DetailPane)
        shown = text_of(detail.query_one("#detail-header", Static))
        assert f"VOIDED by #{head + 1}" in shown and "wrong customer" in shown
        # A second void of it is refused before any dialog.
        await pilot.press("V")
        await settle(pilot)
        assert not isinstance(app.screen, ReasonDialog)
        assert app.store.head() == head + 1
        assert app.store.verify().ok


async def test_revert_from_replay_goes_back_to_the_version_shown(shop: Path) -> None:
    app = open_app(shop, readonly=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.open_replay("order-1")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and screen.version == 4
        await pilot.press("R")  # at the latest version: nothing to revert to
        await settle(pilot)
        assert app.screen is screen
        await pilot.press("[", "[")
        await settle(pilot)
        assert screen.version == 2
        wanted = app.store.state_at("order-1", version=2).state
        await pilot.press("R")
        await _give_reason(pilot, "the address and shipment were entered on the wrong order")
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        assert "Revert order-1 from version 4 to the state of version 2" in confirm.question
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen
        assert app.store.state_at("order-1").state == wanted
        reverted = app.store.get(app.store.head())
        assert reverted.type == "sss.Reverted" and reverted.metadata["reverted_to_version"] == 2
        assert screen.version == 5 and screen.state == wanted
        # The void of a version's event from replay: the versions list marks it.
        await pilot.press("home")
        await settle(pilot)
        await pilot.press("]")  # version 2, ItemAdded
        await settle(pilot)
        await pilot.press("V")
        await _give_reason(pilot, "the pen was never ordered")
        await pilot.press("y")
        await settle(pilot)
        versions = screen.query_one("#replay-versions", DataTable)
        assert str(versions.get_row("2")[2]).startswith(VOID_MARK)
        assert app.store.verify().ok
        await pilot.press("escape")  # back on the timeline, the row is struck there too
        await settle(pilot)
        item_added = app.store.stream("order-1", 2, 2)
        position = next(iter(item_added)).position
        row = app.main.timeline.table.get_row(str(position))
        assert str(row[4]).startswith(f"{VOID_MARK} ")


async def test_business_time_seek_in_replay_follows_occurred_at(shop: Path) -> None:
    # Business times are weeks before the recorded ones: a seek to a moment
    # in May finds the order placed in business time and nothing in system time.
    moment = "2024-05-01T09:04:30Z"  # after event 4 occurred (order-0's second event)
    at = datetime(2024, 5, 1, 9, 4, 30, tzinfo=UTC)
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.open_replay("order-0")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and not screen.business
        screen.seek(moment)
        await settle(pilot)
        recorded_state = dict(screen.state)
        assert recorded_state == app.store.state_at("order-0", at=at).state == {}
        await pilot.press("escape")
        await settle(pilot)

        await pilot.press("T")  # the timeline shows business time, and replay seeks in it
        app.main.open_replay("order-0")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and screen.business
        screen.seek(moment)
        await settle(pilot)
        expected = app.store.state_at("order-0", occurred=at)
        assert screen.state == expected.state != recorded_state
        assert screen.version == expected.version == 2
        assert "business time" in text_of(screen.query_one("#replay-note", Static))
        await pilot.press("T")  # and back: recorded time again
        screen.seek(moment)
        await settle(pilot)
        assert screen.state == recorded_state

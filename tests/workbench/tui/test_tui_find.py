"""Replay's "find the first version where…" prompt jumps to the version found."""

from __future__ import annotations

from pathlib import Path

from workbench.tui.dialogs import PromptDialog

from .helpers import settle
from .test_tui_replay import SIZE, open_app, open_replay


async def test_find_first_version_where_jumps_there(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-1")
        screen.goto(1)
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        assert isinstance(app.screen, PromptDialog)
        await pilot.press(*'/address/city == "Lyon"', "enter")
        await settle(pilot)
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert app.screen is screen
        assert screen.version == 3 and "first holds at version 3" in screen.note


async def test_a_bad_expression_is_refused_in_the_dialog(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-1")
        await pilot.press("w")
        await settle(pilot)
        await pilot.press(*"/total <", "enter")
        await settle(pilot)
        dialog = app.screen
        assert isinstance(dialog, PromptDialog)  # still open, saying what is wrong
        error = str(dialog.query_one("#prompt-error").render())
        assert "column 9" in error
        await pilot.press("escape")
        await settle(pilot)
        screen.find_first("/nothing exists")
        await app.workers.wait_for_complete()
        await settle(pilot)
        assert app.screen is screen

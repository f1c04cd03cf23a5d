"""Hostile event content in the TUI: every widget shows it escaped.

The screen is rendered in full (timeline cells, sidebar, detail header and JSON
tree, chips, titles, notifications, the replay screen) and its text must hold
no raw control character or bidi override; the bytes Textual would send to the
terminal must hold no escape sequence from the store.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import Input

from store import EventStore
from tests.workbench.hostile import AGGREGATE, assert_safe, build_hostile_store
from workbench.tui.app import WorkbenchApp
from workbench.tui.commands import WorkbenchCommands
from workbench.tui.dialogs import ExportDialog, FilterDialog
from workbench.tui.panes import AggregatesPane
from workbench.tui.replay import ReplayScreen

from .helpers import settle

SIZE = (200, 50)


@pytest.fixture
def hostile_db(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.db"
    build_hostile_store(path)
    return path


def screen_text(app: App[object]) -> tuple[str, str]:
    """(the screen's text, the terminal output that would draw it)."""
    update = app.screen._compositor.render_full_update()
    text = "\n".join("".join(strip.text for strip in line) for line in update.strips)
    return text, update.render_segments(app.console)


def assert_screen_safe(app: App[object]) -> str:
    text, terminal = screen_text(app)
    assert_safe(text, newline_ok=True)
    for sequence in ("\x1b]", "\x07", "\x1b[2J", "\x9b", "\x9d", "\u202e"):
        assert sequence not in terminal, repr(sequence)
    return text


async def test_every_pane_shows_hostile_text_escaped(hostile_db: Path) -> None:
    app = WorkbenchApp(EventStore(str(hostile_db), readonly=True))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        text = assert_screen_safe(app)
        assert "T\\x1b]0;PWNED\\x07x" in text  # the newest event's type, in the timeline
        pane = app.query_one(AggregatesPane)
        for node in pane.aggregate_tree.root.children:
            node.expand()  # the sidebar lists the hostile aggregate under its hostile type
        await settle(pilot)
        text = assert_screen_safe(app)
        assert "=Order\\x1b]0;PWNED\\x07" in text and "a\\x1b[2Jb" in text
        assert AGGREGATE in pane.known_ids
        app.main.timeline.table.focus()
        app.main.timeline.table.move_cursor(row=0)  # the first event: every field hostile
        await settle(pilot)
        text = assert_screen_safe(app)
        assert "\\u202e" in text and "\\x1b[2J" in text
        app.main.open_aggregate(AGGREGATE)  # a chip quoting the id
        await settle(pilot)
        text = assert_screen_safe(app)
        assert "aggregate:a\\x1b[2Jb" in text
        await pilot.press("f")  # the filter dialog, prefilled with the hostile id
        await settle(pilot)
        assert isinstance(app.screen, FilterDialog)
        text = assert_screen_safe(app)
        assert "a␛[2Jb" in text  # drawn as control pictures; the value stays exact
        assert app.screen.query_one("#f-aggregate-id", Input).value == AGGREGATE
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("e")  # the export dialog: a summary and a path made from the id
        await settle(pilot)
        assert isinstance(app.screen, ExportDialog)
        assert_screen_safe(app)
        await pilot.press("escape")
        await settle(pilot)
        app.notify("about a\x1b[2Jb\u202e", title="T\x1b]0;PWNED\x07")
        await pilot.pause()
        assert_screen_safe(app)
        shown = [(str(n.message), n.title) for n in app._notifications]
        assert ("about a\\x1b[2Jb\\u202e", "T\\x1b]0;PWNED\\x07") in shown
        app.notify("[@click=app.quit]order[/] [b]x[/b]")
        await pilot.pause()
        last = app._notifications
        assert any(
            n.message == "[@click=app.quit]order[/] [b]x[/b]" and not n.markup for n in last
        ), "stored text in a notification must stay text, never markup"
        names = [name for name, _, _ in WorkbenchCommands(app.screen).commands()]
        for name in names:
            assert_safe(name)
        assert "Filter by type: T\\x1b]0;PWNED\\x07x" in names
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(app.screen, ReplayScreen)
        assert_safe(app.screen.title or "")
        text = assert_screen_safe(app)
        assert "Replay a\\x1b[2Jb" in text
        await pilot.press("home")
        await settle(pilot)
        assert_screen_safe(app)

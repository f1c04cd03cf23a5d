"""What the TUI does with hostile or mistaken input: bad times, absurd
seeks, outputs that must not be written. A notification or a dialog error,
never a crash, and the store unchanged."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from textual.widgets import Input, Static

from store import EventStore
from workbench.cli import main
from workbench.inputs import InputError
from workbench.tui.app import WorkbenchApp
from workbench.tui.dialogs import ExportDialog, FilterDialog, PromptDialog
from workbench.tui.replay import ReplayScreen, parse_seek

from .helpers import settle, text_of

SIZE = (160, 45)
ABSURD = "-99999999999d"


def open_app(path: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=True))


def notes(app: WorkbenchApp) -> list[str]:
    return [str(n.message) for n in app._notifications]


def digest(path: Path) -> str:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT * FROM events ORDER BY position").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize(
    ("typed", "fragment"),
    [
        (ABSURD, "out of the calendar"),
        ("2024-05-01T12:00", "has no timezone"),
        ("#" + "9" * 5000, "beyond any position"),
        ("soon", "is not a time"),
    ],
)
async def test_seek_prompt_refuses_bad_input_and_stays_open(
    shop: Path, typed: str, fragment: str
) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        dialog = app.screen
        assert isinstance(dialog, PromptDialog)
        dialog.query_one("#prompt-input", Input).value = typed
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is dialog
        assert fragment in text_of(dialog.query_one("#prompt-error", Static))
        # Called directly (as a command would), it is a notification, not a crash.
        app.main.seek(typed)
        await settle(pilot)
        assert any(fragment in note for note in notes(app))


@pytest.mark.parametrize("field", ["#f-since", "#f-until"])
@pytest.mark.parametrize(
    ("typed", "fragment"), [(ABSURD, "out of the calendar"), ("2024-05-01", "has no timezone")]
)
async def test_filter_dialog_refuses_absurd_and_naive_times(
    shop: Path, field: str, typed: str, fragment: str
) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, FilterDialog)
        dialog.query_one(field, Input).value = typed
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is dialog
        assert fragment in text_of(dialog.query_one("#f-error", Static))


async def test_replay_seek_refuses_absurd_times(shop: Path) -> None:
    with pytest.raises(InputError, match="out of the calendar"):
        parse_seek(ABSURD)
    with pytest.raises(InputError, match="beyond any position"):
        parse_seek("v" + "9" * 30)
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.open_aggregate("order-2")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        screen.seek(ABSURD)
        await settle(pilot)
        assert app.screen is screen
        assert any("out of the calendar" in note for note in notes(app))


async def test_seek_past_the_end_says_so(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.seek("#99999")
        await settle(pilot)
        head = app.store.head()
        assert (
            app.main.timeline.selected is not None and app.main.timeline.selected.position == head
        )
        status = text_of(app.query_one("#timeline-status", Static))
        assert "past the newest event" in status and "does not match" not in status


async def test_export_dialog_tab_then_enter_exports(shop: Path, tmp_path: Path) -> None:
    app = open_app(shop)
    target = tmp_path / "tabbed.jsonl"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        dialog.query_one("#export-path", Input).value = str(target)
        await pilot.press("tab", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, ExportDialog)
    assert len(target.read_text().splitlines()) == EventStore(str(shop), readonly=True).head()


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
async def test_export_onto_the_store_is_refused(shop: Path, suffix: str) -> None:
    before = digest(shop)
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.export_now("jsonl", str(shop) + suffix)
        await settle(pilot)
        assert any("store being read" in note for note in notes(app))
    assert digest(shop) == before


async def test_tui_and_cli_exports_are_the_same_bytes(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for fmt in ("csv", "jsonl"):
            app.main.export_now(fmt, str(tmp_path / f"tui.{fmt}"))
            await settle(pilot)
    for fmt in ("csv", "jsonl"):
        assert main(["export", str(shop), "--format", fmt, "-o", str(tmp_path / f"cli.{fmt}")]) == 0
        tui, cli = (tmp_path / f"tui.{fmt}").read_bytes(), (tmp_path / f"cli.{fmt}").read_bytes()
        assert tui == cli and b"\r\n" not in tui

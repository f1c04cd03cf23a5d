"""Pictures of the main screens at a fixed size (pytest-textual-snapshot).

The fixture store is built deterministically, its ``recorded_at`` from a
stepping clock given to the store, so every time and hash on screen is the
stored one. Update pictures with ``pytest --snapshot-update`` after checking
the diff report.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from store import EventStore
from workbench.tui.app import WorkbenchApp
from workbench.tui.replay import ReplayScreen

from .helpers import settle

SIZE = (160, 45)


def frozen_app(shop: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(shop), readonly=True))


async def still(pilot: Pilot[int]) -> None:
    """Workers done, cursors not blinking, and every pane painted (trees lay out lazily)."""
    await settle(pilot)
    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.1)
    await pilot.pause()


# The smallest size laid out for, a common laptop terminal, and a large screen.
SIZES = [(80, 24), (120, 30), (200, 50)]
SIZE_IDS = ["80x24", "120x30", "200x50"]


def test_main_screen(shop: Path, snap_compare) -> None:
    assert snap_compare(frozen_app(shop), terminal_size=SIZE, run_before=still)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_main_screen_fits(shop: Path, snap_compare, size: tuple[int, int]) -> None:
    assert snap_compare(frozen_app(shop), terminal_size=size, run_before=still)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_replay_screen_fits(shop: Path, snap_compare, size: tuple[int, int]) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReplayScreen)
        await pilot.press("[")
        await still(pilot)

    assert snap_compare(frozen_app(shop), terminal_size=size, run_before=run_before)


def test_filtered_by_correlation(shop: Path, snap_compare) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("up", "up", "c")
        await still(pilot)

    assert snap_compare(frozen_app(shop), terminal_size=SIZE, run_before=run_before)


def test_filter_dialog(shop: Path, snap_compare) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await still(pilot)
        await pilot.press("f", "space", "down", "down", "space")
        await still(pilot)

    assert snap_compare(frozen_app(shop), terminal_size=SIZE, run_before=run_before)


def test_replay_screen(shop: Path, snap_compare) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        pilot.app.main.open_aggregate("order-1")  # type: ignore[attr-defined]
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        assert isinstance(pilot.app.screen, ReplayScreen)
        await pilot.press("[", "[")
        await settle(pilot)
        await pilot.press("down", "b")
        await still(pilot)

    assert snap_compare(frozen_app(shop), terminal_size=SIZE, run_before=run_before)


def test_help_screen(shop: Path, snap_compare) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await still(pilot)
        await pilot.press("f1")
        await still(pilot)

    assert snap_compare(frozen_app(shop), terminal_size=SIZE, run_before=run_before)

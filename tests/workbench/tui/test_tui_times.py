"""The two clocks on screen: the timeline's time column, the detail pane and
the replay notes show the time they name, never the other one.

The fixture store records every event weeks after it occurred (see
``conftest``), so the two times never agree.
"""

from __future__ import annotations

from pathlib import Path

from textual.coordinate import Coordinate
from textual.widgets import Static

from store import EventStore
from workbench.late import LATE_MARK
from workbench.tui.app import WorkbenchApp
from workbench.tui.fmt import short_time, time_text
from workbench.tui.replay import ReplayScreen

from .conftest import occurred_of, recorded_of
from .helpers import rows, settle, text_of

SIZE = (160, 45)
NEWEST = 26  # 2 customers and 6 orders of 4 events


def open_app(path: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=True))


def time_cells(app: WorkbenchApp) -> dict[int, str]:
    table = app.main.timeline.table
    column = table.get_column_index("time")
    return {
        position: str(table.get_cell_at(Coordinate(row, column)))
        for row, position in enumerate(rows(app))
    }


def same_times(cells: dict[int, str], expected: dict[int, str]) -> bool:
    """Each cell shows its expected time, perhaps without the year (narrow
    terminals) and with the late mark after it."""
    return cells.keys() == expected.keys() and all(
        cell.replace(LATE_MARK, "").strip()
        and expected[n].endswith(cell.replace(LATE_MARK, "").strip())
        for n, cell in cells.items()
    )


def time_header(app: WorkbenchApp) -> str:
    return str(
        app.main.timeline.table.ordered_columns[
            app.main.timeline.table.get_column_index("time")
        ].label
    )


def detail_line(app: WorkbenchApp, key: str) -> str:
    """The value on one line of the detail pane's header ("recorded", "occurred")."""
    text = text_of(app.query_one("#detail-header", Static))
    after = text.split(f" {key} ", 1)[1] if f" {key} " in text else text.split(f"{key} ", 1)[1]
    return " ".join(after.split()[:3])


def test_the_fixture_times_differ_everywhere(shop: Path) -> None:
    with EventStore(str(shop), readonly=True) as es:
        events = list(es.read())
    assert [e.recorded_at for e in events] == [recorded_of(n) for n in range(1, NEWEST + 1)]
    assert [e.occurred_at for e in events] == [occurred_of(n) for n in range(1, NEWEST + 1)]
    assert all(short_time(e.recorded_at) != short_time(e.occurred_at) for e in events)


async def test_t_switches_the_time_column_between_the_two_clocks(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        shown = rows(app)
        assert shown == list(range(1, NEWEST + 1))
        assert time_header(app) == "Recorded"
        assert same_times(time_cells(app), {n: short_time(recorded_of(n)) for n in shown})

        await pilot.press("T")
        await settle(pilot)
        assert app.main.timeline.time_column == "occurred"
        assert time_header(app) == "Occurred"
        assert same_times(time_cells(app), {n: short_time(occurred_of(n)) for n in shown})
        assert (
            app.main.timeline.selected is not None and app.main.timeline.selected.position == NEWEST
        )

        await pilot.press("T")
        await settle(pilot)
        assert time_header(app) == "Recorded"
        assert same_times(time_cells(app), {n: short_time(recorded_of(n)) for n in shown})


async def test_detail_pane_names_each_time_right(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        for position in (NEWEST, NEWEST - 1):
            assert app.main.timeline.selected is not None
            assert app.main.timeline.selected.position == position
            assert detail_line(app, "recorded") == time_text(recorded_of(position))
            assert detail_line(app, "occurred") == time_text(occurred_of(position))
            await pilot.press("up")
            await settle(pilot)
        # The time column's choice does not change what the pane says.
        await pilot.press("T")
        await settle(pilot)
        assert detail_line(app, "recorded") == time_text(recorded_of(NEWEST - 2))
        assert detail_line(app, "occurred") == time_text(occurred_of(NEWEST - 2))


async def test_replay_seek_notes_name_the_closest_earlier_event(shop: Path) -> None:
    """order-2 is events 11-14. A position or a time between two of its
    versions, or after its last, lands on the version before and says which
    event that is, by its position and recorded time."""
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.open_aggregate("order-2")
        await settle(pilot)
        await pilot.press("r")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen) and screen.aggregate_id == "order-2"

        screen.seek("#15")
        await settle(pilot)
        assert screen.version == 4
        assert screen.note == (
            "no event of order-2 at position #15; landed on version 4 "
            f"(#14, {short_time(recorded_of(14))}), the closest earlier event"
        )
        assert screen.note in text_of(screen.query_one("#replay-note", Static))

        between = recorded_of(12) + (recorded_of(13) - recorded_of(12)) / 2
        screen.seek(between.isoformat())
        await settle(pilot)
        assert screen.version == 2
        assert screen.note == (
            f"no event of order-2 at {between.isoformat()} ({short_time(between)} UTC); "
            f"landed on version 2 (#12, {short_time(recorded_of(12))}), the closest earlier event"
        )

        screen.seek(recorded_of(13).isoformat())
        await settle(pilot)
        assert screen.version == 3
        assert screen.note == (
            f"{recorded_of(13).isoformat()} ({short_time(recorded_of(13))} UTC) is version 3"
        )

        screen.seek("#12")
        await settle(pilot)
        assert (screen.version, screen.note) == (2, "position #12 is version 2")

        screen.seek("#10")
        await settle(pilot)
        assert screen.version == 0
        assert screen.note == "position #10 is before the first event of order-2; showing version 0"

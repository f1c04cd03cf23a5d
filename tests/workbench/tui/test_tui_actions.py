"""Pivot keys (c a o, C A O), write actions and their read-only refusal, late marks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from textual.widgets import Input, Static, TextArea

from store import EventStore, NewEvent
from workbench.late import LATE_MARK
from workbench.tui.app import WorkbenchApp
from workbench.tui.commands import WorkbenchCommands
from workbench.tui.dialogs import HelpScreen
from workbench.tui.keys import HELP_INTRO, PIVOT_RULE, PIVOTS, pivot_help
from workbench.tui.writing import READ_ONLY, AppendDialog, ConfirmDialog

from .helpers import settle, text_of

SIZE = (160, 45)
README = Path(__file__).resolve().parents[3] / "README.md"


def open_app(path: Path, *, readonly: bool = True) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=readonly))


async def test_lower_case_pivots_add_a_chip_and_upper_case_keeps_only_theirs(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        main = app.main
        main.filter_by_type("OrderShipped")
        await settle(pilot)
        event = main.selected
        assert event is not None and event.type == "OrderShipped"
        await pilot.press("a")
        await settle(pilot)
        assert main.timeline.filters.types == {"OrderShipped"}
        assert main.timeline.filters.actor == event.actor
        await pilot.press("c")
        await settle(pilot)
        f = main.timeline.filters
        assert (f.types, f.actor, f.correlation_id) == (
            {"OrderShipped"},
            event.actor,
            event.correlation_id,
        )
        assert [e.position for e in main.timeline.window.events] == [event.position]
        await pilot.press("o")  # one more chip: the same single event still matches
        await settle(pilot)
        assert main.timeline.filters.aggregate_id == event.aggregate_id
        assert len(main.timeline.filters.chips()) == 4
        await pilot.press("O")
        await settle(pilot)
        assert main.timeline.filters.chips() == [
            ("aggregate_id", f"aggregate:{event.aggregate_id}")
        ]
        assert len(main.timeline.window) == 4  # every event of the order
        await pilot.press("C")
        await settle(pilot)
        assert [name for name, _ in main.timeline.filters.chips()] == ["correlation_id"]
        await pilot.press("A")
        await settle(pilot)
        assert [name for name, _ in main.timeline.filters.chips()] == ["actor"]
        assert {e.actor for e in main.timeline.window.events} == {event.actor}


async def test_one_description_of_the_pivots_in_readme_help_and_palette(shop: Path) -> None:
    assert PIVOT_RULE in " ".join(README.read_text(encoding="utf-8").split())
    assert PIVOT_RULE in HELP_INTRO
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        helps = {help_text for _, help_text, _ in WorkbenchCommands(app.screen).commands()}
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        described = {description for _, _, description in app.screen.rows()}
        for pivot in PIVOTS:
            for only in (False, True):
                words = pivot_help(pivot, only=only)
                assert words in described
                assert any(text.startswith(words) for text in helps)


async def test_read_only_refuses_to_append_and_says_how_to_write(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await pilot.press("w")
        await settle(pilot)
        assert not isinstance(app.screen, AppendDialog)
        assert any(n.message == READ_ONLY for n in app._notifications)
        assert "--write" in READ_ONLY
    with EventStore(str(shop), readonly=True) as es:
        assert es.head() == head


async def _fill_dialog(pilot, kind: str, data: str) -> AppendDialog:  # type: ignore[no-untyped-def]
    await pilot.press("w")
    await settle(pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, AppendDialog)
    dialog.query_one("#append-type", Input).value = kind
    dialog.query_one("#append-data", TextArea).text = data
    return dialog


async def test_append_asks_for_a_valid_event_then_for_confirmation(shop: Path) -> None:
    app = open_app(shop, readonly=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        assert app.main.selected is not None and app.main.selected.aggregate_id == "order-5"
        dialog = await _fill_dialog(pilot, "NoteAdded", '{"note": oops}')
        await pilot.press("ctrl+s")
        error = text_of(dialog.query_one("#append-error", Static))
        assert app.screen is dialog and "data is not valid JSON" in error and "line 1" in error
        dialog.query_one("#append-data", TextArea).text = "[1, 2]"
        await pilot.press("ctrl+s")
        assert "must be a JSON object" in text_of(dialog.query_one("#append-error", Static))
        dialog.query_one("#append-data", TextArea).text = '{"note": "checked"}'
        await pilot.press("ctrl+s")
        await settle(pilot)
        confirm = app.screen
        assert isinstance(confirm, ConfirmDialog)
        assert "Append NoteAdded to order-5 as version 5" in confirm.question
        await pilot.press("n")  # no: nothing is written
        await settle(pilot)
        assert app.store.head() == head

        await _fill_dialog(pilot, "NoteAdded", '{"note": "checked"}')
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.store.head() == head + 1
        stored = app.store.get(head + 1)
        assert (stored.type, stored.aggregate_id, stored.version) == ("NoteAdded", "order-5", 5)
        assert stored.data == {"note": "checked"}
        assert str(stored.actor).startswith("user:")
        assert app.main.selected is not None and app.main.selected.position == head + 1
        assert f"{head + 1} events" in app.main.sub_title
        assert f"{head + 1} matching" in text_of(app.query_one("#timeline-status", Static))


async def test_append_after_another_writer_is_refused_and_writes_nothing(shop: Path) -> None:
    app = open_app(shop, readonly=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await _fill_dialog(pilot, "NoteAdded", "{}")
        with EventStore(str(shop)) as other:
            other.append([NewEvent("Shipped", {})], aggregate_id="order-5")
        await pilot.press("ctrl+s")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert app.store.head() == head + 1  # the other writer's event only
        messages = [str(n.message) for n in app._notifications]
        assert any(m.startswith("Nothing was appended:") and "version 4" in m for m in messages)


async def test_late_events_are_marked_in_the_timeline_and_the_detail(tmp_path: Path) -> None:
    placed = datetime(2024, 5, 30, 10, tzinfo=UTC)
    times = iter([placed + timedelta(minutes=2), placed + timedelta(days=26, hours=3)])
    path = tmp_path / "late.db"
    with EventStore(str(path), clock=lambda: next(times)) as es:
        es.append([NewEvent("OrderPlaced", {}, occurred_at=placed)], aggregate_id="o")
        es.append([NewEvent("TotalCorrected", {}, occurred_at=placed)], aggregate_id="o")
    app = open_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        table = app.main.timeline.table
        cells = [str(table.get_row_at(row)[1]) for row in range(table.row_count)]
        assert [LATE_MARK in cell for cell in cells] == [False, True]
        header = text_of(app.query_one("#detail-header", Static))
        assert "late: recorded 26 d 3 h after it occurred" in header
        await pilot.press("up")
        await settle(pilot)
        assert "late" not in text_of(app.query_one("#detail-header", Static))


async def test_verify_from_the_palette_shows_the_merkle_size_and_root(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        assert not any("Merkle" in str(n.message) for n in app._notifications)  # not at start
        app.main.action_verify()
        await settle(pilot)
        report = app.main.verify_report
        assert report is not None and report.ok and report.root is not None
        with EventStore(str(shop), readonly=True) as es:
            expected = es.checkpoint()
        said = [str(n.message) for n in app._notifications if "Merkle" in str(n.message)]
        assert said == [
            f"{expected.size:,} events checked through #{expected.size:,}. "
            f"Merkle tree: size {expected.size:,}, root {expected.root}"
        ]

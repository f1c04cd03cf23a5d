"""Replay (step, seek, play, blame) and live tail, driven with Pilot."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from textual.widgets import DataTable, Static

from store import EventStore, NewEvent
from workbench.tui import replay as replay_module
from workbench.tui.app import WorkbenchApp
from workbench.tui.jsonview import JsonTree
from workbench.tui.replay import ReplayScreen, blame

from .helpers import rows, settle, text_of

SIZE = (160, 45)


def open_app(path: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=True))


async def open_replay(pilot, aggregate_id: str) -> ReplayScreen:  # type: ignore[no-untyped-def]
    app = pilot.app
    app.main.open_aggregate(aggregate_id)
    await settle(pilot)
    await pilot.press("r")
    await settle(pilot)
    screen = app.screen
    assert isinstance(screen, ReplayScreen)
    return screen


async def test_step_through_versions_with_diff_and_marks(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-1")
        assert screen.version == 4  # the selected event is the aggregate's newest
        await pilot.press("[", "[")
        await settle(pilot)
        assert screen.version == 2
        assert screen.state == {"status": "placed", "total": 22, "items": ["book", "pen-1"]}
        assert "/total" in {c.path for c in screen.step.changes}
        diff = text_of(screen.query_one("#replay-diff", Static))
        assert "/total" in diff and "20" in diff and "22" in diff
        tree = screen.query_one("#replay-state", JsonTree)
        marked = [str(node.label) for node in tree.root.children if "●" in str(node.label)]
        assert any(label.startswith("● total") for label in marked)
        assert not any("status" in label for label in marked)
        await pilot.press("]")
        await settle(pilot)
        assert screen.version == 3
        assert screen.state["address"] == {"city": "Lyon", "zip": "69001"}
        await pilot.press("home")
        await settle(pilot)
        assert screen.version == 1
        await pilot.press("[")
        await settle(pilot)
        assert screen.version == 0 and screen.state == {}
        versions = screen.query_one("#replay-versions", DataTable)
        assert versions.row_count == 4
        await pilot.press("escape")
        assert not isinstance(app.screen, ReplayScreen)


async def test_enter_on_an_event_replays_its_aggregate_as_of_it(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("up", "enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReplayScreen)
        assert (screen.aggregate_id, screen.version) == ("order-5", 3)
        assert screen.state["address"]["zip"] == "69005"


async def test_seek_version_position_and_time(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-2")
        events = list(app.store.stream("order-2"))
        screen.seek("v2")
        await settle(pilot)
        assert screen.version == 2

        screen.seek(f"#{events[2].position}")
        await settle(pilot)
        assert screen.version == 3 and "is version 3" in screen.note

        # A position of another aggregate after the last version lands on it and says so.
        other = app.store.get(events[-1].position + 1)
        assert other.aggregate_id != "order-2"
        screen.seek(f"#{other.position}")
        await settle(pilot)
        assert screen.version == 4 and "closest earlier" in screen.note
        assert f"(#{events[-1].position}," in screen.note

        screen.seek(events[1].recorded_at.isoformat())
        await settle(pilot)
        assert screen.version == 2

        screen.seek("2000-01-01T00:00Z")
        await settle(pilot)
        assert screen.version == 0 and "before the first event" in screen.note

        screen.seek("v99")
        await settle(pilot)
        assert screen.version == 4 and "has 4 versions" in screen.note
        note = text_of(screen.query_one("#replay-note", Static))
        assert "has 4 versions" in note


async def test_palette_offers_replay_actions_on_the_replay_screen(shop: Path) -> None:
    from workbench.tui.commands import WorkbenchCommands

    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-0")
        provider = WorkbenchCommands(screen)
        commands = {name: callback for name, _, callback in provider.commands()}
        for name in ["Replay: next version", "Replay: seek…", "Replay: blame field"]:
            assert name in commands
        commands["Replay: previous version"]()
        await settle(pilot)
        assert screen.version == 3


async def test_seek_dialog_from_the_keyboard(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-0")
        await pilot.press("s", "v", "1", "enter")
        await settle(pilot)
        assert app.screen is screen and screen.version == 1


async def test_play_steps_until_the_last_version(shop: Path, monkeypatch) -> None:
    monkeypatch.setattr(replay_module, "PLAY_INTERVAL", 0.03)
    seen: list[int] = []
    show = ReplayScreen._show

    def spy(self, version, *args):  # type: ignore[no-untyped-def]
        seen.append(version)
        show(self, version, *args)

    monkeypatch.setattr(ReplayScreen, "_show", spy)
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-3")
        seen.clear()
        await pilot.press("p")  # at the end: play starts over from version 0
        await _wait_for(pilot, lambda: not screen.playing)
        await settle(pilot)
        assert seen == [0, 1, 2, 3, 4] and screen.version == 4
        monkeypatch.setattr(replay_module, "PLAY_INTERVAL", 60)
        await pilot.press("home", "p")
        assert screen.playing
        assert "playing" in text_of(screen.query_one("#replay-status", Static))
        await pilot.press("p")
        assert not screen.playing


async def test_blame_names_the_event_that_last_set_a_field(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = await open_replay(pilot, "order-4")
        tree = screen.query_one("#replay-state", JsonTree)
        status = next(node for node in tree.root.children if node.data == "/status")
        tree.move_cursor(status)
        await pilot.press("b")
        await settle(pilot)
        entries = screen.blame_entries
        assert entries is not None
        assert [(e.event.type, e.value) for e in entries] == [
            ("OrderPlaced", "placed"),
            ("OrderShipped", "shipped"),
        ]
        shown = text_of(screen.query_one("#replay-blame", Static))
        assert "/status was last set by v4 OrderShipped" in shown
        # Stepping back re-blames as of that version.
        await pilot.press("[")
        await settle(pilot)
        assert [e.event.version for e in screen.blame_entries] == [1]


def test_blame_follows_nested_fields_and_removals(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "b.db")) as es:
        es.append([NewEvent("Made", {"addr": {"zip": "1"}})], aggregate_id="a")
        es.append([NewEvent("Moved", {"addr": {"zip": "2"}})], aggregate_id="a")
        es.append([NewEvent("Renamed", {"name": "x"})], aggregate_id="a")
        es.append([NewEvent("Forgot", {"addr": None})], aggregate_id="a")
        entries = blame(es, "a", "/addr/zip", 4)
        assert [(e.event.version, e.present, e.value) for e in entries] == [
            (1, True, "1"),
            (2, True, "2"),
            (4, False, None),
        ]
        assert [e.event.version for e in blame(es, "a", "/addr", 3)] == [1, 2]


def _append_later(path: Path, count: int, delay: float = 0.05) -> threading.Thread:
    def work() -> None:
        time.sleep(delay)
        with EventStore(str(path)) as writer:
            for i in range(count):
                writer.append(
                    [NewEvent("Pinged", {"n": i}, metadata={"actor": "tail"})],
                    aggregate_id="pinger",
                    aggregate_type="Ping",
                )

    thread = threading.Thread(target=work)
    thread.start()
    return thread


async def _wait_for(pilot, predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the live tail"
        await pilot.pause(0.05)


async def test_tail_follows_when_at_the_newest_row(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await pilot.press("t")
        assert app.main.timeline.following
        _append_later(shop, 3).join()
        await _wait_for(pilot, lambda: rows(app)[-1] == head + 3)
        assert (
            app.main.timeline.selected is not None
            and app.main.timeline.selected.position == head + 3
        )
        assert "LIVE" in text_of(app.query_one("#timeline-status", Static))
        await pilot.press("t")
        assert not app.main.timeline.following


async def test_tail_does_not_steal_the_cursor_when_reading_above(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        await pilot.press("t", "up", "up", "up")
        await settle(pilot)
        reading = app.main.timeline.selected
        assert reading is not None and reading.position == head - 3
        # Another process appends.
        script = (
            "import sys; from store import EventStore, NewEvent\n"
            "with EventStore(sys.argv[1]) as es:\n"
            "    es.append([NewEvent('Pinged', {'n': 1})], aggregate_id='p')\n"
            "    es.append([NewEvent('Pinged', {'n': 2})], aggregate_id='p')\n"
        )
        subprocess.run([sys.executable, "-c", script, str(shop)], check=True)
        await _wait_for(pilot, lambda: rows(app)[-1] == head + 2)
        assert app.main.timeline.selected is not None
        assert app.main.timeline.selected.position == reading.position
        status = text_of(app.query_one("#timeline-status", Static))
        assert "2 new" in status
        await pilot.press("G")
        await settle(pilot)
        assert app.main.timeline.selected.position == head + 2
        assert "new" not in text_of(app.query_one("#timeline-status", Static))


async def test_tail_respects_filters(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.filter_by_type("OrderShipped")
        await settle(pilot)
        before = rows(app)
        await pilot.press("t")
        _append_later(shop, 2).join()
        with EventStore(str(shop)) as writer:
            writer.append([NewEvent("OrderShipped", {"late": True})], aggregate_id="order-9")
        await _wait_for(pilot, lambda: len(rows(app)) == len(before) + 1)
        assert {e.type for e in app.main.timeline.window.events} == {"OrderShipped"}

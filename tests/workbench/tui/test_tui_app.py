"""Behaviour of the main screen, driven with Pilot: open, page, filter, seek, export."""

from __future__ import annotations

import csv
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from textual.widgets import Input, Select, SelectionList, Static

from store import EventStore, StoreError
from workbench.tui import run
from workbench.tui import timeline as timeline_module
from workbench.tui.app import WorkbenchApp
from workbench.tui.dialogs import ExportDialog, FilterDialog, HelpScreen, PromptDialog
from workbench.tui.panes import DetailPane

from .conftest import build_store
from .helpers import rows, settle, text_of, visible_types

SIZE = (160, 45)


def open_app(path: Path) -> WorkbenchApp:
    return WorkbenchApp(EventStore(str(path), readonly=True))


async def test_opens_on_the_newest_event_with_its_detail(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        head = app.store.head()
        assert rows(app)[-1] == head
        assert (
            app.main.timeline.selected is not None and app.main.timeline.selected.position == head
        )
        detail = app.query_one(DetailPane)
        assert detail.event is not None and detail.event.position == head
        assert "order-5" in text_of(app.query_one("#detail-header", Static))
        assert app.main.verify_report is not None and app.main.verify_report.ok
        assert (
            f"chain ✓ through #{app.store.head():,}" in app.main.sub_title
            and "read-only" in app.main.sub_title
        )
        status = text_of(app.query_one("#timeline-status", Static))
        assert f"{head} matching" in status


async def test_filter_dialog_combines_types_and_actor_then_x_clears(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        dialog = app.screen
        assert isinstance(dialog, FilterDialog)
        types = dialog.query_one("#f-types", SelectionList)
        types.select("OrderShipped")
        types.select("ItemAdded")
        dialog.query_one("#f-actor", Input).value = "bob"
        await pilot.press("ctrl+s")
        await settle(pilot)
        f = app.main.timeline.filters
        assert f.types == {"OrderShipped", "ItemAdded"} and f.actor == "bob"
        assert visible_types(app) == {"OrderShipped", "ItemAdded"}
        assert {e.actor for e in app.main.timeline.window.events} == {"bob"}
        bar = text_of(app.query_one("#filter-bar", Static))
        assert "event:ItemAdded,OrderShipped" in bar and "actor:bob" in bar
        await pilot.press("x")
        await settle(pilot)
        assert app.main.timeline.filters.is_empty
        assert len(rows(app)) == app.store.head()


async def test_clicking_a_chip_drops_that_filter(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.filter_by_type("OrderShipped")
        await settle(pilot)
        await pilot.press("a")
        await settle(pilot)
        assert text_of(app.query_one("#filter-bar", Static)).startswith(
            "Filters event:OrderShipped ✕ actor:carol ✕"
        )
        await pilot.click("#filter-bar", offset=(14, 0))
        await settle(pilot)
        assert app.main.timeline.filters.types == frozenset()
        assert app.main.timeline.filters.actor == "carol"
        assert {e.actor for e in app.main.timeline.window.events} == {"carol"}
        assert len({e.type for e in app.main.timeline.window.events}) > 1


async def test_filter_dialog_rejects_a_bad_time_and_keeps_the_dialog(tmp_path: Path) -> None:
    recorded = datetime.now(UTC) - timedelta(minutes=30)
    app = open_app(build_store(tmp_path / "recent.db", recorded=recorded))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        dialog = app.screen
        dialog.query_one("#f-since", Input).value = "last tuesday"
        await pilot.press("ctrl+s")
        assert app.screen is dialog
        assert "is not a time" in text_of(dialog.query_one("#f-error", Static))
        dialog.query_one("#f-since", Input).value = "-1h"
        dialog.query_one("#f-until", Input).value = "now"
        await pilot.press("ctrl+s")
        await settle(pilot)
        # Every event was recorded in the last 30 minutes, so the last hour holds them all.
        assert app.main.timeline.filters.since_text == "-1h"
        assert len(rows(app)) == app.store.head()
        assert "since:-1h" in text_of(app.query_one("#filter-bar", Static))


async def test_filter_by_aggregate_type_and_time_window(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        cutoff = app.store.get(10).recorded_at
        await pilot.press("f")
        dialog = app.screen
        dialog.query_one("#f-aggregate-type", Select).value = "Order"
        dialog.query_one("#f-until", Input).value = cutoff.isoformat()
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert rows(app) == list(range(3, 11))
        assert "type:Order" in text_of(app.query_one("#filter-bar", Static))


async def test_full_text_filter_scans_payloads(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f")
        app.screen.query_one("#f-text", Input).focus()
        await pilot.press(*"pen-4", "enter")
        await settle(pilot)
        events = app.main.timeline.window.events
        assert [(e.aggregate_id, e.type) for e in events] == [("order-4", "ItemAdded")]


async def test_correlation_and_actor_from_the_detail_pane(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        selected = app.main.timeline.selected
        assert selected is not None
        await pilot.press("c")
        await settle(pilot)
        assert app.main.timeline.filters.correlation_id == selected.correlation_id
        assert {e.correlation_id for e in app.main.timeline.window.events} == {
            selected.correlation_id
        }
        assert len(rows(app)) == 4
        await pilot.press("x", "a")
        await settle(pilot)
        assert app.main.timeline.filters.actor == selected.actor
        assert {e.actor for e in app.main.timeline.window.events} == {selected.actor}


async def test_aggregate_pane_opens_an_aggregate_timeline(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        tree = app.query_one("#aggregate-tree")
        labels = [str(node.label) for node in tree.root.children]
        assert labels == ["Customer  2", "Order  6"]
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"order-2", "enter")
        await settle(pilot)
        assert app.focused is tree
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.timeline.filters.aggregate_id == "order-2"
        assert [e.version for e in app.main.timeline.window.events] == [1, 2, 3, 4]


async def test_paging_keeps_the_window_bounded(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(timeline_module, "PAGE", 10)
    monkeypatch.setattr(timeline_module, "EDGE", 3)
    path = build_store(tmp_path / "big.db", orders=30)  # 122 events
    app = open_app(path)
    app.main.timeline_window = 25
    async with app.run_test(size=SIZE) as pilot:
        app.main.timeline.window.max_size = 25
        await settle(pilot)
        assert rows(app) == list(range(113, 123))
        for _ in range(40):
            await pilot.press("up")
            await settle(pilot)
        assert app.main.timeline.selected is not None
        assert app.main.timeline.selected.position == 122 - 40
        assert len(app.main.timeline.window) <= 25
        assert rows(app) == list(range(rows(app)[0], rows(app)[0] + len(rows(app))))
        await pilot.press("g")
        await settle(pilot)
        assert rows(app)[0] == 1 and app.main.timeline.selected.position == 1
        await pilot.press("G")
        await settle(pilot)
        assert app.main.timeline.selected.position == 122


async def test_seek_to_a_position_and_to_a_time(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("s")
        assert isinstance(app.screen, PromptDialog)
        await pilot.press(*"#7", "enter")
        await settle(pilot)
        assert app.main.timeline.selected is not None and app.main.timeline.selected.position == 7

        target = app.store.get(12).recorded_at
        app.main.seek(target.isoformat())
        await settle(pilot)
        assert app.main.timeline.selected.position == 12
        status = text_of(app.query_one("#timeline-status", Static))
        assert "landed on #12" in status and "closest earlier" not in status

        app.main.seek("2000-01-01Z")
        await settle(pilot)
        assert app.main.timeline.selected.position == 1
        assert "nothing was recorded" in text_of(app.query_one("#timeline-status", Static))


async def test_seek_between_events_lands_on_the_closest_earlier(tmp_path: Path) -> None:
    import time

    from store import NewEvent

    path = tmp_path / "gap.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("A", {})])
        time.sleep(0.05)
        es.append([NewEvent("B", {})])
        first, second = es.get(1).recorded_at, es.get(2).recorded_at
    middle = first + (second - first) / 2
    app = open_app(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.seek(middle.isoformat())
        await settle(pilot)
        assert app.main.timeline.selected is not None and app.main.timeline.selected.position == 1
        assert "closest earlier event" in text_of(app.query_one("#timeline-status", Static))


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
async def test_export_writes_the_filtered_timeline(shop: Path, tmp_path: Path, fmt: str) -> None:
    app = open_app(shop)
    target = tmp_path / f"out.{fmt}"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.main.filter_by_type("OrderShipped")
        await settle(pilot)
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        if fmt == "csv":
            await pilot.click("#fmt-csv")
        path_input = dialog.query_one("#export-path", Input)
        path_input.value = str(target)
        path_input.focus()
        await pilot.press("enter")
        await settle(pilot)
    if fmt == "jsonl":
        lines = [json.loads(line) for line in target.read_text().splitlines()]
    else:
        with target.open(newline="") as fh:
            lines = list(csv.DictReader(fh))
    assert len(lines) == 6
    assert {row["type"] for row in lines} == {"OrderShipped"}
    assert list(lines[0]) == [
        "position",
        "event_id",
        "aggregate_id",
        "aggregate_type",
        "version",
        "type",
        "schema_version",
        "data",
        "metadata",
        "occurred_at",
        "recorded_at",
        "hash",
    ]
    assert not list(tmp_path.glob("*.partial"))


async def test_audit_report_of_the_current_aggregate(shop: Path, tmp_path: Path) -> None:
    app = open_app(shop)
    target = tmp_path / "order-2.html"
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        assert app.main.reports is not None
        app.main.open_aggregate("order-2")
        await settle(pilot)
        await pilot.press("e")
        await pilot.click("#fmt-report")
        path_input = app.screen.query_one("#export-path", Input)
        assert path_input.value.endswith(".html")
        path_input.value = str(target)
        path_input.focus()
        await pilot.press("enter")
        await settle(pilot)
    html = target.read_text()
    assert "order-2" in html and "AddressChanged" in html


async def test_copy_puts_the_event_json_on_the_clipboard(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("y")
        copied = json.loads(app.clipboard)
        assert copied["position"] == app.store.head()
        assert copied["hash"] == app.store.get(app.store.head()).hash


async def test_long_background_reads_use_a_second_handle(shop: Path) -> None:
    """Counts and the catalogue read through their own read-only handle, so a
    pass over a large log never holds up the store the timeline pages through."""
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        side = app.handles.side
        assert side is not app.store and side.readonly and side.path == app.store.path
        assert app.main.event_type_counts == side.event_types() == app.store.event_types()
    assert app.handles._side is None  # closed with the app
    with pytest.raises(StoreError, match="closed"):
        side.head()


async def test_help_lists_every_binding(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("f1")
        help_screen = app.screen
        assert isinstance(help_screen, HelpScreen)
        described = {description for _, _, description in help_screen.rows()}
        for binding in app.main.BINDINGS:
            assert binding.tooltip in described  # type: ignore[union-attr]
        for name in ["Previous version", "Next version", "Seek", "Play/pause", "Blame field"]:
            assert name in described
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")  # where many look for help first
        assert isinstance(app.screen, HelpScreen)


async def test_command_palette_offers_every_action(shop: Path) -> None:
    from workbench.tui.commands import WorkbenchCommands

    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        provider = WorkbenchCommands(app.screen)
        names = [name for name, _, _ in provider.commands()]
        for wanted in [
            "Filter timeline…",
            "Clear filters",
            "Toggle live tail",
            "Seek…",
            "Replay aggregate",
            "Export timeline as JSONL",
            "Export timeline as CSV",
            "Add this correlation id to the filters",
            "Show only this correlation id",
            "Filter by type: OrderShipped",
            "Theme: textual-dark",
            "Help",
        ]:
            assert wanted in names
        hits = [hit async for hit in provider.search("order-3")]
        assert any("order-3" in (hit.text or "") for hit in hits)
        hit = next(h for h in [hit async for hit in provider.search("type: ItemAdded")])
        hit.command()
        await settle(pilot)
        assert visible_types(app) == {"ItemAdded"}


async def test_broken_chain_shows_a_banner(shop: Path) -> None:
    con = sqlite3.connect(shop)
    triggers = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
    for name in triggers:
        con.execute(f'DROP TRIGGER "{name}"')
    con.execute("""UPDATE events SET data = '{"status":"refunded"}' WHERE position = 9""")
    con.commit()
    con.close()
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        banner = app.query_one("#banner", Static)
        assert banner.has_class("shown") and banner.display
        assert "position 9" in text_of(banner)
        assert "CHAIN BROKEN" in app.main.sub_title


def test_run_reports_bad_files_in_one_line(tmp_path: Path, capsys) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a database")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t(x)").connection.commit()
    for path, words in [
        (tmp_path / "missing.db", "does not exist"),
        (text_file, "not an event store"),
        (other, "not an event store"),
        (tmp_path, "directory"),
    ]:
        assert run(str(path)) == 1
        err = capsys.readouterr().err
        assert err.startswith("sss: error: ") and err.count("\n") == 1 and words in err
        assert "Traceback" not in err
    # Read-write must not quietly create an empty store either.
    assert run(str(tmp_path / "new.db"), readonly=False) == 1
    assert not (tmp_path / "new.db").exists()
    assert "does not exist" in capsys.readouterr().err


async def test_a_failing_store_call_is_a_notification_not_a_crash(shop: Path) -> None:
    app = open_app(shop)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        app.store.close()
        await pilot.press("g")
        await settle(pilot, errors_ok=True)
        assert app.is_running
        assert any("closed" in str(n.message) for n in app._notifications)

"""The TUI marks erased events: in the timeline, the detail pane and the
header's verify summary."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from store import ERASED, EventStore, NewEvent
from workbench.tui.app import WorkbenchApp
from workbench.tui.panes import DetailPane

from .helpers import settle, text_of


async def test_tui_marks_erased_events(tmp_path: Path) -> None:
    erased_store = tmp_path / "people.db"
    with EventStore(str(erased_store)) as es:
        es.append([NewEvent("Registered", {"email": "x@example.com", "plan": "basic"})],
                  aggregate_id="person-1")  # fmt: skip
        es.append([NewEvent("Upgraded", {"plan": "pro"})], aggregate_id="person-1")
        es.append([NewEvent("Registered", {"email": "y@example.com"})], aggregate_id="p2")
        es.erase(positions=[1], reason="asked")
    app = WorkbenchApp(EventStore(str(erased_store), readonly=True))
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        assert app.main.verify_report is not None and app.main.verify_report.erased == 1
        assert "1 erased" in app.main.sub_title
        app.main.seek("#1")
        await settle(pilot)
        assert app.main.timeline.selected is not None
        assert app.main.timeline.selected.erased
        row = app.main.timeline.table.get_row_at(app.main.timeline.table.cursor_row)
        assert ERASED in str(row[4]) and "Registered" in str(row[4])
        detail = text_of(app.query_one("#detail-header", Static))
        assert "by sss.Erased at #4" in detail
        assert app.query_one(DetailPane).event.data == {"email": ERASED, "plan": ERASED}  # type: ignore[union-attr]

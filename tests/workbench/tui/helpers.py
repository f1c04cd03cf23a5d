"""Shared steps for Pilot tests."""

from __future__ import annotations

from textual.geometry import Region
from textual.pilot import Pilot
from textual.widget import Widget
from textual.worker import WorkerCancelled, WorkerFailed

from workbench.tui.app import WorkbenchApp


async def settle(pilot: Pilot[int], *, errors_ok: bool = False) -> None:
    """Wait for every worker that ends (not the live tail), then for the screen.

    A failed worker fails the test unless ``errors_ok``.
    """
    app = pilot.app
    for _ in range(5):
        pending = [w for w in app.workers if w.group != "timeline-tail" and not w.is_finished]
        if not pending:
            break
        try:
            await app.workers.wait_for_complete(pending)
        except WorkerCancelled:
            pass
        except WorkerFailed:
            if not errors_ok:
                raise
        await pilot.pause()
    await pilot.pause()


def rows(app: WorkbenchApp) -> list[int]:
    """Positions of the events the timeline holds, in order."""
    return list(app.main.timeline.window.positions)


def visible_types(app: WorkbenchApp) -> set[str]:
    return {e.type for e in app.main.timeline.window.events}


def text_of(widget: Widget) -> str:
    """What a widget shows, as plain text with each run of whitespace made one space."""
    width, height = widget.size
    lines = widget.render_lines(Region(0, 0, width, height))
    return " ".join(" ".join(strip.text for strip in lines).split())

"""The command palette provider: every action of the workbench by name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from ..safetext import shown
from .replay import ReplayScreen

if TYPE_CHECKING:
    from .app import WorkbenchApp

__all__ = ["WorkbenchCommands"]

Command = tuple[str, str, Callable[[], object]]


class WorkbenchCommands(Provider):
    """Actions, aggregates to open, event types to filter by, and themes."""

    @property
    def workbench(self) -> WorkbenchApp:
        return self.app  # type: ignore[return-value]

    def commands(self) -> Iterator[Command]:
        app = self.workbench
        run = app.run_action
        screen = self.screen
        if isinstance(screen, ReplayScreen):
            yield from self.replay_commands(screen)
        yield ("Filter timeline…", "Edit every filter at once (f)", partial(run, "filter"))
        yield ("Clear filters", "Show the whole log again (x)", partial(run, "clear_filters"))
        yield (
            "Toggle live tail",
            "Follow events appended by other processes (t)",
            partial(run, "toggle_tail"),
        )
        yield ("Seek…", "Jump to a position or a time (s)", partial(run, "seek"))
        yield (
            "Subscriptions",
            "Each consumer's position, lag and failure; jump to its first unhandled event",
            partial(run, "subscriptions"),
        )
        yield ("Jump to newest", "The end of the log (G)", partial(run, "jump('newest')"))
        yield ("Jump to oldest", "The start of the log (g)", partial(run, "jump('oldest')"))
        yield (
            "Replay aggregate",
            "Step through the selected aggregate's versions (r)",
            partial(run, "replay"),
        )
        yield (
            "Show this correlation id",
            "Everything with the selected event's correlation id (c)",
            partial(run, "filter_correlation"),
        )
        yield (
            "Show this actor",
            "Everything done by the selected event's actor (a)",
            partial(run, "filter_actor"),
        )
        yield (
            "Show this aggregate",
            "Only the selected event's aggregate (o)",
            partial(run, "filter_aggregate"),
        )
        yield ("Export timeline…", "Write the filtered timeline to a file (e)", app.action_export)
        for fmt in ("jsonl", "csv"):
            yield (
                f"Export timeline as {fmt.upper()}",
                f"Write the filtered timeline to a {fmt.upper()} file",
                partial(app.export_now, fmt),
            )
        if app.reports is not None:
            yield (
                "Audit report for this aggregate",
                "Write an audit report of the selected aggregate",
                partial(run, "audit_report"),
            )
        yield (
            "Copy event JSON",
            "Copy the selected event to the clipboard (y)",
            partial(run, "copy"),
        )
        yield (
            "Toggle time column",
            "Show recorded or occurred (business) time (T)",
            partial(run, "toggle_time"),
        )
        yield ("Verify hash chain", "Check the whole log again", partial(run, "verify"))
        yield ("Search aggregates", "Find an aggregate by id (/)", partial(run, "search"))
        yield ("Help", "Every key binding (F1)", partial(run, "help"))
        for name in sorted(app.event_type_counts):
            yield (
                f"Filter by type: {shown(name)}",
                f"Show only {shown(name)} events",
                partial(app.filter_by_type, name),
            )
        for aggregate_id in app.aggregate_ids():
            yield (
                f"Open aggregate: {shown(aggregate_id)}",
                "Show its timeline",
                partial(app.open_aggregate, aggregate_id),
            )
        for theme in sorted(app.available_themes):
            yield (f"Theme: {theme}", "Switch the colour theme", partial(app.set_theme, theme))

    @staticmethod
    def replay_commands(screen: ReplayScreen) -> Iterator[Command]:
        yield ("Replay: next version", "Step forward (])", partial(screen.action_step, 1))
        yield ("Replay: previous version", "Step back ([)", partial(screen.action_step, -1))
        yield ("Replay: first version", "Version 1 (home)", screen.action_goto_first)
        yield ("Replay: last version", "The latest state (end)", screen.action_goto_last)
        yield ("Replay: seek…", "A version, position or time (s)", screen.action_seek)
        yield ("Replay: play / pause", "Step every half second (p)", screen.action_play)
        yield (
            "Replay: blame field",
            "Which event last set the field under the cursor (b)",
            screen.action_blame,
        )
        yield ("Replay: back to the timeline", "Close the replay (esc)", screen.action_close)

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            if name.startswith(("Open aggregate:", "Theme:", "Filter by type:")):
                continue
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
        stripped = query.strip()
        if stripped and " " not in stripped:
            app = self.workbench
            yield Hit(
                0.01,
                f"Open aggregate {stripped!r}",
                partial(app.open_aggregate, stripped),
                text=f"Open aggregate {stripped}",
                help="Show the timeline of the aggregate with this exact id",
            )

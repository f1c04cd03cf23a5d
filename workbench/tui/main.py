"""The main screen: aggregates, timeline and event detail, and the timeline's keys.

The screen owns the layout, the bindings and the background work of the whole
log (catalogue, chain check, export, writes). Its widgets get their store
handles through their constructors and report back with :mod:`.messages`.

Layout by width (the smallest size laid out for is 80x24):

- 160 columns and more: aggregates, timeline and detail side by side;
  F2 and F3 hide or show each;
- 110 to 159: aggregates and timeline; F3 shows the detail pane in the
  aggregates' place (one side pane at a time), F2 the aggregates again;
- under 110: the timeline alone; F2 shows the aggregates and F3 the detail
  in the timeline's place, full width; F2/F3 again or Esc goes back.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from functools import partial
from types import ModuleType
from typing import ClassVar, Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.events import Resize
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree

from store import RecordedEvent
from workbench.inputs import InputError, parse_position, parse_time
from workbench.safetext import shown

from .background import Background
from .commands import Command
from .correcting import TimelineCorrections
from .dialogs import FilterDialog, HelpScreen, PromptDialog
from .fmt import event_json
from .handles import StoreHandles
from .keys import HELP_INTRO, PIVOTS, pivot_help
from .messages import AggregateChosen, Appended, EventHighlighted, LogGrew
from .panes import AggregatesPane, DetailPane
from .query import Filters
from .replay import ReplayScreen
from .subscriptions import SubscriptionsScreen
from .timeline import Timeline, TimelineTable
from .writing import READ_ONLY, AppendDialog, AppendRequest, ConfirmDialog

__all__ = ["MainScreen"]

WIDE = 160
"""From this width on, the detail pane is shown beside the timeline."""
NARROW = 110
"""Below this width, the aggregates pane is hidden too."""

Layout = Literal["narrow", "medium", "wide"]


def _pivot_bindings() -> list[BindingType]:
    bindings: list[BindingType] = []
    for pivot in PIVOTS:
        name = pivot.noun.capitalize()
        bindings.append(
            Binding(
                pivot.key,
                f"pivot('{pivot.field}', False)",
                name,
                show=pivot.key == "c",
                tooltip=pivot_help(pivot, only=False),
            )
        )
        bindings.append(
            Binding(
                pivot.key.upper(),
                f"pivot('{pivot.field}', True)",
                f"Only {pivot.noun}",
                show=False,
                tooltip=pivot_help(pivot, only=True),
            )
        )
    return bindings


def _load_reports() -> ModuleType | None:
    try:
        return importlib.import_module("workbench.reports")
    except ImportError:
        return None


class MainScreen(TimelineCorrections, Background):
    """Browse, filter, tail and replay an event store."""

    DEFAULT_CSS = """
    MainScreen #banner {
        display: none; background: $error; color: $text; text-style: bold; padding: 0 1;
    }
    MainScreen #banner.shown { display: block; }
    MainScreen #main { height: 1fr; }
    """

    # The footer shows the short description, the help screen the tooltip.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", tooltip="This list of every key"),
        Binding("f", "filter", "Filter", tooltip="Edit the timeline filters (types, time, text…)"),
        Binding("x", "clear_filters", "Clear", tooltip="Drop every filter at once"),
        Binding("t", "toggle_tail", "Tail", tooltip="Follow events other processes append"),
        Binding("s", "seek", "Seek", tooltip="Jump to a position (#1234) or a time (-2h)"),
        Binding("r", "replay", "Replay", tooltip="Replay the selected event's aggregate"),
        *_pivot_bindings(),
        Binding("e", "export", "Export", tooltip="Write the filtered timeline: JSONL, CSV, report"),
        Binding("w", "append", "Append", show=False, tooltip="Append an event (sss open --write)"),
        Binding("V", "void", "Void", show=False, tooltip="Void the selected event (--write)"),
        Binding("y", "copy", "Copy", show=False, tooltip="Copy the selected event as JSON"),
        Binding("slash", "search", "Search ids", show=False, tooltip="Find an aggregate by id"),
        Binding(
            "T",
            "toggle_time",
            "Time column",
            show=False,
            tooltip="Show recorded (system) or occurred (business) time",
        ),
        Binding("f2", "toggle_pane('aggregates')", "Aggregates", tooltip="Show or hide them"),
        Binding("f3", "toggle_pane('detail')", "Detail", tooltip="Show or hide the event detail"),
        Binding("escape", "back", "Back", show=False, tooltip="Back to the timeline (narrow)"),
        Binding("q", "app.quit", "Quit", tooltip="Leave the workbench"),
    ]

    def __init__(self, handles: StoreHandles, *, verify_on_start: bool = True) -> None:
        super().__init__()
        self.handles = handles
        self.store = handles.store
        self.verify_on_start = verify_on_start
        self.reports = _load_reports()
        self.layout_name: Layout | None = None
        self.width = 0
        self.shown: dict[str, bool] = {"aggregates": True, "detail": True}

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="banner")
        with Horizontal(id="main"):
            yield AggregatesPane(self.handles, id="aggregates")
            yield Timeline(self.handles, id="timeline")
            yield DetailPane(id="detail", voids=self.handles.voids)
        yield Footer()

    def on_mount(self) -> None:
        self.title = self.handles.name
        self.sub_title = self.header_text()
        self.timeline.jump("newest")
        self.timeline.table.focus()
        self.load_catalogue()
        if self.verify_on_start:
            self.action_verify(announce=False)

    def on_resize(self, event: Resize) -> None:
        width = self.width = event.size.width
        name: Layout = "wide" if width >= WIDE else "narrow" if width < NARROW else "medium"
        if name != self.layout_name:
            self.layout_name = name
            self.shown = {"aggregates": name != "narrow", "detail": name == "wide"}
        self._apply_layout()

    def _apply_layout(self) -> None:
        aggregates = self.query_one(AggregatesPane)
        detail = self.query_one(DetailPane)
        timeline = self.timeline
        narrow = self.layout_name == "narrow"
        aggregates.display = self.shown["aggregates"]
        detail.display = self.shown["detail"]
        # Under NARROW columns a side pane takes the timeline's place.
        timeline.display = not (narrow and (self.shown["aggregates"] or self.shown["detail"]))
        if narrow:
            aggregates.styles.width = detail.styles.width = "1fr"
        elif self.layout_name == "medium":
            aggregates.styles.width = 26
            detail.styles.width = "40%"
        else:
            aggregates.styles.width = 30 if self.width >= 200 else 26
            detail.styles.width = 56 if self.width >= 200 else 44
        focused = self.focused
        hidden = focused is None or not (
            focused.display and all(node.display for node in focused.ancestors)
        )
        if hidden:
            if timeline.display:
                timeline.table.focus()
            elif aggregates.display:
                self.query_one("#aggregate-tree").focus()
            else:
                self.query_one("#detail-json").focus()

    def action_toggle_pane(self, pane: str) -> None:
        self.shown[pane] = not self.shown[pane]
        if self.layout_name != "wide" and self.shown[pane]:
            # Below WIDE columns the timeline keeps room for one side pane only.
            for other in self.shown:
                if other != pane:
                    self.shown[other] = False
        self._apply_layout()

    def action_back(self) -> None:
        """Escape on a pane that took the timeline's place: the timeline again."""
        if not self.timeline.display:
            self.shown = {"aggregates": False, "detail": False}
            self._apply_layout()

    def aggregate_ids(self) -> list[str]:
        return list(dict.fromkeys(self.query_one(AggregatesPane).known_ids))

    # -- events from widgets ------------------------------------------------------

    @on(EventHighlighted)
    def _highlighted(self, message: EventHighlighted) -> None:
        for pane in self.query(DetailPane):  # none while the app shuts down
            pane.show(message.event)

    @on(DataTable.RowSelected, "#timeline-table")
    def _row_chosen(self, message: DataTable.RowSelected) -> None:
        # Enter (or a click on the selected row) on an event: its aggregate as of it.
        message.stop()
        event = self.timeline.selected
        if event is not None and event.aggregate_id:
            self.open_replay(event.aggregate_id, event.version)

    @on(AggregateChosen)
    def _aggregate_chosen(self, message: AggregateChosen) -> None:
        self.action_back()
        if message.kind == "aggregate_id":
            self.open_aggregate(message.value)
        elif message.value is not None:
            self.set_filters(replace(Filters(), aggregate_type=message.value))

    @on(LogGrew)
    def _log_grew(self, message: LogGrew) -> None:
        self.follow_log(message.events)

    def follow_log(self, events: list[RecordedEvent]) -> None:
        """Events appended since the screen last looked: the header counts them,
        the aggregates show their new versions, and the chain is checked again."""
        if not events:
            return
        self.head = max(self.head, events[-1].position)
        self.query_one(AggregatesPane).follow(events)
        self.sub_title = self.header_text()
        self.verify_again()

    # -- filters ---------------------------------------------------------------

    def set_filters(self, filters: Filters) -> None:
        self.timeline.filters = filters

    def open_aggregate(self, aggregate_id: str) -> None:
        """Show one aggregate's timeline (a filter chip: x goes back to the whole log)."""
        self.set_filters(replace(Filters(), aggregate_id=aggregate_id))
        self.timeline.table.focus()

    def filter_by_type(self, name: str) -> None:
        self.set_filters(replace(self.timeline.filters, types=frozenset({name})))

    def action_filter(self) -> None:
        self.app.push_screen(
            FilterDialog(self.timeline.filters, self.event_type_counts, self.aggregate_type_counts),
            self._filter_chosen,
        )

    def _filter_chosen(self, filters: Filters | None) -> None:
        if filters is not None:
            self.set_filters(filters)

    def action_clear_filters(self) -> None:
        if self.timeline.filters.is_empty:
            self.notify("No filter is set.", timeout=2)
            return
        self.set_filters(Filters())

    def action_remove_filter(self, name: str) -> None:
        self.set_filters(self.timeline.filters.without(name))

    def _need_selected(self) -> RecordedEvent | None:
        event = self.selected
        if event is None:
            self.notify("Select an event first.", severity="warning", timeout=3)
        return event

    def action_pivot(self, field: str, only: bool) -> None:
        """One more chip from the selected event (``only``: that chip alone)."""
        event = self._need_selected()
        if event is None:
            return
        pivot = next(p for p in PIVOTS if p.field == field)
        value = getattr(event, field)
        if not value:
            self.notify(f"Event #{event.position} has no {pivot.noun}.", severity="warning")
            return
        base = Filters() if only else self.timeline.filters
        self.set_filters(replace(base, **{field: value}))
        self.timeline.table.focus()

    # -- navigation ---------------------------------------------------------------

    def action_jump(self, where: str) -> None:
        if where in ("oldest", "newest"):
            self.timeline.jump("oldest" if where == "oldest" else "newest")
            self.timeline.table.focus()

    def action_seek(self) -> None:
        def check(text: str) -> str | None:
            try:
                _seek_target(text)
            except InputError as error:
                return str(error)
            return None

        self.app.push_screen(
            PromptDialog(
                "Seek in the timeline",
                "a global position (1234 or #1234) or a time (-2h, 2024-05-01T12:00, UTC)",
                placeholder="#1234, -2h",
                check=check,
            ),
            self._seek_chosen,
        )

    def _seek_chosen(self, text: str | None) -> None:
        if text:
            self.seek(text)

    def seek(self, text: str) -> None:
        """Jump the timeline to a position (``#1234``) or a time (``-2h``)."""
        try:
            target = _seek_target(text)
        except InputError as error:
            self.notify(str(error), severity="error")
            return
        if isinstance(target, int):
            self.timeline.jump_to_position(target)
        else:
            self.timeline.jump_to_time(target, text)
        self.timeline.table.focus()

    def action_subscriptions(self) -> None:
        """Which consumer is behind or stuck; Enter jumps to its first unhandled event."""
        self.app.push_screen(SubscriptionsScreen(self.handles.side), self._subscription_chosen)

    def _subscription_chosen(self, position: int | None) -> None:
        if position is not None:
            self.timeline.jump_to_position(position)
            self.timeline.table.focus()

    def action_search(self) -> None:
        if not self.shown["aggregates"]:
            self.action_toggle_pane("aggregates")
        self.query_one("#aggregate-search", Input).focus()

    def action_toggle_tail(self) -> None:
        timeline = self.timeline
        timeline.following = not timeline.following
        self.notify(
            "Live tail on: new events appear as they are appended."
            if timeline.following
            else "Live tail off.",
            timeout=2,
        )

    def action_toggle_time(self) -> None:
        timeline = self.timeline
        timeline.time_column = "occurred" if timeline.time_column == "recorded" else "recorded"

    def _replay_target(self) -> tuple[str | None, int | None]:
        if isinstance(self.focused, Tree):
            highlighted = self.query_one(AggregatesPane).highlighted_aggregate
            if highlighted is not None:
                return highlighted, None
        event = self.selected
        if event is not None and event.aggregate_id:
            return event.aggregate_id, event.version
        return self.timeline.filters.aggregate_id, None

    def action_replay(self) -> None:
        aggregate_id, version = self._replay_target()
        if aggregate_id is None:
            self.notify(
                "Select an event of an aggregate (or an aggregate on the left) to replay it.",
                severity="warning",
            )
            return
        self.open_replay(aggregate_id, version)

    def open_replay(self, aggregate_id: str, version: int | None = None) -> None:
        sections = self.help_sections()
        business = self.timeline.time_column == "occurred"  # T: replay's seeks follow it
        screen = ReplayScreen(self.store, aggregate_id, version, voids=self.handles.voids)
        screen.help_sections, screen.business = sections, business
        # Back from replay: a void made there strikes its row here too.
        self.app.push_screen(screen, lambda _: self.timeline.redraw())

    # -- copy, export ---------------------------------------------------------------

    def action_copy(self) -> None:
        event = self._need_selected()
        if event is None:
            return
        self.app.copy_to_clipboard(event_json(event))
        self.notify(f"Copied event #{event.position} as JSON.", timeout=2)

    # -- writes ------------------------------------------------------------------

    def _may_write(self) -> bool:
        """Every write action asks this first: read-only refuses them all."""
        if self.store.readonly:
            self.notify(READ_ONLY, severity="warning", title="Read-only", timeout=6)
            return False
        return True

    def action_append(self) -> None:
        if not self._may_write():
            return
        aggregate_id, _ = self._replay_target()
        if aggregate_id is None:
            self.notify("Select an event of an aggregate to append to.", severity="warning")
            return
        info = self.store.aggregate(aggregate_id)
        dialog = AppendDialog(aggregate_id, info.aggregate_type, info.version)
        self.app.push_screen(dialog, self._append_built)

    def _append_built(self, request: AppendRequest | None) -> None:
        if request is None:
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.append(request)
            else:
                self.notify("Nothing was appended.", timeout=2)

        self.app.push_screen(ConfirmDialog("Append an event", request.summary), confirmed)

    @on(Appended)
    def _appended(self, message: Appended) -> None:
        if message.error is not None:
            self.notify(f"Nothing was appended: {message.error}", severity="error", timeout=8)
            return
        event = message.events[-1]
        self.notify(
            f"Appended #{event.position:,}: {event.type}, version {event.version} "
            f"of {event.aggregate_id}."
        )
        self.follow_log(message.events)
        if not self.timeline.following:
            self.timeline.jump_to_position(event.position)
            self.timeline.recount()

    # -- help and palette ------------------------------------------------------------

    def help_sections(self) -> list[tuple[str, list[BindingType]]]:
        palette = Binding("ctrl+p", "command_palette", "Command palette: every action by name")
        aggregates: list[BindingType] = [
            Binding("enter", "select", "Show the aggregate's timeline (a type: all its events)"),
            Binding("slash", "search", "Search by id; Enter goes to the results"),
        ]
        return [
            ("Anywhere", [*self.BINDINGS, palette]),
            ("Timeline", [*TimelineTable.BINDINGS, *_table_keys()]),
            ("Aggregates", aggregates),
            ("Detail pane", [Binding("enter,space", "toggle", "Fold or unfold a JSON node")]),
            ("Replay", list(ReplayScreen.BINDINGS)),
            ("Dialogs", [*FilterDialog.BINDINGS, Binding("enter", "submit", "Apply / submit")]),
        ]

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.help_sections(), HELP_INTRO))

    def palette_commands(self) -> Iterator[Command]:
        run = self.run_action
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
        for pivot in PIVOTS:
            action = f"pivot('{pivot.field}', {{}})"
            yield (
                f"Add this {pivot.noun} to the filters",
                f"{pivot_help(pivot, only=False)} ({pivot.key})",
                partial(run, action.format(False)),
            )
            yield (
                f"Show only this {pivot.noun}",
                f"{pivot_help(pivot, only=True)} ({pivot.key.upper()})",
                partial(run, action.format(True)),
            )
        yield ("Export timeline…", "Write the filtered timeline to a file (e)", self.action_export)
        for fmt in ("jsonl", "csv"):
            yield (
                f"Export timeline as {fmt.upper()}",
                f"Write the filtered timeline to a {fmt.upper()} file",
                partial(self.export_now, fmt),
            )
        if self.reports is not None:
            yield (
                "Audit report for this aggregate",
                "Write an audit report of the selected aggregate",
                partial(run, "audit_report"),
            )
        yield (
            "Append an event…",
            "Append an event to the selected aggregate (w; needs sss open --write)",
            partial(run, "append"),
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
        yield (
            "Show/hide aggregates",
            "The pane on the left (F2)",
            partial(run, "toggle_pane('aggregates')"),
        )
        yield (
            "Show/hide detail",
            "The selected event's pane (F3)",
            partial(run, "toggle_pane('detail')"),
        )
        yield ("Verify hash chain", "Check the whole log again", partial(run, "verify"))
        yield ("Search aggregates", "Find an aggregate by id (/)", partial(run, "search"))
        yield ("Help", "Every key binding (F1)", partial(run, "help"))
        for name in sorted(self.event_type_counts):
            yield (
                f"Filter by type: {shown(name)}",
                f"Show only {name} events",
                partial(self.filter_by_type, name),
            )
        for aggregate_id in self.aggregate_ids():
            yield (
                f"Open aggregate: {shown(aggregate_id)}",
                "Show its timeline",
                partial(self.open_aggregate, aggregate_id),
            )

    def palette_fallback(self, query: str) -> Command | None:
        stripped = query.strip()
        if not stripped or " " in stripped:
            return None
        return (
            f"Open aggregate {stripped!r}",
            "Show the timeline of the aggregate with this exact id",
            lambda: self.open_aggregate(stripped),
        )


def _seek_target(text: str) -> int | datetime:
    """A position (``1234``, ``#1234``) or a time, as the seek prompt reads them."""
    if text.strip().lstrip("#").isdigit():
        return parse_position(text, "seek")
    return parse_time(text, "seek")


def _table_keys() -> list[BindingType]:
    return [
        Binding("enter", "replay", "Replay the event's aggregate as of this event"),
        Binding("up,down", "cursor", "Move; paging in older/newer events at the edges"),
        Binding("pageup,pagedown", "page", "Page up / down"),
        Binding("tab", "focus_next", "Next pane"),
    ]

"""The workbench TUI: aggregates, timeline and event detail on one screen."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.notifications import SeverityLevel
from textual.widgets import DataTable, Footer, Header, Input, Static, Tree
from textual.worker import Worker, WorkerState

from store import EventStore, RecordedEvent, StoreError, VerifyReport
from workbench.inputs import InputError, parse_position, parse_time
from workbench.locations import is_url, short_name
from workbench.outputs import OutputError, check_output

from ..safetext import shown
from .commands import WorkbenchCommands
from .dialogs import ExportDialog, FilterDialog, HelpScreen, PromptDialog
from .errors import one_line
from .export import export_events
from .fmt import event_json
from .panes import AggregatesPane, DetailPane
from .query import Filters
from .replay import ReplayScreen
from .subscriptions import SubscriptionsScreen
from .timeline import Timeline, TimelineTable
from .verifying import verify_elsewhere

__all__ = ["WorkbenchApp"]

HELP_INTRO = (
    "The timeline lists events by global position; the detail pane shows the one under the "
    "cursor. Times are UTC. Filters combine; the bar above the timeline shows them and x "
    "clears them all. Text, actor and correlation filters scan the log page by page in the "
    "background, so the screen never freezes. Ctrl+P opens the command palette; Tab moves "
    "between panes; the mouse works everywhere.\n"
)


def _load_reports() -> ModuleType | None:
    try:
        return importlib.import_module("workbench.reports")
    except ImportError:
        return None


class WorkbenchApp(App[int]):
    """Browse, filter, tail and replay an event store."""

    TITLE = "System State Store"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}
    CSS = """
    #banner { display: none; background: $error; color: $text; text-style: bold; padding: 0 1; }
    #banner.shown { display: block; }
    #main { height: 1fr; }
    """

    # The footer shows the short description, the help screen the tooltip.
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("f1,question_mark", "help", "Help", tooltip="This list of every key"),
        Binding("f", "filter", "Filter", tooltip="Edit the timeline filters (types, time, text…)"),
        Binding("x", "clear_filters", "Clear filters", tooltip="Drop every filter at once"),
        Binding("t", "toggle_tail", "Live tail", tooltip="Follow events other processes append"),
        Binding("s", "seek", "Seek", tooltip="Jump to a position (#1234) or a time (-2h)"),
        Binding("r", "replay", "Replay", tooltip="Replay the selected event's aggregate"),
        Binding(
            "c",
            "filter_correlation",
            "Correlation",
            tooltip="Show everything with the selected event's correlation id",
        ),
        Binding("a", "filter_actor", "Actor", show=False, tooltip="Add the selected event's actor"),
        Binding(
            "o",
            "filter_aggregate",
            "This aggregate",
            show=False,
            tooltip="Show only the selected event's aggregate",
        ),
        Binding("e", "export", "Export", tooltip="Write the filtered timeline: JSONL, CSV, report"),
        Binding("y", "copy", "Copy JSON", tooltip="Copy the event (in replay: the state) as JSON"),
        Binding("slash", "search", "Search ids", show=False, tooltip="Find an aggregate by id"),
        Binding(
            "T",
            "toggle_time",
            "Time column",
            show=False,
            tooltip="Show recorded (system) or occurred (business) time",
        ),
        Binding("q", "quit", "Quit", tooltip="Leave the workbench"),
    ]

    def __init__(self, store: EventStore, *, verify_on_start: bool = True) -> None:
        super().__init__()
        self.store = store
        self.verify_on_start = verify_on_start
        self.verify_report: VerifyReport | None = None
        self.event_type_counts: dict[str, int] = {}
        self.aggregate_type_counts: dict[str | None, int] = {}
        self.reports = _load_reports()
        self.last_export: tuple[str, int] | None = None
        self._side: EventStore | None = None
        self._side_lock = threading.Lock()
        self._unmounted = False

    @property
    def side_store(self) -> EventStore:
        """A second, read-only handle on the same store for the long reads of
        background workers (counts, the catalogue: a pass over the whole log on
        a large store), so they never hold up the store the screen pages
        through. An in-memory store has no second handle: it is the store."""
        if self._side is not None:
            return self._side
        path = self.store.path
        if self._unmounted or not (is_url(path) or Path(path).is_file()):
            return self.store
        with self._side_lock:
            if self._unmounted:
                return self.store
            if self._side is None:
                try:
                    self._side = EventStore(
                        path,
                        readonly=True,
                        reducers=self.store.reducers,
                        upcasters=self.store.upcasters,
                    )
                except StoreError:
                    return self.store
            return self._side

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (the app's and its screens') may quote a name from
        the store, so each is shown safely here, once."""
        super().notify(
            shown(message, multiline=True),
            title=shown(title),
            severity=severity,
            timeout=timeout,
            markup=markup,
        )

    def on_unmount(self) -> None:
        with self._side_lock:
            self._unmounted = True  # a worker finishing late opens no new handle
            side, self._side = self._side, None
        if side is not None:
            side.close()

    # -- layout ----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="banner")
        with Horizontal(id="main"):
            yield AggregatesPane(id="aggregates")
            yield Timeline(id="timeline")
            yield DetailPane(id="detail")
        yield Footer()

    def on_load(self) -> None:
        # Thread workers run in the event loop's default executor, which has
        # os.cpu_count() + 4 threads: on a small machine the start-up work (the
        # chain check waits on its child process throughout, type counts,
        # aggregate counts) would fill it, and a key's page load would queue
        # behind them. Threads that mostly wait on a database are cheap.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="sss-worker")
        )

    def on_mount(self) -> None:
        mode = "read-only" if self.store.readonly else "read-write"
        self.sub_title = f"{self.store_name} · {mode}"
        self.timeline.jump("newest")
        self.timeline.table.focus()
        self._load_catalogue()
        if self.verify_on_start:
            self.action_verify()

    @property
    def store_name(self) -> str:
        """The store's file name (the full path is long and says little on
        screen); for a server store, its database and schema."""
        if is_url(self.store.path):
            return shown(f"postgresql:{short_name(self.store.path)}")
        return shown(Path(self.store.path).name or self.store.path)

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def selected(self) -> RecordedEvent | None:
        return self.query_one(DetailPane).event

    @work(thread=True, group="catalogue", exit_on_error=False)
    def _load_catalogue(self) -> None:
        event_types = self.side_store.event_types()
        aggregate_types = self.side_store.aggregate_types()
        self.call_from_thread(self._set_catalogue, event_types, aggregate_types)

    def _set_catalogue(
        self, event_types: dict[str, int], aggregate_types: dict[str | None, int]
    ) -> None:
        self.event_type_counts = event_types
        self.aggregate_type_counts = aggregate_types

    def aggregate_ids(self) -> list[str]:
        return list(dict.fromkeys(self.query_one(AggregatesPane).known_ids))

    _TIMELINE_ONLY = frozenset(
        {
            "filter",
            "clear_filters",
            "toggle_tail",
            "replay",
            "filter_correlation",
            "filter_actor",
            "filter_aggregate",
            "export",
            "search",
            "toggle_time",
            "jump",
        }
    )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Timeline actions make no sense over the replay screen: hide them there.
        return not (action in self._TIMELINE_ONLY and isinstance(self.screen, ReplayScreen))

    # -- events from widgets ------------------------------------------------------

    @on(Timeline.Highlighted)
    def _highlighted(self, message: Timeline.Highlighted) -> None:
        for pane in self.query(DetailPane):  # none while the app shuts down
            pane.show(message.event)

    @on(DataTable.RowSelected, "#timeline-table")
    def _row_chosen(self, message: DataTable.RowSelected) -> None:
        # Enter (or a click on the selected row) on an event: its aggregate as of it.
        message.stop()
        event = self.timeline.selected
        if event is not None and event.aggregate_id:
            self.push_screen(ReplayScreen(event.aggregate_id, event.version))

    @on(AggregatesPane.Chosen)
    def _aggregate_chosen(self, message: AggregatesPane.Chosen) -> None:
        if message.kind == "aggregate_id":
            self.open_aggregate(message.value)
        elif message.value is not None:
            self.set_filters(replace(Filters(), aggregate_type=message.value))

    def on_worker_state_changed(self, message: Worker.StateChanged) -> None:
        worker = message.worker
        if message.state == WorkerState.ERROR and worker.error is not None:
            self.notify(one_line(worker.error), severity="error", title="Store error")

    def set_theme(self, name: str) -> None:
        self.theme = name

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
        self.push_screen(
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

    def action_filter_correlation(self) -> None:
        event = self._need_selected()
        if event is None:
            return
        if not event.correlation_id:
            self.notify(f"Event #{event.position} has no correlation id.", severity="warning")
            return
        self.set_filters(replace(Filters(), correlation_id=event.correlation_id))

    def action_filter_actor(self) -> None:
        event = self._need_selected()
        if event is None:
            return
        if not event.actor:
            self.notify(f"Event #{event.position} has no actor.", severity="warning")
            return
        self.set_filters(replace(self.timeline.filters, actor=event.actor))

    def action_filter_aggregate(self) -> None:
        event = self._need_selected()
        if event is not None and event.aggregate_id:
            self.open_aggregate(event.aggregate_id)

    # -- navigation ---------------------------------------------------------------

    def action_jump(self, where: str) -> None:
        if where in ("oldest", "newest"):
            self.timeline.jump(where)  # type: ignore[arg-type]
            self.timeline.table.focus()

    def action_seek(self) -> None:
        if isinstance(self.screen, ReplayScreen):
            self.screen.action_seek()
            return

        def check(text: str) -> str | None:
            try:
                _seek_target(text)
            except InputError as error:
                return str(error)
            return None

        self.push_screen(
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

    def action_search(self) -> None:
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

    def action_subscriptions(self) -> None:
        """Which consumer is behind or stuck; Enter jumps to its first unhandled event."""
        self.push_screen(SubscriptionsScreen(self.side_store), self._subscription_chosen)

    def _subscription_chosen(self, position: int | None) -> None:
        if position is not None:
            self.timeline.jump_to_position(position)
            self.timeline.table.focus()

    def action_replay(self) -> None:
        aggregate_id: str | None = None
        version: int | None = None
        if isinstance(self.focused, Tree):
            aggregate_id = self.query_one(AggregatesPane).highlighted_aggregate
        if aggregate_id is None:
            event = self.selected
            if event is not None and event.aggregate_id:
                aggregate_id, version = event.aggregate_id, event.version
        if aggregate_id is None:
            aggregate_id = self.timeline.filters.aggregate_id
        if aggregate_id is None:
            self.notify(
                "Select an event of an aggregate (or an aggregate on the left) to replay it.",
                severity="warning",
            )
            return
        self.push_screen(ReplayScreen(aggregate_id, version))

    # -- copy, export, verify ------------------------------------------------------

    def action_copy(self) -> None:
        if isinstance(self.screen, ReplayScreen):
            replay = self.screen
            self.copy_to_clipboard(json.dumps(replay.state, indent=2, ensure_ascii=False))
            self.notify(f"Copied the state as of version {replay.version} as JSON.", timeout=2)
            return
        event = self._need_selected()
        if event is None:
            return
        self.copy_to_clipboard(event_json(event))
        self.notify(f"Copied event #{event.position} as JSON.", timeout=2)

    def _export_stem(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{short_name(self.store.path)}-export-{stamp}"

    def action_export(self) -> None:
        formats = {"jsonl": "JSON Lines (every field)", "csv": "CSV (data and metadata as JSON)"}
        if self.reports is not None and self._report_aggregate() is not None:
            formats["report"] = f"Audit report of {self._report_aggregate()} (HTML)"
        chips = self.timeline.filters.chips()
        summary = (
            "Every event matching: " + ", ".join(label for _, label in chips)
            if chips
            else "Every event in the log (no filter is set)."
        )
        self.push_screen(ExportDialog(self._export_stem(), formats, summary), self._export_chosen)

    def _export_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice is None:
            self.notify("Export cancelled; nothing was written.", timeout=2)
        else:
            fmt, path = choice
            if fmt == "report":
                self.audit_report(path)
            else:
                self.export_now(fmt, path)

    def export_now(self, fmt: str, path: str | None = None) -> None:
        typed = path or f"{self._export_stem()}.{fmt}"
        try:
            check_output(typed, protect=[self.store.path], stream=False)
        except OutputError as error:
            self.notify(str(error), severity="error")
            return
        target = str(Path(typed).expanduser().resolve())
        self.notify(f"Exporting to {target}…", timeout=2)
        self._export(fmt, typed, target, self.timeline.filters)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def _export(self, fmt: str, typed: str, path: str, filters: Filters) -> None:
        try:
            count = export_events(self.store, filters, typed, fmt)
        except (StoreError, OSError) as error:
            self.call_from_thread(self.notify, one_line(error), severity="error")
            return
        self.last_export = (path, count)
        self.call_from_thread(self.notify, f"Exported {count:,} events to {path}.")

    def _report_aggregate(self) -> str | None:
        event = self.selected
        if self.timeline.filters.aggregate_id:
            return self.timeline.filters.aggregate_id
        return event.aggregate_id if event is not None else None

    def action_audit_report(self) -> None:
        aggregate_id = self._report_aggregate()
        if self.reports is None or aggregate_id is None:
            self.notify("Select an aggregate first.", severity="warning")
            return
        self.audit_report(f"{self._export_stem()}-{aggregate_id}.html")

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def audit_report(self, path: str) -> None:
        aggregate_id = self._report_aggregate()
        reports: Any = self.reports
        if reports is None or aggregate_id is None:
            return
        writer = getattr(reports, "write_report", None) or getattr(reports, "write", None)
        if writer is None:
            self.call_from_thread(self.notify, "Audit reports are not available.", severity="error")
            return
        try:
            writer(self.store, path, aggregate_id=aggregate_id, format="html")
        except (StoreError, OSError) as error:
            self.call_from_thread(self.notify, one_line(error), severity="error")
            return
        self.call_from_thread(self.notify, f"Wrote the audit report of {aggregate_id} to {path}.")

    def action_verify(self) -> None:
        self.sub_title = f"{self.store_name} · verifying hash chain…"
        self._verify()

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _verify(self) -> None:
        report = verify_elsewhere(self.store)
        self.call_from_thread(self._verified, report)

    def _verified(self, report: VerifyReport) -> None:
        self.verify_report = report
        mode = "read-only" if self.store.readonly else "read-write"
        banner = self.query_one("#banner", Static)
        if report.ok:
            # Through the head verified: events tailed in later are not covered.
            self.sub_title = (
                f"{self.store_name} · {mode} · chain ✓ through #{report.head_position:,}"
            )
            banner.remove_class("shown")
            return
        self.sub_title = f"{self.store_name} · {mode} · CHAIN BROKEN"
        where = (
            f"at position {report.first_bad_position:,}"
            if report.first_bad_position is not None
            else "in the aggregates table"
        )
        banner.update(
            Text(
                f"⚠ Hash chain broken {where}: {shown(report.reason)}. "
                "Events from there on cannot be trusted."
            )
        )
        banner.add_class("shown")

    # -- help ------------------------------------------------------------------

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
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.help_sections(), HELP_INTRO))


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

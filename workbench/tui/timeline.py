"""The event timeline: a DataTable over a bounded, keyset-paged window.

The table holds a :class:`Window` of at most a few hundred events. Moving the
cursor near either edge loads the next page in a thread worker and drops rows
from the far end, so memory is bounded on any size of log. Jumps (oldest,
newest, a position, a time) replace the window. Live tail appends events that
other processes write, and only moves the cursor when it was on the newest row.

The timeline is given its store handles; thread workers post their results
as messages (:mod:`.messages`) back to it. Column widths follow the width the
timeline is given (:mod:`.columns`).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import Any, ClassVar, Literal

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.reactive import reactive
from textual.widgets import DataTable, Static
from textual.widgets.data_table import ColumnKey
from textual.worker import Worker, get_current_worker

from store import ERASED, EventStore, RecordedEvent
from workbench.late import LATE_AFTER, LATE_MARK

from . import columns
from .correcting import type_cell
from .errors import ReportWorkerErrors
from .fmt import short_time, truncate
from .handles import StoreHandles
from .messages import (
    Anchor,
    Direction,
    EdgeLoaded,
    EventHighlighted,
    LogGrew,
    MatchesCounted,
    NearEdge,
    PageLoaded,
    PartialPage,
    ScanProgress,
)
from .query import Filters, fetch_page
from .status import TimelineState, filter_bar, status_line
from .window import Window

__all__ = ["Timeline", "TimelineTable"]

PAGE = 150
WINDOW = 450
EDGE = 25
FIRST = -1  # an anchor meaning "the oldest row"

TimeColumn = Literal["recorded", "occurred"]


class TimelineTable(DataTable[Any]):
    """The rows of the timeline. Edge-of-window moves ask the Timeline for a page."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "g,ctrl+home",
            "screen.jump('oldest')",
            "Oldest",
            show=False,
            tooltip="Jump to the oldest matching event",
        ),
        Binding(
            "G,ctrl+end",
            "screen.jump('newest')",
            "Newest",
            show=False,
            tooltip="Jump to the newest matching event",
        ),
    ]

    def action_cursor_down(self) -> None:
        if self.cursor_row >= self.row_count - 1:
            self.post_message(NearEdge("newer"))
        super().action_cursor_down()

    def action_cursor_up(self) -> None:
        if self.cursor_row <= 0:
            self.post_message(NearEdge("older"))
        super().action_cursor_up()

    suppress_edges = False

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.suppress_edges or self.row_count == 0:
            return
        # Wheel scrolling moves the view without the cursor: page in at the edges too.
        if new >= self.max_scroll_y - 2 and new > old:
            self.post_message(NearEdge("newer"))
        elif new <= 2 and new < old:
            self.post_message(NearEdge("older"))


class Timeline(Vertical, ReportWorkerErrors):
    """Filter bar, event table and status line."""

    DEFAULT_CSS = """
    Timeline { height: 1fr; }
    Timeline #filter-bar { height: auto; min-height: 1; padding: 0 1; background: $boost; }
    Timeline #timeline-status { height: auto; max-height: 3; padding: 0 1; color: $text-muted; }
    Timeline TimelineTable { height: 1fr; }
    """

    filters: reactive[Filters] = reactive(Filters, init=False, always_update=True)
    following: reactive[bool] = reactive(False, init=False)
    time_column: reactive[TimeColumn] = reactive("recorded", init=False)

    def __init__(self, handles: StoreHandles, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.handles = handles
        self.window = Window(WINDOW)
        self._generation = 0
        self._loading: set[Direction] = set()
        self._note: str | None = None
        self._matching: int | None = None
        self._scanning: int | None = None
        self._pending_new = 0
        self._tail_stop: threading.Event | None = None
        self._tail_buffer: deque[RecordedEvent] = deque()
        self._table: TimelineTable | None = None
        self.widths: dict[str, int] = columns.fit(80, {})

    @property
    def store(self) -> EventStore:
        return self.handles.store

    def compose(self) -> ComposeResult:
        yield Static(id="filter-bar")
        table = TimelineTable(id="timeline-table", cursor_type="row", zebra_stripes=True)
        self._add_columns(table)
        yield table
        yield Static(id="timeline-status")

    _LABELS: ClassVar[dict[str, str]] = {
        "pos": "Pos",
        "aggregate": "Aggregate",
        "ver": "Ver",
        "type": "Type",
        "actor": "Actor",
    }

    def _add_columns(self, table: DataTable[Any]) -> None:
        for key, width in self.widths.items():
            label = self._LABELS.get(key) or self._time_label()
            table.add_column(label, key=key, width=width)

    def _time_label(self) -> str:
        name = "Recorded" if self.time_column == "recorded" else "Occurred"
        return f"{name} (UTC)" if self.widths["time"] > 16 else name

    def _fit_columns(self) -> bool:
        """Share the table's width out again; True when a width changed."""
        table = self.table
        # The timeline's own width (the table's may not have followed a resize yet),
        # less the scrollbar the rows will need.
        width = self.size.width - table.styles.scrollbar_size_vertical
        if width <= 0:
            return False
        events = self.window.events
        natural = {
            "aggregate": max((len(e.aggregate_id or "") for e in events), default=0),
            "type": max((len(e.type) + (len(ERASED) + 1) * e.erased for e in events), default=0),
            "actor": max((len(e.actor or "") for e in events), default=0),
        }
        widths = columns.fit(width, natural)
        if widths == self.widths:
            return False
        self.widths = widths
        table.clear(columns=True)
        self._add_columns(table)
        return True

    def on_resize(self) -> None:
        selected = self.selected  # before the columns go: clearing them moves the cursor
        if self._fit_columns():
            self._rebuild(selected.position if selected else None, fit=False)

    def on_mount(self) -> None:
        self._render_filter_bar()
        self._count(self.filters)
        self.set_interval(0.2, self._drain_tail)

    @property
    def table(self) -> TimelineTable:
        # Looked up once: the property is on every hot path (each row move, each page).
        if self._table is None:
            self._table = self.query_one(TimelineTable)
        return self._table

    @property
    def selected(self) -> RecordedEvent | None:
        row = self.table.cursor_row
        if 0 <= row < len(self.window):
            return self.window.events[row]
        return None

    # -- watchers ---------------------------------------------------------

    def watch_filters(self, filters: Filters) -> None:
        self._render_filter_bar()
        self._matching = None
        # Rows of the old filter must not sit under the new chips while a scan runs.
        self.window.reset([], at_start=True, at_end=True)
        self._scanning = 0
        self._rebuild(None)
        self.jump("newest")
        self._count(filters)

    def watch_following(self, following: bool) -> None:
        if following:
            self._start_tail()
        elif self._tail_stop is not None:
            self._tail_stop.set()
            self._tail_stop = None
        self._render_status()

    def watch_time_column(self, column: TimeColumn) -> None:
        self.table.columns[ColumnKey("time")].label = Text(self._time_label())
        self._rebuild(self.selected.position if self.selected else None)

    # -- jumps ------------------------------------------------------------

    def jump(self, where: Literal["oldest", "newest"]) -> None:
        self._generation += 1
        self._loading.clear()
        self._note = None
        self._load(self._generation, where, None, None)

    def jump_to_position(self, position: int, note: str | None = None) -> None:
        self._generation += 1
        self._loading.clear()
        self._load(self._generation, "around", position, note)

    def jump_to_time(self, at: datetime, text: str) -> None:
        self._generation += 1
        self._loading.clear()
        self._load(self._generation, "time", at, text)

    @work(thread=True, exclusive=True, group="timeline-load", exit_on_error=False)
    def _load(
        self,
        generation: int,
        where: Literal["oldest", "newest", "around", "time"],
        target: Any,
        note: str | None,
    ) -> None:
        worker = get_current_worker()
        filters = self.filters
        es = self.store
        self.handles.voids.refresh(es)
        scan: dict[str, Any] = {
            "cancelled": lambda: worker.is_cancelled,
            "progress": self._progress_callback(generation),
        }
        asked: str | None = None
        asked_at: datetime = target if where == "time" else datetime.min
        if where == "time":
            when = short_time(target)
            relative = note is not None and not note[:1].isdigit()
            asked = f"{note} ({when})" if relative else when
            position = es.position_at(target)
            if position == 0:
                where = "oldest"
                note = f"nothing was recorded at or before {asked}; showing the oldest event"
            else:
                where, target, note = "around", position, None
        if where in ("oldest", "newest") and filters.needs_scan:
            scan["partial"] = self._partial_callback(generation, where)
        if where == "oldest":
            page = fetch_page(es, filters, limit=PAGE, **scan)
            result = (page.events, True, page.complete, Anchor(FIRST, note))
        elif where == "newest":
            page = fetch_page(es, filters, limit=PAGE, backwards=True, **scan)
            result = (page.events, page.complete, True, Anchor(None, note))
        else:
            position = int(target)
            older = fetch_page(
                es, filters, limit=PAGE, from_position=position, backwards=True, **scan
            )
            newer = fetch_page(es, filters, limit=PAGE, from_position=position + 1, **scan)
            landed = older.events[-1] if older.events else None
            if landed is None:
                note = note or f"no matching event at or before #{position}; showing the next ones"
            elif asked is not None:
                exact = landed.recorded_at == asked_at
                note = f"seek {asked}: landed on #{landed.position}" + (
                    ""
                    if exact
                    else f" (recorded {short_time(landed.recorded_at)}), the closest earlier event"
                )
            elif note is None and landed.position < position and position > es.head():
                note = f"#{position} is past the newest event; showing #{landed.position}" + (
                    "" if filters.is_empty else ", the newest match"
                )
            elif landed.position != position and note is None:
                note = (
                    f"#{position} does not match the filters; "
                    f"landed on #{landed.position}, the closest earlier match"
                )
            result = (
                older.events + newer.events,
                older.complete,
                newer.complete,
                Anchor(position, note),
            )
        if worker.is_cancelled:
            return
        self.post_message(PageLoaded(generation, *result))

    def _progress_callback(self, generation: int) -> Callable[[int], None]:
        def report(position: int) -> None:
            self.post_message(ScanProgress(generation, position))

        return report

    def _partial_callback(
        self, generation: int, where: str
    ) -> Callable[[list[RecordedEvent]], None]:
        def report(events: list[RecordedEvent]) -> None:
            self.post_message(PartialPage(generation, where, events))

        return report

    @on(PartialPage)
    def _apply_partial(self, message: PartialPage) -> None:
        """Show the matches a slow scan has found so far; the finished page replaces them."""
        if message.generation != self._generation:
            return
        where, events = message.where, message.events
        selected = self.selected
        # Both ends closed: no edge paging may race the scan that is still running.
        self.window.reset(events, at_start=True, at_end=True)
        if selected is not None:
            target: int | None = selected.position
        else:
            target = None if where == "newest" else events[0].position
        self._rebuild(target)

    @on(ScanProgress)
    def _show_progress(self, message: ScanProgress) -> None:
        if message.generation == self._generation:
            self._scanning = message.position
            self._render_status()

    @on(PageLoaded)
    def _apply_load(self, message: PageLoaded) -> None:
        if message.generation != self._generation:
            return
        self._scanning = None
        self._pending_new = 0
        self.window.reset(message.events, at_start=message.at_start, at_end=message.at_end)
        anchor = message.anchor
        self._note = anchor.note
        target = self.window.first_position if anchor.position == FIRST else anchor.position
        self._rebuild(target)

    def worker_failed(self, worker: Worker[object]) -> None:
        # Let the next cursor move at an edge try again.
        self._loading.clear()
        self._scanning = None
        self._render_status()

    # -- paging at the edges ---------------------------------------------

    @on(NearEdge)
    def _near_edge(self, message: NearEdge) -> None:
        message.stop()
        self._extend(message.direction)

    @on(DataTable.RowHighlighted, "#timeline-table")
    def _row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        message.stop()
        row = self.table.cursor_row
        if row >= len(self.window) - EDGE:
            self._extend("newer")
        if row < EDGE:
            self._extend("older")
        if row >= len(self.window) - 1:
            self._pending_new = 0
        self._render_status()  # "row N of M" follows the cursor
        self.post_message(EventHighlighted(self.selected))

    def _extend(self, direction: Direction) -> None:
        window = self.window
        if direction == "newer" and (window.at_end or not window.events):
            return
        if direction == "older" and (window.at_start or not window.events):
            return
        if direction in self._loading:
            return
        self._loading.add(direction)
        self._fetch_edge(self._generation, direction)

    @work(thread=True, group="timeline-edge", exit_on_error=False)
    def _fetch_edge(self, generation: int, direction: Direction) -> None:
        worker = get_current_worker()
        window = self.window
        self.handles.voids.refresh(self.store)
        if direction == "newer":
            start = (window.last_position or 0) + 1
            page = fetch_page(
                self.store,
                self.filters,
                limit=PAGE,
                from_position=start,
                cancelled=lambda: worker.is_cancelled or generation != self._generation,
            )
        else:
            start = (window.first_position or 1) - 1
            page = fetch_page(
                self.store,
                self.filters,
                limit=PAGE,
                from_position=start,
                backwards=True,
                cancelled=lambda: worker.is_cancelled or generation != self._generation,
            )
        self.post_message(EdgeLoaded(generation, direction, page))

    @on(EdgeLoaded)
    def _apply_edge(self, message: EdgeLoaded) -> None:
        direction, page = message.direction, message.page
        self._loading.discard(direction)
        if message.generation != self._generation:
            return
        selected = self.selected
        if direction == "newer":
            self.window.append(page.events, complete=page.complete)
        else:
            self.window.prepend(page.events, complete=page.complete)
        self._rebuild(selected.position if selected else None, keep_offset=True)

    # -- drawing ----------------------------------------------------------

    def _row(self, event: RecordedEvent) -> tuple[Any, ...]:
        when = event.recorded_at if self.time_column == "recorded" else event.occurred_at
        widths = self.widths
        time: str | Text = short_time(when)[-(widths["time"] - 2) :]
        if event.recorded_at - event.occurred_at > LATE_AFTER:
            time = Text.assemble(time, (f" {LATE_MARK}", "bold yellow"))
        voided = self.handles.voids.of(event.position) is not None
        return (
            Text(str(event.position), justify="right"),
            time,
            truncate(event.aggregate_id, widths["aggregate"]),
            Text("" if event.version is None else str(event.version), justify="right"),
            type_cell(event, widths["type"], voided),
            truncate(event.actor, widths["actor"]),
        )

    def redraw(self) -> None:
        """Draw the rows again (a void changed how one looks), the cursor kept."""
        selected = self.selected
        self._rebuild(selected.position if selected else None, keep_offset=True)

    def _rebuild(
        self, position: int | None, *, keep_offset: bool = False, fit: bool = True
    ) -> None:
        """Redraw the table from the window with the cursor on ``position``.

        ``None`` puts the cursor on the newest row. With ``keep_offset`` the
        cursor keeps its place on screen, so paging in rows does not jump.
        """
        table = self.table
        screen_offset = table.cursor_row - round(table.scroll_y)
        table.suppress_edges = True
        if not (fit and self._fit_columns()):
            table.clear()
        for event in self.window.events:
            table.add_row(*self._row(event), key=str(event.position))
        row = 0
        if self.window.events:
            if position is None:
                row = len(self.window) - 1
            else:
                row = self.window.index_at_or_before(position)
            table.move_cursor(row=row, animate=False, scroll=not keep_offset)

        def settle() -> None:
            if keep_offset:
                table.scroll_to(y=max(0, row - screen_offset), animate=False, immediate=True)
            elif self.window.events and table.row_count > row:
                # Once laid out: a table whose columns were just rebuilt could not
                # scroll to a row it did not have the height for yet.
                table.move_cursor(row=row, animate=False, scroll=True)
            table.suppress_edges = False

        table.call_after_refresh(settle)
        self._render_status()
        self.post_message(EventHighlighted(self.selected))

    def _render_filter_bar(self) -> None:
        self.query_one("#filter-bar", Static).update(filter_bar(self.filters))

    def _render_status(self) -> None:
        state = TimelineState(
            self.window,
            self.table.cursor_row,
            following=self.following,
            scanning=self._scanning,
            matching=self._matching,
            filtered=not self.filters.is_empty,
            pending_new=self._pending_new,
            note=self._note,
        )
        self.query_one("#timeline-status", Static).update(status_line(state))

    def recount(self) -> None:
        """Count the matching events again (after a write of this screen's own)."""
        self._count(self.filters)

    @work(thread=True, exclusive=True, group="timeline-count", exit_on_error=False)
    def _count(self, filters: Filters) -> None:
        if filters.needs_scan:
            return
        total = self.handles.side.count(**filters.store_kwargs())
        self.post_message(MatchesCounted(filters, total))

    @on(MatchesCounted)
    def _apply_count(self, message: MatchesCounted) -> None:
        if message.filters == self.filters:
            self._matching = message.total
            self._render_status()

    # -- live tail --------------------------------------------------------

    def _start_tail(self) -> None:
        if self._tail_stop is not None:
            self._tail_stop.set()
        stop = threading.Event()
        self._tail_stop = stop
        self._tail(stop)

    @work(thread=True, group="timeline-tail", exit_on_error=False)
    def _tail(self, stop: threading.Event) -> None:
        start = self.store.head() + 1
        for event in self.store.follow(from_position=start, poll_interval=0.2, stop=stop):
            if stop.is_set():
                break
            self._tail_buffer.append(event)

    def _drain_tail(self) -> None:
        if not self._tail_buffer:
            return
        fresh: list[RecordedEvent] = []
        while self._tail_buffer:
            fresh.append(self._tail_buffer.popleft())
        if not self.following:
            return
        if [self.handles.voids.note(event) for event in fresh].count(True):
            self.redraw()  # a void from elsewhere: its event is struck through
        self.post_message(LogGrew(fresh))  # the header and the aggregates follow the log
        fresh = [event for event in fresh if self.filters.matches_all(event)]
        if not fresh:
            return
        if self._matching is not None:
            self._matching += len(fresh)
        window = self.window
        if not window.at_end:
            self._pending_new += len(fresh)
            self._render_status()
            return
        table = self.table
        at_bottom = not window.events or table.cursor_row >= len(window) - 1
        if at_bottom:
            window.append(fresh, complete=True)
            self._rebuild(None)
            return
        if len(window) + len(fresh) > window.max_size:
            # Appending would push the row being read off the top; say so instead.
            window.at_end = False
            self._pending_new += len(fresh)
            self._render_status()
            return
        selected = self.selected
        window.append(fresh, complete=True)
        self._pending_new += len(fresh)
        self._rebuild(selected.position if selected else None, keep_offset=True)

    def on_unmount(self) -> None:
        # The tail thread blocks in follow(); without this the app could not exit.
        if self._tail_stop is not None:
            self._tail_stop.set()

"""Replay one aggregate: step through its versions, seek, play, blame a field."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static

from store import AggregateInfo, EventStore, RecordedEvent, Step

from .bisecting import FindFirst
from .dialogs import PromptDialog
from .errors import ReportWorkerErrors
from .fmt import short_time, truncate, value_text
from .jsonview import JsonTree, resolve_pointer
from .query import TimeParseError, parse_time

if TYPE_CHECKING:
    from .app import WorkbenchApp

__all__ = ["BlameEntry", "ReplayScreen", "blame", "parse_seek"]

VERSIONS_AROUND = 300
PLAY_INTERVAL = 0.6
BLAME_ROWS = 200
_VERSION = re.compile(r"^v?(\d+)$", re.IGNORECASE)
_POSITION = re.compile(r"^[#p@](\d+)$", re.IGNORECASE)


def parse_seek(text: str) -> tuple[str, Any]:
    """``12``/``v12`` a version, ``#1234`` a global position, else a time."""
    value = text.strip()
    if match := _VERSION.match(value):
        return "version", int(match.group(1))
    if match := _POSITION.match(value):
        return "position", int(match.group(1))
    return "time", parse_time(value)


@dataclass(frozen=True)
class BlameEntry:
    """An event that set (or removed) a field, and the field's value after it."""

    event: RecordedEvent
    present: bool
    value: Any


def _touches(path: str, changed: str) -> bool:
    return changed == path or changed.startswith(path + "/") or path.startswith(changed + "/")


def blame(es: EventStore, aggregate_id: str, path: str, to_version: int) -> list[BlameEntry]:
    """Every event up to ``to_version`` that changed the field at ``path``.

    The last entry is the event that last set it; the list is its history of values.
    """
    entries: list[BlameEntry] = []
    if to_version < 1:
        return entries
    for step in es.history(aggregate_id, 1, to_version):
        if any(_touches(path, change.path) for change in step.changes):
            present, value = resolve_pointer(step.after, path)
            entries.append(BlameEntry(step.event, present, value))
    return entries


class ReplayScreen(FindFirst, Screen[None], ReportWorkerErrors):
    """The state of one aggregate as of any of its versions."""

    DEFAULT_CSS = """
    ReplayScreen #replay-status { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #replay-note { height: auto; padding: 0 1; color: $text-accent; }
    ReplayScreen #replay-body { height: 1fr; }
    ReplayScreen #replay-versions { width: 50; }
    ReplayScreen #replay-state-box { width: 1fr; border-left: solid $primary-background; }
    ReplayScreen #replay-side { width: 60; border-left: solid $primary-background; }
    ReplayScreen .pane-title { text-style: bold; padding: 0 1; background: $panel; }
    ReplayScreen #replay-state { height: 1fr; }
    ReplayScreen #replay-diff, ReplayScreen #replay-blame { height: auto; padding: 0 1; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("[", "step(-1)", "Previous version"),
        Binding("]", "step(1)", "Next version"),
        Binding("home", "goto_first", "First version", show=False, priority=True),
        Binding("end", "goto_last", "Last version", show=False, priority=True),
        Binding("s", "seek", "Seek"),
        Binding("p", "play", "Play/pause"),
        Binding("b", "blame", "Blame field"),
        Binding("w", "find_first", "Find first version where…", show=False),
        Binding("escape,q", "close", "Back to timeline"),
    ]

    def __init__(self, aggregate_id: str, version: int | None = None) -> None:
        super().__init__()
        self.aggregate_id = aggregate_id
        self.info: AggregateInfo | None = None
        self.version = 0
        self.target = 0
        self.start_version = version
        self.step: Step | None = None
        self.state: dict[str, Any] = {}
        self.note = ""
        self.blame_path: str | None = None
        self.blame_entries: list[BlameEntry] | None = None
        self._timer: Timer | None = None
        self._loaded: tuple[int, int] = (0, -1)

    @property
    def store(self) -> EventStore:
        app: WorkbenchApp = self.app  # type: ignore[assignment]
        return app.store

    @property
    def playing(self) -> bool:
        return self._timer is not None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="replay-status")
        yield Static("", id="replay-note")
        with Horizontal(id="replay-body"):
            table = DataTable[Any](id="replay-versions", cursor_type="row", zebra_stripes=True)
            table.add_column("Ver", key="ver", width=5)
            table.add_column("Pos", key="pos", width=8)
            table.add_column("Type", key="type", width=18)
            table.add_column("Actor", key="actor", width=8)
            yield table
            with Vertical(id="replay-state-box"):
                yield Static("State", classes="pane-title", id="replay-state-title")
                yield JsonTree(id="replay-state")
            with VerticalScroll(id="replay-side"):
                yield Static("Changed by this step", classes="pane-title")
                yield Static("", id="replay-diff")
                yield Static("Field blame", classes="pane-title")
                yield Static(
                    Text("Move to a field in the state and press b.", style="dim"),
                    id="replay-blame",
                )
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"Replay {self.aggregate_id}"
        self._open()

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _open(self) -> None:
        info = self.store.aggregate(self.aggregate_id)
        self.app.call_from_thread(self._opened, info)

    def _opened(self, info: AggregateInfo) -> None:
        self.info = info
        target = info.version if self.start_version is None else self.start_version
        self.goto(max(0, min(target, info.version)))
        self.query_one("#replay-state", JsonTree).focus()

    # -- moving -------------------------------------------------------------

    def goto(self, version: int, note: str = "") -> None:
        # The load is asynchronous: steps count from where we are going, not where we are.
        self.target = version
        self.note = note
        self._load_version(version)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _load_version(self, version: int) -> None:
        step: Step | None = None
        state: dict[str, Any] = {}
        if version >= 1:
            step = next(iter(self.store.history(self.aggregate_id, version, version)), None)
            state = step.after if step is not None else {}
        rows: list[RecordedEvent] | None = None
        low, high = self._loaded
        if not low <= version <= high:
            first = max(1, version - VERSIONS_AROUND)
            rows = list(self.store.stream(self.aggregate_id, first, version + VERSIONS_AROUND))
        self.app.call_from_thread(self._show, version, step, state, rows)

    def _show(
        self,
        version: int,
        step: Step | None,
        state: dict[str, Any],
        rows: list[RecordedEvent] | None,
    ) -> None:
        self.version, self.step, self.state = version, step, state
        table = self.query_one("#replay-versions", DataTable)
        if rows is not None:
            table.clear()
            for event in rows:
                table.add_row(
                    Text(str(event.version), justify="right"),
                    Text(str(event.position), justify="right"),
                    truncate(event.type, 18),
                    truncate(event.actor, 8),
                    key=str(event.version),
                )
            self._loaded = (rows[0].version or 0, rows[-1].version or 0) if rows else (0, -1)
        if version >= 1 and self._loaded[0] <= version <= self._loaded[1]:
            row = version - self._loaded[0]
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)
        changed = [change.path for change in step.changes] if step else []
        self.query_one("#replay-state", JsonTree).show_documents({"state": state}, marked=changed)
        total = self.info.version if self.info else 0
        self.query_one("#replay-state-title", Static).update(
            f"State at v{version}/{total}" + (f" · {len(changed)} changed (●)" if changed else "")
        )
        self._render_status()
        self._render_diff()
        if self.blame_path is not None:
            self._run_blame(self.blame_path)

    def _render_status(self) -> None:
        info = self.info
        text = Text()
        text.append(f"{self.aggregate_id}", style="bold")
        text.append(f" ({info.aggregate_type if info else '?'})  ")
        text.append(f"version {self.version}/{info.version if info else '?'}", style="bold")
        if self.step is not None:
            event = self.step.event
            text.append(f"  #{event.position:,}  {short_time(event.recorded_at)} UTC  ")
            text.append(event.type, style="bold")
            if event.actor:
                text.append(f"  by {event.actor}")
        elif self.version == 0:
            text.append("  before the first event")
        if self.playing:
            text.append("  ▶ playing (p pauses)", style="bold green")
        self.query_one("#replay-status", Static).update(text)
        self.query_one("#replay-note", Static).update(self.note)

    def _render_diff(self) -> None:
        diff = self.query_one("#replay-diff", Static)
        if self.step is None:
            diff.update(Text("Nothing: version 0 is the empty state.", style="dim"))
            return
        if not self.step.changes:
            diff.update(Text("No field changed.", style="dim"))
            return
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("Field", overflow="fold")
        table.add_column("Before", style="red", overflow="fold")
        table.add_column("After", style="green", overflow="fold")
        for change in self.step.changes:
            before_present, _ = resolve_pointer(self.step.before, change.path)
            after_present, _ = resolve_pointer(self.step.after, change.path)
            table.add_row(
                change.path,
                value_text(change.old) if before_present else "(absent)",
                value_text(change.new) if after_present else "(removed)",
            )
        diff.update(table)

    def action_step(self, delta: int) -> None:
        total = self.info.version if self.info else 0
        target = self.target + delta
        if target < 0 or target > total:
            if self.playing:
                self.action_play()
            self.notify("No more versions that way.", timeout=2)
            return
        self.goto(target)

    def action_goto_first(self) -> None:
        self.goto(1 if self.info and self.info.version else 0)

    def action_goto_last(self) -> None:
        self.goto(self.info.version if self.info else 0)

    @on(DataTable.RowSelected, "#replay-versions")
    def _row_selected(self, message: DataTable.RowSelected) -> None:
        version = int(str(message.row_key.value))
        if version != self.version:
            self.goto(version)

    def action_play(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        else:
            if self.info and self.target >= self.info.version:
                self.goto(0)
            self._timer = self.set_interval(PLAY_INTERVAL, self._tick)
        self._render_status()

    def _tick(self) -> None:
        # Never outrun the loads: each version is shown before the next is asked for.
        if self.version == self.target:
            self.action_step(1)

    def action_close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self.dismiss(None)

    # -- seek ------------------------------------------------------------------

    def action_seek(self) -> None:
        def check(text: str) -> str | None:
            try:
                parse_seek(text)
            except TimeParseError as error:
                return str(error)
            return None

        self.app.push_screen(
            PromptDialog(
                "Seek",
                "a version (12 or v12), a global position (#1234), "
                "or a time (-2h, 2024-05-01T12:00)",
                placeholder="v12, #1234, -2h",
                check=check,
            ),
            self._seek,
        )

    def _seek(self, text: str | None) -> None:
        if text:
            self.seek(text)

    def seek(self, text: str) -> None:
        kind, value = parse_seek(text)
        if kind == "version":
            total = self.info.version if self.info else 0
            if value > total:
                self.goto(total, f"{self.aggregate_id} has {total} versions; showing the last")
            else:
                self.goto(value)
            return
        self._seek_point(kind, value, text)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _seek_point(self, kind: str, value: Any, text: str) -> None:
        if kind == "position":
            state = self.store.state_at(self.aggregate_id, position=value)
            where = f"position #{value:,}"
        else:
            state = self.store.state_at(self.aggregate_id, at=value)
            where = f"{text} ({short_time(value)} UTC)"
        if state.version == 0:
            note = f"{where} is before the first event of {self.aggregate_id}; showing version 0"
        elif (kind == "position" and state.position == value) or (
            kind == "time" and state.recorded_at == value
        ):
            note = f"{where} is version {state.version}"
        else:
            note = (
                f"no event of {self.aggregate_id} at {where}; landed on version "
                f"{state.version} (#{state.position:,}, {short_time(state.recorded_at)}), "
                "the closest earlier event"
            )
        self.app.call_from_thread(self.goto, state.version, note)

    # -- blame ------------------------------------------------------------------

    def action_blame(self) -> None:
        tree = self.query_one("#replay-state", JsonTree)
        node = tree.cursor_node
        if node is None or not node.data:
            tree.focus()
            self.notify("Move to a field of the state, then press b.", timeout=3)
            return
        self.blame_path = node.data
        self._run_blame(node.data)

    def blame_field(self, path: str) -> None:
        self.blame_path = path
        self._run_blame(path)

    @work(thread=True, exclusive=True, group="replay-blame", exit_on_error=False)
    def _run_blame(self, path: str) -> None:
        entries = blame(self.store, self.aggregate_id, path, self.version)
        self.app.call_from_thread(self._show_blame, path, entries)

    def _show_blame(self, path: str, entries: list[BlameEntry]) -> None:
        self.blame_entries = entries
        widget = self.query_one("#replay-blame", Static)
        if not entries:
            widget.update(Text(f"{path}: no event up to version {self.version} set it."))
            return
        last = entries[-1]
        event = last.event
        head = Text()
        head.append(path, style="bold")
        head.append(" was last " + ("set" if last.present else "removed") + " by ")
        head.append(f"v{event.version} {event.type}", style="bold")
        head.append(
            f" (#{event.position:,}, {short_time(event.recorded_at)} UTC"
            + (f", by {event.actor}" if event.actor else "")
            + ")\n"
        )
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        table.add_column("Ver", justify="right")
        table.add_column("Pos", justify="right")
        table.add_column("Type")
        table.add_column("Actor")
        table.add_column("Value", overflow="fold")
        for entry in list(reversed(entries))[:BLAME_ROWS]:
            table.add_row(
                str(entry.event.version),
                str(entry.event.position),
                truncate(entry.event.type, 16),
                truncate(entry.event.actor, 8),
                value_text(entry.value) if entry.present else "(removed)",
            )
        group = Table.grid()
        group.add_row(head)
        group.add_row(table)
        if len(entries) > BLAME_ROWS:
            group.add_row(Text(f"… {len(entries) - BLAME_ROWS:,} earlier changes", style="dim"))
        widget.update(group)

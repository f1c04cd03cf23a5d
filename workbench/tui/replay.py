"""Replay one aggregate: step through its versions, seek, play, blame a field.

The screen is given the store it replays from. Below :data:`NARROW` columns
the versions list shrinks to version and type and the diff/blame pane is
hidden (F3 shows it in place of the versions), so the state keeps most of the
width at any size from 80x24 up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Header, Static

from store import AggregateInfo, EventStore, RecordedEvent, Step
from workbench.inputs import InputError, parse_position, parse_time

from .bisecting import FindFirst
from .blame import BlameEntry, blame
from .commands import Command
from .correcting import Corrections, voided_text
from .dialogs import HelpScreen, PromptDialog
from .errors import ReportWorkerErrors
from .fmt import short_time, shown, truncate, value_text
from .handles import Voids
from .jsonview import JsonTree, resolve_pointer
from .messages import AggregateOpened, BlameFound, SeekLanded, VersionLoaded

__all__ = ["NARROW", "BlameEntry", "ReplayScreen", "blame", "parse_seek"]

NARROW = 140
"""Below this width the diff/blame pane is a toggle (F3) rather than a column."""

VERSIONS_AROUND = 300
PLAY_INTERVAL = 0.6
BLAME_ROWS = 200
_VERSION = re.compile(r"^v?(\d+)$", re.IGNORECASE)
_POSITION = re.compile(r"^[#p@](\d+)$", re.IGNORECASE)


def parse_seek(text: str) -> tuple[str, Any]:
    """``12``/``v12`` a version, ``#1234`` a global position, else a time."""
    value = text.strip()
    if match := _VERSION.match(value):
        return "version", parse_position(match.group(1), "version")
    if match := _POSITION.match(value):
        return "position", parse_position(match.group(1), "position")
    return "time", parse_time(value, "seek")


REPLAY_HELP = (
    "Replay shows one aggregate's state as of any of its versions: the versions on the "
    "left, the state in the middle (fields the step changed are marked ●), the step's "
    "before/after table and a field's blame on the right (F3 below 140 columns).\n"
)


class ReplayScreen(FindFirst, Corrections, Screen[None], ReportWorkerErrors):
    """The state of one aggregate as of any of its versions."""

    DEFAULT_CSS = """
    ReplayScreen #replay-status { height: auto; padding: 0 1; background: $boost; }
    ReplayScreen #replay-note { height: auto; padding: 0 1; color: $text-accent; }
    ReplayScreen #replay-body { height: 1fr; }
    ReplayScreen #replay-versions { width: 51; }
    ReplayScreen #replay-state-box { width: 1fr; min-width: 30; }
    ReplayScreen #replay-state-box { border-left: solid $primary-background; }
    ReplayScreen #replay-side { width: 2fr; max-width: 70; border-left: solid $primary-background; }
    ReplayScreen.-narrow #replay-versions { width: 32; }
    ReplayScreen #replay-note.-empty { display: none; }
    ReplayScreen.-narrow #replay-side { display: none; width: 1fr; max-width: 100%; }
    ReplayScreen.-narrow.-side #replay-side { display: block; }
    ReplayScreen.-narrow.-side #replay-versions { display: none; }
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
        Binding("f3", "toggle_side", "Diff/blame", tooltip="Show the diff and blame pane (narrow)"),
        Binding("y", "copy", "Copy JSON", show=False, tooltip="Copy the state as JSON"),
        Binding("f1,question_mark", "help", "Help", show=False),
        Binding("w", "find_first", "Find first version where…", show=False),
        Binding(
            "R",
            "revert",
            "Revert to this version",
            show=False,
            tooltip="Append one sss.Reverted event back to the version shown (needs --write)",
        ),
        Binding(
            "V",
            "void",
            "Void this version's event",
            show=False,
            tooltip="Mark the event of the version shown as wrong (needs --write)",
        ),
        Binding(
            "T",
            "toggle_clock",
            "Business time",
            show=False,
            tooltip="A time seek follows occurred (business) or recorded (system) time",
        ),
        Binding("escape,q", "close", "Back to timeline"),
    ]

    def __init__(
        self,
        store: EventStore,
        aggregate_id: str,
        version: int | None = None,
        *,
        help_sections: list[tuple[str, list[BindingType]]] | None = None,
        voids: Voids | None = None,
        business: bool = False,
    ) -> None:
        super().__init__()
        self.store = store
        self.voids = voids or Voids()
        self.business = business
        """A time seek is as of business time (occurred_at), two clocks, when True."""
        self.help_sections = help_sections or [("Replay", list(self.BINDINGS))]
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
        self._rows: list[RecordedEvent] = []

    @property
    def playing(self) -> bool:
        return self._timer is not None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="replay-status")
        yield Static("", id="replay-note")
        with Horizontal(id="replay-body"):
            table = DataTable[Any](id="replay-versions", cursor_type="row", zebra_stripes=True)
            self._add_columns(table)
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
        self.title = f"Replay {shown(self.aggregate_id)}"
        self._open()

    def on_resize(self, event: Resize) -> None:
        narrow = event.size.width < NARROW
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
            table = self.query_one("#replay-versions", DataTable)
            table.clear(columns=True)
            self._add_columns(table)
            self._fill_versions()

    def _columns(self) -> dict[str, int]:
        # Narrow: no actor column, so version, position and type fit in 30 cells.
        if self.has_class("-narrow"):
            return {"ver": 4, "pos": 6, "type": 14}
        return {"ver": 5, "pos": 8, "type": 18, "actor": 10}

    def _add_columns(self, table: DataTable[Any]) -> None:
        for key, width in self._columns().items():
            table.add_column(key.capitalize(), key=key, width=width)

    def _fill_versions(self) -> None:
        table = self.query_one("#replay-versions", DataTable)
        widths = self._columns()
        table.clear()
        for event in self._rows:
            voided = self.voids.of(event.position) is not None
            cells: list[Any] = [
                Text(str(event.version), justify="right"),
                Text(str(event.position), justify="right"),
                voided_text(truncate(event.type, widths["type"] - 2 * voided), voided),
            ]
            if "actor" in widths:
                cells.append(truncate(event.actor, widths["actor"]))
            table.add_row(*cells, key=str(event.version))
        self._move_to_version()

    def _move_to_version(self) -> None:
        table = self.query_one("#replay-versions", DataTable)
        version = self.version
        if version >= 1 and self._loaded[0] <= version <= self._loaded[1]:
            row = version - self._loaded[0]
            if table.cursor_row != row:
                table.move_cursor(row=row, animate=False)

    def action_toggle_side(self) -> None:
        if not self.has_class("-narrow"):
            self.notify("The diff and blame pane is already shown at this width.", timeout=2)
            return
        self.toggle_class("-side")

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(json.dumps(self.state, indent=2, ensure_ascii=False))
        self.notify(f"Copied the state as of version {self.version} as JSON.", timeout=2)

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(self.help_sections, REPLAY_HELP))

    def palette_commands(self) -> Iterator[Command]:
        yield ("Replay: next version", "Step forward (])", partial(self.action_step, 1))
        yield ("Replay: previous version", "Step back ([)", partial(self.action_step, -1))
        yield ("Replay: first version", "Version 1 (home)", self.action_goto_first)
        yield ("Replay: last version", "The latest state (end)", self.action_goto_last)
        yield ("Replay: seek…", "A version, position or time (s)", self.action_seek)
        yield ("Replay: play / pause", "Step every half second (p)", self.action_play)
        yield (
            "Replay: blame field",
            "Which event last set the field under the cursor (b)",
            self.action_blame,
        )
        yield ("Replay: diff and blame pane", "Show or hide it (F3)", self.action_toggle_side)
        yield ("Replay: copy state JSON", "Copy the state to the clipboard (y)", self.action_copy)
        yield ("Replay: back to the timeline", "Close the replay (esc)", self.action_close)

    def palette_fallback(self, query: str) -> Command | None:
        return None

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def _open(self) -> None:
        info = self.store.aggregate(self.aggregate_id)
        self.voids.refresh(self.store)
        self.post_message(AggregateOpened(info))

    @on(AggregateOpened)
    def _opened(self, message: AggregateOpened) -> None:
        info = self.info = message.info
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
        self.post_message(VersionLoaded(version, step, state, rows))

    @on(VersionLoaded)
    def _version_loaded(self, message: VersionLoaded) -> None:
        if message.note is not None:
            self.target, self.note = message.version, message.note
        self._show(message.version, message.step, message.state, message.rows)

    def _show(
        self,
        version: int,
        step: Step | None,
        state: dict[str, Any],
        rows: list[RecordedEvent] | None,
    ) -> None:
        self.version, self.step, self.state = version, step, state
        if rows is not None:
            self._rows = rows
            self._loaded = (rows[0].version or 0, rows[-1].version or 0) if rows else (0, -1)
            self._fill_versions()
        else:
            self._move_to_version()
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
        text.append(shown(self.aggregate_id), style="bold")
        text.append(f" ({shown(info.aggregate_type) if info else '?'})  ")
        text.append(f"version {self.version}/{info.version if info else '?'}", style="bold")
        if self.step is not None:
            event = self.step.event
            text.append(f"  #{event.position:,}  {short_time(event.recorded_at)} UTC  ")
            text.append(shown(event.type), style="bold")
            if event.actor:
                text.append(f"  by {shown(event.actor)}")
        elif self.version == 0:
            text.append("  before the first event")
        if self.playing:
            text.append("  ▶ playing (p pauses)", style="bold green")
        self.query_one("#replay-status", Static).update(text)
        note = self.query_one("#replay-note", Static)
        note.update(self.note)
        note.set_class(not self.note, "-empty")

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
                shown(change.path),
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
            except InputError as error:
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
        try:
            kind, value = parse_seek(text)
        except InputError as error:
            self.notify(str(error), severity="error")
            return
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
        if kind == "time" and self.business:
            self._seek_business(value, text)
            return
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
        self.post_message(SeekLanded(state.version, note))

    def _seek_business(self, value: Any, text: str) -> None:
        """As of business time: the events that occurred by then, as known now,
        folded in (occurred_at, position) order (``state_at(occurred=...)``)."""
        state = self.store.state_at(self.aggregate_id, occurred=value)
        where = f"business time {text} ({short_time(value)} UTC)"
        version = state.version
        first = max(1, version - VERSIONS_AROUND)
        rows = list(self.store.stream(self.aggregate_id, first, version + VERSIONS_AROUND))
        if version == 0:
            note = (
                f"nothing of {self.aggregate_id} had occurred by {where}; showing the empty state"
            )
        else:
            late = [
                e.version
                for e in rows
                if e.version and e.version <= version and e.occurred_at > value
            ]
            note = (
                f"as of {where}: the events that occurred by then, in occurred order, up to "
                f"version {version}"
                + (
                    f"; versions {', '.join(map(str, late[:5]))} occurred later, left out"
                    if late
                    else ""
                )
                + " (T: recorded time)"
            )
        self.post_message(VersionLoaded(version, None, state.state, rows, note))

    @on(SeekLanded)
    def _landed(self, message: SeekLanded) -> None:
        self.goto(message.version, message.note)

    def action_toggle_clock(self) -> None:
        self.business = not self.business
        clock = "business (occurred)" if self.business else "recorded (system)"
        self.notify(f"A time seek now follows {clock} time.", timeout=3)

    # -- corrections --------------------------------------------------------------

    def action_revert(self) -> None:
        current = self.info.version if self.info else 0
        self.ask_revert(self.aggregate_id, self.version, current)

    def action_void(self) -> None:
        self.ask_void(self.step.event if self.step is not None else None)

    def corrected(self, event: RecordedEvent) -> None:
        """A revert or void was appended: show the aggregate's new latest state."""
        what = "Reverted" if event.type == "sss.Reverted" else "Voided"
        self.notify(f"{what}: #{event.position:,} {event.type}, version {event.version}.")
        self.start_version, self._loaded = None, (0, -1)
        self._open()

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
        if self.has_class("-narrow"):
            self.add_class("-side")  # the answer is in the side pane: show it

    def blame_field(self, path: str) -> None:
        self.blame_path = path
        self._run_blame(path)

    @work(thread=True, exclusive=True, group="replay-blame", exit_on_error=False)
    def _run_blame(self, path: str) -> None:
        entries = blame(self.store, self.aggregate_id, path, self.version)
        self.post_message(BlameFound(path, entries))

    @on(BlameFound)
    def _show_blame(self, message: BlameFound) -> None:
        path, entries = message.path, message.entries
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

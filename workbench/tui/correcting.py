"""Corrections from the TUI: revert an aggregate to the version shown in
replay, void a wrong event. Both follow the write-action pattern of
:mod:`workbench.tui.writing`: a dialog builds a request (here: the reason),
a confirmation states it in words, and a worker performs it through the store
API (:meth:`EventStore.revert`, :meth:`EventStore.void`). Both are refused up
front when the store is open read-only.

Voided events are shown struck through *and* marked with :data:`VOID_MARK`
(a style alone is lost on a monochrome terminal or a copy of the screen), in
the timeline, the detail pane and replay's versions list;
:class:`~workbench.tui.handles.Voids` holds which positions are voided.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

from rich.text import Text
from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from store import ERASED, VOIDED, EventStore, RecordedEvent, StoreError

from .dialogs import _DIALOG_CSS
from .errors import one_line
from .fmt import truncate
from .handles import Voids
from .messages import Appended
from .writing import READ_ONLY, ConfirmDialog, default_actor

__all__ = [
    "VOID_MARK",
    "Corrections",
    "ReasonDialog",
    "RevertRequest",
    "TimelineCorrections",
    "VoidRequest",
    "perform",
    "voided_text",
]

VOID_MARK = "⊘"
"""Marks a voided event wherever it is listed (with a strike-through)."""


def voided_text(text: str | Text, voided: bool) -> Text:
    """``text`` struck through and marked when ``voided``."""
    cell = text if isinstance(text, Text) else Text(text)
    if not voided:
        return cell
    marked = Text(f"{VOID_MARK} ", style="bold red")
    marked.append_text(cell)
    marked.stylize("strike")
    return marked


def type_cell(event: RecordedEvent, width: int, voided: bool) -> Text:
    """The timeline's type cell: an erased payload's event says so after the
    type, and a voided one is struck through and marked."""
    width -= 2 * voided
    if not event.erased:
        cell = Text(truncate(event.type, width))
    else:
        cell = Text.assemble(
            truncate(event.type, max(width - len(ERASED) - 1, 4)), (f" {ERASED}", "bold magenta")
        )
    return voided_text(cell, voided)


@dataclass(frozen=True)
class RevertRequest:
    """Take an aggregate back to an earlier version with one sss.Reverted event."""

    aggregate_id: str
    version: int
    current: int
    reason: str
    actor: str

    @property
    def summary(self) -> str:
        return (
            f"Revert {self.aggregate_id} from version {self.current} to the state of version "
            f"{self.version}, as {self.actor}, because: {self.reason}? One sss.Reverted event "
            "is appended; the log is append-only, so history keeps every step."
        )


@dataclass(frozen=True)
class VoidRequest:
    """Mark one wrong event with one sss.Voided event."""

    position: int
    type: str
    aggregate_id: str | None
    reason: str
    actor: str

    @property
    def summary(self) -> str:
        where = f" of {self.aggregate_id}" if self.aggregate_id else ""
        return (
            f"Void event #{self.position:,} ({self.type}{where}), as {self.actor}, because: "
            f"{self.reason}? One sss.Voided event is appended; later replays skip the voided "
            "event, earlier ones keep it. Nothing is deleted and a void cannot be undone."
        )


def perform(es: EventStore, request: RevertRequest | VoidRequest) -> RecordedEvent:
    """Perform the correction through the store API."""
    metadata = {"actor": request.actor}
    if isinstance(request, RevertRequest):
        return es.revert(
            request.aggregate_id, version=request.version, reason=request.reason, metadata=metadata
        )
    return es.void(request.position, reason=request.reason, metadata=metadata)


class ReasonDialog(ModalScreen[str | None]):
    """Why: a reason is required for every correction. Enter goes on."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ReasonDialog")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, what: str) -> None:
        super().__init__()
        self.title_text = title
        self.what = what

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title")
            yield Static(self.what)
            yield Input(placeholder="the reason, e.g. refund entered twice", id="reason")
            yield Static("", classes="error", id="reason-error")
            yield Static("Enter checks it and asks to confirm · Esc cancels", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Go on…", variant="primary", id="go", compact=True)

    def on_mount(self) -> None:
        self.query_one("#reason", Input).focus()

    def action_submit(self) -> None:
        reason = self.query_one("#reason", Input).value.strip()
        if not reason:
            self.query_one("#reason-error", Static).update(
                "A reason is required: say why, in words (it is kept in the event's metadata)."
            )
            return
        self.dismiss(reason)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#go")
    def _go(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()


class _Screen(Protocol):
    """What the mixin needs of the screen it is mixed into."""

    store: EventStore
    voids: Voids

    @property
    def app(self) -> App[Any]: ...

    def notify(self, message: str, *, severity: str = ..., timeout: float | None = ...) -> None: ...

    def corrected(self, event: RecordedEvent) -> None: ...


class Corrections:
    """The revert and void flows (reason, confirmation, worker), as a mixin.

    The screen calls :meth:`ask_revert` / :meth:`ask_void` from its actions
    and implements ``corrected(event)`` to show the result."""

    def _may_correct(self) -> bool:
        screen = cast(_Screen, self)
        if screen.store.readonly:
            screen.notify(READ_ONLY, severity="warning", timeout=6)
            return False
        return True

    def ask_revert(self, aggregate_id: str, version: int, current: int) -> None:
        screen = cast(_Screen, self)
        if not self._may_correct():
            return
        if version >= current:
            screen.notify(
                f"{aggregate_id} is at version {current}: step back to an earlier version "
                "first, then revert to it.",
                severity="warning",
                timeout=5,
            )
            return
        what = (
            f"{aggregate_id} is at version {current}. Its state becomes that of version "
            f"{version}, shown now. Why?"
        )

        def reasoned(reason: str | None) -> None:
            if reason:
                request = RevertRequest(aggregate_id, version, current, reason, default_actor())
                self._confirm("Revert to this version", request)

        screen.app.push_screen(ReasonDialog("Revert to this version", what), reasoned)

    def ask_void(self, event: RecordedEvent | None) -> None:
        screen = cast(_Screen, self)
        if not self._may_correct():
            return
        if event is None:
            screen.notify("Select the wrong event first.", severity="warning")
            return
        if event.type == VOIDED:
            screen.notify("That event is a void; a void cannot be voided.", severity="warning")
            return
        if (found := screen.voids.of(event.position)) is not None:
            screen.notify(
                f"Event #{event.position:,} is voided already (by #{found[0]:,}).",
                severity="warning",
            )
            return
        what = (
            f"Event #{event.position:,}: {event.type}"
            + (f" of {event.aggregate_id} (version {event.version})" if event.aggregate_id else "")
            + ". Why is it wrong?"
        )

        def reasoned(reason: str | None) -> None:
            if reason:
                request = VoidRequest(
                    event.position, event.type, event.aggregate_id, reason, default_actor()
                )
                self._confirm("Void this event", request)

        screen.app.push_screen(ReasonDialog("Void this event", what), reasoned)

    def _confirm(self, title: str, request: RevertRequest | VoidRequest) -> None:
        screen = cast(_Screen, self)

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._perform(request)
            else:
                screen.notify("Nothing was appended.", timeout=2)

        verb = "Revert" if isinstance(request, RevertRequest) else "Void"
        screen.app.push_screen(ConfirmDialog(title, request.summary, yes=verb), confirmed)

    @work(thread=True, exclusive=True, group="correct", exit_on_error=False)
    def _perform(self, request: RevertRequest | VoidRequest) -> None:
        screen = cast(_Screen, self)
        try:
            event = perform(screen.store, request)
        except StoreError as error:
            message = f"Nothing was appended: {one_line(error)}"
            screen.app.call_from_thread(screen.notify, message, severity="error", timeout=8)
            return
        screen.voids.note(event)
        screen.app.call_from_thread(screen.corrected, event)


class TimelineCorrections(Corrections):
    """The main screen's ``V``: void the event selected in the timeline. The
    void comes back as an :class:`Appended` message, as an append does: the
    screen says so, follows the log and moves to the void; the voided row is
    struck through from then on."""

    @property
    def voids(self) -> Voids:
        return cast(Any, self).handles.voids  # type: ignore[no-any-return]

    def action_void(self) -> None:
        self.ask_void(cast(Any, self).timeline.selected)

    def corrected(self, event: RecordedEvent) -> None:
        cast(Any, self).post_message(Appended([event]))

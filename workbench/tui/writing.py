"""Write actions: what a person debugging state may write from the TUI.

Every write action has the same three parts, so one more (a revert, a void)
is one more of each:

1. a dialog that builds a request and says what is wrong with it in place
   (:class:`AppendDialog` builds an :class:`AppendRequest`);
2. a confirmation that states the request in words (:class:`ConfirmDialog`
   with the request's ``summary``): the log is append-only, so nothing
   written can be taken back;
3. a function that performs it through the store API (:func:`perform_append`),
   run in a worker by the main screen, which refuses every write action up
   front when the store is open read-only (:data:`READ_ONLY`).
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static, TextArea

from store import EventStore, NewEvent, RecordedEvent

from .dialogs import _DIALOG_CSS

__all__ = [
    "READ_ONLY",
    "AppendDialog",
    "AppendRequest",
    "ConfirmDialog",
    "default_actor",
    "perform_append",
]

READ_ONLY = (
    "The store is open read-only, so nothing can be written. Reopen it with: sss open PATH --write"
)


def default_actor() -> str:
    """Who the TUI writes as unless told otherwise: the login, as ``user:NAME``."""
    try:
        return f"user:{getpass.getuser()}"
    except (KeyError, OSError):
        return "user:unknown"


@dataclass(frozen=True)
class AppendRequest:
    """One event to append to one aggregate at the version it was seen at."""

    aggregate_id: str
    aggregate_type: str | None
    expected_version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        return (
            f"Append {self.type} to {self.aggregate_id} as version {self.expected_version + 1}, "
            f"as {self.metadata.get('actor', 'no actor')}? The log is append-only: "
            "the event stays in it for good."
        )


def perform_append(es: EventStore, request: AppendRequest) -> list[RecordedEvent]:
    """Append the request's event; a concurrent writer makes it a ConcurrencyError."""
    return es.append(
        [NewEvent(request.type, request.data, metadata=request.metadata)],
        aggregate_id=request.aggregate_id,
        aggregate_type=request.aggregate_type,
        expected_version=request.expected_version,
    )


def _json_object(text: str, what: str) -> dict[str, Any]:
    """``text`` as a JSON object; ValueError naming ``what`` and the problem."""
    try:
        value = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{what} is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


class AppendDialog(ModalScreen[AppendRequest | None]):
    """The event to append: its type, data and metadata. Ctrl+S goes on."""

    DEFAULT_CSS = (
        _DIALOG_CSS.format(name="AppendDialog")
        + """
    AppendDialog #append-data { height: 4; }
    AppendDialog #append-metadata { height: 2; }
    AppendDialog .label { margin-top: 1; color: $text-muted; }
    """
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "Append…"),
    ]

    def __init__(self, aggregate_id: str, aggregate_type: str | None, version: int) -> None:
        super().__init__()
        self.aggregate_id = aggregate_id
        self.aggregate_type = aggregate_type
        self.version = version

    def compose(self) -> ComposeResult:
        kind = self.aggregate_type or "untyped"
        with Vertical():
            yield Static(
                f"Append an event to {self.aggregate_id} ({kind}, at version {self.version})",
                classes="title",
            )
            yield Input(
                placeholder="event type, e.g. OrderNoteAdded", compact=True, id="append-type"
            )
            yield Static("Data: a JSON object (empty: {})", classes="label")
            yield TextArea(
                compact=True, placeholder='{"note": "checked by hand"}', id="append-data"
            )
            yield Static("Metadata: a JSON object", classes="label")
            yield TextArea(
                json.dumps({"actor": default_actor()}, ensure_ascii=False),
                compact=True,
                id="append-metadata",
            )
            yield Static("", classes="error", id="append-error")
            yield Static("Ctrl+S checks it and asks to confirm · Esc cancels", classes="hint")
            with Horizontal(classes="buttons"):
                yield Button("Cancel", id="cancel", compact=True)
                yield Button("Append…", variant="primary", id="append", compact=True)

    def on_mount(self) -> None:
        self.query_one("#append-type", Input).focus()

    def build(self) -> AppendRequest:
        """The request as typed; ValueError saying what is wrong."""
        kind = self.query_one("#append-type", Input).value.strip()
        if not kind:
            raise ValueError("give the event a type, e.g. OrderNoteAdded")
        data = _json_object(self.query_one("#append-data", TextArea).text, "data")
        metadata = _json_object(self.query_one("#append-metadata", TextArea).text, "metadata")
        return AppendRequest(
            self.aggregate_id, self.aggregate_type, self.version, kind, data, metadata
        )

    def action_submit(self) -> None:
        try:
            request = self.build()
        except ValueError as error:
            self.query_one("#append-error", Static).update(str(error))
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.query_one("#append-data", TextArea).focus()

    @on(Button.Pressed, "#append")
    def _append_pressed(self) -> None:
        self.action_submit()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()


class ConfirmDialog(ModalScreen[bool]):
    """Yes or no to one sentence. ``y`` or Enter confirms, ``n`` or Esc does not."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ConfirmDialog")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, question: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.title_text = title
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.title_text, classes="title")
            yield Static(self.question, id="confirm-question")
            with Horizontal(classes="buttons"):
                yield Button("No (n)", id="no", compact=True)
                yield Button(f"{self.yes} (y)", variant="warning", id="yes", compact=True)

    def on_mount(self) -> None:
        self.query_one("#yes", Button).focus()

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    @on(Button.Pressed, "#yes")
    def _yes(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#no")
    def _no(self) -> None:
        self.dismiss(False)

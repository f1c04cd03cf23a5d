"""Replay's "find the first version where…": an expression on the state
(``/status == "cancelled"``), searched with :meth:`store.EventStore.bisect`,
and the replay jumps to the version found."""

from __future__ import annotations

from typing import Any, Protocol, cast

from textual import work
from textual.app import App

from store import EventStore
from store.conditions import parse

from .dialogs import PromptDialog

__all__ = ["FindFirst", "check_expression"]


def check_expression(text: str) -> str | None:
    """The dialog's check: the parse error (naming its column), or None."""
    try:
        parse(text)
    except ValueError as error:
        return str(error)
    return None


class _Replay(Protocol):
    """What the mixin needs of the replay screen it is mixed into."""

    store: EventStore
    aggregate_id: str

    @property
    def app(self) -> App[Any]: ...

    def notify(self, message: str, *, timeout: float | None = None) -> None: ...

    def goto(self, version: int, note: str | None = None) -> None: ...


class FindFirst:
    """The replay screen's ``w`` action, as a mixin."""

    def action_find_first(self) -> None:
        screen = cast(_Replay, self)
        screen.app.push_screen(
            PromptDialog(
                "Find the first version where…",
                'a condition on the state: /status == "cancelled", /total < 0 and '
                '/currency == "EUR", /refund exists (operators == != < <= > >= exists '
                "missing, joined by and / or)",
                placeholder='/status == "cancelled"',
                check=check_expression,
            ),
            self._find_first_submitted,
        )

    def _find_first_submitted(self, text: str | None) -> None:
        if text:
            self.find_first(text)

    @work(thread=True, exclusive=True, group="replay", exit_on_error=False)
    def find_first(self, text: str) -> None:
        screen = cast(_Replay, self)
        step = screen.store.bisect(screen.aggregate_id, text)
        if step is None:
            message = f"no version of {screen.aggregate_id} satisfies {text}"
            screen.app.call_from_thread(screen.notify, message, timeout=4)
            return
        event = step.event
        note = f"{text} first holds at version {event.version} ({event.type}, #{event.position:,})"
        screen.app.call_from_thread(screen.goto, event.version or 0, note)

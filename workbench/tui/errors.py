"""Worker failures become one-line notifications, never a traceback."""

from __future__ import annotations

from textual.dom import DOMNode
from textual.worker import Worker, WorkerState

from store import StoreError

from ..safetext import shown

__all__ = ["ReportWorkerErrors", "one_line"]


def one_line(error: BaseException) -> str:
    """A user-facing line for an error: the store's own message, or the error's name,
    with any name it quotes shown safely."""
    text = shown(str(error).strip(), multiline=True)
    if isinstance(error, StoreError | OSError) and text:
        return text.splitlines()[0]
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


class ReportWorkerErrors:
    """Mixin: a failed worker of this node shows its error as a notification.

    ``Worker.StateChanged`` does not bubble, so every node that starts workers
    handles its own. List it after the widget class: Textual takes CSS type
    names from the first base only.
    """

    def on_worker_state_changed(self, message: Worker.StateChanged) -> None:
        worker = message.worker
        if message.state == WorkerState.ERROR and worker.error is not None:
            node: DOMNode = self  # type: ignore[assignment]
            node.app.notify(one_line(worker.error), severity="error", title="Store error")
            self.worker_failed(worker)

    def worker_failed(self, worker: Worker[object]) -> None:
        """Hook for clean-up after a failed worker."""

"""The subscriptions view: which consumer is stuck, and on what.

One row per subscription (per group member): its position shown against the
log's head, its lag in events and in time, when it last moved, its filters,
its parked events and the error it stopped on. Enter closes the view and jumps
the timeline to the first event the selected consumer has not handled yet.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from store import EventStore, StoreError, SubscriptionInfo
from workbench.safetext import one_line

from .fmt import short_time, shown, truncate

__all__ = ["SubscriptionsScreen", "position_bar"]

BAR = 20


def position_bar(position: int, head: int, width: int = BAR) -> str:
    """Where a position stands on the log, as a bar of ``width`` cells."""
    filled = width if head <= 0 else min(width, round(width * position / head))
    if position < head and filled == width:
        filled = width - 1  # behind is never drawn as caught up
    return "█" * filled + "░" * (width - filled)


def _waited(seconds: float) -> str:
    for limit, unit, size in ((60, "s", 1), (3600, "m", 60), (86400, "h", 3600)):
        if seconds < limit:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds / 86400:.1f}d"


class SubscriptionsScreen(Screen[int | None]):
    """The store's subscriptions; dismissed with the position to jump to."""

    CSS = """
    #subs-summary { padding: 0 1; height: auto; }
    #subs-table { height: 1fr; }
    #subs-failure { padding: 0 1; height: auto; color: $error; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "jump", "Jump to first unhandled", priority=True),
        Binding("r", "refresh", "Refresh"),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.store = store
        self.infos: list[SubscriptionInfo] = []
        self.head = 0

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Loading subscriptions…", id="subs-summary")
        table: DataTable[Text | str] = DataTable(id="subs-table", cursor_type="row")
        for label in ("Name", "Member", "Position", "Lag", "Waiting", "Moved", "Timeline"):
            table.add_column(label, key=label.lower())
        table.add_column("Filters", key="filters")
        table.add_column("Parked", key="parked")
        yield table
        yield Static("", id="subs-failure")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = "Subscriptions"
        self.load()

    @work(thread=True, exclusive=True, group="subscriptions", exit_on_error=False)
    def load(self) -> None:
        try:
            infos, head = self.store.subscriptions(), self.store.head()
        except StoreError as error:
            self.app.call_from_thread(self.notify, str(error), severity="error")
            return
        self.app.call_from_thread(self.show, infos, head)

    def show(self, infos: list[SubscriptionInfo], head: int) -> None:
        self.infos, self.head = infos, head
        table = self.query_one("#subs-table", DataTable)
        table.clear()
        for info in infos:
            stuck = info.failure is not None
            style = "bold red" if stuck else ("yellow" if info.lag else "green")
            filters = " ".join(
                [*(["types=" + ",".join(info.types)] if info.types is not None else [])]
                + ([f"aggregate_type={info.aggregate_type}"] if info.aggregate_type else [])
            )
            table.add_row(
                Text(shown(info.name), style=style),
                "-" if info.group_size == 1 else f"{info.member}/{info.group_size}",
                f"{info.position:,}",
                Text(f"{info.lag:,}", style=style),
                _waited(info.lag_seconds) if info.lag else "-",
                short_time(info.updated_at),
                Text(position_bar(info.position, head), style=style),
                truncate(filters or "-", 40),
                str(info.parked),
            )
        behind = sum(1 for i in infos if i.lag)
        stopped = sum(1 for i in infos if i.failure is not None)
        summary = (
            f"head position {head:,} · {len(infos)} subscription(s) · {behind} behind · "
            f"{stopped} stopped · Enter jumps to the selected one's first unhandled event"
            if infos
            else "No subscriptions in this store (es.subscribe(name, handler) creates one)."
        )
        self.query_one("#subs-summary", Static).update(summary)
        self.show_failure()

    @on(DataTable.RowHighlighted, "#subs-table")
    def show_failure(self) -> None:
        info = self.selected
        text = ""
        if info is not None and info.failure is not None:
            text = f"Stopped at position {info.failed_position:,}: {one_line(info.failure)}"
        self.query_one("#subs-failure", Static).update(Text(text))

    @property
    def selected(self) -> SubscriptionInfo | None:
        table = self.query_one("#subs-table", DataTable)
        if not self.infos or table.cursor_row >= len(self.infos):
            return None
        return self.infos[max(0, table.cursor_row)]

    def action_jump(self) -> None:
        info = self.selected
        if info is None:
            return
        if info.next_position is None:
            self.notify(f"{info.name} is caught up: nothing left to handle")
            return
        self.dismiss(info.next_position)

    def action_refresh(self) -> None:
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)

"""Every message the TUI's widgets and workers send, in one place.

Thread workers never call back into a widget: they post one of these to the
widget that started them (``post_message`` is thread-safe), and the widget's
handler applies it on the screen's thread. A result carries the generation it
was asked for, so a handler can drop an answer to a question nobody asks any
more. Messages that only report progress set ``can_replace``, so a burst of
them collapses into the newest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from textual.message import Message
from textual.widgets.tree import TreeNode

from store import AggregateInfo, RecordedEvent, Step, VerifyReport

from .blame import BlameEntry
from .query import Filters, Page

__all__ = [
    "AggregateChosen",
    "AggregateOpened",
    "AggregateTypesCounted",
    "AggregatesListed",
    "Anchor",
    "Appended",
    "BlameFound",
    "CatalogueLoaded",
    "ChainVerified",
    "Direction",
    "EdgeLoaded",
    "EventHighlighted",
    "Exported",
    "LogGrew",
    "MatchesCounted",
    "NearEdge",
    "PageLoaded",
    "PartialPage",
    "ScanProgress",
    "SearchFound",
    "SeekLanded",
    "VersionLoaded",
]

Direction = Literal["older", "newer"]
NodeData = tuple[str, Any]


class _Result(Message, bubble=False):
    """A worker's answer to the widget that asked: it goes no further."""


# -- timeline ------------------------------------------------------------------


@dataclass
class Anchor:
    """Where the cursor should land after the window is replaced."""

    position: int | None  # None: the newest row; FIRST (-1): the oldest
    note: str | None = None


class PageLoaded(_Result):
    """A jump's page: the window is replaced by ``events``."""

    def __init__(
        self,
        generation: int,
        events: list[RecordedEvent],
        at_start: bool,
        at_end: bool,
        anchor: Anchor,
    ) -> None:
        super().__init__()
        self.generation = generation
        self.events = events
        self.at_start = at_start
        self.at_end = at_end
        self.anchor = anchor


class PartialPage(_Result):
    """The matches a slow scan has found so far; the finished page replaces them."""

    def __init__(self, generation: int, where: str, events: list[RecordedEvent]) -> None:
        super().__init__()
        self.generation = generation
        self.where = where
        self.events = events

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PartialPage) and message.generation == self.generation


class ScanProgress(_Result):
    """A scan has read up to ``position``."""

    def __init__(self, generation: int, position: int) -> None:
        super().__init__()
        self.generation = generation
        self.position = position

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ScanProgress)


class EdgeLoaded(_Result):
    """A page read past one end of the window."""

    def __init__(self, generation: int, direction: Direction, page: Page) -> None:
        super().__init__()
        self.generation = generation
        self.direction = direction
        self.page = page


class MatchesCounted(_Result):
    """How many events match ``filters`` (the store's own filters only)."""

    def __init__(self, filters: Filters, total: int) -> None:
        super().__init__()
        self.filters = filters
        self.total = total


class NearEdge(Message):
    """The table's cursor or view reached an end of the window."""

    def __init__(self, direction: Direction) -> None:
        super().__init__()
        self.direction = direction


class EventHighlighted(Message):
    """The event under the timeline's cursor changed (None: the timeline is empty)."""

    def __init__(self, event: RecordedEvent | None) -> None:
        super().__init__()
        self.event = event


class LogGrew(Message):
    """Live tail read events other processes appended (whatever the filters)."""

    def __init__(self, events: list[RecordedEvent]) -> None:
        super().__init__()
        self.events = events


# -- aggregates pane -----------------------------------------------------------


class AggregateTypesCounted(_Result):
    def __init__(self, counts: dict[str | None, int]) -> None:
        super().__init__()
        self.counts = counts


class AggregatesListed(_Result):
    """The aggregates of one type, for its node in the tree."""

    def __init__(self, node: TreeNode[NodeData], infos: list[AggregateInfo]) -> None:
        super().__init__()
        self.node = node
        self.infos = infos


class SearchFound(_Result):
    def __init__(self, text: str, matches: list[AggregateInfo]) -> None:
        super().__init__()
        self.text = text
        self.matches = matches


class AggregateChosen(Message):
    """An aggregate (``aggregate_id``) or a whole type (``aggregate_type``) was selected."""

    def __init__(self, kind: str, value: Any) -> None:
        super().__init__()
        self.kind = kind
        self.value = value


# -- main screen ---------------------------------------------------------------


class CatalogueLoaded(_Result):
    """Event types and aggregate types with their counts, for dialogs and the palette."""

    def __init__(
        self,
        event_types: dict[str, int],
        aggregate_types: dict[str | None, int],
        head: int,
    ) -> None:
        super().__init__()
        self.event_types = event_types
        self.aggregate_types = aggregate_types
        self.head = head


class ChainVerified(_Result):
    def __init__(self, report: VerifyReport) -> None:
        super().__init__()
        self.report = report


class Exported(_Result):
    """An export or report finished: ``error`` says why it did not, if it did not."""

    def __init__(
        self,
        path: str,
        count: int | None,
        error: str | None = None,
        *,
        report_of: str | None = None,
    ) -> None:
        super().__init__()
        self.path = path
        self.count = count
        self.error = error
        self.report_of = report_of


class Appended(_Result):
    """A write action stored ``events`` (or failed with ``error``)."""

    def __init__(self, events: list[RecordedEvent], error: str | None = None) -> None:
        super().__init__()
        self.events = events
        self.error = error


# -- replay --------------------------------------------------------------------


class AggregateOpened(_Result):
    def __init__(self, info: AggregateInfo) -> None:
        super().__init__()
        self.info = info


class VersionLoaded(_Result):
    """One version's step and state, and the versions list around it when it moved."""

    def __init__(
        self,
        version: int,
        step: Step | None,
        state: dict[str, Any],
        rows: list[RecordedEvent] | None,
        note: str | None = None,
    ) -> None:
        super().__init__()
        self.version = version
        self.step = step
        self.state = state
        self.rows = rows
        self.note = note
        """Set by a seek that shows a state of its own (business time), not a version's."""


class SeekLanded(_Result):
    def __init__(self, version: int, note: str) -> None:
        super().__init__()
        self.version = version
        self.note = note


class BlameFound(_Result):
    def __init__(self, path: str, entries: list[BlameEntry]) -> None:
        super().__init__()
        self.path = path
        self.entries = entries

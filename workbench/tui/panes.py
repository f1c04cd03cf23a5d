"""The aggregates pane (left) and the event detail pane (right).

Both are given what they show: the aggregates pane its store handles, the
detail pane each event. Worker results come back as :mod:`.messages`.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode
from textual.worker import get_current_worker

from store import ERASED, AggregateInfo, EventStore, RecordedEvent
from workbench.late import LATE_MARK, lateness, lateness_text

from .correcting import VOID_MARK, voided_text
from .errors import ReportWorkerErrors
from .fmt import shown, time_text, truncate
from .handles import StoreHandles, Voids
from .jsonview import JsonTree
from .messages import AggregateChosen, AggregatesListed, AggregateTypesCounted, SearchFound

__all__ = ["AggregatesPane", "DetailPane"]

LIST_LIMIT = 200
UNTYPED = "(untyped)"

# Tree node data: ("type", aggregate type or None) or ("aggregate", aggregate id).
NodeData = tuple[str, Any]


class AggregatesPane(Vertical, ReportWorkerErrors):
    """Aggregates grouped by type with counts, and an incremental search by id."""

    DEFAULT_CSS = """
    AggregatesPane { width: 26; border-right: solid $primary-background; }
    AggregatesPane Input { margin: 0; }
    AggregatesPane Tree { height: 1fr; }
    """

    def __init__(self, handles: StoreHandles, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.handles = handles
        self.known_ids: list[str] = []
        self.type_counts: dict[str | None, int] = {}

    @property
    def store(self) -> EventStore:
        return self.handles.store

    def compose(self) -> ComposeResult:
        yield Input(placeholder="/ search by id…", id="aggregate-search")
        tree: Tree[NodeData] = Tree("Aggregates", id="aggregate-tree")
        tree.show_root = False
        yield tree

    @property
    def aggregate_tree(self) -> Tree[NodeData]:
        return self.query_one("#aggregate-tree", Tree)

    def on_mount(self) -> None:
        self.load_types()

    @work(thread=True, exclusive=True, group="aggregates", exit_on_error=False)
    def load_types(self) -> None:
        counts = self.handles.side.aggregate_types()  # from the kept counts
        self.post_message(AggregateTypesCounted(counts))

    @on(AggregateTypesCounted)
    def _show_types(self, message: AggregateTypesCounted) -> None:
        counts = self.type_counts = message.counts
        tree = self.aggregate_tree
        tree.clear()
        tree.root.expand()
        if not counts:
            tree.root.add_leaf(Text("no aggregates", style="dim"))
            return
        for name, count in sorted(counts.items(), key=lambda item: (item[0] is None, item[0])):
            label = self._type_label(name, count)
            node = tree.root.add(label, data=("type", name), allow_expand=True)
            node.add_leaf(Text("loading…", style="dim"))

    @on(Tree.NodeExpanded, "#aggregate-tree")
    def _expanded(self, message: Tree.NodeExpanded[NodeData]) -> None:
        node = message.node
        if node.data and node.data[0] == "type" and not getattr(node, "_sss_loaded", False):
            node._sss_loaded = True  # type: ignore[attr-defined]
            self._load_type(node, node.data[1])

    @work(thread=True, group="aggregates-type", exit_on_error=False)
    def _load_type(self, node: TreeNode[NodeData], aggregate_type: str | None) -> None:
        found: Iterator[AggregateInfo]
        if aggregate_type is None:
            found = (info for info in self.store.aggregates() if info.aggregate_type is None)
        else:
            found = self.store.aggregates(aggregate_type=aggregate_type)
        infos = list(islice(found, LIST_LIMIT + 1))
        self.post_message(AggregatesListed(node, infos))

    @on(AggregatesListed)
    def _fill(self, message: AggregatesListed) -> None:
        node, infos = message.node, message.infos
        node.remove_children()
        for info in infos[:LIST_LIMIT]:
            node.add_leaf(self._label(info), data=("aggregate", info.aggregate_id))
            self.known_ids.append(info.aggregate_id)
        if len(infos) > LIST_LIMIT:
            node.add_leaf(Text("… more: type in / search to find one", style="dim"))

    @staticmethod
    def _label(info: AggregateInfo) -> Text:
        return AggregatesPane._aggregate_label(info.aggregate_id, info.version)

    @staticmethod
    def _aggregate_label(aggregate_id: str, version: int) -> Text:
        return Text.assemble(truncate(aggregate_id, 22), (f"  v{version}", "dim"))

    @staticmethod
    def _type_label(name: str | None, count: int) -> Text:
        return Text.assemble((shown(name or UNTYPED), "bold"), (f"  {count:,}", "dim"))

    def follow(self, events: list[RecordedEvent]) -> None:
        """Show what live tail read: new versions on the aggregates listed, and
        new aggregates in their type's count."""
        latest: dict[str, RecordedEvent] = {}
        for event in events:
            if event.aggregate_id is not None:
                latest[event.aggregate_id] = event
        if not latest:
            return
        tree = self.aggregate_tree
        types: dict[str | None, TreeNode[NodeData]] = {}
        for node in tree.root.children:
            if node.data and node.data[0] == "type":
                types[node.data[1]] = node
                for leaf in node.children:
                    newest = latest.get(leaf.data[1]) if leaf.data else None
                    if newest is not None and newest.version is not None:
                        leaf.set_label(
                            self._aggregate_label(newest.aggregate_id or "", newest.version)
                        )
        for event in latest.values():
            if event.version != 1:
                continue
            name = event.aggregate_type
            count = self.type_counts[name] = self.type_counts.get(name, 0) + 1
            group = types.get(name)
            if group is not None:
                group.set_label(self._type_label(name, count))
                if getattr(group, "_sss_loaded", False):
                    group.add_leaf(
                        self._aggregate_label(event.aggregate_id or "", 1),
                        data=("aggregate", event.aggregate_id),
                    )

    @on(Input.Changed, "#aggregate-search")
    def _search_changed(self, message: Input.Changed) -> None:
        message.stop()
        text = message.value.strip()
        if text:
            self._search(text)
        else:
            self.load_types()

    @on(Input.Submitted, "#aggregate-search")
    def _search_submitted(self, message: Input.Submitted) -> None:
        message.stop()
        self.aggregate_tree.focus()

    @work(thread=True, exclusive=True, group="aggregates", exit_on_error=False)
    def _search(self, text: str) -> None:
        worker = get_current_worker()
        needle = text.lower()
        matches: list[AggregateInfo] = []
        for index, info in enumerate(self.store.aggregates()):
            if index % 512 == 0 and worker.is_cancelled:
                return
            if needle in info.aggregate_id.lower():
                matches.append(info)
                if len(matches) > LIST_LIMIT:
                    break
        self.post_message(SearchFound(text, matches))

    @on(SearchFound)
    def _show_matches(self, message: SearchFound) -> None:
        text, matches = message.text, message.matches
        tree = self.aggregate_tree
        tree.clear()
        tree.root.expand()
        if not matches:
            tree.root.add_leaf(Text(f"no aggregate id contains {shown(repr(text))}", style="dim"))
            return
        groups: dict[str | None, TreeNode[NodeData]] = {}
        for info in matches[:LIST_LIMIT]:
            group = groups.get(info.aggregate_type)
            if group is None:
                label = Text(shown(info.aggregate_type or UNTYPED), style="bold")
                group = tree.root.add(label, data=("type", info.aggregate_type), expand=True)
                group._sss_loaded = True  # type: ignore[attr-defined]
                groups[info.aggregate_type] = group
            group.add_leaf(self._label(info), data=("aggregate", info.aggregate_id))
            self.known_ids.append(info.aggregate_id)
        if len(matches) > LIST_LIMIT:
            tree.root.add_leaf(Text("… more matches: type more of the id", style="dim"))
        first = next(iter(groups.values()))
        if first.children:
            tree.call_after_refresh(tree.move_cursor, first.children[0])

    @on(Tree.NodeSelected, "#aggregate-tree")
    def _selected(self, message: Tree.NodeSelected[NodeData]) -> None:
        message.stop()
        data = message.node.data
        if data is None:
            return
        kind, value = data
        self.post_message(AggregateChosen("aggregate_id" if kind == "aggregate" else kind, value))

    @property
    def highlighted_aggregate(self) -> str | None:
        node = self.aggregate_tree.cursor_node
        if node is not None and node.data and node.data[0] == "aggregate":
            return str(node.data[1])
        return None


class DetailPane(Vertical):
    """Everything about the selected event: ids, times, hash, data and metadata."""

    DEFAULT_CSS = """
    DetailPane { width: 48; border-left: solid $primary-background; padding: 0 1; }
    DetailPane #detail-header { height: auto; }
    DetailPane JsonTree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None, voids: Voids | None = None) -> None:
        super().__init__(id=id)
        self.event: RecordedEvent | None = None
        self.voids = voids
        self._void: tuple[int, str] | None = None

    def compose(self) -> ComposeResult:
        yield Static("No event selected.", id="detail-header")
        yield JsonTree(id="detail-json")

    def show(self, event: RecordedEvent | None) -> None:
        void = None if event is None or self.voids is None else self.voids.of(event.position)
        if event is not None and event == self.event and void == self._void:
            return
        self.event, self._void = event, void
        header = self.query_one("#detail-header", Static)
        tree = self.query_one(JsonTree)
        if event is None:
            header.update("No event selected.")
            tree.clear()
            return
        grid = Table.grid(padding=(0, 1))
        grid.add_column(style="bold", no_wrap=True)
        grid.add_column(overflow="fold")
        rows: list[tuple[str, str | Text]] = [
            ("type", voided_text(Text(shown(event.type), style="bold"), void is not None)),
            ("position", f"#{event.position:,}"),
            (
                "aggregate",
                shown(f"{event.aggregate_id or '—'} ({event.aggregate_type or 'untyped'})"),
            ),
            ("version", "—" if event.version is None else str(event.version)),
            ("event id", shown(event.event_id)),
            ("schema", f"v{event.schema_version}"),
            ("occurred", time_text(event.occurred_at)),
            ("recorded", self._recorded(event)),
            ("actor", shown(event.actor or "—")),
            ("correlation", shown(event.correlation_id or "—")),
            ("causation", shown(event.causation_id or "—")),
            ("hash", Text(event.hash, style="dim")),
        ]
        if void is not None:
            note = f"{VOID_MARK} VOIDED by #{void[0]:,}: {void[1] or 'no reason given'}"
            rows.insert(1, ("voided", Text(shown(note), style="bold red")))
        if event.erased:
            rows.insert(
                1,
                (
                    "payload",
                    Text(
                        f"{ERASED} by sss.Erased at #{event.erased_by:,}: the values are gone, "
                        "their digest and the hash stay",
                        style="bold magenta",
                    ),
                ),
            )
        for key, value in rows:
            grid.add_row(key, value)
        header.update(grid)
        tree.show_documents({"data": event.data, "metadata": event.metadata})

    @staticmethod
    def _recorded(event: RecordedEvent) -> Text:
        text = Text(time_text(event.recorded_at))
        if lateness(event.occurred_at, event.recorded_at) is not None:
            lag = lateness_text(event.occurred_at, event.recorded_at)
            text.append(
                f"\n{LATE_MARK} late: recorded {lag} after it occurred", style="bold yellow"
            )
        return text

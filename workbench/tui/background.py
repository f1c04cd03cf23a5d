"""The main screen's background work over the whole log, and its header.

Counting the catalogue, checking the chain, exporting and writing run in
thread workers and post their results (:mod:`.messages`) back to the screen.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.text import Text
from textual import on, work
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from store import EventStore, RecordedEvent, StoreError, VerifyReport
from workbench.locations import short_name
from workbench.outputs import OutputError, check_output
from workbench.safetext import shown

from .dialogs import ExportDialog
from .errors import ReportWorkerErrors, one_line
from .export import export_events
from .handles import StoreHandles
from .messages import Appended, CatalogueLoaded, ChainVerified, Exported
from .query import Filters
from .timeline import Timeline
from .verifying import verify_elsewhere
from .writing import AppendRequest, perform_append

__all__ = ["Background"]


def merkle_text(report: VerifyReport) -> str:
    """The verified chain and Merkle tree, as the verify notification says it."""
    text = f"{report.checked:,} events checked through #{report.head_position:,}."
    if report.root is not None:
        text += f" Merkle tree: size {report.head_position:,}, root {report.root}"
    return text


class Background(ReportWorkerErrors, Screen[None]):
    """Workers of the main screen and what the header says about the log."""

    handles: StoreHandles
    store: EventStore
    reports: ModuleType | None

    def __init__(self) -> None:
        super().__init__()
        self.verify_report: VerifyReport | None = None
        self.event_type_counts: dict[str, int] = {}
        self.aggregate_type_counts: dict[str | None, int] = {}
        self.last_export: tuple[str, int] | None = None
        self.head = 0  # the newest position the screen knows of
        self._verifying = False
        self._verify_wanted = False
        self._announce = False  # say the result when a person asked for the check

    @property
    def timeline(self) -> Timeline:
        return self.query_one(Timeline)

    @property
    def selected(self) -> RecordedEvent | None:
        return self.timeline.selected

    # -- header -------------------------------------------------------------------

    def header_text(self) -> str:
        """Mode, chain and size: ``read-only · chain ✓ through #3,000 · 3,000 events``
        (the store's name is the screen's title)."""
        parts = ["read-only" if self.store.readonly else "read-write"]
        report = self.verify_report
        if report is None:
            parts.append("verifying hash chain…")
        elif report.ok:
            # Through the head verified: events appended later are checked next.
            parts.append(f"chain ✓ through #{report.head_position:,}")
            if report.erased:
                parts.append(f"{report.erased:,} erased")
        else:
            parts.append("CHAIN BROKEN")
        if self.head:
            parts.append(f"{self.head:,} events")
        return " · ".join(parts)

    # -- catalogue ----------------------------------------------------------------

    @work(thread=True, group="catalogue", exit_on_error=False)
    def load_catalogue(self) -> None:
        side = self.handles.side
        head = side.head()
        event_types = side.event_types()
        aggregate_types = side.aggregate_types()
        self.post_message(CatalogueLoaded(event_types, aggregate_types, head))

    @on(CatalogueLoaded)
    def _catalogue_loaded(self, message: CatalogueLoaded) -> None:
        self.event_type_counts = message.event_types
        self.aggregate_type_counts = message.aggregate_types
        self.head = max(self.head, message.head)
        self.sub_title = self.header_text()

    # -- chain --------------------------------------------------------------------

    def action_verify(self, announce: bool = True) -> None:
        self._announce = announce
        self.verify_report = None
        self.sub_title = self.header_text()
        self._start_verify()

    def verify_again(self) -> None:
        """Check the chain once more (after the log grew); one check at a time."""
        if self._verifying:
            self._verify_wanted = True
        else:
            self._start_verify()

    def _start_verify(self) -> None:
        self._verifying = True
        self._verify_wanted = False
        self._verify()

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def _verify(self) -> None:
        self.post_message(ChainVerified(verify_elsewhere(self.store)))

    def worker_failed(self, worker: Worker[object]) -> None:
        if worker.group == "verify":
            self._verifying = False

    @on(ChainVerified)
    def _verified(self, message: ChainVerified) -> None:
        self._verifying = False
        report = self.verify_report = message.report
        self.head = max(self.head, report.head_position)
        self.sub_title = self.header_text()
        banner = self.query_one("#banner", Static)
        if report.ok and self._announce:
            self.notify(merkle_text(report), title="Hash chain intact", timeout=8)
        self._announce = False
        if report.ok:
            banner.remove_class("shown")
            if self._verify_wanted:
                self._start_verify()
            return
        where = (
            f"at position {report.first_bad_position:,}"
            if report.first_bad_position is not None
            else "in the aggregates table"
        )
        banner.update(
            Text(
                f"⚠ Hash chain broken {where}: {shown(report.reason)}. "
                "Events from there on cannot be trusted."
            )
        )
        banner.add_class("shown")

    # -- export -------------------------------------------------------------------

    def export_stem(self) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        return f"{short_name(self.store.path)}-export-{stamp}"

    def action_export(self) -> None:
        formats = {"jsonl": "JSON Lines (every field)", "csv": "CSV (data and metadata as JSON)"}
        if self.reports is not None and self.report_aggregate() is not None:
            formats["report"] = f"Audit report of {self.report_aggregate()} (HTML)"
        chips = self.timeline.filters.chips()
        summary = (
            "Every event matching: " + ", ".join(label for _, label in chips)
            if chips
            else "Every event in the log (no filter is set)."
        )
        self.app.push_screen(
            ExportDialog(self.export_stem(), formats, summary), self._export_chosen
        )

    def _export_chosen(self, choice: tuple[str, str] | None) -> None:
        if choice is None:
            self.notify("Export cancelled; nothing was written.", timeout=2)
        else:
            fmt, path = choice
            if fmt == "report":
                self.audit_report(path, self.report_aggregate() or "")
            else:
                self.export_now(fmt, path)

    def export_now(self, fmt: str, path: str | None = None) -> None:
        typed = path or f"{self.export_stem()}.{fmt}"
        try:
            check_output(typed, protect=[self.store.path], stream=False)
        except OutputError as error:
            self.notify(str(error), severity="error")
            return
        target = str(Path(typed).expanduser().resolve())
        self.notify(f"Exporting to {target}…", timeout=2)
        self.export(fmt, typed, target, self.timeline.filters)

    def report_aggregate(self) -> str | None:
        event = self.selected
        if self.timeline.filters.aggregate_id:
            return self.timeline.filters.aggregate_id
        return event.aggregate_id if event is not None else None

    def action_audit_report(self) -> None:
        aggregate_id = self.report_aggregate()
        if self.reports is None or aggregate_id is None:
            self.notify("Select an aggregate first.", severity="warning")
            return
        self.audit_report(f"{self.export_stem()}-{aggregate_id}.html", aggregate_id)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def export(self, fmt: str, typed: str, path: str, filters: Filters) -> None:
        try:
            count = export_events(self.store, filters, typed, fmt)
        except (StoreError, OSError) as error:
            self.post_message(Exported(path, None, one_line(error)))
            return
        self.post_message(Exported(path, count))

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def audit_report(self, path: str, aggregate_id: str) -> None:
        reports: Any = self.reports
        if reports is None:
            return
        writer = getattr(reports, "write_report", None) or getattr(reports, "write", None)
        if writer is None:
            self.post_message(Exported(path, None, "Audit reports are not available."))
            return
        try:
            writer(self.store, path, aggregate_id=aggregate_id, format="html")
        except (StoreError, OSError) as error:
            self.post_message(Exported(path, None, one_line(error)))
            return
        self.post_message(Exported(path, None, report_of=aggregate_id))

    @on(Exported)
    def _exported(self, message: Exported) -> None:
        if message.error is not None:
            self.notify(message.error, severity="error")
        elif message.count is None:
            self.notify(f"Wrote the audit report of {message.report_of} to {message.path}.")
        else:
            self.last_export = (message.path, message.count)
            self.notify(f"Exported {message.count:,} events to {message.path}.")

    # -- writes -------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="write", exit_on_error=False)
    def append(self, request: AppendRequest) -> None:
        try:
            events = perform_append(self.store, request)
        except StoreError as error:
            self.post_message(Appended([], one_line(error)))
            return
        self.post_message(Appended(events))

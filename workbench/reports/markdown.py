"""The Markdown report: GitHub-flavoured tables, safe to render.

Text from the store is escaped so a renderer shows it as written: control
characters and bidi overrides are shown as escapes (:mod:`workbench.safetext`,
so a terminal showing the file obeys none of them and a line break cannot end
a row), HTML markup, emphasis and link syntax are backslash-escaped, and ``|``
cannot end a cell.
"""

from __future__ import annotations

import re
from typing import Any, TextIO

from store import Change, RecordedEvent
from workbench.late import LATE_MARK

from ..safetext import shown
from .model import Entry, Report, json_text, leaves, time_text, timeline_headings
from .twoclocks import RESTATEMENT_HEADINGS, back_dated, delay_text, restatement_cells

__all__ = ["md_escape", "write_markdown"]

# CommonMark lets a backslash escape any ASCII punctuation; these are the ones
# that can start emphasis, code, a link, an entity, a tag or a cell boundary
# inside a cell (with "[" escaped, "(" and "!" cannot make a link or image).
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")


def md_escape(value: Any) -> str:
    """Text for one table cell: markup escaped, on one line."""
    return _SPECIAL.sub(r"\\\1", "" if value is None else shown(value))


def _table(headings: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headings) + " |", "|" + "|".join("---" for _ in headings) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _kv(rows: list[tuple[str, str]]) -> str:
    return _table(["", ""], [[f"**{md_escape(k)}**", md_escape(v)] for k, v in rows])


def _counts(title: str, counts: dict[str, int]) -> str:
    rows = [[md_escape(name), str(n)] for name, n in counts.items()]
    return _table([title, "Events"], rows or [["none", "0"]])


def _change(c: Change) -> str:
    old = "(absent)" if c.old is None else json_text(c.old)
    new = "(absent)" if c.new is None else json_text(c.new)
    return f"{md_escape(c.path)}: {md_escape(old)} → {md_escape(new)}"


def _row(entry: Entry, aggregate: bool) -> list[str]:
    e = entry.event
    row = [str(e.position), time_text(e.recorded_at), occurred_text(e), md_escape(e.actor or "")]
    if not aggregate:
        row.append(md_escape(e.aggregate_id or ""))
    row += ["" if e.version is None else str(e.version), md_escape(e.type)]
    row.append(md_escape(json_text(e.data)))
    if aggregate:
        row.append("<br>".join(_change(c) for c in entry.changes or []) or "no change")
    return row


def occurred_text(e: RecordedEvent) -> str:
    """The business time, with a mark when the event was back-dated."""
    delay = back_dated(e)
    text = time_text(e.occurred_at)
    return text if delay is None else f"{text} **{LATE_MARK} {delay_text(delay)}**"


def write_markdown(report: Report, out: TextIO) -> int:
    """Write ``report`` as Markdown; returns the number of timeline rows."""
    scope, summary, integrity = report.scope, report.summary, report.integrity
    aggregate = report.is_aggregate
    out.write(f"# {md_escape(scope.title)}\n\n")
    out.write(f"**Integrity: {integrity.verdict}.** {md_escape(integrity.statement())}\n\n")
    out.write("## Scope\n\n" + _kv(scope.rows()) + "\n")
    out.write("## Summary\n\n" + _kv(summary.rows()) + "\n")
    out.write(_counts("Event type", summary.per_type) + "\n")
    out.write(_counts("Actor", summary.per_actor) + "\n")
    if aggregate:
        out.write("## State after the last event shown\n\n")
        rows = [
            [md_escape(path), md_escape(json_text(v))]
            for path, v in leaves(summary.final_state or {})
        ]
        out.write(_table(["Field", "Value"], rows or [["(empty)", ""]]) + "\n")
    out.write("## Integrity attestation\n\n" + _kv(integrity.rows()) + "\n")
    if report.restatements is not None:
        restated = report.restatements
        rows = [[md_escape(c) for c in restatement_cells(r, json_text)] for r in restated.rows]
        out.write(f"## Restatements\n\n{md_escape(restated.intro())}\n\n")
        out.write(_table(RESTATEMENT_HEADINGS, rows or [["none"] + [""] * 7]) + "\n")
    headings = timeline_headings(aggregate)
    out.write("## Timeline\n\n")
    out.write("| " + " | ".join(headings) + " |\n|" + "|".join("---" for _ in headings) + "|\n")
    count = 0
    for entry in report.entries():
        out.write("| " + " | ".join(_row(entry, aggregate)) + " |\n")
        count += 1
    if count == 0:
        out.write("\nNo events.\n")
    return count

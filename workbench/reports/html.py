"""The HTML report: one self-contained file, readable on screen and on paper.

Every piece of text from the store (payloads, actors, ids, types) goes through
:func:`html.escape`, and the page forbids scripts outright with a
Content-Security-Policy, so a payload holding markup shows as text. Control
characters and bidi overrides are shown as escapes first
(:mod:`workbench.safetext`), so they are visible rather than acted on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any, TextIO

from store import Change, RecordedEvent
from workbench.late import LATE_MARK

from ..safetext import shown
from .model import Entry, Report, json_text, leaves, time_text, timeline_headings
from .twoclocks import (
    RESTATEMENT_HEADINGS,
    Restatements,
    back_dated,
    delay_text,
    restatement_cells,
)

__all__ = ["write_html"]

_CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --soft: #f6f8fa;
        --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; }
* { box-sizing: border-box; }
span.late { color: var(--warn); font-weight: 600; }
body { font: 14px/1.45 -apple-system, "Segoe UI", "DejaVu Sans", Helvetica, Arial, sans-serif;
       color: var(--ink); margin: 0 auto; max-width: 1240px; padding: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 17px; margin: 28px 0 8px; padding-bottom: 4px;
     border-bottom: 1px solid var(--line); }
.sub { color: var(--muted); margin: 0 0 16px; }
code, pre, .mono { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; }
pre { margin: 0; white-space: pre-wrap; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px;
         border-bottom: 1px solid var(--line); }
th { background: var(--soft); font-weight: 600; }
table.kv th { width: 240px; }
table.kv td { overflow-wrap: anywhere; }
.counts { display: flex; gap: 24px; flex-wrap: wrap; margin-top: 12px; align-items: flex-start; }
table.state th { font-weight: normal; }
.counts table { width: auto; min-width: 280px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.banner { border: 2px solid; border-radius: 6px; padding: 10px 14px; margin: 12px 0 4px; }
.banner strong { font-size: 16px; }
.ok { border-color: var(--ok); color: var(--ok); }
.failed { border-color: var(--bad); color: var(--bad); }
.unverified { border-color: var(--warn); color: var(--warn); }
.banner p { color: var(--ink); margin: 4px 0 0; }
table.timeline td { font-size: 13px; }
td.when { white-space: nowrap; }
table.timeline td.payload { width: 34%; }
table.changes { width: 100%; }
table.changes td, table.changes th { border: none; padding: 1px 4px; font-size: 12px; }
.old { color: var(--bad); }
.new { color: var(--ok); }
.none { color: var(--muted); font-style: italic; }
.late { color: #9a6700; font-weight: bold; }
footer { color: var(--muted); margin-top: 32px; font-size: 12px; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 11px; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return escape("" if value is None else shown(value), quote=True)


def _kv(rows: list[tuple[str, str]], mono: tuple[str, ...] = ()) -> str:
    cells = "".join(
        f"<tr><th>{_e(key)}</th><td{' class=mono' if key in mono else ''}>{_e(value)}</td></tr>"
        for key, value in rows
    )
    return f'<table class="kv">{cells}</table>'


def _counts(title: str, counts: dict[str, int], limit: int = 25) -> str:
    items = list(counts.items())
    rows = "".join(
        f'<tr><td>{_e(name)}</td><td class="num">{n}</td></tr>' for name, n in items[:limit]
    )
    if len(items) > limit:
        rest = sum(n for _, n in items[limit:])
        more = len(items) - limit
        rows += f'<tr><td class="none">{more} more</td><td class="num">{rest}</td></tr>'
    if not items:
        rows = '<tr><td class="none" colspan="2">none</td></tr>'
    return (
        f'<table><thead><tr><th>{_e(title)}</th><th class="num">Events</th></tr></thead>'
        f"<tbody>{rows}</tbody></table>"
    )


def _state(state: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th><code>{_e(path)}</code></th><td><code>{_e(json_text(value, spaced=True))}</code>"
        "</td></tr>"
        for path, value in leaves(state)
    )
    if not rows:
        rows = '<tr><td class="none">empty</td></tr>'
    return f'<table class="kv state">{rows}</table>'


def _value(value: Any, absent: bool) -> str:
    if absent:
        return '<span class="none">(absent)</span>'
    return f"<code>{_e(json_text(value, spaced=True))}</code>"


def _changes(changes: list[Change]) -> str:
    if not changes:
        return '<span class="none">no change</span>'
    rows = "".join(
        f"<tr><td><code>{_e(c.path)}</code></td>"
        f'<td class="old">{_value(c.old, c.old is None)}</td>'
        f'<td class="new">{_value(c.new, c.new is None)}</td></tr>'
        for c in changes
    )
    return (
        '<table class="changes"><thead><tr><th>Field</th><th>Before</th><th>After</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    )


def _when(value: datetime) -> str:
    """Date over time, so the column stays narrow; the heading says UTC."""
    utc = value.astimezone(UTC)
    return f"{utc:%Y-%m-%d}<br>{utc:%H:%M:%S.%f}"


def _occurred_cell(e: RecordedEvent) -> str:
    delay = back_dated(e)
    if delay is None:
        return f'<td class="mono when">{_when(e.occurred_at)}</td>'
    return (
        f'<td class="mono when late">{_when(e.occurred_at)}'
        f'<br><span class="late">{LATE_MARK} {_e(delay_text(delay))}</span></td>'
    )


def _restatements(restated: Restatements) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in RESTATEMENT_HEADINGS)
    body = (
        "".join(
            "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in restatement_cells(r, json_text)) + "</tr>"
            for r in restated.rows
        )
        or f'<tr><td colspan="{len(RESTATEMENT_HEADINGS)}" class="none">none</td></tr>'
    )
    return (
        f"<section><h2>Restatements</h2><p>{_e(restated.intro())}</p>"
        f'<table class="restatements"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>'
        "</table></section>\n"
    )


def _row(entry: Entry, aggregate: bool) -> str:
    e = entry.event
    cells = [
        f'<td class="num">{e.position}</td>',
        f'<td class="mono when">{_when(e.recorded_at)}</td>',
        _occurred_cell(e),
        f"<td>{_e(e.actor) if e.actor is not None else '<span class=none>none</span>'}</td>",
    ]
    if not aggregate:
        cells.append(f"<td>{_e(e.aggregate_id or '')}</td>")
    cells += [
        f'<td class="num">{"" if e.version is None else e.version}</td>',
        f"<td>{_e(e.type)}</td>",
        f'<td class="payload"><pre>{_e(json_text(e.data, spaced=True))}</pre></td>',
    ]
    if aggregate:
        cells.append(f"<td>{_changes(entry.changes or [])}</td>")
    return f"<tr>{''.join(cells)}</tr>\n"


def write_html(report: Report, out: TextIO) -> int:
    """Write ``report`` as HTML; returns the number of timeline rows."""
    scope, summary, integrity = report.scope, report.summary, report.integrity
    aggregate = report.is_aggregate
    verdict_class = {"OK": "ok", "FAILED": "failed"}.get(integrity.verdict, "unverified")
    verdict_text = {
        "OK": "Integrity verified: the hash chain is intact",
        "FAILED": "Integrity check FAILED",
    }.get(integrity.verdict, "Integrity not verified")
    out.write(
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(scope.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{_e(scope.title)}</h1>\n"
        f'<p class="sub">{_e(scope.store)} · generated {_e(time_text(scope.generated_at))} '
        f"by {_e(scope.generator)}</p></header>\n"
        f'<div class="banner {verdict_class}"><strong>{_e(verdict_text)}</strong>'
        f"<p>{_e(integrity.statement())}</p></div>\n"
        f"<section><h2>Scope</h2>{_kv(scope.rows())}</section>\n"
        f"<section><h2>Summary</h2>{_kv(summary.rows())}\n"
        f'<div class="counts">{_counts("Event type", summary.per_type)}'
        f"{_counts('Actor', summary.per_actor)}</div></section>\n"
    )
    if aggregate:
        out.write(
            "<section><h2>State after the last event shown</h2>"
            f"{_state(summary.final_state or {})}</section>\n"
        )
    out.write(
        "<section><h2>Integrity attestation</h2>"
        f"{_kv(integrity.rows(), mono=('Chain head hash',))}</section>\n"
    )
    if report.restatements is not None:
        out.write(_restatements(report.restatements))
    headings = timeline_headings(aggregate)
    head = "".join(
        f"<th{' class=num' if h in ('Position', 'Version') else ''}>{_e(h)}</th>" for h in headings
    )
    out.write(
        f"<section><h2>Timeline</h2>\n"
        f'<table class="timeline"><thead><tr>{head}</tr></thead>\n<tbody>\n'
    )
    count = 0
    for entry in report.entries():
        out.write(_row(entry, aggregate))
        count += 1
    if count == 0:
        out.write(f'<tr><td colspan="{len(headings)}" class="none">no events</td></tr>\n')
    out.write(
        "</tbody></table></section>\n"
        f"<footer>{_e(scope.generator)} · {count} events · "
        f"chain head {_e(integrity.head_hash or '-')}</footer>\n</body>\n</html>\n"
    )
    return count

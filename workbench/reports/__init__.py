"""Audit reports of a store: HTML, Markdown, CSV, xlsx, JSON Lines or Parquet.

    >>> from workbench.reports import write_report
    >>> write_report("shop.db", "order-7.html", aggregate_id="order-7")
    >>> write_report("shop.db", "october.csv", aggregate_type="Order",
    ...              since="2024-10-01T00:00Z", until="2024-10-31T23:59:59Z")

Each report states its scope (store, filters, time window, when and by which
version it was generated), a summary (events, aggregates, actors, span), an
integrity attestation (the result of ``verify``, the chain head hash, the
positions covered) and the timeline: who did what, when. An aggregate report
also shows, per event, each field's value before and after it.

Which outputs are for people and which are data: HTML, Markdown and xlsx show
text from the store with control characters and bidi overrides escaped (see
:mod:`workbench.safetext`); CSV keeps the text but neutralises cells a
spreadsheet would evaluate as formulas; JSON Lines and Parquet hold the exact
text.

The same is on the command line as ``sss report``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from typing import IO, Any, BinaryIO, TextIO, cast

from store import Checkpoint
from workbench.outputs import check_output, open_output

from ..frames import Source, TimeLike, opened, to_datetime
from .html import write_html
from .markdown import write_markdown
from .model import Entry, Integrity, Report, Scope, Summary, build_report
from .tabular import write_csv, write_jsonl, write_parquet
from .xlsx import write_xlsx

__all__ = [
    "FORMATS",
    "Entry",
    "Integrity",
    "Report",
    "Scope",
    "Summary",
    "build_report",
    "format_for",
    "write_report",
]

FORMATS: tuple[str, ...] = ("html", "md", "csv", "xlsx", "jsonl", "parquet")
_SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def format_for(path: str | os.PathLike[str]) -> str:
    """The report format a file name asks for (``.html``, ``.md``, ``.csv``, ...)."""
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    try:
        return _SUFFIXES[suffix]
    except KeyError:
        raise ValueError(
            f"cannot tell the report format from {os.fspath(path)!r}; "
            f"give format= one of {', '.join(FORMATS)}"
        ) from None


def _write(report: Report, fmt: str, out: IO[Any]) -> int:
    # open_output() gives a binary stream for these two formats, text for the rest.
    if fmt == "parquet":
        return write_parquet(report, cast(BinaryIO, out))
    if fmt == "xlsx":
        return write_xlsx(report, cast(BinaryIO, out))
    writer = {"html": write_html, "md": write_markdown, "csv": write_csv, "jsonl": write_jsonl}[fmt]
    return writer(report, cast(TextIO, out))


def write_report(
    source: Source,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    aggregate_id: str | None = None,
    from_position: int | None = None,
    aggregate_type: str | None = None,
    types: Iterable[str] | str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    backwards: bool = False,
    verify: bool = True,
    title: str | None = None,
    generated_at: datetime | None = None,
    occurred: TimeLike | None = None,
    known_at: TimeLike | None = None,
    checkpoint: Checkpoint | None = None,
    key: str | None = None,
) -> Report:
    """Write an audit report of ``source`` (a store or its path) to ``path``.

    ``format`` is one of :data:`FORMATS` (default: from the file name). With
    ``aggregate_id`` the report is that aggregate's history with before/after
    values; the filters are those of :meth:`store.EventStore.read`.
    ``verify=False`` skips the hash-chain walk (the report then says so).
    ``occurred`` (a business date) with ``known_at`` (a cut-off) adds a
    restatements section: what events recorded after the cut-off changed
    about the state as of that date. ``checkpoint`` (with ``key``, a public
    key's text) verifies the store against it, and the attestation states it.
    The file appears only once complete, and is never a store, a device or a
    directory (:mod:`workbench.outputs`; ``"-"`` writes to standard output).
    Returns the :class:`Report` written.
    """
    fmt = format_for(path) if format is None else format.lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {format!r}; use one of {', '.join(FORMATS)}")
    filters: dict[str, Any] = {
        "from_position": from_position,
        "aggregate_type": aggregate_type,
        "types": types,
        "since": to_datetime(since, "since"),
        "until": to_datetime(until, "until"),
        "limit": limit,
        "backwards": backwards,
    }
    target = os.fspath(path)
    with opened(source) as es:
        # Checked before the report is built: a report must never replace a store.
        check_output(target, protect=[es.path])
        report = build_report(
            es,
            aggregate_id=aggregate_id,
            filters=filters,
            verify=verify,
            generated_at=generated_at,
            title=title,
            occurred=to_datetime(occurred, "occurred"),
            known_at=to_datetime(known_at, "known_at"),
            checkpoint=checkpoint,
            key=key,
        )
        with open_output(target, binary=fmt in ("parquet", "xlsx"), protect=[es.path]) as out:
            _write(report, fmt, out)
    return report

"""Audit reports of a store: HTML, Markdown, CSV, JSON Lines or Parquet.

    >>> from workbench.reports import write_report
    >>> write_report("shop.db", "order-7.html", aggregate_id="order-7")
    >>> write_report("shop.db", "october.csv", aggregate_type="Order",
    ...              since="2024-10-01T00:00Z", until="2024-10-31T23:59:59Z")

Each report states its scope (store, filters, time window, when and by which
version it was generated), a summary (events, aggregates, actors, span), an
integrity attestation (the result of ``verify``, the chain head hash, the
positions covered) and the timeline: who did what, when. An aggregate report
also shows, per event, each field's value before and after it.

The same is on the command line as ``sss report``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..frames import Source, TimeLike, opened, to_datetime
from .html import write_html
from .markdown import write_markdown
from .model import Entry, Integrity, Report, Scope, Summary, build_report
from .tabular import write_csv, write_jsonl, write_parquet

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

FORMATS: tuple[str, ...] = ("html", "md", "csv", "jsonl", "parquet")
_SUFFIXES = {
    ".html": "html",
    ".htm": "html",
    ".md": "md",
    ".markdown": "md",
    ".csv": "csv",
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


def _write(report: Report, fmt: str, path: str) -> int:
    if fmt == "parquet":
        with open(path, "wb") as binary:
            return write_parquet(report, binary)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = {"html": write_html, "md": write_markdown, "csv": write_csv, "jsonl": write_jsonl}[
            fmt
        ]
        return writer(report, out)


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
) -> Report:
    """Write an audit report of ``source`` (a store or its path) to ``path``.

    ``format`` is one of :data:`FORMATS` (default: from the file name). With
    ``aggregate_id`` the report is that aggregate's history with before/after
    values; the filters are those of :meth:`store.EventStore.read`.
    ``verify=False`` skips the hash-chain walk (the report then says so).
    ``occurred`` (a business date) with ``known_at`` (a cut-off) adds a
    restatements section: what events recorded after the cut-off changed
    about the state as of that date.
    The file appears only once complete. Returns the :class:`Report` written.
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
    target = os.path.abspath(os.fspath(path))
    if os.path.isdir(target):
        raise IsADirectoryError(21, "Is a directory", os.fspath(path))
    with opened(source) as es:
        report = build_report(
            es,
            aggregate_id=aggregate_id,
            filters=filters,
            verify=verify,
            generated_at=generated_at,
            title=title,
            occurred=to_datetime(occurred, "occurred"),
            known_at=to_datetime(known_at, "known_at"),
        )
        # Written beside the target and renamed at the end, so a failed report
        # never leaves a truncated file that looks complete.
        fd, temp = tempfile.mkstemp(prefix=".sss-report-", dir=os.path.dirname(target))
        os.close(fd)
        try:
            _write(report, fmt, temp)
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(temp, 0o666 & ~mask)
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(temp)
            raise
    return report

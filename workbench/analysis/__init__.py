"""An analysis database: the log reshaped for Datasette and sqlite-utils.

    >>> from workbench.analysis import export
    >>> summary = export("shop.db", "analysis.db")          # or an open EventStore
    >>> summary.added, summary.through_position

The store's own file is a log: one row per event, payloads as JSON text. The
analysis database built here (with sqlite-utils) holds

- ``events``: every exported event with the schema's fields (times as
  ISO-8601 UTC text, which sorts as time does and which Datasette facets by
  date), plus ``actor``, ``correlation_id`` and ``causation_id`` pulled out of
  the metadata for faceting; full-text search (FTS5) over ``data`` and
  ``metadata``;
- one table per event type (named as the type), one row per event: its
  ``position`` (a foreign key to ``events``), ``aggregate_id``,
  ``recorded_at``, ``actor`` and the payload flattened into columns (see
  :mod:`workbench.analysis._shape` for the rules: nested keys joined by ``.``,
  lists as JSON text, every value keeping its JSON type);
- one table per aggregate type, ``<Type>_state`` (``untyped_state`` for
  aggregates without a type): the state of each aggregate after the last
  exported event of it, rebuilt with the store's reducers, flattened the same
  way, with ``state`` as JSON text too; with no filters that is its latest
  state as of the export;
- ``changes``: one row per field an event changed, as
  :func:`workbench.frames.changes` gives them (``old`` and ``new`` keep their
  JSON types; objects and lists as JSON text; ``NULL`` where absent);
- ``_sss_analysis`` (what the copy was made from: the source's store id,
  location, the filters, the last position exported, and the source's verify
  result and chain head), ``_sss_tables`` and ``_sss_columns`` (every table
  and column described, and which payload path each column holds). The same
  descriptions are written to ``ANALYSIS.metadata.json`` beside the database,
  for ``datasette ANALYSIS.db --metadata ANALYSIS.metadata.json``.

Exporting onto an existing analysis database adds only the events after its
last exported position (matching the same filters), appends their changes and
updates the states of the aggregates they touch, in one transaction. A
database made from another store, with other filters or with other reducers
or upcasters, is refused; so is
any target that is an event store, the source itself, or not an analysis
database. A new database is built beside the target and renamed into place
when complete.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from store import EventStore

from . import _describe
from ._builder import FORMAT, SELECTION, Builder, Progress, verdict
from ._shape import SEPARATOR, flatten
from ._target import AnalysisError, check_metadata_file, check_target, metadata_path

__all__ = [
    "FORMAT",
    "SEPARATOR",
    "AnalysisError",
    "ExportSummary",
    "check_target",
    "export",
    "flatten",
    "metadata_path",
]


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """What an export did: ``added`` events, ``total`` now in the database."""

    path: str
    metadata_path: str
    added: int
    total: int
    through_position: int
    created: bool
    verify_ok: bool
    verify_reason: str | None = None


# -- the source --------------------------------------------------------------------


def _source_id(es: EventStore) -> str:
    store_id = es.info().get("store_id")
    if store_id:
        return str(store_id)
    first = next(es.read(limit=1), None)  # stores from before ids: their first event
    return f"first-event:{first.event_id}" if first is not None else "empty"


def _selection(filters: Mapping[str, Any]) -> dict[str, Any]:
    chosen = {name: filters.get(name) for name in SELECTION}
    if chosen["types"] is not None:
        chosen["types"] = sorted(set(chosen["types"]))
    return chosen


# -- export ------------------------------------------------------------------------


def export(
    source: EventStore | str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    filters: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> ExportSummary:
    """Build (or bring up to date) the analysis database ``target`` from ``source``.

    ``filters`` are :meth:`store.EventStore.read`'s (no ``backwards``: the
    database is in log order). ``aggregate_id``, ``aggregate_type`` and
    ``types`` decide which events belong to the database and must be the same
    on every export into it; ``from_position``, ``since``, ``until`` and
    ``limit`` bound what one export adds. ``progress(done, total)`` is called
    after each page read (``total`` is the most events this export may add).

    Pass an open ``EventStore`` to rebuild states with its reducers and upcasters.
    """
    wanted = dict(filters or {})
    if wanted.pop("backwards", False):
        raise AnalysisError("an analysis database is in log order; drop --backwards")
    unknown = set(wanted) - {"from_position", "since", "until", "limit", *SELECTION}
    if unknown:
        raise TypeError(f"unknown filters: {', '.join(sorted(unknown))}")
    if isinstance(source, EventStore):
        return _export(source, os.fspath(target), wanted, progress)
    with EventStore(os.fspath(source), readonly=True) as es:
        return _export(es, os.fspath(target), wanted, progress)


def _export(
    es: EventStore, target: str, filters: dict[str, Any], progress: Progress | None
) -> ExportSummary:
    existing = check_target(target, es.path)
    meta_file = metadata_path(target)
    check_metadata_file(meta_file)
    source_id = _source_id(es)
    selection = _selection(filters)
    report = es.verify()
    if existing:
        conn = sqlite3.connect(target, timeout=5)
        return _run(es, conn, target, meta_file, filters, selection, source_id, report, progress)
    # A new database is built beside the target and renamed into place, so a
    # failed export never leaves a half-built file that looks complete.
    directory = os.path.dirname(os.path.abspath(target))
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".sss-analysis-", suffix=".db")
    os.close(handle)
    try:
        conn = sqlite3.connect(temp)
        conn.execute("PRAGMA journal_mode = OFF")  # a temp file: on failure it is deleted
        conn.execute("PRAGMA synchronous = OFF")  # made durable by the fsync before the rename
        summary = _run(es, conn, target, meta_file, filters, selection, source_id, report, progress)
        with open(temp, "rb+") as written:
            os.fsync(written.fileno())
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)  # temp files are private; the database is not
        check_target(target, es.path)  # nothing appeared there meanwhile that must be kept
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise
    return summary


def _run(
    es: EventStore,
    conn: sqlite3.Connection,
    target: str,
    meta_file: str,
    filters: dict[str, Any],
    selection: dict[str, Any],
    source_id: str,
    report: Any,
    progress: Progress | None,
) -> ExportSummary:
    try:
        # No sqlite-utils plugins: what a database holds must not depend on them.
        db = sqlite_utils.Database(conn, strict=True, execute_plugins=False)
        conn.execute("BEGIN IMMEDIATE")
        try:
            builder = Builder(es, db, target, selection, source_id)
            added = builder.run(filters, progress)
            builder.finish(report)
            document = _describe.metadata(db, os.path.splitext(os.path.basename(target))[0])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        total = db.execute("SELECT count(*) FROM events").fetchone()[0]
    except sqlite3.Error as e:
        raise AnalysisError(f"{target}: {e}") from e
    finally:
        conn.close()
    _describe.write_json(meta_file, document)
    return ExportSummary(
        path=target,
        metadata_path=meta_file,
        added=added,
        total=int(total),
        through_position=builder.through,
        created=builder.created,
        verify_ok=bool(report.ok),
        verify_reason=None if report.ok else verdict(report),
    )

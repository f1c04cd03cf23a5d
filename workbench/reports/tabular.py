"""The machine-readable reports: CSV, JSON Lines and Parquet, all streamed.

* CSV: the scope, summary and attestation as ``#`` comment lines, then one row
  per event (every text field quoted, so ``pd.read_csv(path, comment="#")``
  reads it back). ``data``, ``metadata`` and ``changes`` are JSON text. The CSV
  report is made to be opened in a spreadsheet, so a text cell that one would
  evaluate as a formula (beginning with ``=``, ``+``, ``-``, ``@``, a tab or a
  carriage return) gets a leading ``'`` (OWASP's advice against CSV
  injection), and a ``# scope.cells`` line says so; the comment lines show
  control characters as escapes. JSON Lines and Parquet carry the exact text.
* JSON Lines: a first line ``{"kind": "report", "scope": ..., "summary": ...,
  "integrity": ...}``, then one ``{"kind": "event", ...}`` line per event with
  every field of the export format (and ``changes`` in an aggregate report).
* Parquet: one row per event with proper types (integers, UTC timestamps,
  strings; payloads as JSON text, since payload shapes vary); the header
  object is stored as JSON in the file's metadata under ``sss.report``.
"""

from __future__ import annotations

import csv
import itertools
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

import pyarrow as pa
import pyarrow.parquet as pq

from store import Change

from ..safetext import shown, spreadsheet_cell
from .model import Entry, Report, json_text, time_text

__all__ = [
    "COLUMNS",
    "CSV_CELLS_NOTE",
    "PARQUET_SCHEMA",
    "write_csv",
    "write_jsonl",
    "write_parquet",
]

CSV_CELLS_NOTE = (
    "text cells beginning with = + - @ tab or CR are prefixed with ' so a spreadsheet "
    "shows them as text (OWASP CSV injection); the jsonl and parquet reports hold the exact text"
)

COLUMNS: tuple[str, ...] = (
    "position",
    "recorded_at",
    "occurred_at",
    "actor",
    "aggregate_id",
    "aggregate_type",
    "version",
    "type",
    "schema_version",
    "event_id",
    "correlation_id",
    "causation_id",
    "data",
    "metadata",
    "hash",
)
"""Timeline columns of CSV and Parquet reports (plus ``changes`` for an aggregate)."""

_TS = pa.timestamp("us", tz="UTC")
_FIELDS: list[pa.Field[Any]] = [
    pa.field("position", pa.int64()),
    pa.field("recorded_at", _TS),
    pa.field("occurred_at", _TS),
    pa.field("actor", pa.string()),
    pa.field("aggregate_id", pa.string()),
    pa.field("aggregate_type", pa.string()),
    pa.field("version", pa.int64()),
    pa.field("type", pa.string()),
    pa.field("schema_version", pa.int64()),
    pa.field("event_id", pa.string()),
    pa.field("correlation_id", pa.string()),
    pa.field("causation_id", pa.string()),
    pa.field("data", pa.string(), metadata={"format": "json"}),
    pa.field("metadata", pa.string(), metadata={"format": "json"}),
    pa.field("hash", pa.string()),
]
PARQUET_SCHEMA = pa.schema(_FIELDS)
_CHANGE = pa.struct([("path", pa.string()), ("old", pa.string()), ("new", pa.string())])
_BATCH = 10_000


def _changes_json(changes: list[Change]) -> list[dict[str, Any]]:
    return [{"path": c.path, "old": c.old, "new": c.new} for c in changes]


def _values(entry: Entry) -> dict[str, Any]:
    e = entry.event
    return {
        "position": e.position,
        "recorded_at": e.recorded_at,
        "occurred_at": e.occurred_at,
        "actor": e.actor,
        "aggregate_id": e.aggregate_id,
        "aggregate_type": e.aggregate_type,
        "version": e.version,
        "type": e.type,
        "schema_version": e.schema_version,
        "event_id": e.event_id,
        "correlation_id": e.correlation_id,
        "causation_id": e.causation_id,
        "data": e.data,
        "metadata": e.metadata,
        "hash": e.hash,
    }


def write_csv(report: Report, out: TextIO) -> int:
    """Write ``report`` as CSV; returns the number of rows."""
    for section, value in report.header().items():
        for key, item in value.items():
            text = item if isinstance(item, str) else json_text(item)
            out.write(f"# {section}.{key}: {shown(text)}\n")
        if section == "scope":
            out.write(f"# scope.cells: {CSV_CELLS_NOTE}\n")
    columns = [*COLUMNS, "changes"] if report.is_aggregate else list(COLUMNS)
    # Every text field is quoted, so a value starting with "#" is never a comment.
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for entry in report.entries():
        values = _values(entry)
        row: list[Any] = []
        for name in COLUMNS:
            value = values[name]
            if name in ("recorded_at", "occurred_at"):
                value = time_text(value)
            elif name in ("data", "metadata"):
                value = json_text(value)
            row.append("" if value is None else spreadsheet_cell(value))
        if report.is_aggregate:
            row.append(spreadsheet_cell(json_text(_changes_json(entry.changes or []))))
        writer.writerow(row)
        count += 1
    return count


def write_jsonl(report: Report, out: TextIO) -> int:
    """Write ``report`` as JSON Lines; returns the number of event lines."""
    out.write(json_text({"kind": "report", **report.header()}) + "\n")
    count = 0
    lines: list[str] = []
    for entry in report.entries():
        record: dict[str, Any] = {"kind": "event", **entry.event.to_dict()}
        if report.is_aggregate:
            record["changes"] = _changes_json(entry.changes or [])
        lines.append(json_text(record))
        count += 1
        if len(lines) >= 512:
            out.write("\n".join(lines) + "\n")
            lines.clear()
    if lines:
        out.write("\n".join(lines) + "\n")
    return count


def _batches(report: Report, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    entries = report.entries()
    while chunk := list(itertools.islice(entries, _BATCH)):
        values = [_values(entry) for entry in chunk]
        arrays = []
        for field in PARQUET_SCHEMA:
            column = [v[field.name] for v in values]
            if field.name in ("data", "metadata"):
                column = [json_text(item) for item in column]
            arrays.append(pa.array(column, type=field.type))
        if report.is_aggregate:
            changes = [
                [
                    {"path": c.path, "old": json_text(c.old), "new": json_text(c.new)}
                    for c in entry.changes or []
                ]
                for entry in chunk
            ]
            arrays.append(pa.array(changes, type=pa.list_(_CHANGE)))
        yield pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_parquet(report: Report, out: BinaryIO) -> int:
    """Write ``report`` as Parquet, a batch of rows at a time; returns the row count."""
    schema = PARQUET_SCHEMA
    if report.is_aggregate:
        schema = schema.append(pa.field("changes", pa.list_(_CHANGE), metadata={"format": "json"}))
    schema = schema.with_metadata({"sss.report": json_text(report.header())})
    count = 0
    with pq.ParquetWriter(out, schema) as writer:
        for batch in _batches(report, schema):
            writer.write_batch(batch)
            count += batch.num_rows
    return count

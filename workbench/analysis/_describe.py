"""What every table and column of an analysis database means, for people and Datasette.

The descriptions live in the database (``_sss_tables``, ``_sss_columns``) and
are written out as a Datasette ``metadata.json``: title, the source's verify
result and chain head in the description, a description of every table and
column, and default facets.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import tempfile
import urllib.parse
from typing import Any

import sqlite_utils

from ._shape import SEPARATOR

EVENT_DESCRIPTIONS: dict[str, str] = {
    "position": "global order in the source store, 1, 2, 3 ... (the key every table refers to)",
    "event_id": "the event's UUID (its idempotency key)",
    "aggregate_id": "the stream the event belongs to; empty for system events",
    "aggregate_type": "the aggregate's type, e.g. Order",
    "version": "1, 2, 3 ... within the aggregate",
    "type": "the event type; its payload is in the table of that name",
    "schema_version": "the payload's shape version (for upcasting)",
    "data": "the payload, JSON text as stored",
    "metadata": "the metadata, JSON text as stored",
    "occurred_at": "business time, ISO-8601 UTC",
    "recorded_at": "when the store recorded it, ISO-8601 UTC (never decreases along position)",
    "hash": "SHA-256 chain hash over the previous hash and this event",
    "actor": "metadata.actor: who caused the event",
    "correlation_id": "metadata.correlation_id",
    "causation_id": "metadata.causation_id",
}
CHANGE_DESCRIPTIONS: dict[str, str] = {
    "position": "the event that made the change",
    "aggregate_id": "the aggregate changed",
    "aggregate_type": "its type",
    "version": "the aggregate's version after the change",
    "type": "the event type",
    "recorded_at": "when the event was recorded, ISO-8601 UTC",
    "actor": "who caused it (metadata.actor)",
    "path": "the field changed, as a JSON Pointer (/address/zip)",
    "old": "its value before; NULL where it was absent (objects and lists as JSON text)",
    "new": "its value after; NULL where it was removed (objects and lists as JSON text)",
}
TYPE_DESCRIPTIONS: dict[str, str] = {
    "position": "the event (a row of events)",
    "aggregate_id": "the aggregate it belongs to",
    "recorded_at": "when it was recorded, ISO-8601 UTC",
    "actor": "who caused it (metadata.actor)",
}
STATE_DESCRIPTIONS: dict[str, str] = {
    "aggregate_id": "the aggregate",
    "version": "its version after the last exported event of it",
    "position": "that event (a row of events)",
    "updated_at": "when that event was recorded, ISO-8601 UTC",
    "state": "the whole state, JSON text",
}
META_DESCRIPTIONS = {
    "_sss_analysis": "what this database was made from: source store, filters, last position "
    "exported, the source's verify result and chain head",
    "_sss_tables": "every table of this database, what it holds",
    "_sss_columns": "every payload and state column: the JSON path it holds, the JSON types seen",
}
COLUMN_DESCRIPTIONS = {
    "table_name": "the table",
    "name": "the column",
    "path": "the payload (or state) path it holds, a JSON array of keys",
    "kinds": "the JSON types seen in it",
    "description": "what it holds, in words",
}


def table_description(kind: str, key: str | None) -> str:
    if kind == "events":
        return "every exported event, one row each, in log order; full-text search over payloads"
    if kind == "changes":
        return "one row per field an event changed in its aggregate's state (old and new value)"
    if kind == "type":
        return f"the payloads of {key} events, one row per event, one column per field"
    name = key if key is not None else "untyped"
    return f"the state of each {name} aggregate after its last exported event, flattened"


def column_description(kind: str, path: list[str], kinds: list[str]) -> str:
    """``payload field address.zip (text)``: what a payload or state column holds."""
    prefix = "payload field " if kind == "type" else "state field "
    shown = [k for k in kinds if k != "null"] or ["null"]
    return f"{prefix}{SEPARATOR.join(path)} ({' | '.join(shown)})"


def metadata(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    """The Datasette metadata of ``db``, whose Datasette name is ``name``."""
    meta = dict(db.execute("SELECT key, value FROM _sss_analysis").fetchall())
    verified = (
        f"verified intact: {meta.get('verify_checked')} events checked"
        if meta.get("verify_ok") == "true"
        else f"verify FAILED at position {meta.get('verify_first_bad_position')}: "
        f"{meta.get('verify_reason')}"
    )
    description = (
        f"Analysis copy of the event store {meta.get('source')} "
        f"(store id {meta.get('source_store_id')}), events up to position "
        f"{meta.get('through_position')}, filters {meta.get('filters')}. Source {verified}; "
        f"chain head at position {meta.get('chain_head_position')}: "
        f"{meta.get('chain_head_hash') or '(empty)'}. Updated {meta.get('updated_at')}."
    )
    tables: dict[str, Any] = {}
    kinds_of: dict[str, str] = {}
    for table, kind, about in db.execute(
        "SELECT name, kind, description FROM _sss_tables ORDER BY name"
    ):
        kinds_of[table] = kind
        fixed = {
            "events": EVENT_DESCRIPTIONS,
            "changes": CHANGE_DESCRIPTIONS,
            "type": TYPE_DESCRIPTIONS,
            "state": STATE_DESCRIPTIONS,
        }[kind]
        entry: dict[str, Any] = {"description": about, "columns": dict(fixed)}
        if kind == "events":
            entry["facets"] = ["type", "aggregate_type", "actor"]
            entry["label_column"] = "type"
            entry["fts_table"] = "events_fts"
        elif kind == "changes":
            entry["facets"] = ["type", "path", "actor"]
        elif kind == "type":
            entry["facets"] = ["actor"]
        else:
            entry["facets"] = []
        tables[table] = entry
    # Datasette lists every described column above the rows; a payload of many
    # fields would push the rows and facets off the page. So payload and state
    # columns are described in _sss_columns, linked from the table's description.
    counts = dict(
        db.execute("SELECT table_name, count(*) FROM _sss_columns GROUP BY table_name").fetchall()
    )
    for table, count in counts.items():
        entry = tables[table]
        link = "_sss_columns?" + urllib.parse.urlencode({"table_name": table})
        noun = "payload" if kinds_of.get(table) == "type" else "state"
        entry["description_html"] = (
            f"{html.escape(entry['description'])}. "
            f'<a href="{html.escape(link)}">Its {count} {noun} columns</a>: '
            "the JSON path and JSON types each holds."
        )
    for table, about in META_DESCRIPTIONS.items():
        tables[table] = {"description": about}
    tables["_sss_columns"]["columns"] = COLUMN_DESCRIPTIONS
    tables["_sss_tables"]["columns"] = {
        "name": "the table",
        "kind": "events, changes, type (one event type's payloads) or state (one aggregate type)",
        "source": "the event type or aggregate type it holds",
        "description": "what it holds, in words",
    }
    tables["_sss_analysis"]["columns"] = {
        "key": "format, source, source_store_id, filters, reducers (fingerprints of the "
        "reducers and upcasters), through_position (the last position "
        "exported), through_hash, verify_ok, verify_checked, verify_first_bad_position, "
        "verify_reason, chain_head_position, chain_head_hash, created_at, updated_at",
        "value": "its value, as text",
    }
    tables["_sss_columns"]["facets"] = ["table_name"]
    return {
        "title": f"Analysis of {meta.get('source')}",
        "description": description,
        "source": meta.get("source"),
        "databases": {name: {"description": description, "tables": tables}},
    }


def write_json(path: str, document: dict[str, Any]) -> None:
    """Write ``document`` to ``path`` whole or not at all (temp file beside, renamed)."""
    directory = os.path.dirname(os.path.abspath(path))
    handle, temp = tempfile.mkstemp(dir=directory, prefix=".sss-analysis-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2, ensure_ascii=False)
            out.write("\n")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temp)
        raise

"""The work of one export on an open analysis database, inside its transaction."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlite_utils

from store import VOIDED, EventStore, ReducerError, diff
from store.codec import format_time, parse_time
from store.models import recorded_event

from . import _describe
from ._shape import Columns, Path, cell, table_name
from ._target import META, AnalysisError

FORMAT = "sss-analysis"
FORMAT_VERSION = 1
TABLES = "_sss_tables"
COLUMNS = "_sss_columns"
_PAGE = 10_000

EVENT_COLUMNS: dict[str, str] = {
    "position": "INTEGER",
    "event_id": "TEXT",
    "aggregate_id": "TEXT",
    "aggregate_type": "TEXT",
    "version": "INTEGER",
    "type": "TEXT",
    "schema_version": "INTEGER",
    "data": "TEXT",
    "metadata": "TEXT",
    "occurred_at": "TEXT",
    "recorded_at": "TEXT",
    "hash": "TEXT",
    "actor": "ANY",
    "correlation_id": "ANY",
    "causation_id": "ANY",
}
TYPE_FIXED = ("position", "aggregate_id", "recorded_at", "actor")
STATE_FIXED = ("aggregate_id", "version", "position", "updated_at", "state")
CHANGE_COLUMNS: dict[str, str] = {
    "position": "INTEGER",
    "aggregate_id": "TEXT",
    "aggregate_type": "TEXT",
    "version": "INTEGER",
    "type": "TEXT",
    "recorded_at": "TEXT",
    "actor": "ANY",
    "path": "TEXT",
    "old": "ANY",
    "new": "ANY",
}
SELECTION = ("aggregate_id", "aggregate_type", "types")
"""Filters that choose which events belong to the database: fixed for its life."""

Progress = Callable[[int, int], None]


def _describe_selection(selection: Mapping[str, Any]) -> str:
    parts = []
    if selection.get("aggregate_id") is not None:
        parts.append(f"--aggregate {selection['aggregate_id']}")
    if selection.get("aggregate_type") is not None:
        parts.append(f"--aggregate-type {selection['aggregate_type']}")
    for name in selection.get("types") or ():
        parts.append(f"--type {name}")
    return " ".join(parts) or "no filters"


class Builder:
    """One export's work on an open analysis database, inside its transaction."""

    def __init__(
        self,
        es: EventStore,
        db: sqlite_utils.Database,
        target: str,
        selection: dict[str, Any],
        source_id: str,
    ) -> None:
        self.es = es
        self.db = db
        self.target = target
        self.selection = selection
        self.source_id = source_id
        self.created = META not in db.table_names()
        self.tables: dict[tuple[str, str | None], str] = {}  # (kind, key) -> table
        self.columns: dict[str, Columns] = {}
        self.taken = {name.lower() for name in db.table_names()}
        self.through = 0
        self.started = 0
        self.states: dict[str, tuple[int, dict[str, Any], int, str, str | None]] = {}
        self._times: dict[str, datetime] = {}
        if self.created:
            self._create()
        else:
            self._load()

    # -- schema ---------------------------------------------------------------

    def _create(self) -> None:
        db = self.db
        db.table(META).create({"key": "TEXT", "value": "TEXT"}, pk="key")
        db.table(TABLES).create(
            {"name": "TEXT", "kind": "TEXT", "source": "TEXT", "description": "TEXT"}, pk="name"
        )
        db.table(COLUMNS).create(
            {
                "table_name": "TEXT",
                "name": "TEXT",
                "path": "TEXT",
                "kinds": "TEXT",
                "description": "TEXT",
            },
            pk=("table_name", "name"),
        )
        db.table("events").create(EVENT_COLUMNS, pk="position", not_null=["event_id", "type"])
        db.table("changes").create(
            CHANGE_COLUMNS, foreign_keys=[("position", "events", "position")], not_null=["path"]
        )
        for name, kind in (("events", "events"), ("changes", "changes")):
            self._register(name, kind, None)
        self._meta({"format": FORMAT, "format_version": str(FORMAT_VERSION)})
        self._meta({"source_store_id": self.source_id, "created_at": _now()})
        self._meta({"filters": orjson.dumps(self.selection).decode()})
        self._meta({"reducers": self._reducers()})
        self.taken.update({META.lower(), TABLES.lower(), COLUMNS.lower()})

    def _load(self) -> None:
        meta = dict(self.db.execute(f"SELECT key, value FROM {META}").fetchall())
        if meta.get("format") != FORMAT:
            raise AnalysisError(f"{self.target} is not an analysis database of this tool")
        if int(meta.get("format_version", "0")) > FORMAT_VERSION:
            raise AnalysisError(f"{self.target} was written by a newer version; upgrade to add")
        if meta.get("source_store_id") != self.source_id:
            raise AnalysisError(
                f"{self.target} was made from another store ({meta.get('source')}); "
                "export to a new file"
            )
        made_with = orjson.loads(meta.get("filters", "{}"))
        if made_with != self.selection:
            raise AnalysisError(
                f"{self.target} was made with {_describe_selection(made_with)}, not "
                f"{_describe_selection(self.selection)}; give the same filters or a new file"
            )
        if meta.get("reducers") != self._reducers():
            raise AnalysisError(
                f"{self.target} was made with other --reducers or --upcasters; its states "
                "would mix two ways of folding: give the same ones or a new file"
            )
        self.through = int(meta.get("through_position", "0"))
        if self.through:
            stored = meta.get("through_hash")
            now = next(self.es.read(from_position=self.through, limit=1), None)
            if now is None or now.position != self.through or now.hash != stored:
                raise AnalysisError(
                    f"{self.es.label} no longer holds the history {self.target} was made from "
                    f"(position {self.through} differs); export to a new file"
                )
        for name, kind, key in self.db.execute(f"SELECT name, kind, source FROM {TABLES}"):
            self.tables[(kind, key)] = name
        fixed = {"type": TYPE_FIXED, "state": STATE_FIXED}
        for table, name, path, kinds in self.db.execute(
            f"SELECT table_name, name, path, kinds FROM {COLUMNS} WHERE path IS NOT NULL"
        ):
            columns = self.columns.get(table)
            if columns is None:
                kind = next(k for (k, _), t in self.tables.items() if t == table)
                columns = self.columns[table] = Columns(table, fixed[kind])
            columns.load(tuple(orjson.loads(path)), name, orjson.loads(kinds))

    def _reducers(self) -> str:
        """Which reducers and upcasters built the states (their fingerprints)."""
        return f"{self.es.reducers.fingerprint} {self.es.upcasters.fingerprint}"

    def _meta(self, values: Mapping[str, str]) -> None:
        self.db.table(META).upsert_all(
            [{"key": key, "value": value} for key, value in values.items()], pk="key"
        )

    def _register(self, name: str, kind: str, key: str | None) -> None:
        self.tables[(kind, key)] = name
        self.db.table(TABLES).upsert(
            {
                "name": name,
                "kind": kind,
                "source": key,
                "description": _describe.table_description(kind, key),
            },
            pk="name",
        )

    def _table(self, kind: str, key: str | None) -> tuple[str, Columns]:
        name = self.tables.get((kind, key))
        if name is None:
            if kind == "type":
                assert key is not None
                name = table_name(key, self.taken)
                fixed: tuple[str, ...] = TYPE_FIXED
                self.db.table(name).create(
                    {"position": "INTEGER", "aggregate_id": "TEXT", "recorded_at": "TEXT",
                     "actor": "ANY"},
                    pk="position",
                    foreign_keys=[("position", "events", "position")],
                )  # fmt: skip
            else:
                name = table_name(f"{key}_state" if key else "untyped_state", self.taken)
                fixed = STATE_FIXED
                self.db.table(name).create(
                    {"aggregate_id": "TEXT", "version": "INTEGER", "position": "INTEGER",
                     "updated_at": "TEXT", "state": "TEXT"},
                    pk="aggregate_id",
                    foreign_keys=[("position", "events", "position")],
                )  # fmt: skip
            self._register(name, kind, key)
            self.columns[name] = Columns(name, fixed)
        return name, self.columns[name]

    def _add_columns(self, table: str, columns: Columns) -> None:
        for name in columns.new:
            self.db.table(table).add_column(name, "ANY")
        columns.new.clear()

    def _flattened(
        self,
        verb: str,
        table: str,
        columns: Columns,
        fixed: Sequence[str],
        payloads: Sequence[Mapping[str, Any]],
    ) -> tuple[str, list[Path], list[dict[Path, Any]]]:
        """Payloads as cells of ``table``'s columns, adding the columns new
        paths need: the statement (``verb``, the ``fixed`` columns, then one
        per path), the paths in column order, and each payload's cells."""
        flat = [columns.add(payload) for payload in payloads]
        self._add_columns(table, columns)
        paths = list(columns.names)
        names = [*fixed, *(columns.names[p] for p in paths)]
        sql = (
            f"{verb} INTO {_quote(table)} ({', '.join(map(_quote, names))}) "
            f"VALUES ({', '.join('?' * len(names))})"
        )
        return sql, paths, flat

    # -- rows -----------------------------------------------------------------

    def _time(self, text: str) -> datetime:
        found = self._times.get(text)
        if found is None:
            if len(self._times) > 4096:
                self._times.clear()
            found = self._times[text] = parse_time(text)
        return found

    def run(self, filters: dict[str, Any], progress: Progress | None) -> int:
        es = self.es
        self.started = self.through
        start = self.through + 1
        given = filters.get("from_position")
        read = {**filters, "from_position": max(start, given or 1)}
        head = es.head()
        bound = head if read.get("until") is None else min(head, es.position_at(read["until"]))
        total = max(0, bound - read["from_position"] + 1)
        if read.get("limit") is not None:
            total = min(total, read["limit"])
        read["until"] = None
        read["limit"] = filters.get("limit")
        done = 0
        last = self.through
        if bound >= read["from_position"] and read["limit"] != 0:
            for page in es.read_rows(**{**read, "until": None}, page_size=_PAGE):
                page = [row for row in page if row[0] <= bound]
                if not page:
                    break
                self._page(page)
                done += len(page)
                last = page[-1][0]
                if progress is not None:
                    progress(done, total)
                if page[-1][0] >= bound:
                    break
        limited = read["limit"] is not None and done >= read["limit"]
        self.through = max(self.through, last if limited else bound)
        return done

    def _page(self, page: list[tuple[Any, ...]]) -> None:
        events: list[tuple[Any, ...]] = []
        by_type: dict[str, list[tuple[Any, ...]]] = {}
        changes: list[tuple[Any, ...]] = []
        fold = self._fold
        for row in page:
            position, event_id, agg, agg_type, version, type_, schema, data, meta = row[:9]
            occurred, recorded, hash_ = row[9], row[10], row[11]
            data_text = data if isinstance(data, str) else orjson.dumps(data).decode()
            meta_text = meta if isinstance(meta, str) else orjson.dumps(meta).decode()
            payload = orjson.loads(data_text) if isinstance(data, str) else data
            metadata = orjson.loads(meta_text) if isinstance(meta, str) else meta
            recorded = _iso(recorded)
            occurred = recorded if occurred == row[10] else _iso(occurred)
            actor = cell(metadata.get("actor"))
            events.append(
                (position, event_id, agg, agg_type, version, type_, schema, data_text, meta_text,
                 occurred, recorded, hash_, actor, cell(metadata.get("correlation_id")),
                 cell(metadata.get("causation_id")))
            )  # fmt: skip
            by_type.setdefault(type_, []).append((position, agg, recorded, actor, payload))
            if agg is not None:
                fold(row, payload, metadata, recorded, actor, changes)
        db = self.db
        db.conn.executemany(
            f"INSERT INTO events VALUES ({', '.join('?' * len(EVENT_COLUMNS))})", events
        )
        for type_, rows in by_type.items():
            self._insert_payloads(type_, rows)
        if changes:
            db.conn.executemany(
                f"INSERT INTO changes VALUES ({', '.join('?' * len(CHANGE_COLUMNS))})", changes
            )

    def _insert_payloads(self, type_: str, rows: list[tuple[Any, ...]]) -> None:
        table, columns = self._table("type", type_)
        sql, paths, flat = self._flattened(
            "INSERT", table, columns, TYPE_FIXED, [r[4] for r in rows]
        )
        self.db.conn.executemany(
            sql,
            [(*row[:4], *map(cells.get, paths)) for row, cells in zip(rows, flat, strict=True)],
        )

    def _fold(
        self,
        row: tuple[Any, ...],
        payload: dict[str, Any],
        metadata: dict[str, Any],
        recorded: str,
        actor: Any,
        changes: list[tuple[Any, ...]],
    ) -> None:
        es = self.es
        position, agg, agg_type, version, type_ = row[0], row[2], row[3], row[4], row[5]
        known = self.states.get(agg)
        if known is not None and known[0] == version - 1:
            before = known[1]
        elif version > 1:
            # The aggregate's earlier events are not in this pass (an earlier
            # export, or filtered out): start from the store's own replay.
            before = es.state_at(agg, version=version - 1).state
        else:
            before = {}
        event = recorded_event(
            position, row[1], agg, agg_type, version, type_, row[6], payload, metadata,
            self._time(row[9]), self._time(row[10]), row[11],
        )  # fmt: skip
        try:
            if type_ == VOIDED:
                # The state as known after the void: the store's replay, which
                # leaves the voided event out (as history and frames do).
                after = es.state_at(agg, version=version).state
            else:
                after = es.reducers.apply(
                    before if es.reducers.copy_free else copy.deepcopy(before), event
                )
        except Exception as e:
            raise ReducerError(
                f"the reducer for {agg_type}/{type_} failed at position {position}: {e}"
            ) from e
        for change in diff(before, after):
            changes.append(
                (position, agg, agg_type, version, type_, recorded, actor, change.path,
                 cell(change.old), cell(change.new))
            )  # fmt: skip
        self.states[agg] = (version, after, position, recorded, agg_type)

    def _write_states(self) -> None:
        grouped: dict[str | None, list[tuple[str, tuple[Any, ...]]]] = {}
        for agg, known in self.states.items():
            grouped.setdefault(known[4], []).append((agg, known))
        for agg_type, items in grouped.items():
            table, columns = self._table("state", agg_type)
            # A state that lost a field must not keep its old column value: the
            # row is replaced whole.
            sql, paths, flat = self._flattened(
                "INSERT OR REPLACE", table, columns, STATE_FIXED, [known[1] for _, known in items]
            )
            self.db.conn.executemany(
                sql,
                [
                    (agg, known[0], known[2], known[3], orjson.dumps(known[1]).decode(),
                     *map(cells.get, paths))
                    for (agg, known), cells in zip(items, flat, strict=True)
                ],
            )  # fmt: skip

    # -- the end ---------------------------------------------------------------

    def finish(self, report: Any) -> None:
        db = self.db
        self._write_states()
        kinds_of = {table: kind for (kind, _), table in self.tables.items()}
        for table, columns in self.columns.items():
            db.table(COLUMNS).upsert_all(
                [
                    {
                        "table_name": table,
                        "name": name,
                        "path": orjson.dumps(list(path)).decode(),
                        "kinds": orjson.dumps(sorted(columns.kinds.get(path, ()))).decode(),
                        "description": _describe.column_description(
                            kinds_of[table], list(path), sorted(columns.kinds.get(path, ()))
                        ),
                    }
                    for path, name in columns.names.items()
                ],
                pk=("table_name", "name"),
            )
        for (kind, _key), table in self.tables.items():
            if kind == "type":
                db.table(table).create_index(
                    ["aggregate_id"], if_not_exists=True, find_unique_name=True
                )
        events = db.table("events")
        for index in (["type"], ["aggregate_id", "version"], ["recorded_at"], ["actor"]):
            events.create_index(index, if_not_exists=True, find_unique_name=True)
        for index in (["aggregate_id", "version"], ["path"], ["position"]):
            db.table("changes").create_index(index, if_not_exists=True, find_unique_name=True)
        if "events_fts" not in db.table_names():
            events.enable_fts(["data", "metadata"])
            db.execute("INSERT INTO events_fts (rowid, data, metadata) "
                       "SELECT position, data, metadata FROM events")  # fmt: skip
        else:
            db.execute(
                "INSERT INTO events_fts (rowid, data, metadata) "
                "SELECT position, data, metadata FROM events WHERE position > ?",
                [self.started],
            )
        through_hash = ""
        if self.through:
            found = next(self.es.read(from_position=self.through, limit=1), None)
            through_hash = found.hash if found is not None else ""
        self._meta(
            {
                "source": self.es.label,
                "updated_at": _now(),
                "through_position": str(self.through),
                "through_hash": through_hash,
                "verify_ok": "true" if report.ok else "false",
                "verify_checked": str(report.checked),
                "verify_first_bad_position": _text(report.first_bad_position),
                "verify_reason": _text(report.reason),
                "chain_head_position": str(report.head_position),
                "chain_head_hash": _text(report.head_hash),
            }
        )


def verdict(report: Any) -> str:
    return f"first bad position {report.first_bad_position}: {report.reason}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _iso(value: Any) -> str:
    """A stored time as the store's ISO-8601 UTC text (a server may format it its own way)."""
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, str) and len(value) == 32 and value.endswith("+00:00"):
        return value
    return format_time(datetime.fromisoformat(value).astimezone(UTC))


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _now() -> str:
    return format_time(datetime.now(UTC))

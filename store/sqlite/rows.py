"""Rows to records, and what an append may do under the write lock."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..backend import ChainRow, Head, Row, Snapshot, WriteTransaction
from ..codec import GENESIS_HASH, encode_object, format_time, loads_stored, parse_time
from ..counting import batch_counts
from ..errors import CorruptStoreError
from ..models import AggregateInfo, RecordedEvent, _RecordedEventBuilder
from .schema import ADD_COUNTS, CHAIN_COLUMNS, ERASE, read_columns

__all__ = ["SQLiteWrite", "aggregate_row", "events", "lenient_text"]


def events(rows: Iterable[tuple[Any, ...]]) -> list[RecordedEvent]:
    """Rows to events. A batch shares one recorded_at, and occurred_at mostly
    equals it, so each distinct time text is parsed once (datetimes are
    immutable, so sharing them is safe).

    This is the read path's inner loop: each event is built in place (the
    builder's slots, then its class), with the row unpacked once, and the
    cyclic collector paused meanwhile: a page of fresh events and payload
    dicts holds no cycle, and collecting it again and again as it is built
    cost a fifth of a scan."""
    events: list[RecordedEvent] = []
    append = events.append
    new, final, loads = _RecordedEventBuilder, RecordedEvent, loads_stored
    last_text = ""
    last_time = datetime.min
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        for (
            position, event_id, aggregate_id, aggregate_type, version, type_, schema_version,
            data, metadata, occurred, recorded, hash_, erased_by,
        ) in rows:  # fmt: skip
            if recorded != last_text:
                last_text, last_time = recorded, parse_time(recorded)
            event = new()
            event.position = position
            event.event_id = event_id
            event.aggregate_id = aggregate_id
            event.aggregate_type = aggregate_type
            event.version = version
            event.type = type_
            event.schema_version = schema_version
            event.data = loads(data)
            event.metadata = loads(metadata)
            event.occurred_at = last_time if occurred == recorded else parse_time(occurred)
            event.recorded_at = last_time
            event.hash = hash_
            event.erased_by = erased_by
            event.__class__ = final  # type: ignore[assignment]
            append(event)  # type: ignore[arg-type]
    finally:
        if paused:
            gc.enable()
    return events


def lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def aggregate_row(row: tuple[Any, ...]) -> AggregateInfo:
    return AggregateInfo(
        row[0], row[1], row[2], row[3], row[4], parse_time(row[5]), parse_time(row[6])
    )


class SQLiteWrite(WriteTransaction):
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        # Writes happen on an upgraded file only.
        self.columns = read_columns(2)[0]

    def usable(self) -> bool:
        return self.conn.in_transaction

    def head(self) -> Head:
        row = self.conn.execute(
            "SELECT position, hash, recorded_at FROM events ORDER BY position DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return Head(0, GENESIS_HASH, None)
        return Head(row[0], row[1], row[2])

    def aggregate(self, aggregate_id: str) -> tuple[str | None, int] | None:
        row = self.conn.execute(
            "SELECT aggregate_type, version FROM aggregates WHERE aggregate_id = ?",
            (aggregate_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def find_events(self, event_ids: Sequence[str]) -> list[RecordedEvent]:
        found: list[RecordedEvent] = []
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            found.extend(
                events(
                    self.conn.execute(
                        f"SELECT {self.columns} FROM events WHERE event_id IN ({marks})", chunk
                    )
                )
            )
        return found

    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        self.conn.executemany(
            f"INSERT INTO events ({CHAIN_COLUMNS}) VALUES ({','.join('?' * 13)})", rows
        )
        # The kept counts (store.counting), in the same transaction as the rows.
        self.conn.executemany(ADD_COUNTS, batch_counts(rows))
        if aggregate is not None:
            self.conn.execute(
                "INSERT INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (aggregate_id) DO UPDATE SET version = excluded.version, "
                "last_position = excluded.last_position, updated_at = excluded.updated_at",
                (
                    aggregate.aggregate_id,
                    aggregate.aggregate_type,
                    aggregate.version,
                    aggregate.first_position,
                    aggregate.last_position,
                    format_time(aggregate.created_at),
                    format_time(aggregate.updated_at),
                ),
            )

    def data_hash(self, event_id: str) -> str | None:
        row = self.conn.execute(
            "SELECT data_hash FROM events WHERE event_id = ?", (event_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def insert_copies(self, rows: Sequence[ChainRow]) -> None:
        self.conn.executemany(
            f"INSERT INTO events ({CHAIN_COLUMNS}, erased_by) VALUES ({','.join('?' * 14)})", rows
        )
        self.conn.executemany(ADD_COUNTS, batch_counts(rows))

    def erase(self, positions: Sequence[int], receipt: int, note: str) -> list[int]:
        # Space freed in the pages these statements change, and pages they
        # free, are overwritten with zeros as it happens, so the old payload
        # is not left in the file's free parts; off again for other writes.
        self.conn.execute("PRAGMA secure_delete=ON")
        try:
            return self._erase(positions, receipt, note)
        finally:
            self.conn.execute("PRAGMA secure_delete=OFF")

    def _erase(self, positions: Sequence[int], receipt: int, note: str) -> list[int]:
        erased: list[int] = []
        for position in positions:
            if self.conn.execute(ERASE, (receipt, position)).rowcount:
                erased.append(position)
        if not erased:
            return erased
        marks = ",".join("?" * len(erased))
        first = self.conn.execute(
            "SELECT aggregate_id, min(version) FROM events "
            f"WHERE position IN ({marks}) AND aggregate_id IS NOT NULL GROUP BY aggregate_id",
            erased,
        ).fetchall()
        self.conn.executemany(
            "DELETE FROM snapshots WHERE aggregate_id = ? AND version >= ?", first
        )
        tables = {
            row[0]
            for row in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        if "parked_events" in tables:
            self.conn.execute(
                f"UPDATE parked_events SET reason = ? WHERE position IN ({marks})", [note, *erased]
            )
        if "subscriptions" in tables:
            self.conn.execute(
                f"UPDATE subscriptions SET failure = ? WHERE failure IS NOT NULL "
                f"AND failed_position IN ({marks})",
                [note, *erased],
            )
        return erased

    def save_snapshot(self, snapshot: Snapshot, fingerprint: str, created_at: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?)",
            (
                snapshot.aggregate_id,
                fingerprint,
                snapshot.version,
                snapshot.position,
                encode_object(snapshot.state, "snapshot state"),
                created_at,
            ),
        )


def tree_filled(top: object, location: str) -> int:
    """One past the highest stored index of a level of ``sss_tree`` (derived
    data: a damaged table is named, and can be dropped to be made again)."""
    if type(top) is not int or top < 0:
        raise CorruptStoreError(
            f"{location}: the table sss_tree holds an index that is not a position of the "
            "tree; it is derived from the events: drop it and it is made again"
        )
    return top + 1

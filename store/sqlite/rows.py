"""Rows to records, and what an append may do under the write lock."""

from __future__ import annotations

import gc
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ..backend import Head, Row, Snapshot, WriteTransaction
from ..codec import GENESIS_HASH, encode_object, format_time, loads_stored, parse_time
from ..models import AggregateInfo, RecordedEvent, _RecordedEventBuilder
from .schema import CHAIN_COLUMNS, COLUMNS

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
            data, metadata, occurred, recorded, hash_,
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
                        f"SELECT {COLUMNS} FROM events WHERE event_id IN ({marks})", chunk
                    )
                )
            )
        return found

    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        self.conn.executemany(
            f"INSERT INTO events ({CHAIN_COLUMNS}) VALUES ({','.join('?' * 13)})", rows
        )
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

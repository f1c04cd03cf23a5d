"""Rows to records, and what an append may do under the head row lock."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from psycopg import errors as pgerrors
from psycopg import pq, sql

from ..backend import (
    ChainRow,
    Head,
    Row,
    Snapshot,
    WriteTransaction,
)
from ..codec import encode_object, format_time, loads_stored, parse_time
from ..counting import batch_counts
from ..errors import CorruptStoreError, ValidationError
from ..models import AggregateInfo, RecordedEvent
from .errors import translated
from .schema import (
    ADD_COUNTS,
    AGGREGATE_VERSION,
    ERASE,
    FIND_EVENTS,
    INSERT_COPIES,
    INSERT_EVENTS,
    LOCK_HEAD,
    ROW_KEYS,
    UPSERT_AGGREGATE,
    Conn,
)

__all__ = ["PostgresWrite", "aggregate_row", "event_row", "iso", "utc", "vacuum"]

COUNT_KEYS = ("t", "at", "s", "n", "a", "f", "l")
"""Short names of the KeptCount fields in the JSON that ADD_COUNTS unpacks."""


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def event_row(row: tuple[Any, ...]) -> RecordedEvent:
    return RecordedEvent(
        row[0],
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        loads_stored(row[7]),
        loads_stored(row[8]),
        utc(row[9]),
        utc(row[10]),
        row[11],
        row[12] if len(row) > 12 else None,
    )


def aggregate_row(row: tuple[Any, ...]) -> AggregateInfo:
    return AggregateInfo(row[0], row[1], row[2], row[3], row[4], utc(row[5]), utc(row[6]))


class Session(Protocol):
    """What the write transaction uses of its backend."""

    display: str
    channel: str
    _head: Head | None
    _deferred: tuple[str, list[Any]] | None

    def _flush(self) -> None: ...


class PostgresWrite(WriteTransaction):
    def __init__(self, backend: Session, conn: Conn) -> None:
        self.backend = backend
        self.conn = conn

    def usable(self) -> bool:
        # A failed statement outside a savepoint leaves only ROLLBACK possible.
        return bool(self.conn.info.transaction_status != pq.TransactionStatus.INERROR)

    def _lock(self) -> Head:
        """Take the head row lock (once per transaction) and return the head."""
        self.backend._flush()
        if self.backend._head is None:
            with translated(self.backend.display):
                self._locked(self.conn.execute(LOCK_HEAD).fetchone())
        assert self.backend._head is not None
        return self.backend._head

    def _locked(self, row: tuple[Any, ...] | None) -> None:
        if row is None:
            raise CorruptStoreError(f"{self.backend.display} has lost its sss_head row")
        self.backend._head = Head(row[0], row[1], iso(row[2]))

    def head(self) -> Head:
        return self._lock()

    def aggregate(self, aggregate_id: str) -> tuple[str | None, int] | None:
        self._lock()
        with translated(self.backend.display):
            row = self.conn.execute(AGGREGATE_VERSION, (aggregate_id,)).fetchone()
        return None if row is None else (row[0], row[1])

    def find_events(self, event_ids: Sequence[str]) -> list[RecordedEvent]:
        find = FIND_EVENTS
        ids = ",".join(event_ids)
        with translated(self.backend.display):
            if self.backend._head is None:
                # One round trip: the server runs the lookup after the lock is
                # granted, so it sees every append committed before ours.
                with self.conn.pipeline():
                    lock = self.conn.execute(LOCK_HEAD)
                    found = self.conn.execute(find, (ids,))
                self._locked(lock.fetchone())
            else:
                found = self.conn.execute(find, (ids,))
            return [event_row(row) for row in found.fetchall()]

    def insert(self, rows: Sequence[Row], aggregate: AggregateInfo | None) -> None:
        self._lock()
        # One statement does it all: the rows, the aggregate's row, the head
        # row and the notification (delivered at COMMIT, never for a
        # rolled-back append). It travels with COMMIT in one round trip unless
        # the transaction does something else first (PostgresBackend._flush).
        # The rows go in as one JSON text that json_to_recordset unpacks on
        # the server: as cheap for the client as COPY, without COPY's two
        # round trips under the lock; their ISO times and JSON texts arrive
        # as strings and come out as the very same text.
        parts: list[str] = []
        params: list[Any] = []
        tail = "SELECT 1"
        if rows:
            try:
                payload = orjson.dumps([dict(zip(ROW_KEYS, row, strict=True)) for row in rows])
            except TypeError as e:  # text that is not valid Unicode
                raise ValidationError(
                    f"text that is not valid Unicode cannot be stored: {e}"
                ) from e
            parts.append(INSERT_EVENTS)
            params.append(payload.decode())
            # The kept counts (store.counting), in the same statement as the rows.
            parts.append(ADD_COUNTS)
            kept = [dict(zip(COUNT_KEYS, c, strict=True)) for c in batch_counts(rows)]
            params.append(orjson.dumps(kept).decode())
        if aggregate is not None:
            parts.append(UPSERT_AGGREGATE)
            params += [
                aggregate.aggregate_id,
                aggregate.aggregate_type,
                aggregate.version,
                aggregate.first_position,
                aggregate.last_position,
                aggregate.created_at,
                aggregate.updated_at,
            ]
        if rows:
            last = rows[-1]
            parts.append(
                "h AS (UPDATE sss_head SET position = %s, hash = %s, "
                "recorded_at = %s::timestamptz RETURNING position)"
            )
            params += [last[0], last[12], last[10]]
            tail = "SELECT pg_notify(%s, position::text) FROM h"
            params.append(self.backend.channel)
            self.backend._head = Head(last[0], last[12], last[10])
        if parts:
            self.backend._deferred = (f"WITH {', '.join(parts)} {tail}", params)

    def flush(self) -> None:
        self.backend._flush()

    def data_hash(self, event_id: str) -> str | None:
        self._lock()
        with translated(self.backend.display):
            row = self.conn.execute(
                "SELECT data_hash FROM events WHERE event_id = %s::uuid", (event_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def insert_copies(self, rows: Sequence[ChainRow]) -> None:
        self._lock()
        if not rows:
            return
        keys = (*ROW_KEYS, "eb")
        try:
            payload = orjson.dumps([dict(zip(keys, row, strict=True)) for row in rows])
        except TypeError as e:  # text that is not valid Unicode
            raise ValidationError(f"text that is not valid Unicode cannot be stored: {e}") from e
        last = rows[-1]
        with translated(self.backend.display):
            self.conn.execute(INSERT_COPIES, (payload.decode(),))
            kept = [dict(zip(COUNT_KEYS, c, strict=True)) for c in batch_counts(rows)]
            self.conn.execute(f"WITH {ADD_COUNTS} SELECT 1", (orjson.dumps(kept).decode(),))
            self.conn.execute(
                "UPDATE sss_head SET position = %s, hash = %s, recorded_at = %s::timestamptz",
                (last[0], last[12], last[10]),
            )
            self.conn.execute("SELECT pg_notify(%s, %s)", (self.backend.channel, str(last[0])))
        self.backend._head = Head(last[0], last[12], last[10])

    def erase(self, positions: Sequence[int], receipt: int, note: str) -> list[int]:
        self._lock()
        erased: list[int] = []
        with translated(self.backend.display):
            for position in positions:
                if self.conn.execute(ERASE, (receipt, position)).rowcount:
                    erased.append(position)
            if not erased:
                return erased
            self.conn.execute(
                "DELETE FROM snapshots s USING (SELECT aggregate_id, min(version) AS v "
                "FROM events WHERE position = ANY(%s) AND aggregate_id IS NOT NULL "
                "GROUP BY aggregate_id) e WHERE s.aggregate_id = e.aggregate_id "
                "AND s.version >= e.v",
                (erased,),
            )
            tables = {
                row[0]
                for row in self.conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                    "AND tablename IN ('parked_events', 'subscriptions')"
                )
            }
            if "parked_events" in tables:
                self.conn.execute(
                    "UPDATE parked_events SET reason = %s WHERE position = ANY(%s)",
                    (note, erased),
                )
            if "subscriptions" in tables:
                self.conn.execute(
                    "UPDATE subscriptions SET failure = %s WHERE failure IS NOT NULL "
                    "AND failed_position = ANY(%s)",
                    (note, erased),
                )
        return erased

    def save_snapshot(self, snapshot: Snapshot, fingerprint: str, created_at: str) -> None:
        self.backend._flush()
        with translated(self.backend.display):
            self.conn.execute(
                "INSERT INTO snapshots VALUES (%s, %s, %s, %s, %s::json, %s) "
                "ON CONFLICT (aggregate_id, fingerprint, version) DO UPDATE SET "
                "position = excluded.position, state = excluded.state, "
                "created_at = excluded.created_at",
                (
                    snapshot.aggregate_id,
                    fingerprint,
                    snapshot.version,
                    snapshot.position,
                    encode_object(snapshot.state, "snapshot state"),
                    parse_time(created_at),
                ),
            )


# Sessions of this database whose snapshot is older than the erasure: while
# they run, VACUUM must keep the row versions they may still read.
# (A transaction's own xid holds it back as its snapshot's xmin does.)
_HOLDERS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND ("
    "(backend_xmin IS NOT NULL AND age(backend_xmin) > age(%s::text::xid)) OR "
    "(backend_xid IS NOT NULL AND age(backend_xid) > age(%s::text::xid))) ORDER BY pid"
)


def vacuum(conn: Conn, schema: str, display: str, wait: float) -> str | None:
    """After an erasure: VACUUM FULL the tables it touched, so the old row
    versions holding the payloads leave the tables' files (and their TOAST
    tables); what could not be done, as a sentence.

    A plain VACUUM frees the dead rows but may leave their bytes in the
    pages' free space (measured: a deleted snapshot's text stayed in the
    file), so the tables are rewritten into new files. No VACUUM removes a
    row version an open snapshot may still read: sessions older than the
    erasure are waited for (up to ``wait`` seconds), then named. WAL
    segments, archives, standbys and backups are out of reach (see the
    README)."""
    row = conn.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text").fetchone()
    horizon = "0" if row is None else str(row[0])
    deadline = time.monotonic() + wait
    while True:
        holders = [r[0] for r in conn.execute(_HOLDERS, (horizon, horizon)).fetchall()]
        if not holders or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    present = {
        r[0]
        for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))
    }
    for table in ("events", "snapshots", "parked_events", "subscriptions"):
        if table not in present:
            continue
        try:
            # VACUUM runs outside a transaction: the connection is in autocommit mode.
            conn.execute(
                sql.SQL("VACUUM FULL {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            )
        except pgerrors.Error as e:
            return (
                f"{display}: VACUUM FULL of {table} failed ({e.diag.message_primary}); the old "
                "row versions stay in the table's files until a VACUUM FULL runs"
            )
    if holders:
        return (
            f"{display}: sessions older than the erasure were still open (pid "
            f"{', '.join(map(str, holders))}), so VACUUM kept the old row versions they may "
            "read; run sss erase again with the same arguments once they have ended"
        )
    return None

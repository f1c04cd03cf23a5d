"""The subscription tables and what reads or edits them outside a running
subscription: listing with lag, reset, delete, parking. The rules are in
:mod:`store.subscriptions`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from . import appending, paging
from ._core import StoreCore
from .backend import Query
from .checks import check_int, check_name
from .codec import format_time, parse_time
from .errors import NotFoundError, ReadOnlyError, StoreError, ValidationError
from .models import RecordedEvent

__all__ = [
    "ParkedEvent",
    "SubscriptionInfo",
    "Tables",
    "delete",
    "group_member",
    "park",
    "parked",
    "reset",
    "subscriptions",
]


@dataclass(frozen=True, slots=True)
class SubscriptionInfo:
    """One subscription (or one member of a group), as :func:`subscriptions` lists it.

    ``position`` is the last position dealt with; ``lag`` the matching events
    after it still to handle; ``updated_at`` when the position last moved;
    ``lag_seconds`` how long the first unhandled event has waited;
    ``next_position`` where that event is (None when caught up).
    """

    name: str
    position: int
    lag: int
    updated_at: datetime
    lag_seconds: float
    next_position: int | None
    types: tuple[str, ...] | None
    aggregate_type: str | None
    member: int
    group_size: int
    parked: int
    failed_position: int | None
    failure: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ParkedEvent:
    """An event a subscription skipped, and why."""

    name: str
    position: int
    event_id: str
    type: str
    reason: str
    parked_at: datetime


def group_member(aggregate_id: str | None, group_size: int) -> int:
    """The member of a group of ``group_size`` that handles this aggregate's
    events: a stable hash (the same in every process and release), so an
    aggregate always goes to the same member. No aggregate: member 0."""
    if aggregate_id is None or group_size == 1:
        return 0
    raw = hashlib.blake2b(aggregate_id.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(raw, "big") % group_size


def _time(value: Any) -> datetime:
    return parse_time(value) if isinstance(value, str) else parse_time(format_time(value))


class Tables:
    """The subscription tables, through the store's own connection (inside its
    write transaction when one is open)."""

    def __init__(self, es: StoreCore) -> None:
        from .sqlite import SQLiteBackend
        from .sqlite.errors import translated

        self.es = es
        backend = es.backend
        self.sqlite = isinstance(backend, SQLiteBackend)
        self._present = False
        if isinstance(backend, SQLiteBackend):
            conn = backend.conn
            location = backend.location

            def fetch(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                with translated(location):
                    return conn.execute(statement, params).fetchall()

            def execute(statement: str, params: tuple[Any, ...]) -> int:
                with translated(location):
                    return conn.execute(statement, params).rowcount

        else:
            run = backend._run  # type: ignore[attr-defined]

            def fetch(statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
                sql = statement.replace("?", "%s")
                rows: list[tuple[Any, ...]] = run(lambda c: c.execute(sql, params).fetchall())
                return rows

            def execute(statement: str, params: tuple[Any, ...]) -> int:
                sql = statement.replace("?", "%s")
                count: int = run(lambda c: c.execute(sql, params).rowcount)
                return count

        self._fetch, self._execute = fetch, execute

    def now(self) -> Any:
        """A time for a time column: ISO text on SQLite, a datetime on PostgreSQL."""
        moment = self.es._clock()
        return format_time(moment) if self.sqlite else moment

    def fetch(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.es._call(self._fetch, statement, params)

    def execute(self, statement: str, *params: Any) -> int:
        return self.es._call(self._execute, statement, params)

    def present(self) -> bool:
        """False for a store opened read-only that predates the tables."""
        if not self._present:
            if self.sqlite:
                rows = self.fetch(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                    "AND name IN ('subscriptions', 'parked_events')"
                )
            else:
                rows = self.fetch(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = ? "
                    "AND tablename IN ('subscriptions', 'parked_events')",
                    self.es.backend.schema,  # type: ignore[attr-defined]
                )
            self._present = rows[0][0] == 2
        return self._present

    def require(self) -> None:
        if not self.present():
            raise StoreError(
                f"{self.es.label} has no subscription tables: open it writable once "
                "with a role that may create tables"
            )

    def rows(self, name: str | None = None) -> list[tuple[Any, ...]]:
        where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        return self.fetch(
            "SELECT name, member, group_size, position, types, aggregate_type, created_at, "
            f"updated_at, failed_position, failure FROM subscriptions {where} "
            "ORDER BY name, member",
            *params,
        )

    def position(self, name: str, member: int) -> int | None:
        rows = self.fetch(
            "SELECT position FROM subscriptions WHERE name = ? AND member = ?", name, member
        )
        return None if not rows else int(rows[0][0])

    def move(self, name: str, member: int, old: int, new: int) -> bool:
        """Compare and set: move the position only from where this consumer left it."""
        return (
            self.execute(
                "UPDATE subscriptions SET position = ?, updated_at = ?, failed_position = NULL, "
                "failure = NULL WHERE name = ? AND member = ? AND position = ?",
                new,
                self.now(),
                name,
                member,
                old,
            )
            == 1
        )

    def park(self, name: str, event: RecordedEvent, reason: str) -> None:
        self.execute(
            "INSERT INTO parked_events VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (name, position) DO NOTHING",
            name, event.position, event.event_id, event.type, reason, self.now(),
        )  # fmt: skip

    def parked_after(self, name: str, position: int) -> set[int]:
        rows = self.fetch(
            "SELECT position FROM parked_events WHERE name = ? AND position > ?", name, position
        )
        return {int(r[0]) for r in rows}


def subscriptions(es: StoreCore) -> list[SubscriptionInfo]:
    """Every subscription and group member, by name and member, with its lag."""
    tables = Tables(es)
    if not tables.present():
        return []
    parked_rows = tables.fetch("SELECT name, position FROM parked_events")
    parked: dict[str, set[int]] = {}
    for row_name, row_position in parked_rows:
        parked.setdefault(row_name, set()).add(int(row_position))
    found: list[SubscriptionInfo] = []
    now = es._clock()
    for row in tables.rows():
        name, member, size, position = row[0], int(row[1]), int(row[2]), int(row[3])
        types = None if row[4] is None else tuple(orjson.loads(row[4]))
        lag, first = _lag(es, position, types, row[5], member, size, parked.get(name, set()))
        waited = 0.0 if first is None else max(0.0, (now - first.recorded_at).total_seconds())
        found.append(
            SubscriptionInfo(
                name,
                position,
                lag,
                _time(row[7]),
                waited,
                None if first is None else first.position,
                types,
                row[5],
                member,
                size,
                len(parked.get(name, ())),
                row[8],
                row[9],
                _time(row[6]),
            )
        )
    return found


def _lag(
    es: StoreCore,
    position: int,
    types: tuple[str, ...] | None,
    aggregate_type: str | None,
    member: int,
    size: int,
    parked: set[int],
) -> tuple[int, RecordedEvent | None]:
    """Matching events after ``position`` still to handle, and the first of them."""
    if size == 1:
        query = Query(position + 1, None, None, aggregate_type, types)
        total = 0 if types == () else es._call(es.backend.count, query)
        skipped = sum(1 for p in parked if p > position)
        lag = max(0, total - skipped)
        first = None
        if lag:
            for event in paging.read(
                es, position + 1, None, aggregate_type, types, None, None, None, False
            ):
                if event.position not in parked:
                    first = event
                    break
        return lag, first
    # A member's share is known only by hashing each aggregate id: one pass
    # over the unhandled rows, which a consumer that keeps up keeps short.
    lag, first_position = 0, None
    for page in paging.read_rows(
        es, position + 1, None, aggregate_type, types, None, None, None, False, 10_000
    ):
        for row in page:
            if group_member(row[2], size) == member and int(row[0]) not in parked:
                lag += 1
                if first_position is None:
                    first_position = int(row[0])
    return lag, None if first_position is None else paging.get(es, first_position)


def reset(es: StoreCore, name: str, position: int) -> None:
    """Set every member of subscription ``name`` to ``position``: it resumes
    after it. Events parked after it are delivered again."""
    check_name(name, "name", optional=False)
    check_int(position, "position", minimum=0)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; resets are refused")
    tables = Tables(es)
    tables.require()
    with appending.transaction(es):
        head = es._call(es._backend.head)
        if position > head:
            raise ValidationError(f"position {position} is past the head of {es.label} ({head})")
        moved = tables.execute(
            "UPDATE subscriptions SET position = ?, updated_at = ?, failed_position = NULL, "
            "failure = NULL WHERE name = ?",
            position, tables.now(), name,
        )  # fmt: skip
        if not moved:
            raise NotFoundError(f"no subscription {name!r} in {es.label}")
        tables.execute("DELETE FROM parked_events WHERE name = ? AND position > ?", name, position)


def delete(es: StoreCore, name: str) -> None:
    """Forget subscription ``name``: its position(s) and parked events."""
    check_name(name, "name", optional=False)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; deletes are refused")
    tables = Tables(es)
    tables.require()
    with appending.transaction(es):
        if not tables.execute("DELETE FROM subscriptions WHERE name = ?", name):
            raise NotFoundError(f"no subscription {name!r} in {es.label}")
        tables.execute("DELETE FROM parked_events WHERE name = ?", name)


def park(es: StoreCore, name: str, position: int, reason: str) -> None:
    """Park the event at ``position`` for subscription ``name``: it is skipped."""
    check_name(name, "name", optional=False)
    check_int(position, "position", minimum=1)
    check_name(reason, "reason", optional=False)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; parking is refused")
    tables = Tables(es)
    tables.require()
    event = paging.get(es, position)
    with appending.transaction(es):
        if not tables.rows(name):
            raise NotFoundError(f"no subscription {name!r} in {es.label}")
        tables.park(name, event, reason)


def parked(es: StoreCore, name: str | None = None) -> list[ParkedEvent]:
    """The parked events (of one subscription), by name and position."""
    tables = Tables(es)
    if not tables.present():
        return []
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    rows = tables.fetch(
        "SELECT name, position, event_id, type, reason, parked_at FROM parked_events "
        f"{where} ORDER BY name, position",
        *params,
    )
    return [ParkedEvent(r[0], int(r[1]), r[2], r[3], r[4], _time(r[5])) for r in rows]

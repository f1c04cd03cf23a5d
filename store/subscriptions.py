"""Durable subscriptions: named consumers that resume where they stopped.

A subscription is a name and a saved *position*: the last position of the log it
has dealt with (0 before its first event). :func:`subscribe` calls a handler for
each matching event after it, in position order, a batch at a time, and saves the
position after each batch, in the store itself (tables ``subscriptions`` and
``parked_events``, in the store's own schema on PostgreSQL).

Decisions, written down:

- **At least once** (the default): the position is saved after the handler has
  seen the whole batch. A crash in between means the batch is handled again.
- **Exactly once** (``exactly_once=True``): the batch runs inside one write
  transaction (:meth:`EventStore.transaction`); whatever the handler appends to
  the same store and the new position commit together or not at all. The
  write lock is held while the batch runs (on SQLite from its start, on
  PostgreSQL from the handler's first append), so keep those handlers to store
  work and their batches modest.
- **A failing handler** stops the subscription with :class:`HandlerError`
  naming the event; the saved position stays before the failing batch (in
  exactly-once mode the batch's appends roll back), and the row records the
  failing position and the error, so ``sss subscriptions`` shows who is stuck
  on what. With ``on_error="park"`` the failing event is *parked* instead: kept
  in ``parked_events`` with the error as its reason, skipped, and the
  subscription goes on (KurrentDB's parking). ``park(name, position, reason)``
  parks an event by hand after a stop. Resetting a subscription to before a
  parked event delivers it again.
- **Filters** (``types``, ``aggregate_type``) are recorded with the
  subscription; a changed filter applies from the saved position on.
- **Positions never skip a committed event**: positions are handed out in
  commit order and gapless on both backends, so the subscription reads the head
  *first* and then the events up to it: every event at or below a head it has
  read is committed and visible. A filtered subscription that saw no match
  up to that head moves its position to it (so an idle filtered consumer
  does not rescan the log), saving such match-less progress at most once a
  second.
- **Competing consumers**: ``group_size=N, group_member=i`` makes member ``i``
  of a group handle the aggregates whose stable hash (:func:`group_member`,
  BLAKE2b of the aggregate id, modulo N) is ``i``; events without an aggregate
  all go to member 0. Each member keeps its own position, so no event is
  handled twice within a group, and one aggregate's events stay in order.
  A group's size is fixed when it is created; change it by deleting the
  subscription (:func:`delete`) and starting over.
- **One consumer per name (per member)**: a save only moves the position it
  started from (compare and set). When another consumer of the same name, or
  a :func:`reset`, moved it meanwhile, the subscription stops with
  :class:`SubscriptionError` (in exactly-once mode rolling its batch back).
- **Lag** is the number of matching events after the position that this
  consumer has still to handle (parked ones excluded); ``lag_seconds`` is how
  long the first of them has been waiting (now minus its ``recorded_at``),
  0 when caught up.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from .backend import Query
from .checks import check_int, check_name, check_types
from .codec import format_time, parse_time
from .errors import (
    HandlerError,
    NotFoundError,
    ReadOnlyError,
    StoreError,
    SubscriptionError,
    ValidationError,
)
from .models import RecordedEvent

if TYPE_CHECKING:
    from .eventstore import EventStore

__all__ = [
    "ParkedEvent",
    "SubscriptionInfo",
    "group_member",
]

Handler = Callable[[Any], object]  # an event, or with per_batch a list of them
Stop = threading.Event | Callable[[], bool] | None

# Progress over events that matched nothing is saved at most this often.
IDLE_SAVE_SECONDS = 1.0


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


class _Tables:
    """The subscription tables, through the store's own connection (inside its
    write transaction when one is open)."""

    def __init__(self, es: EventStore) -> None:
        from .sqlite import SQLiteBackend, translated

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


def _filters_text(types: tuple[str, ...] | None) -> str | None:
    return None if types is None else orjson.dumps(list(types)).decode()


def _stopper(stop: Stop) -> tuple[Callable[[], bool], threading.Event]:
    if stop is None:
        event = threading.Event()
        return event.is_set, event
    if isinstance(stop, threading.Event):
        return stop.is_set, stop
    if callable(stop):
        return stop, threading.Event()
    raise ValidationError(f"stop must be a threading.Event or a callable, not {stop!r}")


def _describe(event: RecordedEvent) -> str:
    where = f", {event.aggregate_id} version {event.version}" if event.aggregate_id else ""
    return f"position {event.position} ({event.type}{where}, event {event.event_id})"


class _Run:
    """One call of :func:`subscribe`."""

    def __init__(
        self,
        es: EventStore,
        name: str,
        handler: Handler,
        types: tuple[str, ...] | None,
        aggregate_type: str | None,
        batch_size: int,
        exactly_once: bool,
        park: bool,
        member: int,
        size: int,
        per_batch: bool = False,
    ) -> None:
        self.es, self.name, self.handler = es, name, handler
        self.per_batch = per_batch
        self.types, self.aggregate_type = types, aggregate_type
        self.batch_size, self.exactly_once, self.park_errors = batch_size, exactly_once, park
        self.member, self.size = member, size
        self.tables = _Tables(es)
        self.label = name if size == 1 else f"{name} (member {member} of {size})"

    def claim(self, start: int) -> int:
        """Create the row when missing (at ``start``), record the filters, and
        return the saved position."""
        tables, name = self.tables, self.name
        with self.es.transaction():
            rows = tables.rows(name)
            sizes = {int(r[2]) for r in rows}
            if sizes and sizes != {self.size}:
                raise SubscriptionError(
                    f"subscription {name!r} is a group of {max(sizes)} member(s), not "
                    f"{self.size}; subscribe with that group_size, or delete it and start over"
                )
            mine = next((r for r in rows if int(r[1]) == self.member), None)
            types = _filters_text(self.types)
            if mine is None:
                now = tables.now()
                tables.execute(
                    "INSERT INTO subscriptions VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                    name, self.member, self.size, start, types, self.aggregate_type, now, now,
                )  # fmt: skip
                return start
            if mine[4] != types or mine[5] != self.aggregate_type:
                tables.execute(
                    "UPDATE subscriptions SET types = ?, aggregate_type = ? "
                    "WHERE name = ? AND member = ?",
                    types, self.aggregate_type, name, self.member,
                )  # fmt: skip
            return int(mine[3])

    def batch(self, position: int, head: int) -> tuple[list[RecordedEvent], int]:
        """The next events to handle after ``position``, and the position they
        take the subscription to (at most ``head``, read before them)."""
        events = list(
            self.es.read(
                from_position=position + 1,
                types=self.types,
                aggregate_type=self.aggregate_type,
                limit=self.batch_size,
            )
        )
        kept = [e for e in events if e.position <= head]
        upto = head if len(kept) < self.batch_size else kept[-1].position
        if self.size > 1:
            kept = [e for e in kept if group_member(e.aggregate_id, self.size) == self.member]
        return kept, upto

    def moved(self, old: int, new: int, first: int) -> SubscriptionError:
        now = self.tables.position(self.name, self.member)
        what = "deleted" if now is None else f"moved from {old} to {now}"
        undone = "; the batch's appends were rolled back" if self.exactly_once else ""
        return SubscriptionError(
            f"subscription {self.label!r} was {what} by someone else (a second consumer "
            f"of the same name, or a reset) while this one handled positions {first} to "
            f"{new}{undone}; run one consumer per name and group member"
        )

    def call(self, event: RecordedEvent) -> None:
        try:
            self.handler(event)
        except Exception as e:
            raise _Raised(event, e) from e

    def deliver(
        self, todo: list[RecordedEvent], failed: list[tuple[RecordedEvent, str]], nested: bool
    ) -> None:
        """Give the events to the handler; with parking, note the failures
        (each handled in a savepoint of its own when ``nested``)."""
        if self.per_batch:
            if todo:
                try:
                    self.handler(todo)
                except Exception as e:
                    raise _Raised(todo[0], e, todo[-1].position) from e
            return
        for event in todo:
            if not self.park_errors:
                self.call(event)
                continue
            try:
                if nested:
                    with self.es.transaction():
                        self.call(event)
                else:
                    self.call(event)
            except _Raised as r:
                failed.append((event, r.text))

    def handle(self, events: list[RecordedEvent], parked: set[int], old: int, new: int) -> int:
        """Handle a batch and save the new position; the number handled."""
        todo = [e for e in events if e.position not in parked]
        failed: list[tuple[RecordedEvent, str]] = []
        try:
            if self.exactly_once:
                with self.es.transaction():
                    self.deliver(todo, failed, True)
                    self.save(failed, old, new)
            else:
                self.deliver(todo, failed, False)
                with self.es.transaction():
                    self.save(failed, old, new)
        except _Raised as r:
            raise self.failure(r, old) from r.error
        parked.update(event.position for event, _ in failed)
        return len(todo) - len(failed)

    def save(self, failed: list[tuple[RecordedEvent, str]], old: int, new: int) -> None:
        for event, reason in failed:
            self.tables.park(self.name, event, reason)
        if not self.tables.move(self.name, self.member, old, new):
            raise self.moved(old, new, old + 1)

    def failure(self, raised: _Raised, old: int) -> HandlerError:
        """The error for a failed batch, recorded on the row for ``sss subscriptions``."""
        event, text = raised.event, raised.text
        try:
            with self.es.transaction():
                self.tables.execute(
                    "UPDATE subscriptions SET failed_position = ?, failure = ? "
                    "WHERE name = ? AND member = ?",
                    event.position, text[:2000], self.name, self.member,
                )  # fmt: skip
        except StoreError:
            pass  # the store itself failed; the error below says what the handler did
        undone = " (the batch's appends were rolled back)" if self.exactly_once else ""
        what = _describe(event)
        if raised.last is not None and raised.last != event.position:
            what = f"the batch of positions {event.position} to {raised.last} (first: {what})"
        return HandlerError(
            self.name,
            event,
            old,
            f"subscription {self.label!r} stopped: its handler raised on {what}: "
            f"{text}; its position stays at {old}, before the failing batch{undone}; fix the "
            "handler and subscribe again, or park the event (es.park_event)",
        )


class _Raised(Exception):
    """A handler's exception on its way out of the batch's transaction."""

    def __init__(self, event: RecordedEvent, error: Exception, last: int | None = None) -> None:
        self.event, self.error, self.last = event, error, last
        self.text = f"{type(error).__name__}: {error}"
        super().__init__(self.text)


def subscribe(
    es: EventStore,
    name: str,
    handler: Handler,
    *,
    types: Iterable[str] | None = None,
    aggregate_type: str | None = None,
    from_position: int = 1,
    batch_size: int = 100,
    follow: bool = True,
    stop: Stop = None,
    exactly_once: bool = False,
    on_error: str = "stop",
    group_member: int | None = None,
    group_size: int | None = None,
    poll_interval: float = 0.1,
    per_batch: bool = False,
) -> int:
    """See :meth:`EventStore.subscribe`; returns the number of events handled."""
    check_name(name, "name", optional=False)
    if not callable(handler):
        raise ValidationError(f"handler must be callable, not {type(handler).__name__}")
    type_tuple = None if types is None else check_types(types)
    check_name(aggregate_type, "aggregate_type")
    check_int(from_position, "from_position", minimum=1)
    check_int(batch_size, "batch_size", minimum=1)
    if on_error not in ("stop", "park"):
        raise ValidationError(f"on_error must be 'stop' or 'park', not {on_error!r}")
    if per_batch and on_error == "park":
        raise ValidationError("on_error='park' needs a handler per event, not per_batch")
    if (group_member is None) != (group_size is None):
        raise ValidationError("give group_member and group_size together")
    size = 1 if group_size is None else check_int(group_size, "group_size", minimum=1)
    member = 0 if group_member is None else check_int(group_member, "group_member")
    if member >= size:
        raise ValidationError(f"group_member must be below group_size ({size}), not {member}")
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, (int, float)):
        raise ValidationError(f"poll_interval must be a number of seconds, not {poll_interval!r}")
    stopped, stop_event = _stopper(stop)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; a subscription saves its position")
    if es._writer == threading.get_ident():
        raise StoreError(
            "subscribe() cannot run inside a transaction of its own thread: it would "
            "see events that are not committed"
        )
    run = _Run(
        es, name, handler, type_tuple, aggregate_type, batch_size, exactly_once,
        on_error == "park", member, size, per_batch,
    )  # fmt: skip
    run.tables.require()
    position = run.claim(from_position - 1)
    parked = run.tables.parked_after(name, position)
    backend = es.backend
    handled = 0
    saved = position  # where the row stands
    last_save = time.monotonic()
    token = es._call(backend.change_token)
    try:
        while not stopped():
            head = es.head()
            if head > position:
                events, upto = run.batch(position, head)
                if events and not parked.issuperset(e.position for e in events):
                    handled += run.handle(events, parked, saved, upto)
                    saved = position = upto
                    last_save = time.monotonic()
                    continue
                position = upto  # nothing to handle: save it now and then
                if time.monotonic() - last_save >= IDLE_SAVE_SECONDS:
                    handled += run.handle([], parked, saved, position)
                    saved, last_save = position, time.monotonic()
                if upto < head:
                    continue
            if not follow:
                break
            while not stopped():
                if position != saved and time.monotonic() - last_save >= IDLE_SAVE_SECONDS:
                    handled += run.handle([], parked, saved, position)
                    saved, last_save = position, time.monotonic()
                new_token = es._call(backend.change_token)
                if new_token != token or es.head() > position:
                    token = new_token
                    break
                backend.wait_for_change(token, poll_interval, stop_event)
    finally:
        if position != saved and not es._closed:
            # Progress over unmatched events only: it is found again if lost.
            with contextlib.suppress(StoreError):
                run.handle([], parked, saved, position)
    return handled


def subscriptions(es: EventStore) -> list[SubscriptionInfo]:
    """Every subscription and group member, by name and member, with its lag."""
    tables = _Tables(es)
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
    es: EventStore,
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
            for event in es.read(
                from_position=position + 1, types=types, aggregate_type=aggregate_type
            ):
                if event.position not in parked:
                    first = event
                    break
        return lag, first
    # A member's share is known only by hashing each aggregate id: one pass
    # over the unhandled rows, which a consumer that keeps up keeps short.
    lag, first_position = 0, None
    for page in es.read_rows(
        from_position=position + 1, types=types, aggregate_type=aggregate_type
    ):
        for row in page:
            if group_member(row[2], size) == member and int(row[0]) not in parked:
                lag += 1
                if first_position is None:
                    first_position = int(row[0])
    return lag, None if first_position is None else es.get(first_position)


def reset(es: EventStore, name: str, position: int) -> None:
    """Set every member of subscription ``name`` to ``position``: it resumes
    after it. Events parked after it are delivered again."""
    check_name(name, "name", optional=False)
    check_int(position, "position", minimum=0)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; resets are refused")
    tables = _Tables(es)
    tables.require()
    with es.transaction():
        head = es.head()
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


def delete(es: EventStore, name: str) -> None:
    """Forget subscription ``name``: its position(s) and parked events."""
    check_name(name, "name", optional=False)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; deletes are refused")
    tables = _Tables(es)
    tables.require()
    with es.transaction():
        if not tables.execute("DELETE FROM subscriptions WHERE name = ?", name):
            raise NotFoundError(f"no subscription {name!r} in {es.label}")
        tables.execute("DELETE FROM parked_events WHERE name = ?", name)


def park(es: EventStore, name: str, position: int, reason: str) -> None:
    """Park the event at ``position`` for subscription ``name``: it is skipped."""
    check_name(name, "name", optional=False)
    check_int(position, "position", minimum=1)
    check_name(reason, "reason", optional=False)
    if es.readonly:
        raise ReadOnlyError(f"{es.label} is open read-only; parking is refused")
    tables = _Tables(es)
    tables.require()
    event = es.get(position)
    with es.transaction():
        if not tables.rows(name):
            raise NotFoundError(f"no subscription {name!r} in {es.label}")
        tables.park(name, event, reason)


def parked(es: EventStore, name: str | None = None) -> list[ParkedEvent]:
    """The parked events (of one subscription), by name and position."""
    tables = _Tables(es)
    if not tables.present():
        return []
    where, params = ("WHERE name = ?", (name,)) if name is not None else ("", ())
    rows = tables.fetch(
        "SELECT name, position, event_id, type, reason, parked_at FROM parked_events "
        f"{where} ORDER BY name, position",
        *params,
    )
    return [ParkedEvent(r[0], int(r[1]), r[2], r[3], r[4], _time(r[5])) for r in rows]

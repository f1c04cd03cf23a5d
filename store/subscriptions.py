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
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from . import appending, paging
from ._core import StoreCore
from ._subscription_tables import (
    ParkedEvent,
    SubscriptionInfo,
    Tables,
    delete,
    group_member,
    park,
    parked,
    reset,
    subscriptions,
)
from .checks import check_int, check_name, check_types
from .errors import HandlerError, ReadOnlyError, StoreError, SubscriptionError, ValidationError
from .models import RecordedEvent

__all__ = [
    "ParkedEvent",
    "SubscriptionInfo",
    "delete",
    "group_member",
    "park",
    "parked",
    "reset",
    "subscribe",
    "subscriptions",
]

Handler = Callable[[Any], object]  # an event, or with per_batch a list of them
Stop = threading.Event | Callable[[], bool] | None

# Progress over events that matched nothing is saved at most this often.
IDLE_SAVE_SECONDS = 1.0


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
        es: StoreCore,
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
        self.tables = Tables(es)
        self.label = name if size == 1 else f"{name} (member {member} of {size})"

    def claim(self, start: int) -> int:
        """Create the row when missing (at ``start``), record the filters, and
        return the saved position."""
        tables, name = self.tables, self.name
        with appending.transaction(self.es):
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
            paging.read(
                self.es,
                position + 1,
                None,
                self.aggregate_type,
                self.types,
                None,
                None,
                self.batch_size,
                False,
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
                    with appending.transaction(self.es):
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
                with appending.transaction(self.es):
                    self.deliver(todo, failed, True)
                    self.save(failed, old, new)
            else:
                self.deliver(todo, failed, False)
                with appending.transaction(self.es):
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
            with appending.transaction(self.es):
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
    es: StoreCore,
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
            head = es._call(es._backend.head)
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
                if new_token != token or es._call(es._backend.head) > position:
                    token = new_token
                    break
                backend.wait_for_change(token, poll_interval, stop_event)
    finally:
        if position != saved and not es._closed:
            # Progress over unmatched events only: it is found again if lost.
            with contextlib.suppress(StoreError):
                run.handle([], parked, saved, position)
    return handled

"""Deterministic, realistic demo data: six months in the event log of an online shop.

:func:`generate` simulates customers, orders, stock, payments, shipments, invoices
and support tickets as a discrete-event simulation over business time, and appends
what happens to an :class:`~store.EventStore`::

    >>> from store import EventStore
    >>> from workbench.demo import generate
    >>> with EventStore(":memory:") as es:
    ...     summary = generate(es, events=300, seed=1)
    ...     summary.events == es.head() == 300
    True

What makes it useful for auditing and debugging practice:

- eight aggregate types and about fifty event types, with payloads shaped so the
  default JSON-merge-patch reducer rebuilds meaningful state (``status``, ``lines``,
  ``on_hand``/``reserved``/``available``, nested ``address``);
- actors that are people (``user:erin``), customers (``customer:cust-00042``) and
  services (``svc:payments``); every event carries a ``correlation_id`` for its
  business flow and a ``causation_id`` naming the event that caused it;
- ``occurred_at`` is business time spread over months, with nights quieter than
  days; ``recorded_at`` is the simulation's clock (when the store would have
  received the event: a moment after it happened, hours after for late
  webhooks), handed to the store as its ``clock`` when :func:`generate` opens
  the store itself, so seeking "as of 14:02 on 3 March" means something. A
  store passed in keeps its own clock;
- late arrivals: ``OrderTotalCorrected`` weeks after the order, dated back to it,
  and payment-provider webhooks that land hours after they happened;
- optimistic-concurrency retries: a command that loaded an aggregate, lost the race
  to another writer, caught :class:`~store.ConcurrencyError`, reloaded and retried
  (the stored event has ``metadata.attempt == 2``);
- system events without an aggregate (deployments, nightly reconciliation).

The same ``seed`` and ``events`` give the same events: ids, types, data,
metadata and ``occurred_at`` all come from one seeded random generator.
"""

from __future__ import annotations

import heapq
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store import ANY, ConcurrencyError, EventStore, NewEvent

from . import _demo_orders, _demo_world

__all__ = ["START", "DemoSummary", "generate"]

START = datetime(2024, 1, 1, tzinfo=UTC)
"""Business time of the first event."""

SPAN = timedelta(days=182)
"""About how much business time a generated store covers."""

_FLUSH_EVERY = 512  # appends per transaction while bulk loading
_EVENTS_PER_ARRIVAL = 10.5  # measured average, to spread arrivals over SPAN
_BACKGROUND_PER_DAY = 3.5  # events per day from jobs, deployments, restocking
_MAX_ARRIVAL_GAP = 3 * 3600.0  # mean seconds between customer arrivals, at most

Flow = Generator[float, None, None]
"""A business process: yields seconds to wait, the scheduler resumes it then."""


@dataclass(frozen=True, slots=True)
class DemoSummary:
    """What :func:`generate` made."""

    path: str
    seed: int
    events: int
    aggregates: dict[str, int]
    event_types: dict[str, int]
    system_events: int
    corrections: int
    retries: int
    late_events: int
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    seconds: float

    def describe(self) -> str:
        """A few lines for people."""
        span = ""
        if self.first_occurred_at and self.last_occurred_at:
            days = (self.last_occurred_at - self.first_occurred_at).days
            span = (
                f", business time {self.first_occurred_at:%Y-%m-%d} .. "
                f"{self.last_occurred_at:%Y-%m-%d} ({days} days)"
            )
        kinds = ", ".join(f"{count} {name}" for name, count in self.aggregates.items())
        return (
            f"demo store {self.path}: {self.events} events (seed {self.seed}) "
            f"in {self.seconds:.1f}s{span}\n"
            f"  aggregates: {kinds}\n"
            f"  {len(self.event_types)} event types, {self.system_events} system events, "
            f"{self.corrections} late corrections, {self.retries} concurrency retries, "
            f"{self.late_events} late arrivals"
        )


class _Done(Exception):
    """The requested number of events is written."""


@dataclass(slots=True)
class _Pending:
    aggregate_id: str | None
    aggregate_type: str | None
    expected_version: int | None
    events: list[NewEvent] = field(default_factory=list)
    received: float = 0.0  # business seconds when the store receives the append


class SimulatedClock:
    """The store's ``clock`` during generation: the business time at which the
    append being written reached the store."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


class Simulation:
    """The scheduler and the writer: flows call :meth:`emit`; events go out in batches."""

    def __init__(
        self, es: EventStore, limit: int, seed: int, clock: SimulatedClock | None = None
    ) -> None:
        self.es = es
        self.clock = clock
        self.limit = limit
        self.rng = random.Random(seed)
        self.now = 0.0  # business seconds since START
        self.count = 0
        self.stats: Counter[str] = Counter()
        self.versions: dict[str, int] = {}
        self._pending: list[_Pending] = []
        self._queue: list[tuple[float, int, Flow]] = []
        self._sequence = 0
        self.first_occurred: float | None = None
        self.last_occurred: float | None = None
        # Large stores spread over SPAN; small ones cover fewer, busy days rather
        # than months of nightly jobs and nothing else.
        arrivals = max(1.0, (limit - _BACKGROUND_PER_DAY * SPAN.days) / _EVENTS_PER_ARRIVAL)
        self.arrival_gap = min(_MAX_ARRIVAL_GAP, max(60.0, SPAN.total_seconds() / arrivals))

    # -- randomness ------------------------------------------------------------

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def minutes(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * 60.0

    def hours(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * 3600.0

    def days(self, low: float, high: float) -> float:
        return self.rng.uniform(low, high) * 86400.0

    def time(self, seconds: float | None = None) -> datetime:
        return START + timedelta(seconds=self.now if seconds is None else seconds)

    # -- scheduling ------------------------------------------------------------

    def spawn(self, flow: Flow, delay: float = 0.0) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (self.now + delay, self._sequence, flow))

    def run(self) -> None:
        try:
            while self._queue:
                self.now, _, flow = heapq.heappop(self._queue)
                try:
                    delay = next(flow)
                except StopIteration:
                    continue
                self._sequence += 1
                heapq.heappush(self._queue, (self.now + delay, self._sequence, flow))
        except _Done:
            pass
        self.flush()

    # -- writing ---------------------------------------------------------------

    def _event(
        self,
        event_type: str,
        data: dict[str, Any],
        actor: str,
        correlation_id: str,
        causation_id: str | None,
        occurred: float | None,
        extra: dict[str, Any] | None,
    ) -> NewEvent:
        if self.count >= self.limit:
            raise _Done
        metadata: dict[str, Any] = {"actor": actor, "correlation_id": correlation_id}
        if causation_id is not None:
            metadata["causation_id"] = causation_id
        if extra:
            metadata.update(extra)
        at = self.now if occurred is None else occurred
        if occurred is not None and occurred < self.now:
            self.stats["late"] += 1
        if self.first_occurred is None or at < self.first_occurred:
            self.first_occurred = at
        if self.last_occurred is None or at > self.last_occurred:
            self.last_occurred = at
        return NewEvent(
            event_type,
            data,
            metadata=metadata,
            event_id=self.uuid(),
            occurred_at=START + timedelta(seconds=at),
        )

    def emit(
        self,
        aggregate_id: str | None,
        aggregate_type: str | None,
        event_type: str,
        data: dict[str, Any],
        *,
        actor: str,
        correlation_id: str,
        causation_id: str | None = None,
        occurred: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """Queue one event; consecutive events of one aggregate become one append."""
        event = self._event(event_type, data, actor, correlation_id, causation_id, occurred, extra)
        last = self._pending[-1] if self._pending else None
        if aggregate_id is not None and last is not None and last.aggregate_id == aggregate_id:
            last.events.append(event)
        else:
            expected = None if aggregate_id is None else self.versions.get(aggregate_id, 0)
            self._pending.append(
                _Pending(aggregate_id, aggregate_type, expected, [event], self.now)
            )
        if aggregate_id is not None:
            self.versions[aggregate_id] = self.versions.get(aggregate_id, 0) + 1
        self.count += 1
        if len(self._pending) >= _FLUSH_EVERY:
            self.flush()
        return event.event_id

    def emit_contended(
        self,
        aggregate_id: str,
        aggregate_type: str,
        event_type: str,
        data: dict[str, Any],
        *,
        loaded_version: int,
        actor: str,
        correlation_id: str,
        causation_id: str | None = None,
    ) -> str:
        """A command that loaded ``aggregate_id`` at ``loaded_version`` while another
        writer moved it on: the append fails, the command reloads and retries."""
        event = self._event(event_type, data, actor, correlation_id, causation_id, None, None)
        self.flush()
        self._receive(self.now)
        try:
            self.es.append(
                [event],
                aggregate_id=aggregate_id,
                aggregate_type=aggregate_type,
                expected_version=loaded_version,
            )
        except ConcurrencyError as e:
            retry = NewEvent(
                event.type,
                event.data,
                metadata={**event.metadata, "attempt": 2},
                event_id=event.event_id,
                occurred_at=event.occurred_at,
            )
            self.es.append(
                [retry],
                aggregate_id=aggregate_id,
                aggregate_type=aggregate_type,
                expected_version=e.actual,
            )
            self.stats["retries"] += 1
        self.versions[aggregate_id] = self.versions.get(aggregate_id, 0) + 1
        self.count += 1
        return event.event_id

    def _receive(self, seconds: float) -> None:
        if self.clock is not None:
            # Ingestion takes a moment; the store clamps it to stay monotonic.
            self.clock.now = START + timedelta(seconds=seconds + 0.05)

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        with self.es.transaction():
            for item in pending:
                self._receive(item.received)
                self.es.append(
                    item.events,
                    aggregate_id=item.aggregate_id,
                    aggregate_type=item.aggregate_type,
                    expected_version=ANY
                    if item.expected_version is None
                    else item.expected_version,
                )


def _open(
    target: str | os.PathLike[str] | EventStore, clock: SimulatedClock
) -> tuple[EventStore, bool]:
    if isinstance(target, EventStore):
        return target, False
    # Bulk generation: losing the file to a power cut costs nothing but a rerun.
    return EventStore(os.fspath(target), durable=False, clock=clock), True


def generate(
    target: str | os.PathLike[str] | EventStore, *, events: int = 20_000, seed: int = 7
) -> DemoSummary:
    """Fill an empty store with ``events`` demo events; the same seed gives the same events.

    Args:
        target: a path (created; opened with ``durable=False`` for speed) or an open,
            empty, writable :class:`~store.EventStore`.
        events: how many events to write, exactly.
        seed: the random seed.

    Raises:
        ValueError: ``events`` is below 1, or the store already holds events.
    """
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise ValueError(f"events must be a positive int, not {events!r}")
    started = time.perf_counter()
    clock = SimulatedClock()
    es, owned = _open(target, clock)
    try:
        if es.head():
            raise ValueError(f"{es.label} already holds events; demo data needs an empty store")
        sim = Simulation(es, events, seed, clock if owned else None)
        _demo_orders.start(sim)
        sim.run()
        summary = DemoSummary(
            path=es.path,
            seed=seed,
            events=es.head(),
            aggregates={
                str(name): count
                for name, count in sorted(
                    es.aggregate_types().items(), key=lambda item: (-item[1], str(item[0]))
                )
            },
            event_types=es.event_types(),
            system_events=sim.stats["system"],
            corrections=sim.stats["corrections"],
            retries=sim.stats["retries"],
            late_events=sim.stats["late"],
            first_occurred_at=None if sim.first_occurred is None else sim.time(sim.first_occurred),
            last_occurred_at=None if sim.last_occurred is None else sim.time(sim.last_occurred),
            seconds=time.perf_counter() - started,
        )
    finally:
        if owned:
            es.close()
    return summary


def iter_event_types() -> Iterator[str]:
    """Every event type the demo can produce (for documentation and tests)."""
    return iter(_demo_world.EVENT_TYPES)

"""The demo's simulation core: a discrete-event loop over business time
(:class:`Simulation`), its clock and the summary it reports. The shop's world
(:mod:`.world`) and its order flows (:mod:`.orders`) build on it; nothing here
imports them, so the demo's parts form no cycle."""

from __future__ import annotations

import heapq
import random
import uuid
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from store import ANY, ConcurrencyError, EventStore, NewEvent

__all__ = ["SPAN", "START", "DemoSummary", "Flow", "SimulatedClock", "Simulation"]

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

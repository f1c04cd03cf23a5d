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

import os
import time
from collections.abc import Iterator

from store import EventStore

from . import orders, world
from .simulation import SPAN, START, DemoSummary, SimulatedClock, Simulation

__all__ = ["SPAN", "START", "DemoSummary", "generate", "iter_event_types"]


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
        orders.start(sim)
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
    return iter(world.EVENT_TYPES)

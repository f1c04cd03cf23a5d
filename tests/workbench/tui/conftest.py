"""Fixture stores for the TUI tests, built deterministically through the store API.

Everything is fixed: event ids, payloads, ``occurred_at`` (business time, one
minute apart from ``T0``) and ``recorded_at`` (from the store's ``clock``,
thirteen seconds and a microsecond apart from ``RECORDED0``, weeks after the
business times), hence the hashes too. The two times of an event never agree,
so a screen showing one in place of the other is wrong in the pictures and in
the tests.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
RECORDED0 = datetime(2024, 6, 2, 14, 30, 7, 250000, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c2d9e-0000-4000-8000-000000000000")


def occurred_of(n: int) -> datetime:
    """When the n-th event of :func:`build_store` happened."""
    return T0 + timedelta(minutes=n)


def recorded_of(n: int, start: datetime = RECORDED0) -> datetime:
    """When the store recorded the n-th event of :func:`build_store`."""
    return start + timedelta(seconds=13 * n, microseconds=n)


class StepClock:
    """The store's clock: it says what ``at`` was last set to."""

    def __init__(self, start: datetime) -> None:
        self.start = start
        self.n = 0

    def __call__(self) -> datetime:
        return recorded_of(self.n, self.start)


def event(kind: str, data: dict[str, Any], n: int, *, actor: str, corr: str) -> NewEvent:
    return NewEvent(
        kind,
        data,
        metadata={"actor": actor, "correlation_id": corr},
        event_id=str(uuid.uuid5(NAMESPACE, f"{kind}-{n}")),
        occurred_at=occurred_of(n),
    )


def build_store(path: Path, orders: int = 6, recorded: datetime = RECORDED0) -> Path:
    """A small shop: customers and orders, each order placed, changed and shipped.

    Event n (from 1, at position n) occurred at ``occurred_of(n)`` and was
    recorded at ``recorded_of(n, recorded)``.
    """
    n = 0
    clock = StepClock(recorded)
    with EventStore(str(path), clock=clock) as es:
        for c in range(2):
            n += 1
            clock.n = n
            es.append(
                [event("CustomerRegistered", {"name": f"Customer {c}"}, n, actor="web", corr="c")],
                aggregate_id=f"customer-{c}",
                aggregate_type="Customer",
            )
        for o in range(orders):
            corr = f"checkout-{o}"
            actor = ["alice", "bob", "carol"][o % 3]
            steps = [
                ("OrderPlaced", {"status": "placed", "total": 10 * (o + 1), "items": ["book"]}),
                ("ItemAdded", {"items": ["book", f"pen-{o}"], "total": 10 * (o + 1) + 2}),
                ("AddressChanged", {"address": {"city": "Lyon", "zip": f"6900{o}"}}),
                ("OrderShipped", {"status": "shipped", "carrier": "UPS"}),
            ]
            for kind, data in steps:
                n += 1
                clock.n = n
                es.append(
                    [event(kind, data, n, actor=actor, corr=corr)],
                    aggregate_id=f"order-{o}",
                    aggregate_type="Order",
                )
    return path


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests here with asyncio (Pilot tests), no plugin needed."""
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
    return True


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return build_store(tmp_path / "shop.db")

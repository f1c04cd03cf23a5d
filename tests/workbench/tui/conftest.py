"""Fixture stores for the TUI tests, built deterministically through the store API.

Everything a caller can choose is fixed (event ids, occurred_at, payloads), so
only ``recorded_at`` and ``hash`` depend on the clock. Snapshot tests hide
those with :class:`FrozenClock`.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store import AggregateState, EventStore, NewEvent, RecordedEvent, Step

T0 = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
NAMESPACE = uuid.UUID("6f1c2d9e-0000-4000-8000-000000000000")


def event(kind: str, data: dict[str, Any], n: int, *, actor: str, corr: str) -> NewEvent:
    return NewEvent(
        kind,
        data,
        metadata={"actor": actor, "correlation_id": corr},
        event_id=str(uuid.uuid5(NAMESPACE, f"{kind}-{n}")),
        occurred_at=T0 + timedelta(minutes=n),
    )


def build_store(path: Path, orders: int = 6) -> Path:
    """A small shop: customers and orders, each order placed, changed and shipped."""
    n = 0
    with EventStore(str(path)) as es:
        for c in range(2):
            n += 1
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


class FrozenClock:
    """An EventStore whose events show occurred_at as recorded_at and a fixed hash.

    Snapshot tests take pictures of screens; the real recorded_at and hash
    change every run, so they are replaced here rather than hidden from users.
    """

    def __init__(self, es: EventStore) -> None:
        self._es = es

    def __getattr__(self, name: str) -> Any:
        return getattr(self._es, name)

    @staticmethod
    def _freeze(e: RecordedEvent) -> RecordedEvent:
        return replace(e, recorded_at=e.occurred_at, hash=f"{e.position:064x}")

    def read(self, *args: Any, **kwargs: Any) -> Iterator[RecordedEvent]:
        return map(self._freeze, self._es.read(*args, **kwargs))

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[RecordedEvent]:
        return map(self._freeze, self._es.stream(*args, **kwargs))

    def get(self, position: int) -> RecordedEvent:
        return self._freeze(self._es.get(position))

    def history(self, *args: Any, **kwargs: Any) -> Iterator[Step]:
        for step in self._es.history(*args, **kwargs):
            yield replace(step, event=self._freeze(step.event))

    def state_at(self, *args: Any, **kwargs: Any) -> AggregateState:
        state = self._es.state_at(*args, **kwargs)
        if state.version == 0:
            return state
        event = next(iter(self._es.stream(state.aggregate_id, state.version, state.version)))
        return replace(state, recorded_at=event.occurred_at)

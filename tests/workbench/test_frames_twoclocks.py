"""frames.as_of with two clocks, and frames.restatements: by hand on a small
store, and against a computation from the raw events on the demo store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from store import EventStore, NewEvent, merge_patch
from workbench import frames
from workbench.demo import generate

D = datetime(2024, 3, 1, tzinfo=UTC)
BACKENDS = ["file"] + (["postgres"] if os.environ.get("SSS_TEST_POSTGRES_URL") else [])


class Clock:
    def __init__(self) -> None:
        self.now = D

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
def shop(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Two orders in March; in April one gets a back-dated correction and one a
    late note dated after the quarter; o-3 appears only in April, dated March."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        from tests.store.pg import fresh_postgres_url

        urls = fresh_postgres_url(request.node.name)
        path = next(urls)
    else:
        urls, path = iter(()), str(tmp_path / "shop.db")
    clock = Clock()
    with EventStore(path, clock=clock) as es:
        order = {"aggregate_type": "Order"}
        es.append([NewEvent("Placed", {"total": 100, "status": "new"})], "o-1", **order)
        es.append([NewEvent("Placed", {"total": 50, "status": "new"})], "o-2", **order)
        clock.now = D + timedelta(days=10)
        es.append([NewEvent("Shipped", {"status": "shipped"})], "o-1")
        clock.now = datetime(2024, 4, 10, tzinfo=UTC)
        es.append(
            [
                NewEvent(
                    "Corrected",
                    {"total": 90, "reason": {"code": "vat"}},
                    metadata={"actor": "grace"},
                    occurred_at=D + timedelta(days=5),
                )
            ],
            "o-1",
        )  # position 4
        es.append([NewEvent("Noted", {"note": "late"})], "o-2")  # occurred now: after Q1
        es.append(
            [NewEvent("Placed", {"total": 7}, occurred_at=D + timedelta(days=20))], "o-3", **order
        )  # position 6
    yield path
    for _ in urls:  # drops the schema
        pass


Q1_END = datetime(2024, 3, 31, 23, 59, 59, tzinfo=UTC)
CUT = datetime(2024, 4, 1, tzinfo=UTC)


def test_restatements_by_hand(shop: str) -> None:
    table = frames.restatements(shop, "Order", Q1_END, CUT)
    assert list(table.columns) == list(frames.RESTATEMENT_COLUMNS)
    rows = {(r.aggregate_id, r.path): r for r in table.itertuples()}
    assert set(rows) == {("o-1", "/total"), ("o-1", "/reason"), ("o-3", "/total")}
    total = rows[("o-1", "/total")]
    assert (total.then, total.now, total.positions, total.actor) == (100, 90, [4], "grace")
    assert total.occurred_at == pd.Timestamp(D + timedelta(days=5))
    assert total.recorded_at == pd.Timestamp(datetime(2024, 4, 10, tzinfo=UTC))
    reason = rows[("o-1", "/reason")]
    assert (reason.then, reason.now, reason.positions) == (None, {"code": "vat"}, [4])
    assert (rows[("o-3", "/total")].then, rows[("o-3", "/total")].now) == (None, 7)
    assert rows[("o-3", "/total")].positions == [6]
    # Compared with what was known before the correction: nothing changed.
    assert frames.restatements(shop, "Order", Q1_END, CUT, compared_to=CUT).empty
    assert str(table["recorded_at"].dtype) == "datetime64[us, UTC]"


def test_as_of_with_two_clocks(shop: str) -> None:
    then = frames.as_of(shop, "Order", occurred=Q1_END, known_at=CUT)
    assert then["aggregate_id"].tolist() == ["o-1", "o-2"]
    assert then["state.total"].tolist() == [100, 50]
    now = frames.as_of(shop, "Order", occurred=Q1_END)
    assert now["state.total"].tolist() == [90, 50, 7]
    assert now["state.status"].tolist()[:2] == ["shipped", "new"]
    with EventStore(shop, readonly=True) as es:
        for row in now.itertuples():
            assert row.state == es.state_at(row.aggregate_id, occurred=Q1_END).state
    assert frames.as_of(shop, "Order")["aggregate_id"].tolist() == ["o-1", "o-2", "o-3"]
    with pytest.raises(ValueError, match="not both"):
        frames.as_of(shop, "Order", CUT, occurred=Q1_END)


def _hand_state(events: list[Any], occurred: datetime, known: datetime | None) -> dict[str, Any]:
    chosen = sorted(
        (
            e
            for e in events
            if e.occurred_at <= occurred and (known is None or e.recorded_at <= known)
        ),
        key=lambda e: (e.occurred_at, e.position),
    )
    state: dict[str, Any] = {}
    for e in chosen:
        state = merge_patch(state, e.data)
    return state


def test_restatements_on_the_demo_match_a_computation_from_raw_events(tmp_path: Path) -> None:
    path = str(tmp_path / "demo.db")
    generate(path, events=6000, seed=3)
    with EventStore(path, readonly=True) as es:
        events = list(es.read(aggregate_type="Order"))
    fixes = [e for e in events if e.type == "OrderTotalCorrected"]
    assert len(fixes) >= 2
    fix = fixes[0]
    # The cut-off: just before the first correction was recorded; the business
    # date: just after the day it is dated to.
    cut = fix.recorded_at - timedelta(microseconds=1)
    day = fix.occurred_at.replace(hour=23, minute=59, second=59)
    table = frames.restatements(path, "Order", day, cut)
    by_aggregate: dict[str, list[Any]] = {}
    for e in events:
        by_aggregate.setdefault(e.aggregate_id or "", []).append(e)
    expected = set()
    for aggregate, own in by_aggregate.items():
        then, now = _hand_state(own, day, cut), _hand_state(own, day, None)
        for key in then.keys() | now.keys():
            if then.get(key) != now.get(key):
                expected.add((aggregate, f"/{key}", then.get(key), now.get(key)))
    got = {(r.aggregate_id, r.path, r.then, r.now) for r in table.itertuples()}
    assert got == expected
    assert (fix.aggregate_id, "/total", fix.data["previous_total"], fix.data["total"]) in got
    row = table[(table["aggregate_id"] == fix.aggregate_id) & (table["path"] == "/total")].iloc[0]
    assert row["positions"] == [fix.position]
    assert row["actor"] == fix.actor

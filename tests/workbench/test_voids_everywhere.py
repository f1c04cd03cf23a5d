"""Every read surface agrees on what a void means: the store's replays (by
version, by time, by the two clocks), the DataFrames (``as_of``, ``states``,
``changes``) and the analysis database all equal a plain fold of the log
minus the events voided by the voids known at the point read."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import VOIDED, EventStore, NewEvent, RecordedEvent
from workbench import frames
from workbench.analysis import export

BASE = datetime(2024, 1, 1, tzinfo=UTC)
_runs = itertools.count()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def reference(
    log: list[RecordedEvent],
    aggregate: str,
    *,
    known_at: datetime | None = None,
    occurred: datetime | None = None,
    two_clocks: bool = False,
) -> dict[str, Any]:
    """Filter by system time, drop what the known voids name; with the two
    clocks also drop by business time and sort by (occurred_at, position);
    fold the merge patches."""
    known = [e for e in log if known_at is None or e.recorded_at <= known_at]
    voided = {e.data["voided_position"] for e in known if e.type == VOIDED}
    chosen = [
        e
        for e in known
        if e.aggregate_id == aggregate
        and e.type != VOIDED
        and e.position not in voided
        and (occurred is None or e.occurred_at <= occurred)
    ]
    if two_clocks:
        chosen.sort(key=lambda e: (e.occurred_at, e.position))
    state: dict[str, Any] = {}
    for event in chosen:
        state = {**state, **event.data}
        state = {k: v for k, v in state.items() if v is not None}
    return state


patches = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(-3, 3), st.none()), min_size=1
)
# (aggregate, patch, occurred_at in hours from the run's start, or a void of
# the k-th still voidable event)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["x", "y"]), patches, st.integers(0, 10)),
        st.tuples(st.just("void"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=actions,
    cut=st.integers(0, 16),
    business=st.integers(0, 11),
    every=st.sampled_from([None, 2]),
)
def test_every_read_surface_leaves_out_the_voided_events(
    tmp_path_factory: pytest.TempPathFactory,
    steps: list[Any],
    cut: int,
    business: int,
    every: int | None,
) -> None:
    where: Path = tmp_path_factory.mktemp(f"voids{next(_runs)}")
    path = str(where / "s.db")
    clock = Clock(BASE)
    with EventStore(path, clock=clock, snapshot_every=every) as es:
        voidable: list[int] = []
        for step in steps:
            clock.now += timedelta(hours=1)
            if step[0] == "add":
                _, aggregate, patch, hours = step
                when = BASE + timedelta(hours=hours)
                (event,) = es.append([NewEvent("P", patch, occurred_at=when)], aggregate, "T")
                voidable.append(event.position)
            elif voidable:
                es.void(voidable.pop(step[1] % len(voidable)), reason="wrong")
        log = list(es.read())
        aggregates = sorted({e.aggregate_id for e in log if e.aggregate_id})
        known_at = BASE + timedelta(hours=cut, minutes=30)
        occurred = BASE + timedelta(hours=business, minutes=30)
        for aggregate in aggregates:
            now = reference(log, aggregate)
            assert es.state_at(aggregate).state == now
            assert es.state_at(aggregate, at=known_at).state == reference(
                log, aggregate, known_at=known_at
            )
            assert es.state_at(aggregate, occurred=occurred, known_at=known_at).state == (
                reference(log, aggregate, known_at=known_at, occurred=occurred, two_clocks=True)
            )
            assert es.state_at(aggregate, occurred=occurred).state == reference(
                log, aggregate, occurred=occurred, two_clocks=True
            )
            assert frames.states(es, aggregate, flatten=False)["state"].iloc[-1] == now

    def by_id(frame: Any) -> dict[str, dict[str, Any]]:
        return dict(zip(frame["aggregate_id"], frame["state"], strict=True))

    latest = by_id(frames.as_of(path, "T", flatten=False))
    assert latest == {a: reference(log, a) for a in aggregates}
    then = by_id(frames.as_of(path, "T", known_at, flatten=False))
    for aggregate, state in then.items():
        assert state == reference(log, aggregate, known_at=known_at)
    two = by_id(frames.as_of(path, "T", occurred=occurred, known_at=known_at, flatten=False))
    for aggregate in aggregates:
        expected = reference(log, aggregate, known_at=known_at, occurred=occurred, two_clocks=True)
        assert two.get(aggregate, {}) == expected

    # Changes across the type equal each aggregate's own history, void steps too.
    def keyed(frame: Any) -> list[tuple[Any, ...]]:
        return sorted(zip(frame["position"], frame["path"], map(repr, frame["new"]), strict=True))

    whole = keyed(frames.changes(path, aggregate_type="T"))
    one_by_one = sorted(
        itertools.chain.from_iterable(
            keyed(frames.changes(path, aggregate_id=a)) for a in aggregates
        )
    )
    assert whole == one_by_one

    target = where / "analysis.db"
    export(path, target)
    db = sqlite_utils.Database(target)
    stored = {row["aggregate_id"]: json.loads(row["state"]) for row in db["T_state"].rows}
    assert stored == {a: reference(log, a) for a in aggregates}
    changed = sorted((row["position"], row["path"]) for row in db["changes"].rows)
    assert changed == [(p, q) for p, q, _ in one_by_one]
    db.close()


def test_a_late_void_is_a_restatement_named_as_its_cause(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    clock = Clock(datetime(2024, 3, 30, tzinfo=UTC))
    with EventStore(path, clock=clock) as es:
        es.append([NewEvent("Placed", {"total": 100, "status": "new"})], "o-1", "Order")
        wrong = es.append([NewEvent("Discounted", {"total": 10})], "o-1")[0]
        clock.now = datetime(2024, 4, 5, tzinfo=UTC)
        void = es.void(wrong.position, reason="discount typed wrong", metadata={"actor": "ops"})
    table = frames.restatements(
        path, "Order", datetime(2024, 3, 31, tzinfo=UTC), datetime(2024, 4, 1, tzinfo=UTC)
    )
    assert list(table["path"]) == ["/total"]
    assert (table["then"].iloc[0], table["now"].iloc[0]) == (10, 100)
    assert table["positions"].iloc[0] == [void.position]
    assert table["actor"].iloc[0] == "ops"

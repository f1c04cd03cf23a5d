"""The warning of a snapshot that could not be taken points at the caller's
own line, on every backend and every path an append takes: group commit's
leader, a store without group commit, inside ``transaction()``, and a
group of appends from several threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from store import EventStore, NewEvent, RecordedEvent, Reducers


def _divide(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
    return {"share": 1 / 0}


def _failing() -> Reducers:
    reducers = Reducers()
    reducers.register(None, "Odd", _divide)
    return reducers


def _odd(i: int = 0) -> list[NewEvent]:
    return [NewEvent("Odd", {"i": i})]


@pytest.mark.parametrize("group_commit", [True, False])
def test_a_failed_snapshot_warns_at_the_callers_line(
    make_store: Callable[..., EventStore], group_commit: bool
) -> None:
    es = make_store(reducers=_failing(), snapshot_every=1, group_commit=group_commit)
    with pytest.warns(RuntimeWarning, match="no snapshot of x at version 1") as plain:
        es.append(_odd(), aggregate_id="x")
    with (
        pytest.warns(RuntimeWarning, match="no snapshot of x at version 2") as inside,
        es.transaction(),
    ):
        es.append(_odd(), aggregate_id="x")
    assert [w.filename for w in plain] == [__file__]
    assert [w.filename for w in inside] == [__file__]
    assert es.head() == 2 and es.verify().ok


def test_in_a_group_each_warning_points_at_an_append_in_the_callers_code(
    make_store: Callable[..., EventStore],
) -> None:
    """Several threads append at once: whichever leads writes the group and
    warns for every batch in it, at its own append's line."""
    es = make_store(reducers=_failing(), snapshot_every=1)
    threads = 4
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            start.wait()
            es.append(_odd(i), aggregate_id=f"x-{i}")
        except BaseException as e:  # reported below
            errors.append(e)

    with pytest.warns(RuntimeWarning, match="no snapshot of x-") as caught:
        running = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for thread in running:
            thread.start()
        for thread in running:
            thread.join()
    assert errors == []
    found = [w for w in caught if "no snapshot of x-" in str(w.message)]
    assert len(found) == threads
    assert {w.filename for w in found} == {__file__}
    assert es.head() == threads and es.verify().ok

"""The aggregate pass of verify (store.aggregate_pass) on its own, where
verify's fallback to the exact walk would hide what the pass gets wrong:
the version index read past one page, aggregates created after the pass's
head wherever their names sort, and aggregates that moved on after it."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

import store.aggregate_pass as pass_module
from store import EventStore, NewEvent
from store.aggregate_pass import aggregate_pass, check_aggregates


def _append(es: EventStore, aggregate_id: str, count: int) -> None:
    for i in range(count):
        es.append([NewEvent("Set", {"i": i})], aggregate_id=aggregate_id, aggregate_type="T")


def test_the_version_index_is_read_past_one_page(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pass_module, "VERSIONS_PAGE", 2)
    for name in ("a", "b", "c"):
        _append(store, name, 3)
    store.append([NewEvent("Tick", {})])
    found = aggregate_pass(store, store.head())
    assert found.problem is None and found.events == 9


def test_an_aggregate_created_after_the_head_is_left_out_wherever_it_sorts(
    store: EventStore,
) -> None:
    _append(store, "m", 2)  # positions 1 and 2
    _append(store, "a", 1)  # position 3: after a pass up to 2, and sorted before m
    _append(store, "z", 1)  # position 4: after it, and sorted after m
    found = aggregate_pass(store, 2)
    assert found.problem is None and found.events == 2
    assert aggregate_pass(store, 4).events == 4


@pytest.mark.parametrize(("version", "problem"), [(2, True), (3, False), (4, False)])
def test_an_aggregate_that_moved_on_may_not_be_behind_the_pass(
    store: EventStore, version: int, problem: bool
) -> None:
    _append(store, "b", 4)  # positions 1 to 4; a pass up to 3 sees versions 1 to 3
    (info,) = store.aggregates()
    assert (info.version, info.last_position) == (4, 4)
    versions = [("b", v, v) for v in (1, 2, 3)]
    found = check_aggregates(versions, [replace(info, version=version)], 3)
    if problem:
        assert found.problem == f"the aggregates table says b is at version {version}"
    else:
        assert found.problem is None and found.events == 3


@pytest.mark.parametrize("name", ["0ghost", "n", "zghost"])
def test_a_table_row_without_events_is_named_wherever_it_sorts(
    store: EventStore, name: str
) -> None:
    _append(store, "a", 2)
    _append(store, "m", 2)
    rows = list(store.aggregates())
    versions = [("a", 1, 1), ("a", 2, 2), ("m", 1, 3), ("m", 2, 4)]
    assert check_aggregates(versions, rows, 4).problem is None
    # A row of the table for an aggregate the log does not hold, its first
    # position at the head (so not created after it).
    ghost = replace(rows[1], aggregate_id=name, first_position=4, last_position=4, version=1)
    table = sorted([*rows, ghost], key=lambda info: info.aggregate_id)
    found = check_aggregates(versions, table, 4)
    assert found.problem == f"the aggregates table lists {name}, which has no events"


def test_events_of_an_aggregate_the_table_misses_are_still_counted(store: EventStore) -> None:
    _append(store, "a", 2)
    _append(store, "m", 3)
    rows = list(store.aggregates())
    versions = [("a", 1, 1), ("a", 2, 2), ("m", 1, 3), ("m", 2, 4), ("m", 3, 5)]
    for table in ([rows[0]], [rows[1]], []):
        found = check_aggregates(versions, table, 5)
        assert found.problem == "the aggregates table misses aggregates found in the log"
        assert found.events == 5


def test_verify_names_a_table_row_without_events_that_sorts_first(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        _append(es, "m", 2)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(
            "INSERT INTO aggregates SELECT 'a-ghost', aggregate_type, 1, 1, 1, created_at, "
            "created_at FROM aggregates WHERE aggregate_id = 'm'"
        )
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok and "a-ghost, which has no events" in (report.reason or ""), report

"""store.copy_store: a row-for-row copy, whole, as a prefix, or extending a
copy that holds a prefix; hashes intact, and a differing history refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from store import (
    EventStore,
    HistoryMismatchError,
    NewEvent,
    Reducers,
    ValidationError,
    copy_store,
)


def _fill(es: EventStore, start: int, count: int) -> None:
    for i in range(start, start + count):
        es.append(
            [NewEvent("Changed", {"n": i}, metadata={"actor": "a"})],
            aggregate_id=None if i % 5 == 0 else f"item-{i % 3}",
            aggregate_type=None if i % 5 == 0 else "Item",
        )


def _rows(es: EventStore) -> list[Any]:
    return es.backend.chain_page(0, 10_000)


def test_a_whole_copy_keeps_every_row_and_hash(make_store: Any, tmp_path: Path) -> None:
    source = make_store(snapshot_every=2)
    _fill(source, 0, 25)
    with EventStore(str(tmp_path / "copy.db")) as target:
        report = copy_store(source, target)
        assert (report.events, report.head_position) == (25, 25)
        assert report.head_hash == source.verify().head_hash == target.verify().head_hash
        assert _rows(target) == _rows(source)
        assert list(target.aggregates()) == list(source.aggregates())
        assert report.snapshots == len(source.backend.snapshot_page(None, 100)) > 0
        assert target.backend.snapshot_page(None, 100) == source.backend.snapshot_page(None, 100)


def test_a_prefix_is_the_store_as_it_stood_then(make_store: Any, tmp_path: Path) -> None:
    source = make_store(snapshot_every=2)
    _fill(source, 0, 12)
    then = {a.aggregate_id: a for a in source.aggregates()}
    states = {a: source.state_at(a).state for a in then}
    _fill(source, 12, 13)
    with EventStore(str(tmp_path / "backup.db"), snapshot_every=2) as target:
        report = copy_store(source, target, until_position=12)
        assert report.head_position == 12 and target.head() == 12
        assert report.head_hash == source.get(12).hash
        assert _rows(target) == _rows(source)[:12]
        assert {a.aggregate_id: a for a in target.aggregates()} == then
        assert {a: target.state_at(a).state for a in then} == states
        assert all(s.position <= 12 for _, s, _ in target.backend.snapshot_page(None, 100))
        assert target.verify().ok
        # Then the rest: what the copy lacks is appended, hashes intact.
        more = copy_store(source, target)
        assert (more.events, more.head_position) == (13, 25)
        assert _rows(target) == _rows(source)
        assert list(target.aggregates()) == list(source.aggregates())
        assert copy_store(source, target).events == 0


def test_a_target_with_another_history_is_refused_at_the_first_difference(
    make_store: Any, tmp_path: Path
) -> None:
    source = make_store()
    _fill(source, 0, 20)
    with EventStore(str(tmp_path / "other.db")) as other:
        copy_store(source, other, until_position=13)
        other.append([NewEvent("Mine", {})])  # position 14 differs
        before = _rows(other)
        with pytest.raises(HistoryMismatchError, match="at position 14") as info:
            copy_store(source, other)
        assert info.value.position == 14
        assert _rows(other) == before
    with EventStore(str(tmp_path / "fresh.db")) as fresh:
        fresh.append([NewEvent("Unrelated", {})])
        with pytest.raises(HistoryMismatchError, match="at position 1"):
            copy_store(source, fresh)


def test_bad_bounds_and_the_same_store_are_refused(make_store: Any, tmp_path: Path) -> None:
    source = make_store(reducers=Reducers())
    _fill(source, 0, 3)
    with EventStore(str(tmp_path / "t.db")) as target:
        for bound in (4, -1, "2", 2**64):
            with pytest.raises(ValidationError):
                copy_store(source, target, until_position=bound)  # type: ignore[arg-type]
        assert target.head() == 0
    with pytest.raises(ValidationError, match="same store"):
        copy_store(source, source)

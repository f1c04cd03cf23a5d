"""What a backend gets from :class:`store.backend.Backend` when it implements
only the abstract methods: the defaults a new backend starts from."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent, StoreError
from store.backend import Backend, DirectResult, Head, Query, Snapshot, WriteTransaction
from store.sqlite.backend import SQLiteBackend


def _delegate(name: str) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.inner, name)(*args, **kwargs)

    return call


# Only the abstract methods, each handed to an SQLite backend.
Minimal: type[Backend] = type(
    "Minimal", (Backend,), {name: _delegate(name) for name in Backend.__abstractmethods__}
)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Backend, SQLiteBackend]]:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        for i in range(7):
            es.append(
                [NewEvent("Odd" if i % 2 else "Even", {"n": i}, metadata={"i": i})],
                aggregate_id=f"a-{i % 2}",
                aggregate_type="Thing",
            )
    inner = SQLiteBackend(path)
    minimal = Minimal()
    minimal.inner = inner  # type: ignore[attr-defined]
    try:
        yield minimal, inner
    finally:
        inner.close()


QUERIES = [
    (Query(1, None), None, None, False, 100),
    (Query(1, None), None, 3, True, 2),
    (Query(2, 6, types=("Odd",)), "Odd", None, False, 10),
    (Query(1, None, aggregate_id="a-0"), None, 1, False, 2),
]


def test_the_default_page_rows_are_the_events_as_stored_text(
    pair: tuple[Backend, SQLiteBackend],
) -> None:
    minimal, sqlite = pair
    for args in QUERIES:
        rows = minimal.page_rows(*args)
        assert rows, args
        assert rows == sqlite.page_rows(*args), args


def test_the_default_payloads_are_versions_and_stored_data(
    pair: tuple[Backend, SQLiteBackend],
) -> None:
    minimal, sqlite = pair
    for after, limit in ((0, 10), (1, 2), (4, 10)):
        assert minimal.payloads("a-0", after, limit) == sqlite.payloads("a-0", after, limit)
    assert [version for version, _ in minimal.payloads("a-0", 1, 2)] == [2, 3]


def test_the_default_keyset_start_turns_a_position_bound_into_a_version(
    pair: tuple[Backend, SQLiteBackend],
) -> None:
    minimal, _ = pair
    # a-0 holds positions 1, 3, 5, 7 as versions 1 to 4.
    assert minimal.keyset_start(Query(1, None), False) is None
    # Without an aggregate the keyset is the position itself: no start to find.
    assert minimal.keyset_start(Query(4, 6), False) is None
    assert minimal.keyset_start(Query(4, 6), True) is None
    assert minimal.keyset_start(Query(2, None, aggregate_id="a-0"), False) == 1
    assert minimal.keyset_start(Query(4, None, aggregate_id="a-0"), False) == 2
    assert minimal.keyset_start(Query(1, None, aggregate_id="a-0"), False) is None
    assert minimal.keyset_start(Query(1, 5, aggregate_id="a-0"), True) == 4
    assert minimal.keyset_start(Query(1, None, aggregate_id="a-0"), True) is None


def test_the_optional_features_default_to_absent(pair: tuple[Backend, SQLiteBackend]) -> None:
    minimal, _ = pair
    assert minimal.read_statement(Query(1, None), None, False) is None
    assert minimal.scrub() is None
    assert minimal.check_storage(True) == [] and minimal.check_storage(False) == []
    assert minimal.append_direct([], None, None, None, "2026-01-01T00:00:00.000000+00:00") is None
    assert minimal.tree_nodes([(0, 0), (1, 0)]) == {}
    assert minimal.tree_filled(0) == 0
    assert minimal.save_tree_nodes([(0, 0, "00")]) is False
    assert minimal.info() == {}
    assert minimal.appends_direct is False
    with pytest.raises(NotImplementedError, match="Minimal cannot list snapshots"):
        minimal.snapshots("f")


def test_the_default_wait_for_change_waits_until_stopped_or_timed_out(
    pair: tuple[Backend, SQLiteBackend],
) -> None:
    minimal, _ = pair
    stop = threading.Event()
    started = time.monotonic()
    minimal.wait_for_change(0, 0.05, stop)
    assert time.monotonic() - started >= 0.05
    stop.set()
    started = time.monotonic()
    minimal.wait_for_change(0, 30, stop)
    assert time.monotonic() - started < 5


def test_a_write_transaction_defaults_to_usable_and_refuses_what_it_lacks() -> None:
    def absent(self: Any, *args: Any) -> Any:
        raise AssertionError("not called")

    bare = type(
        "Bare", (WriteTransaction,), {name: absent for name in WriteTransaction.__abstractmethods__}
    )()
    assert bare.usable() is True
    assert bare.flush() is None
    with pytest.raises(StoreError, match="cannot look up payload digests"):
        bare.data_hash("e-1")
    with pytest.raises(StoreError, match="cannot take copied rows"):
        bare.insert_copies([])
    with pytest.raises(StoreError, match="cannot erase payloads"):
        bare.erase([1], 2, "gone")


def test_the_backend_records_are_frozen() -> None:
    records: list[Any] = [
        Query(1, None),
        Head(0, "00", None),
        Snapshot("a-1", 1, 1, {}),
        DirectResult("ok", 1, 0, None, "t", []),
    ]
    for record in records:
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, dataclasses.fields(record)[0].name, None)
    assert Query(1, None) == Query(1, None, None, None, None)
    assert Snapshot("a-1", 1, 1, {}).recorded_at is None

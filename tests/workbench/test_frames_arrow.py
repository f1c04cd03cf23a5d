"""frames over SQLite files: the ADBC path gives exactly what the row path gives."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import workbench.frames as frames_module
from store import EventStore, NewEvent, ReadStatement, Upcasters, ValidationError
from workbench import frames
from workbench.frames import _sqlite_arrow

T0 = datetime(2024, 10, 1, 9, 0, tzinfo=UTC)


class _RowStore(EventStore):
    """A store that offers no statement, so frames reads through read_rows."""

    def read_statement(self, *args: Any, **kwargs: Any) -> ReadStatement | None:
        return None


def _fill(es: EventStore, system_first: int = 0) -> None:
    # System events (no aggregate) first: the driver types a column whose first
    # rows are all NULL as a number.
    for i in range(system_first):
        es.append([NewEvent("Tick", {"i": i}, metadata={"actor": "svc:clock"})])
    odd_metadata: list[dict[str, Any]] = [
        {"actor": "alice", "correlation_id": "c-1"},
        {"actor": 7, "extra": [1]},
        {"actor": True},
        {"actor": {"name": "nested"}, "causation_id": 1.5},
        {},
        {"actor": None, "correlation_id": 'c-\u00e9\n"q"', "causation_id": "x"},
        {"note": {"actor": "not top level"}},
        {"actor": "bob", "correlation_id": "c-2", "causation_id": "p-1"},
    ]
    for n in range(40):
        es.append(
            [
                NewEvent(
                    "OrderPlaced" if n % 3 else "OrderPaid",
                    {"total": n, "address": {"zip": str(1000 + n)}, "lines": ["a"] * (n % 3)},
                    metadata=odd_metadata[n % len(odd_metadata)],
                    occurred_at=T0 - timedelta(days=n) if n % 5 == 0 else None,
                )
            ],
            aggregate_id=f"order-{n % 7}",
            aggregate_type="Order",
        )
        if n % 9 == 0:
            es.append([NewEvent("Deployed", {"service": "api\u2603"})])
        if n % 11 == 0:
            es.append(
                [NewEvent("CustomerRegistered", {"name": "Dana"}, metadata={"actor": "dana"})],
                aggregate_id=f"cust-{n}",
                aggregate_type="Customer",
            )


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[EventStore, EventStore]]:
    path = tmp_path / "a store #1 100%.db"  # a file name that needs quoting in a URI
    with EventStore(path) as es:
        _fill(es)
    with EventStore(path, readonly=True) as arrow, _RowStore(path, readonly=True) as rows:
        yield arrow, rows


def _taken(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record what each arrow read returned (None: it read everything)."""
    results: list[Any] = []
    original = _sqlite_arrow.arrow_chunks

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = yield from original(*args, **kwargs)
        results.append(result)
        return result

    monkeypatch.setattr(frames_module, "arrow_chunks", spy)
    return results


FILTERS: list[dict[str, Any]] = [
    {},
    {"aggregate_type": "Order"},
    {"aggregate_id": "order-3"},
    {"aggregate_id": "order-3", "from_position": 10, "backwards": True},
    {"types": ["OrderPaid", "Deployed"]},
    {"types": "CustomerRegistered"},
    {"from_position": 9},
    {"limit": 7, "backwards": True},
    {"limit": 5, "from_position": 30},
    {"types": ["Nothing"]},
    {"limit": 0},
]


@pytest.mark.parametrize("filters", FILTERS)
def test_the_arrow_path_gives_the_row_paths_frames(
    stores: tuple[EventStore, EventStore], filters: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    arrow, rows = stores
    taken = _taken(monkeypatch)
    for flatten in (False, True):
        got = frames.events(arrow, flatten=flatten, **filters)
        want = frames.events(rows, flatten=flatten, **filters)
        pd.testing.assert_frame_equal(got, want)
        assert len(got) == len(list(arrow.read(**_read_filters(filters))))
    if len(got):
        assert taken[0] is None  # the arrow path read everything itself


def _read_filters(filters: dict[str, Any]) -> dict[str, Any]:
    out = dict(filters)
    if isinstance(out.get("types"), str):
        out["types"] = [out["types"]]
    return out


def test_times_and_text_fields_match_the_events(stores: tuple[EventStore, EventStore]) -> None:
    arrow, _ = stores
    recorded = [e.recorded_at for e in arrow.read()]
    df = frames.events(arrow, since=recorded[5], until=recorded[20])
    stored = list(arrow.read(since=recorded[5], until=recorded[20]))
    assert df["position"].tolist() == [e.position for e in stored]
    assert df["recorded_at"].tolist() == [pd.Timestamp(e.recorded_at) for e in stored]
    assert df["occurred_at"].tolist() == [pd.Timestamp(e.occurred_at) for e in stored]
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    for name in ("actor", "correlation_id", "causation_id"):
        assert df[name].astype(object).where(df[name].notna(), None).tolist() == [
            getattr(e, name) for e in stored
        ], name
    assert isinstance(df["actor"].dtype, pd.CategoricalDtype)


def test_iter_events_chunks_match(
    stores: tuple[EventStore, EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    arrow, rows = stores
    taken = _taken(monkeypatch)
    for flatten in (False, True):
        got = list(frames.iter_events(arrow, chunksize=6, flatten=flatten))
        want = list(frames.iter_events(rows, chunksize=6, flatten=flatten))
        assert [len(c) for c in got] == [len(c) for c in want]
        for left, right in zip(got, want, strict=True):
            pd.testing.assert_frame_equal(left, right)
    assert taken[0::2] == [None, None]  # each arrow read read everything itself


def test_a_batch_the_driver_cannot_type_resumes_through_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "system-first.db"
    with EventStore(path) as es:
        _fill(es, system_first=8)
    with EventStore(path, readonly=True) as arrow, _RowStore(path, readonly=True) as rows:
        # Chunks of 4: the first two hold only system events (aggregate_id NULL),
        # so the driver types that column as a number and fails on the first id.
        for filters in ({}, {"limit": 20}, {"backwards": True, "limit": 30}):
            got = list(frames.iter_events(arrow, chunksize=4, **filters))
            want = list(frames.iter_events(rows, chunksize=4, **filters))
            assert [len(c) for c in got] == [len(c) for c in want], filters
            for left, right in zip(got, want, strict=True):
                pd.testing.assert_frame_equal(left, right)
        pd.testing.assert_frame_equal(frames.events(arrow), frames.events(rows))


def test_a_failure_mid_read_resumes_after_the_last_row(
    stores: tuple[EventStore, EventStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    arrow, rows = stores
    taken = _taken(monkeypatch)
    convert = _sqlite_arrow._convert
    calls = {"n": 0}

    def flaky(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("the driver gave up")
        return convert(*args)

    monkeypatch.setattr(_sqlite_arrow, "_convert", flaky)
    for filters in ({}, {"backwards": True}, {"limit": 17}, {"aggregate_type": "Order"}):
        calls["n"] = 0
        got = pd.concat(list(frames.iter_events(arrow, chunksize=5, **filters)))
        assert taken[-1] == (10, got["position"].iloc[9])  # two chunks given, then the rows
        want = pd.concat(list(frames.iter_events(rows, chunksize=5, **filters)))
        assert got["position"].tolist() == want["position"].tolist(), filters
        pd.testing.assert_frame_equal(got, want)


def test_read_statement_selects_what_read_rows_yields(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with EventStore(path) as es:
        _fill(es)
        recorded = [e.recorded_at for e in es.read()]
        cases: list[dict[str, Any]] = [
            *[_read_filters(f) for f in FILTERS if f.get("limit") != 0],
            {"since": recorded[3], "until": recorded[30], "aggregate_type": "Order"},
            {"since": recorded[3], "backwards": True, "limit": 4},
        ]
        for filters in cases:
            statement = es.read_statement(**filters)
            want = [row for page in es.read_rows(**filters) for row in page]
            if not want and statement is None:
                continue
            assert statement is not None and statement.dialect == "sqlite", filters
            conn = sqlite3.connect(statement.database, uri=True)
            try:
                got = conn.execute(statement.sql, statement.params).fetchall()
                with pytest.raises(sqlite3.OperationalError, match="readonly"):
                    conn.execute("CREATE TABLE x (y)")
            finally:
                conn.close()
            assert got == want, filters


def test_read_statement_is_none_where_another_connection_would_differ(tmp_path: Path) -> None:
    with EventStore(":memory:") as memory:
        memory.append([NewEvent("A")])
        assert memory.read_statement() is None
    path = tmp_path / "t.db"
    with EventStore(path) as es:
        es.append([NewEvent("A")], aggregate_id="a-1")
        assert es.read_statement() is not None
        assert es.read_statement(types=[]) is None and es.read_statement(limit=0) is None
        with es.transaction():
            es.append([NewEvent("B")], aggregate_id="a-1")
            assert es.read_statement() is None
            # frames reads through the transaction's own connection then.
            assert frames.events(es)["type"].tolist() == ["A", "B"]
        upcasters = Upcasters()
        upcasters.register("A", 1, lambda data: {**data, "up": True})
    with EventStore(path, upcasters=upcasters) as up:
        assert up.read_statement() is None
        assert frames.events(up)["schema_version"].tolist() == [2, 1]
    with EventStore(path) as es, pytest.raises(ValidationError):
        es.read_statement(limit=-1)


def test_bad_filters_are_refused_as_before(stores: tuple[EventStore, EventStore]) -> None:
    arrow, _ = stores
    with pytest.raises(ValidationError):
        frames.events(arrow, limit=-3)
    with pytest.raises(ValidationError):
        frames.events(arrow, aggregate_type="")
    with pytest.raises(ValueError, match="not a time"):
        frames.events(arrow, since="yesterday")


@pytest.mark.postgres
def test_postgres_frames_read_through_the_rows_and_match_sqlite(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    from tests.store.pg import fresh_postgres_url

    urls = fresh_postgres_url(request.node.name)
    url = next(urls)
    try:
        path = tmp_path / "same.db"
        for location in (url, path):
            with EventStore(location, clock=_clock()) as es:
                _fill(es)
        with EventStore(url) as pg, EventStore(path, readonly=True) as lite:
            assert pg.read_statement() is None and lite.read_statement() is not None
            for filters in ({}, {"types": ["OrderPaid", "Deployed"]}, {"limit": 7}):
                left = frames.events(pg, **filters).drop(columns=["event_id", "hash"])
                right = frames.events(lite, **filters).drop(columns=["event_id", "hash"])
                pd.testing.assert_frame_equal(left, right)
    finally:
        for _ in urls:
            pass


def _clock() -> Any:
    ticks = iter(range(10_000))
    return lambda: T0 + timedelta(milliseconds=next(ticks))

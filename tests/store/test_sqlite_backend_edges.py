"""SQLite-only edges: a read handed over as one statement, and a store file
that SQLite can only open read-only."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from pathlib import Path

import pytest

from store import EventStore, NewEvent, ReadOnlyError
from tests.store.media import read_only_directory, seal


def _fill(es: EventStore) -> None:
    for i in range(12):
        es.append(
            [NewEvent("Even" if i % 2 == 0 else "Odd", {"n": i})],
            aggregate_id=f"a-{i % 3}",
            aggregate_type="Thing",
        )


def _run(statement_database: str, sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(statement_database, uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_read_statement_of_a_file_store_selects_what_read_rows_yields(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        _fill(es)
        for filters in (
            {},
            {"aggregate_id": "a-1"},
            {"types": ["Odd"], "backwards": True, "limit": 3},
            {"from_position": 5, "types": ["Even", "Odd"], "limit": 4},
        ):
            statement = es.read_statement(**filters)
            assert statement is not None, filters
            assert statement.dialect == "sqlite"
            want = [row for page in es.read_rows(**filters) for row in page]
            assert want, filters
            assert _run(statement.database, statement.sql, statement.params) == want, filters


def test_read_statement_is_none_for_memory_and_inside_a_transaction(tmp_path: Path) -> None:
    with EventStore(":memory:") as memory:
        _fill(memory)
        assert memory.read_statement() is None
    with EventStore(str(tmp_path / "events.db")) as es:
        _fill(es)
        with es.transaction():
            es.append([NewEvent("Odd")], aggregate_id="a-9")
            assert es.read_statement() is None
        statement = es.read_statement(aggregate_id="a-9")
        assert statement is not None
        assert len(_run(statement.database, statement.sql, statement.params)) == 1


def test_a_rollback_journal_store_on_read_only_media_is_refused_as_read_only(
    tmp_path: Path,
) -> None:
    """SQLite opens a file it may not write read-only; switching such a file
    to WAL is then a write it refuses (SQLITE_READONLY): the store says so,
    and the same file still opens with readonly=True."""
    reference = tmp_path / "reference.db"
    with EventStore(str(reference)) as es:
        _fill(es)
    conn = sqlite3.connect(reference)
    assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    conn.close()
    with read_only_directory(tmp_path) as media:
        target = media / "events.db"
        shutil.copyfile(reference, target)
        target.chmod(0o444)
        seal(media)
        with pytest.raises(ReadOnlyError, match=r"events\.db is read-only: .*readonly database"):
            EventStore(str(target))
        with EventStore(str(target), readonly=True) as es:
            assert es.head() == 12
            assert es.verify().ok


def test_retrying_a_batch_of_more_than_one_lookup_chunk_returns_the_stored_events(
    store: EventStore,
) -> None:
    """A retry looks its event ids up in chunks of 500: every chunk counts."""
    batch = [NewEvent("Item", {"n": i}) for i in range(1001)]
    first = store.append(batch)
    again = store.append(batch)
    assert again == first
    assert store.head() == 1001


def test_a_read_leaves_the_callers_garbage_collector_setting_alone(store: EventStore) -> None:
    store.append([NewEvent("A", {"n": i}) for i in range(3)])
    was = gc.isenabled()
    try:
        gc.disable()
        assert [e.data["n"] for e in store.read()] == [0, 1, 2]
        assert not gc.isenabled()
        gc.enable()
        assert [e.data["n"] for e in store.read()] == [0, 1, 2]
        assert gc.isenabled()
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()

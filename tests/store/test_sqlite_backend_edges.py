"""SQLite-only edges: a read handed over as one statement, and a store file
that SQLite can only open read-only."""

from __future__ import annotations

import gc
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, HandlerError, NewEvent, ReadOnlyError
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


# A format 1 file (before erasure and the kept counts) whose sss_meta lost its
# format_version row: the store reads that as format 0.
V0_SQLITE = [
    "DROP TRIGGER events_guard_update",
    "ALTER TABLE events DROP COLUMN erased_by",
    "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused'); END",
    "DROP TABLE sss_counts",
    "DELETE FROM sss_meta WHERE key = 'format_version'",
]


def test_a_store_without_a_format_version_is_upgraded_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("Registered", {"email": "a@example.com"})], aggregate_id="p")
        es.append([NewEvent("Moved", {"city": "Oslo"})], aggregate_id="p")
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in V0_SQLITE:
        conn.execute(statement)
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        assert [e.data for e in es.read()] == [{"email": "a@example.com"}, {"city": "Oslo"}]
    with EventStore(str(path)) as es:
        assert es.counts().events == 2
        receipt = es.erase(positions=[1], reason="asked")
    conn = sqlite3.connect(path)
    meta = dict(conn.execute("SELECT key, value FROM sss_meta").fetchall())
    conn.close()
    assert meta["format_version"] == "2"
    # A later read-only open reads the file as the format it now has.
    with EventStore(str(path), readonly=True) as es:
        first, second, _ = es.read()
        assert (first.erased_by, second.erased_by) == (receipt.position, None)
        report = es.verify()
        assert report.ok and report.erased == 1, report


def _interleaved(es: EventStore) -> None:
    """a-1 at positions 2 and 4, b-1 at 1, 3 and 5, each append its own time."""
    for aggregate in ("b-1", "a-1", "b-1", "a-1", "b-1"):
        es.append([NewEvent("Set", {"who": aggregate})], aggregate_id=aggregate)


def test_a_state_at_a_position_past_the_aggregates_last_event_is_its_last_version(
    store: EventStore,
) -> None:
    _interleaved(store)
    for position in (4, 5):
        state = store.state_at("a-1", position=position)
        assert (state.version, state.position) == (2, 4)
    assert store.state_at("a-1", position=3).version == 1
    assert store.state_at("a-1", position=1).version == 0


def test_since_the_first_events_time_reads_from_position_one(store: EventStore) -> None:
    _interleaved(store)
    first = store.get(1)
    assert [e.position for e in store.read(since=first.recorded_at)] == [1, 2, 3, 4, 5]
    assert store.count(since=first.recorded_at) == 5
    second = store.get(2).recorded_at
    later = [e.position for e in store.read() if e.recorded_at >= second]
    assert [e.position for e in store.read(since=second)] == later


def test_tree_nodes_that_cannot_be_written_now_are_reported_unsaved(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    node = (10, 0, "ab" * 32)
    with EventStore(str(path), timeout=0) as es:
        es.append([NewEvent("A")])
        backend = es.backend
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            assert backend.save_tree_nodes([node]) is False
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert backend.tree_nodes([(10, 0)]) == {}
        assert backend.save_tree_nodes([node]) is True
        assert backend.tree_nodes([(10, 0)]) == {(10, 0): "ab" * 32}
        assert backend.tree_filled(10) == 1
    with EventStore(str(path), readonly=True) as reader:
        assert reader.backend.save_tree_nodes([(10, 1, "cd" * 32)]) is False
        assert reader.backend.tree_filled(10) == 1


def test_an_erasure_in_a_store_without_parked_events_still_erases(tmp_path: Path) -> None:
    """A file with the subscriptions table but without parked_events (a
    read-write open does not add it then): the erasure looks the table up
    and has no parked reasons to replace."""
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("Registered", {"email": "a@example.com"})], aggregate_id="p")
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE parked_events")
    conn.commit()
    conn.close()
    with EventStore(str(path)) as es:
        receipt = es.erase(positions=[1], reason="asked")
        (erased,) = es.read(limit=1)
        assert erased.erased_by == receipt.position
        assert es.verify().ok


def test_an_erasure_replaces_a_subscription_failure_that_quoted_the_payload(
    store: EventStore,
) -> None:
    store.append([NewEvent("Registered", {"email": "a@example.com"})], aggregate_id="p")

    def handler(event: Any) -> None:
        raise ValueError(f"cannot mail {event.data['email']}")

    with pytest.raises(HandlerError):
        store.subscribe("mailer", handler, follow=False)
    (before,) = store.subscriptions()
    assert before.failed_position == 1 and "a@example.com" in (before.failure or "")
    receipt = store.erase(positions=[1], reason="asked")
    (after,) = store.subscriptions()
    assert after.failed_position == 1
    assert after.failure == (
        f"not kept: the payload of this event was erased (receipt at position {receipt.position})"
    )

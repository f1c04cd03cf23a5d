"""The PostgreSQL backend's own methods, called as a caller of the backend
interface would: the one-statement append, the per-type event count and the
tree node table.

Needs ``SSS_TEST_POSTGRES_URL`` (deselected without it). Every test gets a
schema of its own, dropped afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from store import CorruptStoreError, EventStore, NewEvent, StoreError, ValidationError
from store.appending import prepare
from store.backend import DirectRow
from store.codec import chain_middle, format_time
from store.copying import copy_store
from store.postgres import PostgresBackend

pytestmark = pytest.mark.postgres


@pytest.fixture
def backend(url: str) -> Iterator[PostgresBackend]:
    be = PostgresBackend(url)
    yield be
    be.close()


def direct_rows(*types: str) -> list[DirectRow]:
    """Events as :meth:`Backend.append_direct` takes them."""
    rows: list[DirectRow] = []
    for i, type_ in enumerate(types):
        p = prepare(NewEvent(type_, {"n": i}), i)
        middle = chain_middle(type_, p.new.schema_version, p.data_hash, p.meta_obj)
        rows.append(
            (p.event_id, type_, p.new.schema_version, p.data, p.metadata, None, p.data_hash, middle)
        )
    return rows


def now() -> str:
    return format_time(datetime.now(UTC))


def stored_types(url: str) -> list[str]:
    es = EventStore(url)
    try:
        return [e.type for e in es.read()]
    finally:
        es.close()


def test_append_direct_outside_a_transaction_stores_in_one_call(
    url: str, backend: PostgresBackend
) -> None:
    """Called without ``joined``, outside any write, the backend appends the
    batch itself and says where it went."""
    assert backend.appends_direct
    result = backend.append_direct(direct_rows("Opened", "Renamed"), "acc-1", "Account", 0, now())
    assert result is not None
    assert (result.status, result.first_position, result.version) == ("ok", 1, 0)
    assert result.aggregate_type == "Account"
    assert len(result.hashes) == 2
    assert backend.head() == 2
    es = EventStore(url)
    try:
        events = list(es.read())
        assert [(e.type, e.aggregate_id, e.version) for e in events] == [
            ("Opened", "acc-1", 1),
            ("Renamed", "acc-1", 2),
        ]
        assert [e.hash for e in events] == result.hashes
        assert es.verify().ok
        assert result.recorded_at == format_time(events[0].recorded_at)
    finally:
        es.close()
    more = backend.append_direct(direct_rows("Closed"), "acc-1", "Account", 2, now())
    assert more is not None
    assert (more.status, more.first_position, more.version) == ("ok", 3, 2)
    assert more.recorded_at >= result.recorded_at


def test_append_direct_declines_inside_an_open_write(url: str, backend: PostgresBackend) -> None:
    """Inside an open write transaction, not joined to a group, the call
    declines (the general path takes the append) and writes nothing."""
    with backend.write():
        assert backend.append_direct(direct_rows("Opened"), "acc-1", "Account", None, now()) is None
    assert backend.head() == 0
    assert stored_types(url) == []


def test_append_direct_declines_once_switched_off(url: str, backend: PostgresBackend) -> None:
    """A backend whose one-statement append is off declines, though the
    server's function is installed, and writes nothing."""
    backend.appends_direct = False
    assert backend.append_direct(direct_rows("Opened"), "acc-1", "Account", None, now()) is None
    assert backend.head() == 0
    assert stored_types(url) == []


def test_event_types_counts_each_type_in_a_position_range(
    url: str, backend: PostgresBackend
) -> None:
    """``event_types(after, upto)`` counts the events in positions
    ``after < position <= upto`` per type."""
    es = EventStore(url)
    try:
        es.append([NewEvent("A", {}), NewEvent("B", {}), NewEvent("A", {})], "x-1", "X")
        es.append([NewEvent("C", {}), NewEvent("A", {})], "x-2", "X")
    finally:
        es.close()
    assert backend.event_types(0, 5) == {"A": 3, "B": 1, "C": 1}
    assert backend.event_types(1, 4) == {"A": 1, "B": 1, "C": 1}
    assert backend.event_types(5, 5) == {}


def test_save_tree_nodes_reports_stored_nodes(url: str, backend: PostgresBackend) -> None:
    """Saving tree nodes answers True and the nodes read back; a read-only
    backend answers False and stores nothing."""
    value = "ab" * 32
    # No node saved yet: the table is not even there.
    assert backend.tree_filled(4) == 0
    assert backend.tree_nodes([(4, 0)]) == {}
    assert backend.save_tree_nodes([(4, 0, value), (4, 1, "cd" * 32)]) is True
    assert backend.tree_nodes([(4, 0), (4, 1), (4, 2)]) == {(4, 0): value, (4, 1): "cd" * 32}
    assert backend.tree_filled(4) == 2
    reader = PostgresBackend(url, readonly=True)
    try:
        assert reader.save_tree_nodes([(4, 2, value)]) is False
        assert reader.tree_filled(4) == 2
    finally:
        reader.close()


def test_a_missing_table_reads_as_not_an_event_store(url: str, backend: PostgresBackend) -> None:
    """A table dropped under an open store: the read that needs it fails as a
    corrupt store naming it, not with a driver error."""
    with psycopg.connect(url, autocommit=True) as raw:
        raw.execute("DROP TABLE aggregates")
    with pytest.raises(CorruptStoreError, match="is not a readable event store") as caught:
        backend.aggregate("acc-1")
    assert "aggregates" in str(caught.value)


def test_an_unparsable_url_is_refused_without_echoing_it() -> None:
    """A URL libpq cannot parse is refused as invalid; the message names the
    store generically, since the URL might hold a password."""
    url = "postgresql://sss:secret@localhost/test?bogus=1"
    with pytest.raises(ValidationError, match="not a valid PostgreSQL URL") as caught:
        EventStore(url)
    assert "the PostgreSQL store" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_the_pool_keeps_one_idle_connection(backend: PostgresBackend) -> None:
    """The store uses one connection at a time, so an idle store's pool,
    once filled, holds one server connection (it grows to two only on demand)."""
    backend._pool.wait(timeout=10)
    assert backend._pool.get_stats()["pool_size"] == 1
    assert backend.head() == 0


def test_waiting_returns_at_once_for_an_append_before_listening(
    url: str, backend: PostgresBackend
) -> None:
    """An append committed after the caller's token but before the backend
    listens sends no notification it could receive: the first wait compares
    the head by hand and returns at once instead of waiting out its timeout."""
    token = backend.change_token()
    with EventStore(url) as es:
        es.append([NewEvent("Opened", {})], "acc-1", "Account")
    started = time.monotonic()
    backend.wait_for_change(token, 12.0, threading.Event())
    assert time.monotonic() - started < 6.0
    assert backend.change_token() == token + 1


def test_an_erasure_without_its_receipt_is_refused_in_the_guards_words(
    url: str, backend: PostgresBackend
) -> None:
    """A payload replaced without an ``sss.Erased`` receipt listing it: the
    server's guard refuses, the error is the guard's own sentence (it names
    what is refused, so no location is put before it), and nothing changes."""
    with EventStore(url) as es:
        es.append([NewEvent("Opened", {"name": "Ada"})], "acc-1", "Account")
    with pytest.raises(StoreError) as caught, backend.write() as tx:
        tx.erase([1], 1, "asked")
    assert str(caught.value).startswith("events are append-only: UPDATE is refused")
    with EventStore(url) as es:
        assert [e.data for e in es.read()] == [{"name": "Ada"}]
        assert es.verify().ok


def test_waiting_without_a_change_lasts_its_timeout(backend: PostgresBackend) -> None:
    """No append: the wait blocks on LISTEN for its whole timeout (callers
    rely on it not to spin), then returns with the head unchanged."""
    token = backend.change_token()
    started = time.monotonic()
    backend.wait_for_change(token, 1.0, threading.Event())
    assert time.monotonic() - started >= 0.9
    assert backend.change_token() == token


def test_a_copy_into_postgres_keeps_every_row_and_moves_the_head(url: str, tmp_path: Path) -> None:
    """Copying a store into a PostgreSQL store: every row and hash arrives,
    the head is the last copied row, and appends continue the chain."""
    with EventStore(str(tmp_path / "source.db")) as source:
        for i in range(5):
            source.append([NewEvent("T", {"i": i}), NewEvent("U", {"i": i})], f"a-{i}", "A")
        with EventStore(url) as target:
            report = copy_store(source, target)
            assert (report.events, report.head_position) == (10, 10)
            assert target.head() == 10
            assert target.verify().head_hash == source.verify().head_hash
            rows = target.backend.chain_page(0, 100)
            assert rows == source.backend.chain_page(0, 100)
            target.append([NewEvent("V", {})], "a-0", "A")
            assert target.head() == 11 and target.verify().ok


def test_a_refused_connection_asks_whether_the_server_runs() -> None:
    """Nothing listens on the port: the error says the connection was
    refused and asks whether the server is running."""
    with pytest.raises(StoreError, match="cannot connect to") as caught:
        PostgresBackend("postgresql://postgres@127.0.0.1:1/test", timeout=2.0)
    assert "refused" in str(caught.value)
    assert str(caught.value).endswith("; is the server running?")


def test_a_value_the_server_rejects_is_a_validation_error(backend: PostgresBackend) -> None:
    """A value PostgreSQL refuses as data (here a negative LIMIT) comes back
    as a ValidationError naming the store, not as a driver error."""
    with pytest.raises(ValidationError, match="cannot store this value"):
        backend.chain_page(0, -1)

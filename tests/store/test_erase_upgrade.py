"""Stores of format 1 (before erasure existed): read as they are when opened
read-only, upgraded in place to format 2 when opened for writing, and
copied by ``sss migrate``; on both backends."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import ERASED, EventStore, NewEvent

# On a shared PostgreSQL server other sessions' snapshots may keep VACUUM
# from removing old row versions; erase then warns, which is about the
# server, not about what these tests check (the files test retries until
# it can check the bytes).
pytestmark = pytest.mark.filterwarnings("ignore:.*sessions older than the erasure:RuntimeWarning")

V1_SQLITE = [
    "DROP TRIGGER events_guard_update",
    "ALTER TABLE events DROP COLUMN erased_by",
    "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events "
    "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused'); END",
    "UPDATE sss_meta SET value = '1' WHERE key = 'format_version'",
]
V1_POSTGRES = [
    "DROP TRIGGER events_guard_update ON events",
    "DROP TRIGGER events_refuse_delete ON events",
    "DROP FUNCTION sss_guard_update()",
    "ALTER TABLE events DROP COLUMN erased_by",
    "CREATE TRIGGER events_refuse_update_delete BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION sss_refuse_change()",
    "UPDATE sss_meta SET value = '1' WHERE key = 'format_version'",
]


def _fill(location: str) -> None:
    with EventStore(location) as es:
        es.append([NewEvent("Registered", {"email": "a@example.com"})], aggregate_id="p")
        es.append([NewEvent("Moved", {"city": "Oslo"})], aggregate_id="p")


def _columns_sqlite(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    finally:
        conn.close()


def test_an_sqlite_store_of_format_1_is_read_then_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _fill(str(path))
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in V1_SQLITE:
        conn.execute(statement)
    conn.close()
    assert "erased_by" not in _columns_sqlite(path)
    with EventStore(str(path), readonly=True) as es:
        assert es.backend.format_version == 1  # type: ignore[attr-defined]
        assert [e.erased for e in es.read()] == [False, False]
        assert es.verify().ok and es.verify().erased == 0
    assert "erased_by" not in _columns_sqlite(path)  # read-only: untouched
    with EventStore(str(path)) as es:
        assert es.backend.format_version == 2  # type: ignore[attr-defined]
        es.erase(positions=[1], reason="asked")
        assert es.state_at("p").state == {"email": ERASED, "city": "Oslo"}
        assert es.verify().ok and es.verify().erased == 1
    conn = sqlite3.connect(path, isolation_level=None)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'")}
    assert "events_refuse_update" not in names and "events_guard_update" in names
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE events SET data = '{}' WHERE position = 2")
    assert conn.execute("SELECT value FROM sss_meta WHERE key = 'format_version'").fetchone() == (
        "2",
    )
    conn.close()


@pytest.mark.postgres
def test_a_postgres_store_of_format_1_is_read_then_upgraded(request: Any) -> None:
    import psycopg

    from tests.store.pg import fresh_postgres_url

    for url in fresh_postgres_url(request.node.name):
        _fill(url)
        with psycopg.connect(url, autocommit=True) as raw:
            for statement in V1_POSTGRES:
                raw.execute(statement)
            with EventStore(url, readonly=True) as es:
                assert es.backend.format_version == 1  # type: ignore[attr-defined]
                assert [e.erased for e in es.read()] == [False, False]
                assert es.verify().ok
            with EventStore(url) as es:
                assert es.backend.format_version == 2  # type: ignore[attr-defined]
                es.erase(positions=[1], reason="asked")
                assert es.state_at("p").state == {"email": ERASED, "city": "Oslo"}
                assert es.verify().ok and es.verify().erased == 1
                # Appends through the server function still work on the upgraded table.
                es.append([NewEvent("Moved", {"city": "Rome"})], aggregate_id="p")
                assert es.verify().ok
            with pytest.raises(psycopg.Error, match="append-only"):
                raw.execute("UPDATE events SET data = '{}' WHERE position = 2")
            with pytest.raises(psycopg.Error, match="append-only"):
                raw.execute("DELETE FROM events WHERE position = 2")
            triggers = {
                row[0]
                for row in raw.execute(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'events'::regclass "
                    "AND NOT tgisinternal"
                )
            }
            assert triggers == {
                "events_guard_update",
                "events_refuse_delete",
                "events_refuse_truncate",
            }

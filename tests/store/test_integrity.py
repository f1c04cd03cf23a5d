"""Integrity: the hash chain, append-only triggers, read-only mode and bad files."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import store
from store import (
    CorruptStoreError,
    EventStore,
    LockedError,
    NewEvent,
    NotFoundError,
    ReadOnlyError,
    StoreError,
)
from store.backend import Query
from store.codec import data_digest, format_time


def fill(es: EventStore, n: int = 30) -> None:
    for i in range(n):
        es.append(
            [NewEvent("Changed", {"i": i, "name": f"n{i}"}, {"actor": "alice"})],
            aggregate_id=f"a{i % 4}",
            aggregate_type="Thing",
        )
    es.append([NewEvent("Tick", {})])


def test_verify_ok(store: EventStore) -> None:
    fill(store)
    report = store.verify()
    assert report.ok and report.checked == 31 and report.first_bad_position is None
    assert report.head_position == 31
    assert report.head_hash == store.get(31).hash


def test_verify_empty(store: EventStore) -> None:
    report = store.verify()
    assert report.ok and report.checked == 0 and report.head_position == 0


def test_hash_is_over_previous_hash_and_canonical_form(store: EventStore) -> None:
    """The stored hashes, recomputed from the events as read, by the README's
    recipe written here with hashlib and json (not the store's chain_hash)."""
    import hashlib
    import json

    def canonical(value: object) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def iso(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")

    fill(store, 3)
    late = datetime(2001, 2, 3, tzinfo=UTC)
    meta = {"actor": "bob"}
    store.append(
        [NewEvent("Late", {"n": [1, "é"]}, meta, occurred_at=late, schema_version=3)],
        aggregate_id="a0",
    )
    events = list(store.read())
    assert len(events) == 5 and events[-1].occurred_at != events[-1].recorded_at
    prev = "0" * 64
    for e in events:
        data_hash = hashlib.sha256(canonical(e.data)).hexdigest()
        body = canonical(
            [
                e.position,
                e.event_id,
                e.aggregate_id,
                e.aggregate_type,
                e.version,
                e.type,
                e.schema_version,
                data_hash,
                e.metadata,
                iso(e.occurred_at),
                iso(e.recorded_at),
            ]
        )
        assert e.hash == hashlib.sha256(prev.encode() + b"\n" + body).hexdigest(), e
        prev = e.hash


AWKWARD = ['o"1', "b\\s", "nl\nt\tc\x01\x1f", "é😀/\u2028", "<&>'"]


def test_hashes_hold_for_awkward_names_and_payloads(store: EventStore) -> None:
    """Names, types and metadata that need escaping, numbers whose spelling
    matters, given and default occurrence times: the stored hashes match the
    recipe whichever way the store wrote them (a server backend builds the
    chain itself for plain appends and in the client inside a transaction)."""
    occurred = datetime(2001, 2, 3, 4, 5, 6, 7, tzinfo=timezone(timedelta(hours=-3)))
    meta = {"zé": 1e16, "a": [0.1, -0.0, 2**63 - 1, None], 'k"\\': {"b": "\x02", "a": "😀"}}
    for k, name in enumerate(AWKWARD):
        event = NewEvent(f"Typé{name}", {"x": name, "f": 1.5e-7}, meta, schema_version=k + 1)
        store.append([event], aggregate_id=name, aggregate_type=name)
        store.append(
            [NewEvent("Later", {"k": k}, {name: name}, occurred_at=occurred)],
            aggregate_id=name,  # the stored type applies
            expected_version=1,
        )
        with store.transaction():
            store.append([NewEvent("Inside", {}, meta)], aggregate_id=name)
        store.append([NewEvent("Free", {"name": name}, meta, occurred_at=occurred)])
    report = store.verify()
    assert report.ok and report.checked == 4 * len(AWKWARD), report
    assert [a.version for a in store.aggregates()] == [3] * len(AWKWARD)
    assert {store.aggregate(name).aggregate_type for name in AWKWARD} == set(AWKWARD)
    later = [e for e in store.read(types=["Later"])]
    assert all(e.occurred_at == occurred and e.aggregate_type == e.aggregate_id for e in later)


def test_times_at_the_ends_of_the_calendar_keep_their_text(store: EventStore) -> None:
    """Stored rows hand times on as the ISO text the chain hashed, whichever
    side formats them (a server formats them itself)."""
    ends = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    for moment in ends:
        store.append([NewEvent("Edge", {}, occurred_at=moment)], aggregate_id="edge")
    texts = [format_time(moment) for moment in ends]
    assert [row[9] for row in store.backend.chain_page(0, 10)] == texts
    paged = store.backend.page_rows(Query(1, None), None, None, False, 10)
    assert [row[9] for row in paged] == texts
    assert [e.occurred_at for e in store.read()] == ends
    assert store.verify().ok


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es)
    return path


def raw(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.mark.parametrize(
    "sql",
    ["UPDATE events SET type = 'X' WHERE position = 3", "DELETE FROM events WHERE position = 31"],
)
def test_database_refuses_update_and_delete(db: str, sql: str) -> None:
    conn = raw(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(sql)
    conn.close()
    with EventStore(db, readonly=True) as es:
        assert es.verify().ok


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT OR REPLACE INTO events SELECT * FROM events WHERE position = 31",
        "REPLACE INTO events (position, event_id, aggregate_id, aggregate_type, version, type, "
        "schema_version, data, metadata, occurred_at, recorded_at, data_hash, hash) "
        "SELECT 99, event_id, aggregate_id, aggregate_type, version, 'Forged', schema_version, "
        "data, metadata, occurred_at, recorded_at, data_hash, hash FROM events WHERE position = 3",
        "INSERT OR REPLACE INTO events (position, event_id, aggregate_id, aggregate_type, version, "
        "type, schema_version, data, metadata, occurred_at, recorded_at, data_hash, hash) "
        "SELECT 99, 'x', aggregate_id, aggregate_type, version, 'Forged', schema_version, "
        "data, metadata, occurred_at, recorded_at, data_hash, hash FROM events WHERE position = 30",
    ],
)
def test_database_refuses_replace(db: str, sql: str) -> None:
    conn = raw(db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute(sql)
    conn.close()
    with EventStore(db, readonly=True) as es:
        assert es.verify().ok and es.head() == 31


def tamper(path: str, sql: str) -> None:
    """What an attacker with raw file access would do: drop the guard, rewrite."""
    conn = raw(path)
    conn.execute("DROP TRIGGER events_guard_update")
    conn.execute("DROP TRIGGER events_refuse_delete")
    conn.execute("DROP TRIGGER events_refuse_replace")
    conn.execute(sql)
    conn.close()


@pytest.mark.parametrize(
    ("sql", "position", "reason"),
    [
        ('UPDATE events SET data = \'{"i":999,"name":"n9"}\' WHERE position = 10', 10, "digest"),
        ("UPDATE events SET type = 'Forged' WHERE position = 12", 12, "hash mismatch"),
        (
            'UPDATE events SET metadata = \'{"actor":"mallory"}\' WHERE position = 5',
            5,
            "hash mismatch",
        ),
        (
            "UPDATE events SET recorded_at = '2020-01-01T00:00:00.000000+00:00' WHERE position = 7",
            7,
            "hash mismatch",
        ),
        ("DELETE FROM events WHERE position = 20", 20, "missing"),
        ("UPDATE events SET hash = '" + "0" * 64 + "' WHERE position = 15", 15, "hash mismatch"),
    ],
)
def test_verify_names_the_first_bad_position(db: str, sql: str, position: int, reason: str) -> None:
    tamper(db, sql)
    with EventStore(db, readonly=True) as es:
        report = es.verify()
    assert not report.ok
    assert report.first_bad_position == position
    assert reason in (report.reason or "")
    assert report.checked == position - 1


def test_rewriting_data_and_digest_still_breaks_the_chain(db: str) -> None:
    new = '{"i":999}'
    digest = data_digest({"i": 999})
    tamper(db, f"UPDATE events SET data = '{new}', data_hash = '{digest}' WHERE position = 9")
    with EventStore(db, readonly=True) as es:
        report = es.verify()
    assert (report.ok, report.first_bad_position) == (False, 9)


def test_verify_checks_the_aggregates_table(db: str) -> None:
    conn = raw(db)
    conn.execute("UPDATE aggregates SET version = 99 WHERE aggregate_id = 'a1'")
    conn.close()
    with EventStore(db, readonly=True) as es:
        report = es.verify()
    assert not report.ok and "a1" in (report.reason or "")


def test_readonly_opens_the_file_read_only(db: str) -> None:
    before = Path(db).read_bytes()
    with EventStore(db, readonly=True) as es:
        with pytest.raises(ReadOnlyError):
            es.append([NewEvent("X", {})])
        # Even the raw connection underneath cannot write.
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            es.backend.conn.execute("INSERT INTO sss_meta VALUES ('x', 'y')")  # type: ignore[attr-defined]
        assert es.head() == 31
    assert Path(db).read_bytes() == before


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="does not exist"):
        EventStore(str(tmp_path / "nope.db"), readonly=True)
    with pytest.raises(NotFoundError, match="directory"):
        EventStore(str(tmp_path / "no-dir" / "x.db"))
    assert not (tmp_path / "nope.db").exists()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello, this is not SQLite " * 100)
    for readonly in (True, False):
        with pytest.raises(CorruptStoreError, match="not an SQLite database"):
            EventStore(str(path), readonly=readonly)
    assert path.read_text().startswith("hello")


def test_other_sqlite_database_is_not_touched(tmp_path: Path) -> None:
    path = str(tmp_path / "other.db")
    conn = raw(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.close()
    with pytest.raises(CorruptStoreError, match="not an event store"):
        EventStore(path)
    conn = raw(path)
    assert [r[0] for r in conn.execute("SELECT name FROM sqlite_master")] == ["users"]


def test_truncated_file(db: str) -> None:
    data = Path(db).read_bytes()
    Path(db).write_bytes(data[: 4096 + 100])
    Path(db + "-wal").unlink(missing_ok=True)
    with pytest.raises(StoreError), EventStore(db, readonly=True) as es:
        es.verify()


def test_newer_format_is_refused(db: str) -> None:
    conn = raw(db)
    conn.execute("UPDATE sss_meta SET value = '99' WHERE key = 'format_version'")
    conn.close()
    with pytest.raises(CorruptStoreError, match="newer version"):
        EventStore(db)


def test_locked_store_times_out_with_a_clear_error(db: str) -> None:
    holder = raw(db)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with EventStore(db, timeout=0.2) as es:
            assert es.head() == 31  # readers are not blocked
            with pytest.raises(LockedError, match="locked"):
                es.append([NewEvent("X", {})])
    finally:
        holder.execute("ROLLBACK")
    with EventStore(db) as es:
        es.append([NewEvent("X", {})])
        assert es.verify().ok and es.head() == 32


def test_durable_setting(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "a.db")) as es:
        assert es.backend.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # type: ignore[attr-defined]
        assert es.backend.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # type: ignore[attr-defined]
    with EventStore(str(tmp_path / "b.db"), durable=False) as es:
        assert es.backend.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # type: ignore[attr-defined]


def test_file_is_readable_by_plain_sqlite(db: str) -> None:
    conn = raw(db)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
    for name in (
        "position",
        "event_id",
        "aggregate_id",
        "aggregate_type",
        "version",
        "type",
        "schema_version",
        "data",
        "metadata",
        "occurred_at",
        "recorded_at",
        "hash",
    ):
        assert name in columns
    assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 31


def test_public_api_matches_all() -> None:
    import types

    exported = {
        name
        for name in dir(store)
        if not name.startswith("_") and not isinstance(getattr(store, name), types.ModuleType)
    }
    assert len(set(store.__all__)) == len(store.__all__)
    assert set(store.__all__) == exported


def test_store_imports_no_ui_or_dataframe_library() -> None:
    code = (
        "import sys, store; s = store.EventStore(':memory:'); "
        "bad = [m for m in ('textual', 'rich', 'pandas', 'workbench', 'pyarrow') "
        "if m in sys.modules]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_errors_tree() -> None:
    from store import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), StoreError)


def test_store_repr_and_info(db: str) -> None:
    with EventStore(db, readonly=True) as es:
        assert "readonly=True" in repr(es)
        info: dict[str, Any] = es.info()
        assert info["backend"] == "sqlite" and info["file_size"] > 0


def test_fast_recorded_event_is_a_real_frozen_recorded_event() -> None:
    import dataclasses
    from datetime import UTC, datetime

    from store.models import RecordedEvent, _RecordedEventBuilder, recorded_event

    assert _RecordedEventBuilder.__slots__ == tuple(
        f.name for f in dataclasses.fields(RecordedEvent)
    )
    now = datetime.now(UTC)
    args = (1, "e", "a", "T", 1, "X", 1, {"k": 1}, {}, now, now, "h")
    fast, slow = recorded_event(*args), RecordedEvent(*args)
    assert type(fast) is RecordedEvent and fast == slow and repr(fast) == repr(slow)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fast.position = 2  # type: ignore[misc]


def test_undecodable_payload_fails_verify_and_read_clearly(db: str) -> None:
    tamper(db, "UPDATE events SET data = '{\"x\":NaN}' WHERE position = 4")
    with EventStore(db, readonly=True) as es:
        report = es.verify()
        assert (report.ok, report.first_bad_position) == (False, 4)
        with pytest.raises(CorruptStoreError, match="cannot be decoded"):
            list(es.read())


@pytest.mark.parametrize(
    ("sql", "fragment"),
    [
        ("UPDATE aggregates SET aggregate_type = 'Admin' WHERE aggregate_id = 'a2'", "is a Admin"),
        ("UPDATE aggregates SET first_position = 1 WHERE aggregate_id = 'a3'", "created at"),
        ("UPDATE aggregates SET created_at = '1999-01-01T00:00:00.000000+00:00' "
         "WHERE aggregate_id = 'a0'", "created at"),
        ("UPDATE aggregates SET updated_at = '2999-01-01T00:00:00.000000+00:00' "
         "WHERE aggregate_id = 'a0'", "last changed"),
        ("INSERT INTO aggregates SELECT 'ghost', aggregate_type, 1, 2, 2, created_at, updated_at "
         "FROM aggregates WHERE aggregate_id = 'a0'", "ghost"),
    ],
)  # fmt: skip
def test_verify_checks_every_column_of_the_aggregates_table(
    db: str, sql: str, fragment: str
) -> None:
    conn = raw(db)
    conn.execute(sql)
    conn.close()
    with EventStore(db, readonly=True) as es:
        report = es.verify()
    assert not report.ok and fragment in (report.reason or ""), report


def test_verify_refolds_snapshots(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with EventStore(path, snapshot_every=2) as es:
        fill(es, 12)
        assert es.verify().ok
    conn = raw(path)
    conn.execute(
        "UPDATE snapshots SET state = '{\"i\":1000000}' WHERE aggregate_id = 'a1' AND version = 2"
    )
    conn.close()
    with EventStore(path, readonly=True) as es:
        report = es.verify()
        assert not report.ok and "snapshot of a1 at version 2" in (report.reason or "")
    # Another store's reducers would not use those snapshots, so they do not count.
    from store import Reducers

    with EventStore(path, readonly=True, reducers=Reducers(version="2")) as es:
        assert es.verify().ok


def test_verify_while_writers_append_reports_no_false_alarm(tmp_path: Path) -> None:
    import threading

    path = str(tmp_path / "live.db")
    with EventStore(path) as es:
        fill(es, 20)
    stop = threading.Event()

    def writer() -> None:
        with EventStore(path, durable=False) as w:
            i = 0
            while not stop.is_set():
                w.append([NewEvent("Tick", {"i": i})], aggregate_id=f"a{i % 4}")
                i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        with EventStore(path, readonly=True) as es:
            while es.head() < 40:  # the writer is under way
                time.sleep(0.01)
            before = es.head()
            reports = [es.verify() for _ in range(30)]
            after = es.head()
    finally:
        stop.set()
        thread.join()
    assert all(r.ok for r in reports), [r.reason for r in reports if not r.ok]
    assert after > before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "a\0b.db"}, "NUL"),
        ({"path": ":memory:", "timeout": "5"}, "timeout"),
        ({"path": 5}, "path"),
        ({"path": ":memory:", "snapshot_every": 0}, "snapshot_every"),
        ({"path": ":memory:", "reducers": {}}, "reducers"),
    ],
)
def test_bad_store_arguments(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    from store import ValidationError

    with pytest.raises(ValidationError, match=message):
        EventStore(**kwargs)
    assert list(tmp_path.iterdir()) == []


def test_store_accepts_a_path_object(tmp_path: Path) -> None:
    with EventStore(tmp_path / "p.db") as es:
        assert es.path == str(tmp_path / "p.db")

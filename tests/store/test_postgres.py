"""PostgreSQL-specific guarantees; the contract suite runs against PostgreSQL too.

Needs ``SSS_TEST_POSTGRES_URL`` (deselected without it; when it is set and the
server does not answer, these tests fail). Every test gets a schema of its own.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    CorruptStoreError,
    DuplicateEventError,
    EventStore,
    LockedError,
    NewEvent,
    NotFoundError,
    ReadOnlyError,
    StoreError,
)
from store.backend import Query
from store.codec import canonical, encode_object, format_time
from store.postgres import PostgresBackend
from store.postgres.appendfn import APPEND_FUNCTION_NAME
from tests.store.pg import (
    ENV,
    base_url,
    drop_schema,
    fresh_postgres_url,
    schema_name,
    with_schema,
)

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def raw(url: str) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """A plain connection to the test's schema, standing for any SQL client."""
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


def backend(es: EventStore) -> PostgresBackend:
    assert isinstance(es.backend, PostgresBackend)
    return es.backend


def tick(n: int = 1, **data: Any) -> list[NewEvent]:
    return [NewEvent("Ticked", {"i": i, **data}) for i in range(n)]


# -- opening -------------------------------------------------------------------


def test_url_means_postgres_and_path_means_sqlite(url: str, tmp_path: Path) -> None:
    with EventStore(url) as es:
        assert es.info()["backend"] == "postgresql"
        assert es.info()["schema"].startswith("t_")
    with EventStore(str(tmp_path / "x.db")) as es:
        assert es.info()["backend"] == "sqlite"


def test_missing_or_foreign_schemas(url: str, raw: psycopg.Connection[Any]) -> None:
    missing = schema_name("missing")
    other = with_schema(url, missing)
    with pytest.raises(NotFoundError, match="does not exist"):
        EventStore(other, readonly=True)
    try:
        with EventStore(other) as es:  # a writable open creates the schema
            es.append(tick())
        with EventStore(other, readonly=True) as es:
            assert es.head() == 1
    finally:
        drop_schema(missing)
    with pytest.raises(NotFoundError, match="empty"):
        EventStore(url, readonly=True)
    raw.execute("CREATE TABLE customers (id int)")
    with pytest.raises(CorruptStoreError, match="customers"):
        EventStore(url)


def test_foreign_format_and_newer_versions_are_refused(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    EventStore(url).close()
    raw.execute("UPDATE sss_meta SET value = '99' WHERE key = 'format_version'")
    with pytest.raises(CorruptStoreError, match="newer version"):
        EventStore(url)
    raw.execute("UPDATE sss_meta SET value = 'other' WHERE key = 'format'")
    with pytest.raises(CorruptStoreError, match="not an event store"):
        EventStore(url)


def test_unreachable_server_fails_fast_without_leaking_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        EventStore("postgresql://someone:s3cret@127.0.0.1:1/nothing")
    assert time.monotonic() - started < 5
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_missing_database_is_not_found(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    missing = parts._replace(path=f"/nope_{uuid.uuid4().hex[:8]}").geturl()
    with pytest.raises(NotFoundError, match="does not exist"):
        EventStore(missing)


def test_two_processes_creating_one_store_at_once(url: str) -> None:
    code = "import sys; from store import EventStore; EventStore(sys.argv[1]).close(); print('ok')"
    procs = [run_python(code, url) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    with EventStore(url) as es:
        count = backend(es)._run(
            lambda c: c.execute("SELECT count(*) FROM sss_meta WHERE key = 'store_id'").fetchone()
        )
        assert count == (1,)


def test_threads_creating_one_schema_at_once(url: str) -> None:
    schema = f"{schema_name('fresh')}_new"
    fresh = with_schema(url, schema)
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_it() -> None:
        try:
            start.wait()
            EventStore(fresh).close()
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    try:
        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert errors == []
        with EventStore(fresh) as es:
            assert es.info()["schema"] == schema and es.head() == 0
    finally:
        drop_schema(schema)


# -- storage -------------------------------------------------------------------


def test_json_text_and_times_are_kept_exactly(url: str, raw: psycopg.Connection[Any]) -> None:
    data = {
        "z": 1.0,
        "a": 2**63 - 1,
        "e": 1e300,
        "nul": "a\x00b",
        "tab": "x\ty\nz\\",
        "unicode": "é😀",
        "nested": {"b": [1.5, None, True], "a": {}},
    }
    occurred = datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5.5)))
    with EventStore(url) as es:
        (event,) = es.append([NewEvent("Odd", data, {"actor": "é"}, occurred_at=occurred)])
        (got,) = es.read()
        assert got == event
        assert type(got.data["z"]) is float and got.data["a"] == 2**63 - 1
        assert got.occurred_at == occurred and got.recorded_at.tzinfo == UTC
        (row,) = backend(es).chain_page(0, 10)
        assert es.verify().ok
    # The stored text is what the store wrote, byte for byte.
    (stored,) = raw.execute("SELECT data::text FROM events").fetchall()[0]
    assert stored == encode_object(data, "data") == row[7]
    # jsonb could hold neither the NUL nor the numbers' spelling.
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        raw.execute("SELECT data::jsonb FROM events")
    with EventStore(url) as es:
        (plain,) = es.append([NewEvent("Plain", {"k": 1e16})])
    (as_jsonb,) = raw.execute("SELECT data::jsonb::text FROM events WHERE position = 2").fetchall()[
        0
    ]
    assert canonical(json.loads(as_jsonb)) != canonical(plain.data)  # its hash would break
    assert row[9] == format_time(occurred) and row[10] == event.to_dict()["recorded_at"]
    # ... and it can still be queried as JSON.
    assert raw.execute("SELECT data->>'k' FROM events WHERE position = 2").fetchone() == ("1e+16",)


def test_database_refuses_rewriting_history(url: str, raw: psycopg.Connection[Any]) -> None:
    with EventStore(url) as es:
        es.append(tick(3), aggregate_id="a")
    for statement in (
        "UPDATE events SET type = 'Forged'",
        "DELETE FROM events WHERE position = 2",
        "TRUNCATE events",
    ):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            raw.execute(statement)
    with EventStore(url) as es:
        assert es.head() == 3 and es.verify().ok


def test_tampering_is_found_by_verify(url: str, raw: psycopg.Connection[Any]) -> None:
    with EventStore(url) as es:
        es.append(tick(5), aggregate_id="a")
    raw.execute("ALTER TABLE events DISABLE TRIGGER events_guard_update")
    raw.execute("""UPDATE events SET data = '{"i":99}' WHERE position = 3""")
    with EventStore(url, readonly=True) as es:
        report = es.verify()
    assert not report.ok and report.first_bad_position == 3


def test_readonly_sessions_are_read_only_in_the_database(url: str) -> None:
    EventStore(url).close()
    with EventStore(url, readonly=True) as es:
        pg = backend(es)
        setting = pg._run(lambda c: c.execute("SHOW default_transaction_read_only").fetchone())
        assert setting == ("on",)
        with pytest.raises(ReadOnlyError):
            pg._run(lambda c: c.execute("INSERT INTO sss_meta VALUES ('x', 'y')"))


def test_constraint_violations_become_store_errors(url: str) -> None:
    """Writes that go around the head lock still cannot duplicate an event id
    or a version: the constraints refuse them, translated to the store's errors."""
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a")
        first = backend(es).chain_page(0, 1)[0][:13]  # a Row: no erased_by
        pg = backend(es)
        copy = (3, *first[1:])
        with pytest.raises(DuplicateEventError, match=first[1]), pg.write() as tx:
            tx.insert([copy], None)
        same_version = (3, str(uuid.uuid4()), *first[2:])
        with pytest.raises(ConcurrencyError, match="of a but it is at 1"), pg.write() as tx:
            tx.insert([same_version], None)
        assert es.head() == 2 and es.verify().ok


def test_text_postgres_cannot_hold_is_a_validation_error(url: str) -> None:
    with EventStore(url) as es, pytest.raises(StoreError, match="NUL"):
        es.append([NewEvent("Odd\x00Type", {})])


def test_query_plans_use_an_index_for_every_filter(url: str, raw: psycopg.Connection[Any]) -> None:
    with EventStore(url) as es:
        for k in range(40):
            es.append(tick(50), aggregate_id=f"s{k}", aggregate_type="Sensor")
        for k in range(10):
            es.append(
                [NewEvent("Placed", {"k": k}), NewEvent("Shipped", {})],
                aggregate_id=f"o{k}",
                aggregate_type="Order",
            )
        raw.execute("ANALYZE")
        cases = {
            "all": (Query(1, None), None, "events_pkey"),
            "aggregate": (Query(1, None, aggregate_id="o1"), None, "aggregate_id_version"),
            "aggregate_type": (Query(1, None, aggregate_type="Order"), None, "by_aggregate_type"),
            "type": (Query(1, None, types=("Placed",)), "Placed", "events_by_type"),
            "positions": (Query(5, 9), None, "events_pkey"),
        }
        for name, (query, type_, index) in cases.items():
            for backwards in (False, True):
                plan = " ".join(backend(es).explain(query, type_, backwards))
                assert index in plan and "Seq Scan" not in plan, (name, plan)
    # A time is found by bisecting positions on the primary key: no
    # recorded_at index is kept current on every append.
    indexes = {
        r[0]
        for r in raw.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'events' "
            "AND schemaname = current_schema()"
        )
    }
    assert "events_by_recorded_at" not in indexes, indexes


def test_times_are_found_by_bisection_as_a_scan_finds_them(url: str) -> None:
    """first_position_since / last_position_until against a plain scan of
    recorded_at, on a log with runs of equal times (a clock that stood still
    or stepped back is clamped), at every probe time around each event."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    steps = [0, 0, 3, 3, -2, 1, 7, 7, 2, 0, 5]  # seconds the clock moves before each append
    moments = []
    for step in steps:
        moments.append((moments[-1] if moments else base) + timedelta(seconds=step))
    clock = iter(moments)
    with EventStore(url, clock=lambda: next(clock)) as es:
        pg = backend(es)
        assert pg.first_position_since(format_time(base)) is None
        assert pg.last_position_until(format_time(base)) == 0
        for k in range(len(steps)):
            es.append(tick(k % 3 + 1), aggregate_id=f"a{k}")
        times = [e.recorded_at for e in es.read()]
        probes = {
            t + d
            for t in times
            for d in (timedelta(0), timedelta(seconds=-1), timedelta(microseconds=1))
        }
        for probe in sorted(probes):
            since = next((i + 1 for i, t in enumerate(times) if t >= probe), None)
            until = max((i + 1 for i, t in enumerate(times) if t <= probe), default=0)
            assert pg.first_position_since(format_time(probe)) == since, probe
            assert pg.last_position_until(format_time(probe)) == until, probe


# -- the one-statement append ------------------------------------------------------


def test_a_plain_append_is_one_statement_on_the_server(url: str) -> None:
    """Outside a transaction an append never opens a client-side write
    transaction (whose round trips would hold the head lock); inside one, and
    to decide idempotency, it does."""
    with EventStore(url, snapshot_every=2) as es:
        pg = backend(es)
        assert pg.appends_direct
        general = pg.write
        opened: list[str] = []

        def counting_write() -> Any:
            opened.append("write")
            return general()

        pg.write = counting_write  # type: ignore[method-assign]
        first = es.append(tick(3), aggregate_id="a", aggregate_type="Thing")
        assert [e.version for e in first] == [1, 2, 3] and opened == ["write"]  # snapshot 2
        assert es.append(tick(1), aggregate_id="a", expected_version=3)[0].version == 4
        assert opened == ["write", "write"]  # snapshot 4, not the append
        opened.clear()
        es.append(tick(2))
        assert opened == []
        again = es.append(
            [NewEvent("Ticked", {"i": 0}, event_id=first[0].event_id)], aggregate_id="a"
        )
        assert again == [first[0]] and opened == ["write"]  # the general path decides
        with es.transaction():
            es.append(tick(), aggregate_id="a")
        assert len(opened) == 3  # the transaction, and the append's savepoint in it
        assert [s.version for s in pg.snapshots(es._fingerprint)] == [2, 4]
        assert es.verify().ok


def test_server_appends_report_conflicts_and_types_without_writing(url: str) -> None:
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a", aggregate_type="Thing")
        with pytest.raises(ConcurrencyError, match="expected version 1 of a but it is at 2"):
            es.append(tick(), aggregate_id="a", expected_version=1)
        with pytest.raises(StoreError, match="has aggregate type 'Thing', not 'Other'"):
            es.append(tick(), aggregate_id="a", aggregate_type="Other")
        with pytest.raises(DuplicateEventError):
            stored = es.get(1).event_id
            es.append([NewEvent("Ticked", {"i": 0}), NewEvent("New", {}, event_id=stored)])
        assert es.head() == 2 and es.verify().ok


def test_clock_order_differs_from_lock_order(url: str) -> None:
    """Writers read their clocks before they queue for the lock, so a later
    commit can bring an earlier time: the server clamps it to the head's."""
    late = datetime(2030, 1, 1, tzinfo=UTC)
    early = datetime(2020, 1, 1, tzinfo=UTC)
    with EventStore(url, clock=lambda: late) as a, EventStore(url, clock=lambda: early) as b:
        a.append(tick())
        (clamped,) = b.append(tick(), aggregate_id="b")
        assert clamped.recorded_at == late and clamped.occurred_at == late
        assert b.verify().ok


def test_a_missing_or_misplaced_append_function_is_put_right(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    """Dropped, or left pointing at another schema by a rename: the next open
    installs it again, and a store open meanwhile falls back, storing once."""
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a")
        raw.execute(f"DROP FUNCTION {APPEND_FUNCTION_NAME}")
        (event,) = es.append(tick(), aggregate_id="a", expected_version=2)
        assert event.version == 3 and not backend(es).appends_direct
    with EventStore(url) as es:
        assert backend(es).appends_direct
        assert es.append(tick(), aggregate_id="a", expected_version=3)[0].version == 4
    schema = raw.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    renamed = f"{schema}_renamed"
    raw.execute(f"ALTER SCHEMA {schema} RENAME TO {renamed}")
    try:
        with EventStore(with_schema(url, renamed)) as es:
            assert backend(es).appends_direct
            assert es.append(tick(), aggregate_id="a", expected_version=4)[0].position == 5
            assert es.verify().ok
        # A new store under the old name gets none of the renamed store's appends.
        with EventStore(url) as fresh:
            assert fresh.head() == 0
            fresh.append(tick(), aggregate_id="b")
        with EventStore(with_schema(url, renamed)) as es:
            es.append(tick(), aggregate_id="a", expected_version=5)
            assert es.head() == 6 and es.verify().ok
        with EventStore(url) as fresh:
            assert fresh.head() == 1
    finally:
        drop_schema(renamed)


def test_a_store_of_the_previous_release_is_upgraded_in_place(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    """A store of format 1 whose schema holds only the previous release's
    function gets this release's on its first writable open, and the old one
    is dropped in the upgrade's transaction: its writers would append without
    keeping the counts. The chain goes on unbroken."""
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a")
    schema = raw.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    raw.execute(f"DROP FUNCTION {APPEND_FUNCTION_NAME}")
    raw.execute("DROP TABLE sss_counts")
    raw.execute("UPDATE sss_meta SET value = '1' WHERE key = 'format_version'")
    old = (ROOT / "tests" / "store" / "sss_append_1.sql").read_text()
    raw.execute(old.replace("{schema}", schema).replace("{name}", "sss_append_1").encode())

    def functions() -> set[str]:
        return {
            r[0]
            for r in raw.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = current_schema()::regnamespace "
                "AND proname LIKE 'sss_append_%'"
            )
        }

    assert functions() == {"sss_append_1"}
    with EventStore(url) as new:
        assert functions() == {APPEND_FUNCTION_NAME}
        version = 2
        for _ in range(6):
            recorded = new.append(tick(3), aggregate_id="a", expected_version=version)
            version += 3
            assert [e.version for e in recorded] == [version - 2, version - 1, version]
        assert backend(new).appends_direct
        assert new.head() == 20 and new.verify().ok
        assert new.counts().events == 20


def test_a_role_that_may_not_install_the_function_appends_the_general_way(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a")
    schema = raw.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
    role = f"sss_writer_{uuid.uuid4().hex[:8]}"
    raw.execute(f"CREATE ROLE {role} LOGIN")
    try:
        raw.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        raw.execute(f"GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA {schema} TO {role}")
        raw.execute(f"DROP FUNCTION {APPEND_FUNCTION_NAME}")
        parts = urllib.parse.urlsplit(url)
        as_role = parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port or 5432}")
        with EventStore(urllib.parse.urlunsplit(as_role)) as es:
            assert not backend(es).appends_direct
            (event,) = es.append(tick(), aggregate_id="a", expected_version=2)
            assert event.version == 3 and es.verify().ok
    finally:
        raw.execute(f"DROP OWNED BY {role}")
        raw.execute(f"DROP ROLE {role}")


def test_opening_for_writes_on_a_read_only_server_fails_only_at_the_write(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    with EventStore(url) as es:
        es.append(tick(), aggregate_id="a")
    raw.execute(f"DROP FUNCTION {APPEND_FUNCTION_NAME}")
    read_only = url.replace("options=", "options=-cdefault_transaction_read_only%3Don%20")
    with EventStore(read_only) as es:
        assert es.head() == 1 and not backend(es).appends_direct
        with pytest.raises(ReadOnlyError):
            es.append(tick(), aggregate_id="a")
        assert es.head() == 1


def test_nul_in_a_type_keeps_the_general_paths_order_of_errors(url: str) -> None:
    with EventStore(url) as es:
        es.append(tick(), aggregate_id="a")
        with pytest.raises(ConcurrencyError):
            es.append([NewEvent("T\x00")], aggregate_id="a", expected_version=0)
        with pytest.raises(StoreError, match="NUL"):
            es.append([NewEvent("T\x00")], aggregate_id="a", expected_version=1)
        assert es.head() == 1


def test_a_write_that_failed_on_the_server_never_reports_success(url: str) -> None:
    """A snapshot taken inside the append sends the held-back insert; if the
    server refuses it, the append raises instead of returning events that a
    rolled-back transaction does not hold."""
    with EventStore(url, snapshot_every=1) as es:
        backend(es).appends_direct = False
        with pytest.raises(StoreError, match="NUL"):
            es.append([NewEvent("T\x00")], aggregate_id="a")
        assert es.head() == 0
        with pytest.raises(StoreError, match="NUL"), es.transaction():
            es.append(tick(), aggregate_id="b")
            es.append([NewEvent("T\x00")], aggregate_id="a")
        assert es.head() == 0
        # Inside a transaction the failed append goes alone, as any failed append.
        with es.transaction():
            es.append(tick(), aggregate_id="b")
            with pytest.raises(StoreError, match="NUL"):
                es.append([NewEvent("T\x00")], aggregate_id="a")
            es.append(tick(), aggregate_id="c")
        assert [e.aggregate_id for e in es.read()] == ["b", "c"]
        (event,) = es.append(tick(), aggregate_id="a")
        assert event.position == 3 and es.verify().ok


# -- locking -------------------------------------------------------------------


def test_a_held_head_lock_times_out_as_locked_error(url: str) -> None:
    with EventStore(url) as a, EventStore(url, timeout=0.3) as b:
        with a.transaction():
            a.append(tick(2))
            assert b.head() == 0  # readers see only committed appends
            started = time.monotonic()
            with pytest.raises(LockedError, match="locked by another writer"):
                b.append(tick())
            assert time.monotonic() - started < 3
        (event,) = b.append(tick())
        assert event.position == 3 and b.verify().ok


def test_concurrent_any_appends_never_conflict(url: str) -> None:
    """The head lock is taken before the aggregate's version is read, so
    appends with ANY serialise instead of failing on each other's versions."""
    errors: list[BaseException] = []
    EventStore(url).close()

    def write(worker: int) -> None:
        try:
            with EventStore(url, timeout=30.0) as es:
                for k in range(15):
                    es.append(tick(2, worker=worker), aggregate_id=f"shared-{k % 3}")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with EventStore(url, readonly=True) as es:
        assert es.head() == 8 * 15 * 2 and es.verify().ok
        assert sorted(i.version for i in es.aggregates()) == [80, 80, 80]


def test_follow_wakes_on_notify_not_on_polling(url: str) -> None:
    with EventStore(url) as follower, EventStore(url) as writer:
        stop = threading.Event()
        got: list[tuple[int, float]] = []

        def follow() -> None:
            for event in follower.follow(poll_interval=30.0, stop=stop):
                got.append((event.position, time.monotonic()))

        thread = threading.Thread(target=follow)
        thread.start()
        try:
            wait_until(lambda: backend(follower)._listener is not None, "LISTEN")
            time.sleep(0.1)
            for n in range(1, 4):
                sent = time.monotonic()
                writer.append(tick())
                wait_until(lambda: len(got) >= n, "the event")  # noqa: B023
                assert got[-1][1] - sent < 2.0  # a 30 s poll would not have woken it
        finally:
            stop.set()
            thread.join(timeout=5)
        assert not thread.is_alive()
        assert [p for p, _ in got] == [1, 2, 3]


def test_follow_survives_losing_its_listening_connection(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    with EventStore(url) as follower, EventStore(url) as writer:
        stop = threading.Event()
        got: list[int] = []

        def follow() -> None:
            got.extend(e.position for e in follower.follow(poll_interval=0.05, stop=stop))

        thread = threading.Thread(target=follow)
        thread.start()
        try:
            wait_until(lambda: backend(follower)._listener is not None, "LISTEN")
            listener = backend(follower)._listener
            assert listener is not None
            raw.execute("SELECT pg_terminate_backend(%s)", (listener.info.backend_pid,))
            for _ in range(5):
                writer.append(tick())
            wait_until(lambda: len(got) == 5, "the events after the cut")
        finally:
            stop.set()
            thread.join(timeout=5)
        assert got == [1, 2, 3, 4, 5]


# -- lost connections ----------------------------------------------------------


def terminate(raw: psycopg.Connection[Any], application: str) -> int:
    rows = raw.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application,),
    ).fetchall()
    return len(rows)


def backends_of(raw: psycopg.Connection[Any], application: str) -> set[int]:
    rows = raw.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
        (application,),
    ).fetchall()
    return {row[0] for row in rows}


def cut(raw: psycopg.Connection[Any], application: str) -> set[int]:
    """Terminate every backend of the store and wait until the server has
    ended them all, so the store's next statement meets a dead connection."""
    old = backends_of(raw, application)
    assert old and terminate(raw, application) == len(old)
    wait_until(lambda: not backends_of(raw, application) & old, "the backends to end")
    return old


def test_a_connection_cut_between_appends_is_invisible(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    """A read and an append each meet the dead connection first and go on,
    on a new one: the store's backends afterwards are others."""
    name = f"cut-{uuid.uuid4().hex[:8]}"
    with EventStore(f"{url}&application_name={name}") as es:
        es.append(tick(2), aggregate_id="a")
        old = cut(raw, name)
        assert backends_of(raw, name) == set()  # nothing reconnected on its own
        assert es.head() == 2  # a read retries once on a fresh connection
        after_read = backends_of(raw, name)
        assert after_read and not after_read & old
        old = cut(raw, name)
        (event,) = es.append(tick(), aggregate_id="a", expected_version=2)
        assert event.position == 3 and es.verify().ok
        assert backends_of(raw, name) and not backends_of(raw, name) & (old | after_read)


def test_a_connection_cut_inside_the_append_statement_stores_the_batch_once(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    """The server rolls back the statement it was running; the store sends it
    again on a fresh connection, and the event ids make that safe: the batch
    is stored exactly once, whether or not the first attempt had committed."""
    name = f"cut-{uuid.uuid4().hex[:8]}"
    size = 20_000
    with EventStore(f"{url}&application_name={name}", timeout=30.0) as es:
        es.append(tick(2), aggregate_id="a")
        batch = tick(size, pad="x" * 200)
        done: list[Any] = []
        writer = threading.Thread(
            target=lambda: done.append(es.append(batch, aggregate_id="a", expected_version=2))
        )
        writer.start()
        killed = 0

        def running() -> bool:
            nonlocal killed
            killed = raw.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s AND state = 'active' AND query LIKE %s",
                (name, "%sss_append%"),
            ).fetchone()[0]  # type: ignore[index]
            return killed > 0

        wait_until(running, "the append statement to run")
        writer.join(timeout=60)
        assert killed == 1 and len(done) == 1, "the append did not come back"
        recorded = done[0]
        assert [e.position for e in recorded] == list(range(3, size + 3))
        assert es.head() == size + 2 and es.aggregate("a").version == size + 2
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (size + 2,)
        assert es.verify().ok


def test_a_connection_cut_mid_transaction_stores_nothing(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    with EventStore(url) as es:
        es.append(tick(2), aggregate_id="a")
        with pytest.raises(StoreError, match="connection"), es.transaction():
            es.append(tick(50), aggregate_id="a", expected_version=2)
            conn = backend(es)._conn
            assert conn is not None
            raw.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
            es.append(tick(), aggregate_id="b")
        assert raw.execute("SELECT count(*) FROM events").fetchone() == (2,)
        (event,) = es.append(tick(), aggregate_id="a", expected_version=2)
        assert event.position == 3 and event.version == 3
        assert es.verify().ok


# -- real processes --------------------------------------------------------------


def run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_until(predicate: Any, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


WRITER = r"""
import json, random, sys, time
from store import ConcurrencyError, EventStore, NewEvent, NotFoundError

url = sys.argv[1]
writer, operations, aggregates = (int(a) for a in sys.argv[2:5])
rng = random.Random(writer)
es = EventStore(url, timeout=60.0)
print("ready", flush=True)
sys.stdin.readline()
appended, conflicts, errors = [], 0, []
for op in range(operations):
    aggregate_id = f"counter-{rng.randrange(aggregates)}"
    size = rng.choice((1, 1, 2, 3))
    while True:
        try:
            version = es.aggregate(aggregate_id).version
        except NotFoundError:
            version = 0
        time.sleep(rng.random() * 0.002)  # widen the read-then-write window
        batch = [NewEvent("Bumped", {"writer": writer, "expected": version, "k": k})
                 for k in range(size)]
        try:
            recorded = es.append(batch, aggregate_id=aggregate_id, aggregate_type="Counter",
                                 expected_version=version)
        except ConcurrencyError:
            conflicts += 1
            continue
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
            break
        appended.extend([e.event_id, e.aggregate_id, e.version, e.position] for e in recorded)
        break
    if errors:
        break
es.close()
print(json.dumps({"appended": appended, "conflicts": conflicts, "errors": errors}))
"""


@pytest.mark.slow
def test_eight_writer_processes_on_shared_aggregates(url: str) -> None:
    writers, operations, aggregates = 8, 60, 50
    EventStore(url).close()
    procs = [run_python(WRITER, url, str(w), str(operations), str(aggregates)) for w in range(8)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        # A reader watching the log the whole time: it must never see a gap.
        stop = threading.Event()
        gaps: list[tuple[int, int]] = []
        snapshots = 0

        def watch() -> None:
            nonlocal snapshots
            with psycopg.connect(url, autocommit=True) as conn:
                while not stop.is_set():
                    row = conn.execute("SELECT count(*), coalesce(max(position), 0) FROM events")
                    count, top = row.fetchone() or (0, 0)
                    if count != top:
                        gaps.append((count, top))
                    snapshots += 1

        followed: list[int] = []

        def follow() -> None:
            with EventStore(url, readonly=True) as es:
                followed.extend(e.position for e in es.follow(1, poll_interval=0.05, stop=stop))

        threads = [threading.Thread(target=watch), threading.Thread(target=follow)]
        for t in threads:
            t.start()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        outputs = [p.communicate(timeout=180) for p in procs]
        with EventStore(url, readonly=True) as es:
            head = es.head()
        wait_until(lambda: len(followed) >= head, "the follower to catch up")
        stop.set()
        for t in threads:
            t.join(timeout=10)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]
    assert [r["errors"] for r in reports] == [[]] * writers
    assert sum(r["conflicts"] for r in reports) > 0, "the writers never collided"
    assert gaps == [] and snapshots > 0
    appended = sorted(tuple(row) for r in reports for row in r["appended"])
    with EventStore(url, readonly=True) as es:
        events = list(es.read())
        report = es.verify()
        infos = {i.aggregate_id: i for i in es.aggregates()}
    assert followed == [e.position for e in events] == list(range(1, len(events) + 1))
    assert sorted((e.event_id, e.aggregate_id, e.version, e.position) for e in events) == appended
    per_aggregate: dict[str, list[int]] = {}
    for e in events:
        assert e.version is not None and e.aggregate_id is not None
        # Stored at exactly the version its writer expected: no conflict went unnoticed.
        assert e.version == e.data["expected"] + e.data["k"] + 1
        per_aggregate.setdefault(e.aggregate_id, []).append(e.version)
    for aggregate_id, versions in per_aggregate.items():
        assert versions == list(range(1, len(versions) + 1))
        assert infos[aggregate_id].version == len(versions)
    assert report.ok and report.checked == len(events), report


VICTIM = r"""
import sys, time
from store import EventStore, NewEvent
es = EventStore(sys.argv[1], timeout=30.0)
with es.transaction():
    es.append([NewEvent("Doomed", {"k": k}) for k in range(2000)], aggregate_id="doomed")
    print("inside", flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_transaction_leaves_nothing(
    url: str, raw: psycopg.Connection[Any]
) -> None:
    with EventStore(url) as es:
        es.append(tick(3), aggregate_id="a")
        victim = run_python(VICTIM, url)
        try:
            assert victim.stdout is not None
            assert victim.stdout.readline().strip() == "inside", victim.stderr
            assert es.head() == 3  # holding the lock, not yet committed
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
        finally:
            if victim.poll() is None:
                victim.kill()
            victim.communicate()  # close the pipes
        # The server notices the dead client, rolls back and frees the head row.
        started = time.monotonic()
        (event,) = es.append(tick(), aggregate_id="a", expected_version=3)
        assert time.monotonic() - started < 5
        assert event.position == 4
        assert raw.execute("SELECT count(*) FROM events WHERE type = 'Doomed'").fetchone() == (0,)
        with pytest.raises(NotFoundError):
            es.aggregate("doomed")
        assert es.verify().ok


BULK = r"""
import sys, time
from store import EventStore, NewEvent
es = EventStore(sys.argv[1], timeout=30.0)
batch = [NewEvent("Loaded", {"k": k, "pad": "x" * 40}) for k in range(int(sys.argv[3]))]
print("started", flush=True)
start = time.perf_counter()
es.append(batch, aggregate_id=sys.argv[2])
print(f"done {time.perf_counter() - start:.6f}", flush=True)
"""


def open_write(raw: psycopg.Connection[Any], application: str) -> bool:
    """Whether a backend of ``application`` is inside a transaction that has
    written (it holds a transaction id): a kill now lands inside it."""
    row = raw.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
        "AND backend_xid IS NOT NULL",
        (application,),
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_writers_killed_at_random_moments_leave_whole_batches(url: str) -> None:
    size = 5000
    EventStore(url).close()
    calibration = run_python(BULK, url, "calibration", str(size))
    out, err = calibration.communicate(timeout=120)
    assert calibration.returncode == 0, err
    duration = float(out.split()[-1])
    rng = random.Random(5000)
    raw = psycopg.connect(base_url(), autocommit=True)
    outcomes: Counter[str] = Counter()
    kills = 6
    for kill in range(kills):
        name = f"victim-{kill}"
        victim = run_python(BULK, f"{url}&application_name={name}", name, str(size))
        assert victim.stdout is not None and victim.stdout.readline().strip() == "started"
        if kill % 3 == 2:
            time.sleep(rng.random() * duration * 1.2)  # anywhere, the set-up included
        else:
            wait_until(
                lambda v=victim, n=name: open_write(raw, n) or v.poll() is not None,
                "the write",
                60,
            )
            time.sleep(rng.random() * duration * 0.05)
        inside = open_write(raw, name)
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)  # reaps it and closes the pipes
        # The server finishes or rolls back what the dead client left running.
        wait_until(lambda n=name: not backends_of(raw, n), "the victim's backend to end")
        with EventStore(url, timeout=30.0) as es:
            stored = es.count(aggregate_id=name)
        assert stored in (0, size), f"{name}: {stored} of {size} events survived a kill"
        outcomes["inside a write" if inside else "committed" if stored else "before"] += 1
    raw.close()
    with EventStore(url, timeout=30.0) as es:
        (event,) = es.append(tick(), aggregate_id="after")  # the lock is free again
        counts = {info.aggregate_id: info.version for info in es.aggregates()}
        assert set(counts.values()) <= {size, 1}, counts  # whole batches or nothing
        assert es.head() == event.position == size * (len(counts) - 1) + 1
        report = es.verify()
        assert report.ok and report.checked == es.head(), report
    print(f"batch of {size} takes {duration:.2f} s; kill outcomes: {dict(outcomes)}")
    # The kills really hit open write transactions, not only the set-up before them.
    assert outcomes["inside a write"] >= 3, outcomes


def test_unreachable_server_fails_the_postgres_tests_instead_of_skipping() -> None:
    env = {**os.environ, ENV: "postgresql://postgres@127.0.0.1:1/test"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "-q",
            "-x",
            "tests/store/test_read.py",
            "-k",
            "postgres",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0, result.stdout
    assert "does not answer" in result.stdout
    assert "skipped" not in result.stdout and "1 error" in result.stdout, result.stdout


@st.composite
def _batches(draw: st.DrawFn) -> list[tuple[list[NewEvent], dict[str, Any]]]:
    """A run of appends, some refused: unknown and known aggregates, types that
    clash, expected versions that match or not, names JSON escapes."""
    names = st.sampled_from(["a-1", "a-2", "ü/ 😀", 'q"uote\\', None])
    calls = []
    for _ in range(draw(st.integers(1, 6))):
        aggregate = draw(names)
        kwargs: dict[str, Any] = {"aggregate_id": aggregate}
        if aggregate is not None:
            kwargs["aggregate_type"] = draw(st.sampled_from([None, "T", "U"]))
            kwargs["expected_version"] = draw(st.sampled_from([ANY, NO_STREAM, 0, 1, 2, 3]))
        events = [
            NewEvent(
                draw(st.sampled_from(["Made", "Changed", "é"])),
                {"n": draw(st.integers(-3, 3)), "f": draw(st.floats(allow_nan=False))},
                metadata={"actor": draw(st.sampled_from(["x", "ÿ\\n"]))},
                event_id=str(uuid.UUID(int=draw(st.integers(1, 2**120)))),
            )
            for _ in range(draw(st.integers(1, 3)))
        ]
        calls.append((events, kwargs))
    return calls


def test_the_server_function_and_the_general_path_store_the_same_rows(
    request: pytest.FixtureRequest,
) -> None:
    """The append function restates the append rules in PL/pgSQL; whatever
    run of appends both paths get, they store the same rows, hash for hash,
    and refuse the same appends with the same errors."""
    urls = [fresh_postgres_url(f"{request.node.name}_{side}") for side in ("direct", "general")]
    direct_url, general_url = (next(u) for u in urls)
    moment = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    direct = EventStore(direct_url, clock=lambda: moment)
    general = EventStore(general_url, clock=lambda: moment)
    general.backend.appends_direct = False
    assert direct.backend.appends_direct
    try:

        @settings(max_examples=25, deadline=None)
        @given(calls=_batches())
        def run(calls: list[tuple[list[NewEvent], dict[str, Any]]]) -> None:
            for events, kwargs in calls:
                outcomes = []
                for es in (direct, general):
                    try:
                        outcomes.append([e.to_dict() for e in es.append(events, **kwargs)])
                    except StoreError as e:
                        outcomes.append([type(e).__name__, str(e).replace(es.label, "<store>")])
                assert outcomes[0] == outcomes[1]
            assert direct.backend.chain_page(0, 10_000) == general.backend.chain_page(0, 10_000)
            assert list(direct.aggregates()) == list(general.aggregates())

        run()
        assert direct.head() > 0 and direct.verify().ok and general.verify().ok
    finally:
        direct.close()
        general.close()
        for cleanup in urls:
            next(cleanup, None)

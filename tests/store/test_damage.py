"""Damaged files: seeded single-bit flips over a real SQLite store.

Whatever a flip breaks, ``verify()`` finishes with a report. A flip that
changes a stored row is named by position; a flip in an index that SQLite's
own ``integrity_check`` sees makes the report not ok; a flip that changes
nothing that matters leaves it ok.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent, VerifyReport
from tests.store.media import swap_index_roots

EVENTS = 300
PAGE_SIZE = 4096


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[int, str]]:
    """A closed store's bytes, and which table or index each page belongs to."""
    path = tmp_path_factory.mktemp("damage") / "pristine.db"
    with EventStore(str(path), durable=False) as es:
        for i in range(EVENTS):
            es.append(
                [NewEvent(f"T{i % 5}", {"n": i, "pad": "x" * (i % 60)}, metadata={"actor": "a"})],
                aggregate_id=None if i % 7 == 0 else f"agg-{i % 20}",
                aggregate_type=None if i % 7 == 0 else f"Kind{i % 20 % 3}",
            )
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA page_size").fetchone()[0] == PAGE_SIZE
        owners = {page: name for name, page in conn.execute("SELECT name, pageno FROM dbstat")}
    conn.close()
    return path.read_bytes(), owners


def _raw(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    # Tell text from blobs, and never fail on bytes that are not UTF-8.
    conn.text_factory = lambda raw: ("text", raw)
    return conn


def _rows(path: Path) -> list[Any]:
    with _raw(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY position").fetchall()


def _first_damage(path: Path, original: list[Any]) -> tuple[int, int] | None:
    """The first position whose row differs from the original, seen two ways:
    scanning the table in order, and reading each position alone. A damaged
    b-tree can disagree with itself (a scan meets a cell that a seek skips),
    so a report may name either; None when neither sees a difference."""
    scan: int | None = None
    conn = _raw(path)
    got: list[Any] = []
    try:
        got.extend(conn.execute("SELECT * FROM events ORDER BY position"))
    except sqlite3.Error:
        scan = len(got) + 1
    if scan is None:
        for index, row in enumerate(got):
            if index >= len(original) or row != original[index]:
                scan = index + 1
                break
        else:
            scan = None if len(got) == len(original) else len(got) + 1
    point: int | None = None
    for position in range(1, len(original) + 1):
        try:
            row = conn.execute("SELECT * FROM events WHERE position = ?", (position,)).fetchone()
        except sqlite3.Error:
            row = None
        if row != original[position - 1]:
            point = position
            break
    conn.close()
    if scan is None and point is None:
        return None
    found = [p for p in (scan, point) if p is not None]
    return min(found), max(found)


def _integrity_ok(path: Path) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    except sqlite3.Error:
        return False


def _flip(data: bytes, owners: dict[int, str], names: set[str], rng: random.Random) -> bytes:
    page = rng.choice(sorted(p for p, name in owners.items() if name in names))
    damaged = bytearray(data)
    damaged[(page - 1) * PAGE_SIZE + rng.randrange(PAGE_SIZE)] ^= 1 << rng.randrange(8)
    return bytes(damaged)


def _verify(path: Path, storage: str = "full") -> VerifyReport:
    with EventStore(str(path), readonly=True) as es:
        return es.verify(storage=storage)


def test_flips_in_event_pages_always_give_a_report_naming_the_damage(
    tmp_path: Path, pristine: tuple[bytes, dict[int, str]]
) -> None:
    data, owners = pristine
    original = _rows(_write(tmp_path / "original.db", data))
    rng = random.Random(20240901)
    path = tmp_path / "flipped.db"
    seen = {"named": 0, "harmless": 0, "file damage": 0}
    for _ in range(300):
        _write(path, _flip(data, owners, {"events"}, rng))
        report = _verify(path)  # never raises: that is the first claim
        damage = _first_damage(path, original)
        if damage is not None:
            assert not report.ok, report
            assert report.first_bad_position is not None, report
            assert damage[0] <= report.first_bad_position <= damage[1], (damage, report)
            seen["named"] += 1
        elif _integrity_ok(path):
            assert report.ok, report
            seen["harmless"] += 1
        else:
            assert not report.ok, report
            seen["file damage"] += 1
    # The seed reaches every kind of outcome, so each assertion above ran.
    assert all(seen.values()), seen
    assert seen["named"] > 200, seen


INDEXES = {
    "events_by_type",
    "events_by_aggregate_type",
    "sqlite_autoindex_events_1",
    "sqlite_autoindex_events_2",
}


def test_flips_in_index_pages_that_sqlite_sees_fail_verify(
    tmp_path: Path, pristine: tuple[bytes, dict[int, str]]
) -> None:
    data, owners = pristine
    assert set(owners.values()) >= INDEXES
    rng = random.Random(7)
    path = tmp_path / "flipped.db"
    damaged = quick_saw = 0
    for _ in range(200):
        _write(path, _flip(data, owners, INDEXES, rng))
        report = _verify(path)
        if _integrity_ok(path):
            assert report.ok, report
            continue
        damaged += 1
        assert not report.ok, report
        assert "integrity_check" in (report.reason or ""), report
        quick_saw += not _verify(path, "quick").ok
    assert damaged > 100
    # quick_check reads the pages but does not compare indexes with the table:
    # it misses most of what the full check finds, which is why full is the default.
    assert quick_saw < damaged


def test_an_index_whose_entries_point_elsewhere_is_named_by_position(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(50):
            es.append([NewEvent("Kept" if i % 2 else "Other", {"i": i})])
    # Rewrite the table behind the index's back: the index still says "Other"
    # for a row that now says "Kept", so a filtered read would return a wrong row.
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA writable_schema=ON")
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name='events'").fetchone()[0]
    conn.close()
    raw = bytearray(path.read_bytes())
    needle = b'Other{"i":10}'
    at = raw.find(needle)
    assert at > 0 and root > 0
    raw[at : at + 5] = b"Otheq"
    path.write_bytes(bytes(raw))
    report = _verify(path)
    assert not report.ok
    # The chain walk names the changed row before the index check runs.
    assert report.first_bad_position == 11, report


def test_indexes_that_trade_places_are_found_by_the_full_check_only(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(20):
            es.append([NewEvent(f"T{i % 3}", {"i": i})], aggregate_id=f"a-{i % 4}",
                      aggregate_type=f"K{i % 4}")  # fmt: skip
    swap_index_roots(path)
    with EventStore(str(path), readonly=True) as es:
        assert [e.position for e in es.read(types=["T1"])] != [2, 5, 8, 11, 14, 17, 20]
        full = es.verify()
        assert not full.ok and full.first_bad_position == 1, full
        assert full.checked == 20 and "missing from index" in (full.reason or ""), full
        assert "REINDEX" in (full.reason or "")
        assert es.verify(storage="quick").ok  # the pages themselves are well formed
        assert es.verify(storage="off").ok


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


@pytest.mark.postgres
def test_postgres_verify_checks_indexes_with_amcheck_when_installed() -> None:
    import urllib.parse
    import uuid

    from tests.store.pg import admin, base_url

    name = f"sss_amcheck_{uuid.uuid4().hex[:8]}"
    with admin() as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        url = urllib.parse.urlsplit(base_url())._replace(path=f"/{name}").geturl()
        with EventStore(url) as es:
            for i in range(20):
                es.append([NewEvent(f"T{i % 3}", {"i": i})], aggregate_id=f"a-{i % 4}")
            assert es.verify().ok  # no amcheck yet: nothing more to run
        raw = _connect(url)
        raw.execute("CREATE EXTENSION amcheck")
        # An index over a function declared IMMUTABLE that then changes: the
        # index no longer matches its table, as after a bad collation upgrade.
        raw.execute("CREATE FUNCTION lie(t text) RETURNS text IMMUTABLE LANGUAGE sql AS 'SELECT t'")
        raw.execute("CREATE INDEX events_lie ON events (lie(type))")
        with EventStore(url, readonly=True) as es:
            assert es.verify().ok
        raw.execute(
            "CREATE OR REPLACE FUNCTION lie(t text) RETURNS text IMMUTABLE LANGUAGE sql "
            "AS 'SELECT t || ''!'''"
        )
        raw.close()
        with EventStore(url, readonly=True) as es:
            full = es.verify()
            assert not full.ok and "events_lie" in (full.reason or ""), full
            assert es.verify(storage="quick").ok  # structure only: the pages are sound
    finally:
        with admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _connect(url: str) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=True)

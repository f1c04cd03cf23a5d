"""Verify against forged files whose hash chain is intact.

The chain has no key, so whoever can write the file can edit rows and
recompute every hash. These tests do exactly that, with their own
implementation of the documented recipe (hashlib and json, never the store's
``chain_hash``), and rebuild the aggregates table to match the forged log.
What is left to give a forgery away are verify's other checks; each gets a
forgery that only it can catch, on SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from store import EventStore, NewEvent
from store.postgres.schema import COUNT_EVENTS as POSTGRES_COUNT_EVENTS
from store.sqlite.schema import COUNT_EVENTS as SQLITE_COUNT_EVENTS

GENESIS = "0" * 64


def canonical(value: object) -> bytes:
    """Canonical JSON as the README describes it (ints and strings only here)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def recipe_hash(prev: str, row: tuple[Any, ...]) -> tuple[str, str]:
    """(data_hash, hash) of one row ``position .. recorded_at`` by the README recipe."""
    data, metadata = json.loads(row[7]), json.loads(row[8])
    data_hash = hashlib.sha256(canonical(data)).hexdigest()
    body = canonical([*row[:7], data_hash, metadata, row[9], row[10]])
    return data_hash, hashlib.sha256(prev.encode() + b"\n" + body).hexdigest()


def fill(es: EventStore) -> None:
    for i in range(30):
        es.append(
            [NewEvent("Changed", {"i": i}, {"actor": "alice"})],
            aggregate_id=f"a{i % 4}",
            aggregate_type="Thing",
        )
    es.append([NewEvent("Tick", {})])


class Forger(Protocol):
    location: str

    def execute(self, *statements: str) -> None: ...

    def rechain(self) -> None: ...


class SQLiteForger:
    def __init__(self, path: str) -> None:
        self.location = path

    def _conn(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.location, isolation_level=None)
        for name in ("events_guard_update", "events_refuse_delete", "events_refuse_replace"):
            conn.execute(f"DROP TRIGGER IF EXISTS {name}")
        return conn

    def execute(self, *statements: str) -> None:
        conn = self._conn()
        for sql in statements:
            conn.execute(sql)
        conn.close()

    def rechain(self) -> None:
        conn = self._conn()
        rows = conn.execute(
            "SELECT position, event_id, aggregate_id, aggregate_type, version, type, "
            "schema_version, data, metadata, occurred_at, recorded_at FROM events "
            "ORDER BY position"
        ).fetchall()
        prev = GENESIS
        for row in rows:
            data_hash, prev = recipe_hash(prev, row)
            conn.execute(
                "UPDATE events SET data_hash = ?, hash = ? WHERE position = ?",
                (data_hash, prev, row[0]),
            )
        conn.execute("DELETE FROM aggregates")
        for aggregate_id, aggregate_type, version, first, last, created, updated in _aggregates(
            rows
        ):
            conn.execute(
                "INSERT INTO aggregates VALUES (?, ?, ?, ?, ?, ?, ?)",
                (aggregate_id, aggregate_type, version, first, last, created, updated),
            )
        # The kept counts, as a forger who knows the schema rebuilds them.
        conn.execute("DELETE FROM sss_counts")
        conn.execute(f"INSERT INTO sss_counts {SQLITE_COUNT_EVENTS}")
        conn.close()


class PostgresForger:
    ISO = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""

    def __init__(self, url: str) -> None:
        self.location = url

    def _conn(self) -> Any:
        import psycopg

        conn = psycopg.connect(self.location, autocommit=True)
        conn.execute("ALTER TABLE events DISABLE TRIGGER USER")
        return conn

    def execute(self, *statements: str) -> None:
        with self._conn() as conn:
            for sql in statements:
                conn.execute(sql)

    def rechain(self) -> None:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT position, event_id::text, aggregate_id, aggregate_type, version, type, "
                f"schema_version, data::text, metadata::text, {self.ISO.format('occurred_at')}, "
                f"{self.ISO.format('recorded_at')} FROM events ORDER BY position"
            ).fetchall()
            prev = GENESIS
            for row in rows:
                data_hash, prev = recipe_hash(prev, row)
                conn.execute(
                    "UPDATE events SET data_hash = %s, hash = %s WHERE position = %s",
                    (data_hash, prev, row[0]),
                )
            conn.execute("DELETE FROM aggregates")
            for values in _aggregates(rows):
                conn.execute("INSERT INTO aggregates VALUES (%s, %s, %s, %s, %s, %s, %s)", values)
            conn.execute("DELETE FROM sss_counts")
            conn.execute(f"INSERT INTO sss_counts {POSTGRES_COUNT_EVENTS}")
            last = rows[-1]
            conn.execute(
                "UPDATE sss_head SET position = %s, hash = %s, recorded_at = %s",
                (last[0], prev, last[10]),
            )


def _aggregates(rows: list[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
    """The aggregates table a forger writes to match the log: type and version
    of the last event, first and last positions and times."""
    seen: dict[str, list[Any]] = {}
    for row in rows:
        position, aggregate_id, aggregate_type, version, recorded_at = (
            row[0],
            row[2],
            row[3],
            row[4],
            row[10],
        )
        if aggregate_id is None:
            continue
        if aggregate_id not in seen:
            seen[aggregate_id] = [aggregate_id, aggregate_type, version, position, position]
            seen[aggregate_id] += [recorded_at, recorded_at]
        entry = seen[aggregate_id]
        entry[1], entry[2], entry[4], entry[6] = aggregate_type, version, position, recorded_at
    for entry in seen.values():
        yield tuple(entry)


BACKENDS = ["sqlite"]
if os.environ.get("SSS_TEST_POSTGRES_URL"):
    BACKENDS.append("postgres")


@pytest.fixture(params=BACKENDS)
def forger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Forger]:
    if request.param == "sqlite":
        path = str(tmp_path / "events.db")
        with EventStore(path) as es:
            fill(es)
        yield SQLiteForger(path)
        return
    request.applymarker(pytest.mark.postgres)
    from tests.store.pg import fresh_postgres_url

    for url in fresh_postgres_url(request.node.name):
        with EventStore(url) as es:
            fill(es)
        yield PostgresForger(url)


def verify(forger: Forger) -> Any:
    with EventStore(forger.location, readonly=True) as es:
        return es.verify()


def test_the_forger_alone_leaves_a_valid_store(forger: Forger) -> None:
    """The independent recipe reproduces the store's hashes, so a rechain of
    an untouched log changes nothing and verify passes: the forgeries below
    fail for what they changed, not for how they were hashed."""
    with EventStore(forger.location, readonly=True) as es:
        before = [e.hash for e in es.read()]
    forger.rechain()
    with EventStore(forger.location, readonly=True) as es:
        assert [e.hash for e in es.read()] == before
        assert es.verify().ok


def test_a_rechained_edit_is_what_verify_cannot_see(forger: Forger) -> None:
    """The chain has no key: an edit followed by a rechain passes. The other
    checks exist for the forgeries that break a rule of the log."""
    forger.execute("UPDATE events SET type = 'Forged' WHERE position = 12")
    forger.rechain()
    report = verify(forger)
    assert report.ok and report.checked == 31


def swap_recorded_at(a: int, b: int) -> list[str]:
    return [
        f"CREATE TEMP TABLE swap AS SELECT position, recorded_at FROM events "
        f"WHERE position IN ({a}, {b})",
        f"UPDATE events SET recorded_at = (SELECT recorded_at FROM swap "
        f"WHERE swap.position = {a + b} - events.position) WHERE position IN ({a}, {b})",
    ]


# Each case: the forgery, then the position verify must name and a fragment of its reason.
FORGERIES: dict[str, tuple[list[str], int, str]] = {
    "recorded_at reordered": (swap_recorded_at(6, 7), 7, "recorded_at goes back"),
    "recorded_at of a free event moved back": (
        swap_recorded_at(30, 31),
        31,
        "recorded_at goes back",
    ),
    "a version skipped": (
        [
            "UPDATE events SET version = -version - 1 WHERE aggregate_id = 'a1' AND version >= 3",
            "UPDATE events SET version = -version WHERE version < 0",
        ],
        10,
        "a1 jumps to version 4, expected 3",
    ),
    "an event deleted and the tail renumbered": (
        [
            "DELETE FROM events WHERE position = 10",
            "UPDATE events SET position = -position WHERE position > 10",
            "UPDATE events SET position = -position - 1 WHERE position < 0",
        ],
        13,
        "a1 jumps to version 4, expected 3",
    ),
    "an aggregate that changes type": (
        ["UPDATE events SET aggregate_type = 'Admin' WHERE aggregate_id = 'a3' AND version = 4"],
        16,
        "a3 changes type to Admin",
    ),
    "an aggregate that loses its type": (
        ["UPDATE events SET aggregate_type = NULL WHERE aggregate_id = 'a3' AND version = 2"],
        8,
        "a3 changes type to None",
    ),
    "an event deleted, the chain closed over the gap": (
        ["DELETE FROM events WHERE position = 20"],
        20,
        "position 20 is missing (next stored is 21)",
    ),
    "the first event deleted": (
        ["DELETE FROM events WHERE position = 1"],
        1,
        "position 1 is missing (next stored is 2)",
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_verify_catches_a_forgery_with_a_consistent_chain(forger: Forger, name: str) -> None:
    statements, position, reason = FORGERIES[name]
    forger.execute(*statements)
    forger.rechain()
    report = verify(forger)
    assert (report.ok, report.first_bad_position) == (False, position), report
    assert reason in (report.reason or ""), report
    assert report.checked == position - 1


def test_a_forged_version_gap_in_an_aggregate_of_one_event(forger: Forger) -> None:
    """A lone first event whose version is not 1."""
    forger.execute("UPDATE events SET aggregate_id = 'solo', version = 2 WHERE position = 31")
    forger.rechain()
    report = verify(forger)
    assert (report.ok, report.first_bad_position) == (False, 31), report
    assert "solo jumps to version 2, expected 1" in (report.reason or "")


@pytest.mark.parametrize("name", list(FORGERIES))
def test_the_bounded_pass_alone_flags_every_forgery(forger: Forger, name: str) -> None:
    """verify's pass in bounded memory (the aggregate pass, the walk without
    state per aggregate, their sums) detects each forgery itself; only then
    does the exact walk run to name it. On the untouched store it is ok."""
    from store.verifying import _bounded

    with EventStore(forger.location, readonly=True) as es:
        head, kept = es.backend.kept_counts()
        clean = _bounded(es, head, kept, None)
        assert clean is not None and clean.ok and clean.checked == head
    statements, _, _ = FORGERIES[name]
    forger.execute(*statements)
    forger.rechain()
    with EventStore(forger.location, readonly=True) as es:
        head, kept = es.backend.kept_counts()
        found = _bounded(es, head, kept, None)
        assert found is None or not found.ok, found

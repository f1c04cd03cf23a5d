"""``sss migrate``: a store copied between SQLite and PostgreSQL keeps every
position, version, time, payload text and hash; a failed copy leaves nothing.

The PostgreSQL cases need ``SSS_TEST_POSTGRES_URL`` (deselected without it; they
fail when it is set and the server does not answer)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import urllib.parse
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from store import EventStore, NewEvent, Reducers, StoreError
from workbench.cli import migrate as migrate_module
from workbench.cli.common import CliError
from workbench.cli.migrate import migrate

ENV = "SSS_TEST_POSTGRES_URL"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema of its own on the test server, dropped afterwards."""
    base = os.environ.get(ENV)
    if not base:
        pytest.fail(f"{ENV} is not set; tests marked postgres need it", pytrace=False)
    schema = f"t_migrate_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(base, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"{ENV} is set, but PostgreSQL at {base} does not answer: {e}", pytrace=False)
    with admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    parts = urllib.parse.urlsplit(base)
    query = urllib.parse.urlencode([("options", f"-csearch_path={schema}")])
    try:
        yield parts._replace(query=query).geturl()
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def fill(es: EventStore) -> None:
    zone = timezone(timedelta(hours=-3, minutes=-30))
    es.append(
        [
            NewEvent(
                "OrderPlaced",
                {"total": 30.0, "big": 2**63 - 1, "e": 1e300, "items": ["é", "😀", None]},
                {"actor": "alice", "correlation_id": "c-1"},
                occurred_at=datetime(2001, 2, 3, 4, 5, 6, 789, tzinfo=zone),
            ),
            NewEvent("ItemAdded", {"sku": "a\tb\nc\\d", "z": {"b": 1, "a": 2}}),
        ],
        aggregate_id="order-1",
        aggregate_type="Order",
    )
    es.append([NewEvent("Tick", {})])
    for k in range(30):
        es.append([NewEvent("Renamed", {"name": f"n{k}"})], aggregate_id=f"customer-{k % 7}")
    es.snapshot("order-1")
    # A snapshot of other reducers (another fingerprint) comes along too.
    with EventStore(es.path, reducers=Reducers(version="2")) as other:
        other.snapshot("customer-3")


def same_store(a: EventStore, b: EventStore) -> None:
    assert list(a.read()) == list(b.read())
    assert list(a.aggregates()) == list(b.aggregates())
    ra, rb = a.verify(), b.verify()
    assert ra.ok and rb.ok and (ra.checked, ra.head_hash) == (rb.checked, rb.head_hash)
    assert a.backend.chain_page(0, 1000) == b.backend.chain_page(0, 1000)
    snapshots = a.backend.snapshot_page(None, 1000)
    assert len({fingerprint for fingerprint, _, _ in snapshots}) == 2
    assert snapshots == b.backend.snapshot_page(None, 1000)
    assert (
        b.backend.snapshot_page(None, 1)
        + b.backend.snapshot_page(
            (snapshots[0][1].aggregate_id, snapshots[0][0], snapshots[0][1].version), 1000
        )
        == snapshots
    )  # pages follow each other


def raw_rows(path: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM events ORDER BY position").fetchall()


def test_sqlite_to_sqlite_keeps_every_row(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with EventStore(source) as es:
        fill(es)
    report = migrate(source, target)
    assert (report.events, report.aggregates, report.snapshots) == (33, 8, 2)
    with EventStore(source) as a, EventStore(target) as b:
        same_store(a, b)
        assert report.head_hash == a.verify().head_hash
        (event,) = b.append([NewEvent("After", {})], aggregate_id="order-1", expected_version=2)
        assert event.position == 34 and b.verify().ok
    assert raw_rows(source) == raw_rows(target)[:33]


@pytest.mark.postgres
def test_sqlite_to_postgres_and_back(tmp_path: Path, pg_url: str) -> None:
    source, back = str(tmp_path / "a.db"), str(tmp_path / "back.db")
    with EventStore(source) as es:
        fill(es)
    migrate(source, pg_url)
    with EventStore(source) as a, EventStore(pg_url, readonly=True) as b:
        same_store(a, b)
    migrate(pg_url, back)
    assert raw_rows(source) == raw_rows(back)
    with EventStore(pg_url) as es:
        (event,) = es.append([NewEvent("After", {})], aggregate_id="order-1", expected_version=2)
        assert event.position == 34 and es.verify().ok


def test_an_empty_target_file_is_filled(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), tmp_path / "made-by-mktemp.db"
    with EventStore(source) as es:
        fill(es)
    target.touch()
    assert migrate(source, str(target)).events == 33
    with EventStore(source) as a, EventStore(str(target)) as b:
        same_store(a, b)


def test_a_target_with_events_is_refused_and_left_alone(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with EventStore(source) as es:
        fill(es)
    with EventStore(target) as es:
        es.append([NewEvent("Mine", {})])
    said: list[str] = []
    with pytest.raises(CliError, match="already holds 1 events"):
        migrate(source, target, said.append)
    assert said == []  # refused before the source's verify, not after it
    with EventStore(target) as es:
        assert es.head() == 1 and es.verify().ok
    with pytest.raises(CliError, match="same store"):
        migrate(source, source)


def test_a_source_that_does_not_verify_is_not_copied(tmp_path: Path) -> None:
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with EventStore(source) as es:
        fill(es)
    with sqlite3.connect(source) as conn:
        conn.execute("DROP TRIGGER events_guard_update")
        conn.execute("""UPDATE events SET data = '{"total":31}' WHERE position = 1""")
    with pytest.raises(CliError, match="does not verify"):
        migrate(source, target)
    assert not os.path.exists(target)


@pytest.mark.postgres
def test_a_failed_copy_leaves_the_target_empty(tmp_path: Path, pg_url: str) -> None:
    """PostgreSQL text cannot hold NUL; the copy fails midway and rolls back."""
    source = str(tmp_path / "a.db")
    with EventStore(source) as es:
        fill(es)
        es.append([NewEvent("Bad\x00Type", {})])
    with pytest.raises(StoreError, match="NUL"):
        migrate(source, pg_url)
    with EventStore(pg_url) as es:
        assert es.head() == 0 and list(es.aggregates()) == []


def test_the_command_prints_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="sss")
    migrate_module.register(parser.add_subparsers())
    source, target = str(tmp_path / "a.db"), str(tmp_path / "b.db")
    with EventStore(source) as es:
        fill(es)
    args = parser.parse_args(["migrate", source, target])
    assert args.func(args) == 0
    out = capsys.readouterr()
    assert out.out.startswith("ok: 33 events, 8 aggregates and 2 snapshots copied and verified")
    assert "verifying" in out.err
    args = parser.parse_args(["migrate", "--quiet", source, str(tmp_path / "c.db")])
    assert args.func(args) == 0
    assert capsys.readouterr().out == ""


@pytest.mark.postgres
def test_times_survive_as_utc(tmp_path: Path, pg_url: str) -> None:
    source = str(tmp_path / "a.db")
    with EventStore(source) as es:
        fill(es)
    migrate(source, pg_url)
    with EventStore(pg_url, readonly=True) as es:
        first = es.get(1)
    assert first.occurred_at == datetime(2001, 2, 3, 7, 35, 6, 789, tzinfo=UTC)
    assert first.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.postgres
def test_messages_never_show_a_password(tmp_path: Path, pg_url: str) -> None:
    source = str(tmp_path / "a.db")
    with EventStore(source) as es:
        fill(es)
    with EventStore(pg_url) as es:
        es.append([NewEvent("Mine", {})])
    secret = pg_url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@")
    assert secret != pg_url  # the test server trusts, so any password opens it
    with pytest.raises(CliError, match="already holds 1 events") as info:
        migrate(source, secret)
    assert "hunter2" not in str(info.value)

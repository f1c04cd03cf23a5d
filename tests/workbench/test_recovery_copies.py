"""``sss backup`` and ``sss replicate``: copies taken while real writer
processes append are always verified prefixes of the source; a replica
survives a SIGKILL and resumes from its own head; a diverged target is
refused, naming the first differing position."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from tests.store.pg import admin, fresh_postgres_url
from tests.workbench.test_cli_process import sss, sss_script

WRITER = textwrap.dedent(
    """
    import sys, time
    from store import EventStore, NewEvent
    location, count = sys.argv[1], int(sys.argv[2])
    with EventStore(location) as es:
        for i in range(count):
            es.append([NewEvent("Ticked", {"i": i, "pad": "x" * 50})], f"agg-{i % 7}")
            time.sleep(0.001)
    """
)


def fill(location: str, count: int, start: int = 0) -> None:
    with EventStore(location) as es:
        for i in range(start, start + count, 50):
            with es.transaction():
                for j in range(i, min(i + 50, start + count)):
                    es.append([NewEvent("Ticked", {"i": j})], f"agg-{j % 7}")


def hash_at(location: str, position: int) -> str:
    with EventStore(location, readonly=True) as es:
        return es.get(position).hash


def head_of(location: str) -> tuple[int, str | None]:
    with EventStore(location, readonly=True) as es:
        report = es.verify()
        assert report.ok, report
        return report.head_position, report.head_hash


def writer(location: str, count: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", WRITER, location, str(count)])


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_postgres_url(request.node.name)


# -- backup -------------------------------------------------------------------


def test_backup_copies_a_verified_store_and_refuses_existing_files(tmp_path: Path) -> None:
    source, target = str(tmp_path / "s.db"), str(tmp_path / "b.db")
    fill(source, 300)
    done = sss("backup", source, target)
    assert done.returncode == 0, done.stderr
    assert "300 events" in done.stdout and done.stderr == ""  # no bar off a terminal
    assert head_of(target) == head_of(source)
    beside = sorted(name for name in os.listdir(tmp_path) if not name.startswith("s.db"))
    assert beside == ["b.db"]  # one self-contained file, no scratch left
    again = sss("backup", source, target)
    assert again.returncode == 1
    assert again.stderr.count("\n") == 1 and "never overwrites" in again.stderr
    plain = tmp_path / "notes.txt"
    plain.write_text("keep me")
    refused = sss("backup", source, plain)
    assert refused.returncode == 1 and plain.read_text() == "keep me"
    same = sss("backup", source, source)
    assert same.returncode == 1 and "same store" in same.stderr


def test_backup_until_writes_the_prefix(tmp_path: Path) -> None:
    source = str(tmp_path / "s.db")
    fill(source, 120)
    cut = datetime.now(UTC)
    time.sleep(0.01)
    fill(source, 30, start=120)
    by_position = str(tmp_path / "p.db")
    assert sss("backup", source, by_position, "--until-position", 77).returncode == 0
    assert head_of(by_position) == (77, hash_at(source, 77))
    by_time = str(tmp_path / "t.db")
    done = sss("backup", source, by_time, "--until", cut.isoformat())
    assert done.returncode == 0, done.stderr
    assert head_of(by_time) == (120, hash_at(source, 120))
    beyond = sss("backup", source, str(tmp_path / "x.db"), "--until-position", 151)
    assert beyond.returncode == 1 and "beyond" in beyond.stderr
    assert not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_backup_while_a_writer_process_appends_is_a_verified_prefix(tmp_path: Path) -> None:
    source = str(tmp_path / "s.db")
    fill(source, 2000)
    proc = writer(source, 1500)
    try:
        heads = []
        for n in range(3):
            target = str(tmp_path / f"b{n}.db")
            done = sss("backup", source, target)
            assert done.returncode == 0, done.stderr
            position, digest = head_of(target)
            assert position >= 2000 and digest == hash_at(source, position)
            heads.append(position)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == 0
    assert heads[-1] > 2000  # the writer was appending during the copies


@pytest.mark.postgres
def test_backup_file_to_server_and_back(tmp_path: Path, pg_url: str) -> None:
    source = str(tmp_path / "s.db")
    fill(source, 200)
    up = sss("backup", source, pg_url)
    assert up.returncode == 0, up.stderr
    assert head_of(pg_url) == head_of(source)
    refused = sss("backup", source, pg_url)
    assert refused.returncode == 1 and "already holds 200 events" in refused.stderr
    down = str(tmp_path / "d.db")
    done = sss("backup", pg_url, down, "--until-position", 150)
    assert done.returncode == 0, done.stderr
    assert head_of(down) == (150, hash_at(source, 150))


# -- replicate ----------------------------------------------------------------


def test_replicate_appends_what_the_target_lacks(tmp_path: Path) -> None:
    source, target = str(tmp_path / "s.db"), str(tmp_path / "r.db")
    fill(source, 100)
    assert sss("backup", source, target, "--until-position", 40).returncode == 0
    done = sss("replicate", source, target)
    assert done.returncode == 0, done.stderr
    assert "60 events appended" in done.stdout
    assert head_of(target) == head_of(source)
    fresh = str(tmp_path / "new.db")
    assert sss("replicate", source, fresh).returncode == 0
    assert head_of(fresh) == head_of(source)


def test_replicate_refuses_a_diverged_target(tmp_path: Path) -> None:
    source, target = str(tmp_path / "s.db"), str(tmp_path / "r.db")
    fill(source, 100)
    assert sss("backup", source, target, "--until-position", 30).returncode == 0
    with EventStore(target) as es:
        es.append([NewEvent("Other", {"i": 1})], "agg-x")
    before = head_of(target)
    done = sss("replicate", source, target)
    assert done.returncode == 1
    assert "differs" in done.stderr and "at position 31" in done.stderr
    assert head_of(target) == before


def wait_for(condition: object, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def target_head(location: str) -> int:
    try:
        with EventStore(location, readonly=True) as es:
            return es.head()
    except Exception:
        return -1


@pytest.mark.slow
def test_replicate_follow_survives_a_sigkill_and_stops_on_sigterm(tmp_path: Path) -> None:
    source, target = str(tmp_path / "s.db"), str(tmp_path / "r.db")
    fill(source, 500)
    proc = writer(source, 800)
    follow_cmd = [sss_script(), "replicate", source, target, "--follow", "--quiet"]
    replica = subprocess.Popen(follow_cmd, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: target_head(target) > 500)
        replica.send_signal(signal.SIGKILL)
        replica.communicate(timeout=10)
        assert replica.returncode == -signal.SIGKILL
        replica = subprocess.Popen(follow_cmd, stderr=subprocess.PIPE, text=True)
        proc.wait(timeout=60)
        assert proc.returncode == 0
        final = target_head(source)
        wait_for(lambda: target_head(target) == final)
    finally:
        proc.kill()
        replica.send_signal(signal.SIGTERM)
        _, errors = replica.communicate(timeout=20)
    assert replica.returncode == 0, errors
    assert head_of(target) == head_of(source)


@pytest.mark.slow
@pytest.mark.postgres
def test_replicate_follow_from_server_to_file_resumes_after_the_file_is_locked(
    tmp_path: Path, pg_url: str
) -> None:
    target = str(tmp_path / "r.db")
    fill(pg_url, 100)
    name = f"replica_{os.getpid()}_{time.monotonic_ns()}"
    source = f"{pg_url}&application_name={name}"
    cmd = [sss_script(), "replicate", source, target, "--follow", "--retry", "0.2"]
    replica = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: target_head(target) == 100)
        # Another writer holds the target's write lock: the replica must wait and resume.
        import sqlite3

        blocker = sqlite3.connect(target, timeout=0)
        blocker.execute("BEGIN IMMEDIATE")
        fill(pg_url, 50, start=100)
        time.sleep(1.0)
        assert target_head(target) == 100
        blocker.rollback()
        blocker.close()
        wait_for(lambda: target_head(target) == 150)
        # The server drops the replica's connections (as in a restart): it reconnects.
        with admin() as conn:
            dropped = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert dropped is not None and dropped[0] >= 1
        fill(pg_url, 25, start=150)
        wait_for(lambda: target_head(target) == 175)
    finally:
        replica.send_signal(signal.SIGINT)
        _, errors = replica.communicate(timeout=20)
    assert replica.returncode == 0, errors
    assert head_of(target) == head_of(pg_url)


def _fails_at_once(source: str, target: str) -> None:
    cmd = [sss_script(), "replicate", source, target, "--follow", "--retry", "0.1"]
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, (source, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "nothing to replicate" in lines[0], lines
    assert time.monotonic() - started < 20
    assert not os.path.exists(target)


@pytest.mark.slow
def test_replicate_follow_from_a_source_that_never_existed_fails_at_once(tmp_path: Path) -> None:
    not_a_store = tmp_path / "notes.txt"
    not_a_store.write_text("not a database\n" * 100)
    for source in (str(tmp_path / "never.db"), str(not_a_store)):
        _fails_at_once(source, str(tmp_path / "r.db"))


@pytest.mark.slow
@pytest.mark.postgres
def test_replicate_follow_from_a_server_store_that_never_existed_fails_at_once(
    tmp_path: Path, pg_url: str
) -> None:
    import urllib.parse

    parts = urllib.parse.urlsplit(pg_url)
    no_database = urllib.parse.urlunsplit(parts._replace(path="/no_such_database_sss"))
    for source in (pg_url, no_database):  # a schema never created; a database never made
        _fails_at_once(source, str(tmp_path / "r.db"))

"""Subscriptions under SIGKILL and concurrent writers, with real processes.

Consumers run as separate Python processes following the log while writer
processes append; the test kills consumers with SIGKILL at random moments
(after each has made some progress, so kills land mid-batch), restarts them,
and finally drains and checks what was handled:

- at least once: every committed event was handled (none skipped);
- exactly once: the events the handler appended name each source event once;
- a consumer group: every event was handled by exactly one member, the one
  its aggregate hashes to.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent, group_member

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BACKENDS = ["file"]
if os.environ.get("SSS_TEST_POSTGRES_URL"):
    BACKENDS.append("postgres")

WRITER = r"""
import os, random, sys, time
from store import EventStore, NewEvent
path, seed, stop = sys.argv[1], int(sys.argv[2]), sys.argv[3]
rng = random.Random(seed)
with EventStore(path, timeout=30) as es:
    done = 0
    while not os.path.exists(stop):
        n = rng.randint(1, 4)
        aggregate = None if rng.random() < 0.15 else f"acct-{rng.randrange(20)}"
        kind = "Work" if rng.random() < 0.8 else "Other"
        es.append([NewEvent(kind, {"w": seed, "i": done + k}) for k in range(n)],
                  aggregate_id=aggregate)
        done += n
        time.sleep(rng.random() * 0.06)
"""

CONSUMER = r"""
import os, sys, time
from store import EventStore, NewEvent

def consume(path, log, mode, member, size, follow):
    es = EventStore(path, timeout=30)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def handler(event):
        if mode == "exact":
            es.append([NewEvent("Handled", {"source": event.position, "member": member})],
                      aggregate_id=f"handled-{member}")
        time.sleep(0.0003)
        os.write(fd, f"{event.position}\n".encode())

    group = {} if size == 1 else {"group_member": member, "group_size": size}
    es.subscribe("consumer", handler, types=["Work"], batch_size=10, follow=follow,
                 exactly_once=mode == "exact", poll_interval=0.01, **group)

# A fork server: the store is imported once, so a consumer starts in
# milliseconds and twenty kills take a second or two, not twenty starts.
path = sys.argv[1]
if path.startswith("postgresql://"):
    import store.postgres  # imported once here, not in every consumer
for line in sys.stdin:
    command, *args = line.split()
    if command == "start":
        log, err, mode, member, size, follow = args
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 2)
                consume(path, log, mode, int(member), int(size), follow == "1")
            except BaseException:
                import traceback
                traceback.print_exc()
                code = 1
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(pid, flush=True)
    elif command == "reap":
        _, status = os.waitpid(int(args[0]), 0)
        print(status, flush=True)
"""


def _python(code: str, *args: str) -> subprocess.Popen[str]:
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


class Consumers:
    """Consumer processes forked by one server process on a store."""

    def __init__(self, location: str, workdir: Path) -> None:
        self.server = _python(CONSUMER, location)
        self.workdir = workdir
        self.started = 0

    def _ask(self, line: str) -> int:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(line + "\n")
        self.server.stdin.flush()
        answer = self.server.stdout.readline()
        if not answer:
            raise AssertionError(f"the fork server died: {self.server.communicate()[1]}")
        return int(answer)

    def start(self, log: Path, mode: str, member: int = 0, size: int = 1,
              follow: bool = True) -> int:  # fmt: skip
        self.started += 1
        self.err = self.workdir / f"err-{self.started}"
        return self._ask(f"start {log} {self.err} {mode} {member} {size} {int(follow)}")

    def kill(self, pid: int) -> bool:
        """SIGKILL; True when that is what ended the process."""
        os.kill(pid, signal.SIGKILL)
        status = self._ask(f"reap {pid}")
        return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

    def wait(self, pid: int) -> None:
        status = self._ask(f"reap {pid}")
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, self.err.read_text()

    def close(self) -> None:
        assert self.server.stdin is not None
        self.server.stdin.close()
        self.server.wait(30)
        for stream in (self.server.stdout, self.server.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        path = str(tmp_path / "events.db")
        EventStore(path).close()
        yield path
    else:
        request.applymarker(pytest.mark.postgres)
        from tests.store.pg import fresh_postgres_url

        for url in fresh_postgres_url(request.node.name):
            EventStore(url).close()
            yield url


@pytest.fixture
def consumers(location: str, tmp_path: Path) -> Iterator[Consumers]:
    server = Consumers(location, tmp_path)
    yield server
    server.close()


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _wait_for_progress(log: Path, size: int) -> None:
    deadline = time.monotonic() + 30
    while _size(log) <= size:
        if time.monotonic() > deadline:
            raise AssertionError(f"the consumer writing {log.name} made no progress")
        time.sleep(0.002)


def _kill_repeatedly(consumers: Consumers, logs: list[Path], mode: str, kills: int) -> int:
    """Run one consumer per member, and SIGKILL a random one ``kills`` times,
    each after it made progress; the number of kills that ended a live process."""
    rng = random.Random(kills)
    size = len(logs)
    running = {m: consumers.start(logs[m], mode, m, size) for m in range(size)}
    landed = 0
    try:
        for _ in range(kills):
            member = rng.randrange(size)
            # Some kills land in a consumer's first batch, some after it saved.
            _wait_for_progress(logs[member], _size(logs[member]) + rng.randrange(60))
            landed += consumers.kill(running.pop(member))
            running[member] = consumers.start(logs[member], mode, member, size)
    finally:
        for pid in running.values():
            consumers.kill(pid)
    return landed


def _drain(consumers: Consumers, logs: list[Path], mode: str) -> None:
    for member, log in enumerate(logs):
        consumers.wait(consumers.start(log, mode, member, len(logs), follow=False))


def _writers(location: str, stop: Path, n: int = 2) -> list[subprocess.Popen[str]]:
    """A backlog of events, then writers appending until ``stop`` exists."""
    rng = random.Random(n)
    by_aggregate: dict[str | None, list[NewEvent]] = {}
    for i in range(300):
        aggregate = None if i % 7 == 0 else f"acct-{rng.randrange(20)}"
        kind = "Work" if i % 5 else "Other"
        by_aggregate.setdefault(aggregate, []).append(NewEvent(kind, {"i": i}))
    with EventStore(location) as es:
        for aggregate, events in by_aggregate.items():
            es.append(events, aggregate_id=aggregate)
    return [_python(WRITER, location, str(seed), str(stop)) for seed in range(n)]


def _finish(writers: list[subprocess.Popen[str]], stop: Path) -> None:
    stop.touch()
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err


def _work(location: str) -> list[Any]:
    with EventStore(location, readonly=True) as es:
        return list(es.read(types=["Work"]))


def test_at_least_once_skips_nothing_across_20_kills(
    location: str, consumers: Consumers, tmp_path: Path
) -> None:
    log = tmp_path / "handled.log"
    writers = _writers(location, tmp_path / "stop")
    landed = _kill_repeatedly(consumers, [log], "plain", 20)
    _finish(writers, tmp_path / "stop")
    _drain(consumers, [log], "plain")
    handled = [int(line) for line in log.read_text().split()]
    wanted = [e.position for e in _work(location)]
    assert landed == 20
    assert set(handled) == set(wanted)  # nothing skipped, nothing foreign
    assert len(handled) > len(wanted)  # kills mid-batch did cause redelivery
    with EventStore(location, readonly=True) as es:
        (info,) = es.subscriptions()
        assert info.lag == 0 and info.position == es.head()


def test_exactly_once_no_duplicates_nothing_missing_across_20_kills(
    location: str, consumers: Consumers, tmp_path: Path
) -> None:
    log = tmp_path / "handled.log"
    writers = _writers(location, tmp_path / "stop")
    landed = _kill_repeatedly(consumers, [log], "exact", 20)
    _finish(writers, tmp_path / "stop")
    _drain(consumers, [log], "exact")
    assert landed == 20
    with EventStore(location, readonly=True) as es:
        sources = Counter(e.data["source"] for e in es.read(types=["Handled"]))
        assert es.verify().ok
    wanted = {e.position for e in _work(location)}
    assert set(sources) == wanted
    assert max(sources.values()) == 1
    # The handler itself ran more often than that: the kills rolled batches back.
    assert len(log.read_text().split()) > len(wanted)


def test_a_group_handles_each_event_by_exactly_one_member(
    location: str, consumers: Consumers, tmp_path: Path
) -> None:
    size = 3
    logs = [tmp_path / f"member-{m}.log" for m in range(size)]
    writers = _writers(location, tmp_path / "stop")
    assert _kill_repeatedly(consumers, logs, "exact", 9) == 9
    _finish(writers, tmp_path / "stop")
    _drain(consumers, logs, "exact")
    work = {e.position: e for e in _work(location)}
    with EventStore(location, readonly=True) as es:
        handled = list(es.read(types=["Handled"]))
        infos = es.subscriptions()
    counts = Counter(e.data["source"] for e in handled)
    assert set(counts) == set(work) and max(counts.values()) == 1
    for e in handled:
        source = work[e.data["source"]]
        assert e.data["member"] == group_member(source.aggregate_id, size)
    assert {e.data["member"] for e in handled} == {0, 1, 2}
    assert [(i.member, i.lag) for i in infos] == [(0, 0), (1, 0), (2, 0)]


def test_lag_is_right_under_a_concurrent_writer(
    location: str, consumers: Consumers, tmp_path: Path
) -> None:
    with EventStore(location) as es:
        es.subscribe("paused", lambda e: None, types=["Work"], follow=False)  # at 0
        writers = _writers(location, tmp_path / "stop", n=1)
        live = consumers.start(tmp_path / "live.log", "plain")
        try:
            first_work: int | None = None
            for _ in range(30):
                before = es.count(types=["Work"])
                infos = {i.name: i for i in es.subscriptions()}
                after = es.count(types=["Work"])
                assert before <= infos["paused"].lag <= after
                if before and first_work is None:
                    first_work = next(iter(es.read(types=["Work"], limit=1))).position
                assert infos["paused"].next_position == first_work or not before
                if "consumer" in infos:
                    assert 0 <= infos["consumer"].lag <= after
                time.sleep(0.02)
            _finish(writers, tmp_path / "stop")
            # Once the writer stops, the live consumer catches up: lag 0 at the head.
            deadline = time.monotonic() + 30
            while True:
                info = {i.name: i for i in es.subscriptions()}["consumer"]
                if info.lag == 0 and info.position == es.head():
                    break
                assert time.monotonic() < deadline, info
                time.sleep(0.05)
            assert info.lag_seconds == 0.0 and info.next_position is None
            paused = {i.name: i for i in es.subscriptions()}["paused"]
            assert paused.lag == es.count(types=["Work"]) and paused.lag_seconds > 0
        finally:
            consumers.kill(live)

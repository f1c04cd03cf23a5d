"""Group commit (store.grouping): threads of one process share a transaction.

The deterministic tests hold the store's lock while the callers queue, so all
of them land in one group; the crash test runs a real process of many
appending threads and kills it with SIGKILL while groups are in flight.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import (
    ANY,
    NO_STREAM,
    ConcurrencyError,
    DuplicateEventError,
    EventStore,
    NewEvent,
    RecordedEvent,
    ValidationError,
)

ROOT = Path(__file__).resolve().parents[2]

Outcome = list[RecordedEvent] | BaseException


def _in_one_group(es: EventStore, calls: list[Callable[[], list[RecordedEvent]]]) -> list[Outcome]:
    """Run the calls on threads of their own while the store's lock is held,
    and let go once all of them are queued: they form one group."""
    assert es._grouper is not None
    outcomes: list[Outcome | None] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except BaseException as e:
            outcomes[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    before = es._grouper.groups
    with es._lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(es._grouper._queue) < len(calls):
            assert time.monotonic() < deadline, "the callers did not queue"
            time.sleep(0.001)
    for t in threads:
        t.join(30)
    assert es._grouper.groups == before + 1, "the callers were not written as one group"
    assert all(o is not None for o in outcomes)
    return [o for o in outcomes if o is not None]


GROUPED = ["file", "postgres"] if os.environ.get("SSS_TEST_POSTGRES_URL") else ["file"]


@pytest.fixture(params=GROUPED)
def grouped_store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "file":
        with EventStore(str(tmp_path / "events.db")) as es:
            yield es
        return
    request.applymarker(pytest.mark.postgres)
    from tests.store.pg import fresh_postgres_url

    for url in fresh_postgres_url(request.node.name):
        with EventStore(url) as es:
            yield es


def test_each_conflicting_caller_gets_its_own_error(grouped_store: EventStore) -> None:
    es = grouped_store
    es.append([NewEvent("Opened")], aggregate_id="typed", aggregate_type="Account")
    stored = es.append([NewEvent("Kept", {"v": 1}, event_id=str(uuid.uuid4()))])[0]

    def racer(n: int) -> Callable[[], list[RecordedEvent]]:
        return lambda: es.append(
            [NewEvent("Claimed", {"by": n})], aggregate_id="x", expected_version=NO_STREAM
        )

    def own(n: int) -> Callable[[], list[RecordedEvent]]:
        return lambda: es.append(
            [NewEvent("Own", {"n": n}), NewEvent("Own", {"n": n, "second": True})],
            aggregate_id=f"own-{n}",
            expected_version=0,
        )

    calls = [racer(0), own(0), racer(1), own(1), racer(2)]
    calls.append(lambda: es.append([NewEvent("Kept", {"v": 2}, event_id=stored.event_id)]))
    calls.append(lambda: es.append([NewEvent("T")], aggregate_id="typed", aggregate_type="Other"))
    calls.append(own(2))
    head = es.head()
    outcomes = _in_one_group(es, calls)

    racers = [outcomes[0], outcomes[2], outcomes[4]]
    won = [o for o in racers if isinstance(o, list)]
    lost = [o for o in racers if isinstance(o, ConcurrencyError)]
    assert len(won) == 1 and len(lost) == 2, racers
    assert all("it is at 1" in str(e) or "at version 1" in str(e) for e in lost), lost
    assert isinstance(outcomes[5], DuplicateEventError)
    assert isinstance(outcomes[6], ValidationError)
    for i in (1, 3, 7):
        events = outcomes[i]
        assert isinstance(events, list) and [e.version for e in events] == [1, 2]
    # Everyone who was answered with events has exactly those stored, in
    # gapless positions with a chain that verifies; the failures left nothing.
    committed = [e for o in outcomes if isinstance(o, list) for e in o]
    assert sorted(e.position for e in committed) == list(range(head + 1, head + 8))
    for event in committed:
        assert es.get(event.position).event_id == event.event_id
    assert es.head() == head + 7
    assert es.aggregate("x").version == 1
    assert es.aggregate("typed").version == 1
    report = es.verify()
    assert report.ok and report.checked == head + 7


def test_idempotent_retries_in_one_group_answer_the_stored_events(
    grouped_store: EventStore,
) -> None:
    es = grouped_store
    ids = [str(uuid.uuid4()) for _ in range(3)]

    def call() -> list[RecordedEvent]:
        batch = [NewEvent("Paid", {"k": k}, event_id=i) for k, i in enumerate(ids)]
        return es.append(batch, aggregate_id="order-1", aggregate_type="Order")

    outcomes = _in_one_group(es, [call, call, call])
    assert all(isinstance(o, list) for o in outcomes), outcomes
    positions = [[e.position for e in o] for o in outcomes if isinstance(o, list)]
    assert positions == [[1, 2, 3]] * 3
    assert es.head() == 3


def test_snapshots_fall_due_inside_a_group(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "s.db"), snapshot_every=2) as es:
        calls = [
            (lambda n=n: es.append([NewEvent("Step", {f"k{n}": n})], aggregate_id="agg"))
            for n in range(7)
        ]
        outcomes = _in_one_group(es, calls)
        assert all(isinstance(o, list) for o in outcomes)
        assert es.state_at("agg").state == {f"k{n}": n for n in range(7)}
        snapshots = list(es.backend.snapshots(es._fingerprint))
        assert [s.version for s in snapshots] == [2, 4, 6]
        for snap in snapshots:
            assert snap.state == es.state_at("agg", version=snap.version).state
        assert es.verify().ok


def test_asyncio_to_thread_joins_the_same_group(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "a.db")) as es:
        assert es._grouper is not None

        async def main() -> list[list[RecordedEvent]]:
            def one(n: int) -> list[RecordedEvent]:
                return es.append([NewEvent("Async", {"n": n})], aggregate_id=f"a-{n}")

            with es._lock:
                tasks = [asyncio.create_task(asyncio.to_thread(one, n)) for n in range(6)]
                while len(es._grouper._queue) < 6:  # type: ignore[union-attr]
                    await asyncio.sleep(0.001)
            return await asyncio.gather(*tasks)

        results = asyncio.run(main())
        assert es._grouper.groups == 1 and es._grouper.grouped == 6
        assert sorted(r[0].position for r in results) == list(range(1, 7))


def test_group_commit_off_commits_each_append_alone(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "off.db"), group_commit=False) as es:
        assert es._grouper is None and not es.group_commit
        threads = [
            threading.Thread(target=lambda n=n: es.append([NewEvent("E")], aggregate_id=f"a-{n}"))
            for n in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert es.head() == 8 and es.verify().ok
    with pytest.raises(ValidationError, match="group_commit"):
        EventStore(str(tmp_path / "bad.db"), group_commit="yes")  # type: ignore[arg-type]


def test_appends_inside_a_transaction_join_it_not_a_group(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "t.db")) as es:
        with pytest.raises(RuntimeError), es.transaction():
            es.append([NewEvent("A")], aggregate_id="a")
            es.append([NewEvent("B")], aggregate_id="b")
            raise RuntimeError("roll back both")
        assert es.head() == 0
        assert es._grouper is not None and es._grouper.groups == 0


# -- SIGKILL while groups are in flight ------------------------------------------

APPENDERS = r"""
import os, random, sys, threading, uuid
from store import ConcurrencyError, EventStore, NewEvent

path, seed, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
namespace = uuid.UUID(sys.argv[4])
es = EventStore(path, timeout=30.0)
out = threading.Lock()

def say(line):
    with out:
        os.write(1, (line + "\n").encode())

def work(t):
    rng = random.Random(seed * 100 + t)
    aggregate = f"t{t}"
    found = es.backend.aggregate(aggregate)
    version = found.version if found else 0
    n = 0
    while True:
        size = rng.choice((1, 1, 2, 5, 20))
        name = f"{aggregate}:{version}"
        ids = [str(uuid.uuid5(namespace, f"{name}:{k}")) for k in range(size)]
        batch = [NewEvent("Put", {"b": name, "k": k}, event_id=i) for k, i in enumerate(ids)]
        # Every eighth call races a shared aggregate with a stale version.
        if n % 8 == 7:
            try:
                es.append([NewEvent("Race")], aggregate_id="shared", expected_version=0)
            except ConcurrencyError:
                pass
        es.append(batch, aggregate_id=aggregate, expected_version=version)
        say(json.dumps([aggregate, version, size, es._grouper.groups]))
        version += size
        n += 1

import json
say("started")
for t in range(threads):
    threading.Thread(target=work, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def _holds_write_lock(path: str) -> bool:
    """True when another connection is inside a write transaction right now."""
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        return True
    else:
        probe.execute("ROLLBACK")
        return False
    finally:
        probe.close()


@pytest.mark.slow
def test_sigkill_with_groups_in_flight_keeps_every_answered_batch(tmp_path: Path) -> None:
    path = str(tmp_path / "crash.db")
    namespace = uuid.uuid4()
    rng = random.Random(15)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    in_flight = 0
    answered: dict[str, list[tuple[int, int]]] = {}
    most_groups = 0
    for round_ in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-c", APPENDERS, path, str(round_), "16", str(namespace)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"started"
        wanted = rng.randint(30, 300)
        early: list[bytes] = []
        for _ in range(wanted):
            line = proc.stdout.readline()
            if not line:
                break
            early.append(line)
        in_flight += _holds_write_lock(path)
        os.kill(proc.pid, signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, err.decode()
        # Whatever reached the pipe was answered before the kill.
        for line in [*early, *rest.splitlines()]:
            if line.strip():
                aggregate, version, size, groups = json.loads(line)
                answered.setdefault(aggregate, []).append((version, size))
                most_groups = max(most_groups, groups)
        with EventStore(path) as es:
            count = es.head()
        with EventStore(path) as es:
            assert es.head() == count
            report = es.verify()
            assert report.ok and report.checked == count, report
            for t in range(16):
                aggregate = f"t{t}"
                stored = list(es.stream(aggregate)) if es.backend.aggregate(aggregate) else []
                batches: dict[str, list[int]] = {}
                for event in stored:
                    batches.setdefault(event.data["b"], []).append(event.data["k"])
                # No partial batch: each stored batch is whole and in order.
                for name, ks in batches.items():
                    version = int(name.split(":")[1])
                    size = next(
                        (s for v, s in answered.get(aggregate, []) if v == version), len(ks)
                    )
                    assert ks == list(range(size)), (name, ks)
                # Every answered batch is stored, with its own event ids.
                for version, size in answered.get(aggregate, []):
                    name = f"{aggregate}:{version}"
                    assert batches.get(name) == list(range(size)), f"{name} was answered but lost"
                    ids = [e.event_id for e in stored if e.data["b"] == name]
                    assert ids == [str(uuid.uuid5(namespace, f"{name}:{k}")) for k in range(size)]
    total = sum(len(v) for v in answered.values())
    print(
        f"{total} answered appends over 6 kills, {in_flight} inside a write; "
        f"up to {most_groups} groups in one run"
    )
    assert total > 100
    assert in_flight >= 2, "the kills never hit an open write"
    assert most_groups > 0, "the threads never formed a group"


# -- a group stores what the same appends one after another would -----------------

FIXED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
CALL = st.tuples(
    st.sampled_from([None, "a", "b", "c"]),  # aggregate
    st.sampled_from([None, "Account", "Order"]),  # aggregate type
    st.sampled_from(["any", "none", 0, 1, 2, 3]),  # expected version
    st.lists(st.integers(0, 9), min_size=1, max_size=3),  # event ids from a small pool
    st.integers(0, 3),  # which payload
)


def _call(es: EventStore, call: tuple[Any, ...]) -> Callable[[], list[RecordedEvent]]:
    aggregate, kind, expected, ids, payload = call
    version = ANY if expected == "any" else NO_STREAM if expected == "none" else expected
    if aggregate is None:
        kind, version = None, ANY
    events = [
        NewEvent("E", {"p": payload, "k": k}, event_id=str(uuid.UUID(int=i + 1)))
        for k, i in enumerate(ids)
    ]
    return lambda: es.append(events, aggregate_id=aggregate, aggregate_type=kind,
                             expected_version=version)  # fmt: skip


def _queued_in_order(es: EventStore, calls: list[Callable[[], list[RecordedEvent]]]) -> list[Any]:
    """As _in_one_group, but each caller queued before the next starts."""
    assert es._grouper is not None
    outcomes: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            outcomes[i] = calls[i]()
        except BaseException as e:
            outcomes[i] = e

    threads = []
    queued = 0
    with es._lock:
        for i in range(len(calls)):
            threads.append(threading.Thread(target=run, args=(i,)))
            threads[-1].start()
            deadline = time.monotonic() + 30
            # A batch refused before it queues (ids twice in it) ends its thread.
            while len(es._grouper._queue) <= queued and threads[-1].is_alive():
                assert time.monotonic() < deadline
                time.sleep(0.0005)
            queued = len(es._grouper._queue)
    for t in threads:
        t.join(30)
    return outcomes


def _outcome(o: Any) -> Any:
    if isinstance(o, BaseException):
        return type(o).__name__
    return [(e.position, e.event_id, e.version, e.hash) for e in o]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CALL, min_size=2, max_size=8))
def test_a_group_stores_what_one_append_after_another_stores(calls: list[Any]) -> None:
    with (
        EventStore(":memory:", clock=lambda: FIXED) as grouped,
        EventStore(":memory:", clock=lambda: FIXED, group_commit=False) as plain,
    ):
        got = _queued_in_order(grouped, [_call(grouped, c) for c in calls])
        want = []
        for c in calls:
            try:
                want.append(_call(plain, c)())
            except Exception as e:
                want.append(e)
        assert [_outcome(o) for o in got] == [_outcome(o) for o in want]
        assert [e.to_dict() for e in grouped.read()] == [e.to_dict() for e in plain.read()]
        assert grouped.verify().ok


class _Interrupted(BaseException):
    pass


class _InterruptedEvent(threading.Event):
    def wait(self, timeout: float | None = None) -> bool:
        raise _Interrupted


def test_a_caller_interrupted_while_queued_leaves_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import store.grouping

    with EventStore(str(tmp_path / "i.db")) as es:
        assert es._grouper is not None
        outcomes: dict[str, Any] = {}

        def run(name: str) -> None:
            try:
                outcomes[name] = es.append([NewEvent("E", {"by": name})], aggregate_id=name)
            except BaseException as e:
                outcomes[name] = e

        threads = {name: threading.Thread(target=run, args=(name,)) for name in "lif"}
        with es._lock:
            threads["l"].start()  # the leader, waiting for the lock
            _wait_queue(es, 1)
            with monkeypatch.context() as patched:
                patched.setattr(store.grouping.threading, "Event", _InterruptedEvent)
                threads["i"].start()  # queues, then its wait is interrupted
                threads["i"].join(30)
            assert isinstance(outcomes["i"], _Interrupted)
            assert len(es._grouper._queue) == 1  # it left the queue
            threads["f"].start()
            _wait_queue(es, 2)
        for t in threads.values():
            t.join(30)
        assert isinstance(outcomes["l"], list) and isinstance(outcomes["f"], list)
        assert es._grouper.groups == 1 and es._grouper.grouped == 2
        assert sorted(e.aggregate_id or "" for e in es.read()) == ["f", "l"]


def _wait_queue(es: EventStore, n: int) -> None:
    assert es._grouper is not None
    deadline = time.monotonic() + 30
    while len(es._grouper._queue) < n:
        assert time.monotonic() < deadline, "the caller did not queue"
        time.sleep(0.001)

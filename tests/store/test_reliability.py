"""Reliability with real processes: concurrent writers and SIGKILL mid-batch.

Each writer or victim is a separate Python process (``subprocess``), so the
store's guarantees are checked through SQLite's own file locking and crash
recovery, not through one process's threads.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from store import (
    EventStore,
    NewEvent,
    StoreError,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run_python(code: str, *args: str, **popen: Any) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **popen,
    )


def _wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


# -- concurrent writers --------------------------------------------------------

WRITER = r"""
import json, os, random, sys, time
from store import ConcurrencyError, EventStore, NewEvent, NotFoundError

path, go = sys.argv[1], sys.argv[5]
writer, operations, aggregates = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(writer)
es = EventStore(path, timeout=30.0)
open(f"{go}.ready-{writer}", "w").close()
while not os.path.exists(go):
    time.sleep(0.002)
appended, conflicts, errors = [], 0, []
for op in range(operations):
    aggregate_id = f"counter-{rng.randrange(aggregates)}"
    size = rng.choice((1, 1, 1, 2, 3))
    while True:
        try:
            version = es.aggregate(aggregate_id).version
        except NotFoundError:
            version = 0
        # Widen the read-then-write window so that writers really collide.
        time.sleep(rng.random() * 0.002)
        batch = [NewEvent("Bumped", {"writer": writer, "op": op, "k": k}) for k in range(size)]
        try:
            recorded = es.append(batch, aggregate_id=aggregate_id, aggregate_type="Counter",
                                 expected_version=version)
        except ConcurrencyError:
            conflicts += 1
            continue
        except Exception as e:
            errors.append(f"{type(e).__module__}.{type(e).__name__}: {e}")
            break
        appended.extend([e.event_id, e.aggregate_id, e.version, e.position] for e in recorded)
        break
    if errors:
        break
es.close()
print(json.dumps({"appended": appended, "conflicts": conflicts, "errors": errors}))
"""


def test_concurrent_writers_with_expected_versions(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    go = str(tmp_path / "go")
    writers, operations, aggregates = 4, 300, 20
    EventStore(path).close()  # create the schema once, before the race
    procs = [
        _run_python(WRITER, path, str(w), str(operations), str(aggregates), go)
        for w in range(writers)
    ]
    try:
        _wait_for(
            lambda: (
                all(os.path.exists(f"{go}.ready-{w}") for w in range(writers))
                or any(p.poll() is not None for p in procs)
            ),
            60,
            "the writers to start",
        )
        Path(go).touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]

    # Every conflict surfaced as ConcurrencyError; nothing else (no LockedError) happened.
    assert [r["errors"] for r in reports] == [[]] * writers
    conflicts = sum(r["conflicts"] for r in reports)
    assert conflicts > 0, "the writers never collided, so the test proved nothing"

    appended = [tuple(row) for r in reports for row in r["appended"]]
    with EventStore(path, readonly=True) as es:
        events = list(es.read())
        head = es.head()
        report = es.verify()
        infos = {info.aggregate_id: info for info in es.aggregates()}

    # Exactly the reported appends are stored: no lost and no phantom events.
    assert head == len(events) == len(appended)
    assert [e.position for e in events] == list(range(1, head + 1))
    assert sorted((e.event_id, e.aggregate_id, e.version, e.position) for e in events) == sorted(
        appended
    )
    # (aggregate, version) unique and gapless per aggregate.
    pairs = [(e.aggregate_id, e.version) for e in events]
    assert len(set(pairs)) == len(pairs)
    per_aggregate: dict[str, list[int]] = {}
    for aggregate_id, version in pairs:
        assert version is not None
        per_aggregate.setdefault(str(aggregate_id), []).append(version)
    for aggregate_id, versions in per_aggregate.items():
        assert versions == list(range(1, len(versions) + 1)), aggregate_id
        assert infos[aggregate_id].version == len(versions)
    assert len(per_aggregate) <= aggregates
    assert report.ok, report
    assert report.checked == head


# -- SIGKILL in the middle of a large batch ------------------------------------

VICTIM = r"""
import sys, time, uuid
from store import EventStore, NewEvent, NO_STREAM

path, name, size, namespace = sys.argv[1], sys.argv[2], int(sys.argv[3]), uuid.UUID(sys.argv[4])
batch = [
    NewEvent("Loaded", {"batch": name, "k": k, "pad": "x" * 32},
             metadata={"actor": "loader"}, event_id=str(uuid.uuid5(namespace, f"{name}:{k}")))
    for k in range(size)
]
es = EventStore(path, timeout=30.0)
print("started", flush=True)
start = time.perf_counter()
es.append(batch, aggregate_id=name, aggregate_type="Batch", expected_version=NO_STREAM)
print(f"done {time.perf_counter() - start:.6f}", flush=True)
es.close()
"""

BATCH = 20_000
KILLS = 20


def _batch_ids(namespace: uuid.UUID, name: str, size: int) -> list[str]:
    return [str(uuid.uuid5(namespace, f"{name}:{k}")) for k in range(size)]


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


def _start_victim(path: str, name: str, namespace: uuid.UUID) -> subprocess.Popen[str]:
    proc = _run_python(VICTIM, path, name, str(BATCH), str(namespace))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "started":
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the writer did not start: {line!r} {err}")
    return proc


def test_sigkill_mid_batch_leaves_whole_batches(tmp_path: Path) -> None:
    namespace = uuid.uuid4()
    rng = random.Random(20_000)

    # Calibrate: how long one uninterrupted batch takes on this machine.
    calibration = str(tmp_path / "calibration.db")
    proc = _start_victim(calibration, "calibration", namespace)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    duration = float(out.split()[-1])

    path = str(tmp_path / "crash.db")
    with EventStore(path) as es:  # some history the crashes must not damage
        es.append([NewEvent("Opened", {"n": n}) for n in range(50)], aggregate_id="ledger")
    present: list[str] = []
    outcomes: Counter[str] = Counter()
    for round_ in range(KILLS):
        name = f"batch-{round_}"
        proc = _start_victim(path, name, namespace)
        if round_ % 4 == 3:
            # Anywhere from event preparation to just past the commit.
            time.sleep(rng.uniform(0.05, 1.1) * duration)
        else:
            # Inside the write transaction: wait until the writer holds the lock.
            _wait_for(
                lambda victim=proc: _holds_write_lock(path) or victim.poll() is not None,
                60,
                "the write lock",
            )
            time.sleep(rng.uniform(0.0, 0.5) * duration)
        in_transaction = _holds_write_lock(path)
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        # 0: the writer had finished before the signal came (a late kill).
        assert proc.returncode in (0, -signal.SIGKILL), proc.returncode

        with EventStore(path) as es:  # reopening runs SQLite's crash recovery
            stored = es.count(aggregate_id=name)
            assert stored in (0, BATCH), f"{name}: {stored} of {BATCH} events survived a kill"
            assert stored or proc.returncode != 0, f"{name} finished but is not stored"
            if stored:
                present.append(name)
                events = list(es.stream(name))
                assert [e.event_id for e in events] == _batch_ids(namespace, name, BATCH)
                assert [e.version for e in events] == list(range(1, BATCH + 1))
            else:
                with pytest.raises(StoreError):
                    es.aggregate(name)
            head = es.head()
            assert head == 50 + BATCH * len(present)
            assert es.count() == head
            report = es.verify()
            assert report.ok, (name, report)
            assert report.checked == head
            assert es.state_at("ledger").state == {"n": 49}
        outcomes["committed" if stored else "in transaction" if in_transaction else "before"] += 1

    print(f"batch of {BATCH} takes {duration:.2f} s; kill outcomes: {dict(outcomes)}")
    # The kills really hit open write transactions, not only the set-up before them.
    assert outcomes["in transaction"] >= 5, outcomes

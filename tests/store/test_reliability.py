"""Reliability: concurrent writers and SIGKILL mid-batch with real processes, bad input.

Each writer or victim is a separate Python process (``subprocess``), so the
store's guarantees are checked through SQLite's own file locking and crash
recovery, not through one process's threads. The bad-input properties
(hypothesis) run in this process, against ``EventStore.append`` and ``sss import``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import math
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import (
    ANY,
    NO_STREAM,
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


# -- bad input -----------------------------------------------------------------


def _digest(es: EventStore) -> tuple[int, str, bool]:
    sha = hashlib.sha256()
    for event in es.read():
        sha.update(json.dumps(event.to_dict(), sort_keys=True).encode())
    return es.head(), sha.hexdigest(), es.verify().ok


SURROGATE = st.sampled_from(["\ud800", "a\udfffb", "\udc80x"])
BAD_STRING = st.one_of(st.just(""), st.just("   "), SURROGATE)
NOT_A_STRING = st.one_of(
    st.none(), st.integers(), st.floats(), st.booleans(), st.binary(max_size=4),
    st.builds(object), st.lists(st.text(max_size=3), max_size=2),
)  # fmt: skip
GOOD_STRING = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8
).filter(str.strip)
BAD_LEAF = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    SURROGATE,
    st.builds(set),
    st.binary(min_size=1, max_size=4),
    st.tuples(st.integers()),
    st.datetimes(),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
    st.builds(object),
    st.just(10**5000),
)
BAD_KEY = st.one_of(st.integers(), st.booleans(), st.none(), st.tuples(st.integers()), SURROGATE)


@st.composite
def bad_json_object(draw: st.DrawFn) -> Any:
    """Something that is not a JSON object, or one with a bad value or key somewhere inside."""
    kind = draw(st.sampled_from(["not a dict", "bad leaf", "bad key"]))
    if kind == "not a dict":
        return draw(
            st.one_of(NOT_A_STRING, st.text(max_size=3), st.lists(st.integers(), max_size=2))
        )
    leaf = draw(BAD_LEAF)
    inner: Any = {draw(BAD_KEY): 1} if kind == "bad key" else leaf
    for _ in range(draw(st.integers(0, 3))):
        inner = draw(st.sampled_from([lambda v: {"k": v}, lambda v: [1, v]]))(inner)
    return inner if isinstance(inner, dict) else {"x": inner}


AWARE = st.datetimes(timezones=st.just(dt.UTC))
BAD_TIME = st.one_of(
    st.datetimes(),  # naive
    st.text(max_size=10),
    st.integers(),
    st.just(dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))),
    st.just(dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(dt.timedelta(hours=-5)))),
)
BAD_VERSION = st.one_of(
    st.integers(max_value=0), st.just(2**63), st.just(2**80), st.booleans(), st.floats(),
    st.text(max_size=3), st.none(),
)  # fmt: skip


def good_event(draw: st.DrawFn) -> NewEvent:
    return NewEvent(
        draw(GOOD_STRING),
        draw(st.dictionaries(GOOD_STRING, st.integers(-5, 5), max_size=3)),
        metadata=draw(st.dictionaries(GOOD_STRING, GOOD_STRING, max_size=2)),
    )


@st.composite
def bad_event(draw: st.DrawFn) -> Any:
    field = draw(
        st.sampled_from(
            [
                "not an event",
                "type",
                "data",
                "metadata",
                "event_id",
                "occurred_at",
                "schema_version",
            ]
        )
    )
    if field == "not an event":
        return draw(
            st.one_of(
                NOT_A_STRING,
                st.text(max_size=3),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            )
        )
    kwargs: dict[str, Any] = {"type": "Good", "data": {"a": 1}, "metadata": {}}
    if field == "type":
        kwargs["type"] = draw(st.one_of(BAD_STRING, NOT_A_STRING))
    elif field in ("data", "metadata"):
        kwargs[field] = draw(bad_json_object())
    elif field == "event_id":
        kwargs["event_id"] = draw(
            st.one_of(
                NOT_A_STRING, st.text(max_size=40).filter(lambda s: not _is_uuid(s)), SURROGATE
            )
        )
    elif field == "occurred_at":
        kwargs["occurred_at"] = draw(BAD_TIME)
    else:
        kwargs["schema_version"] = draw(BAD_VERSION)
    return NewEvent(**kwargs)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except (ValueError, TypeError, AttributeError):
        return False
    return True


STORED_ID = str(uuid.UUID(int=1))
APPEND_FAULTS = [
    "events",
    "event",
    "aggregate_id",
    "aggregate_type",
    "expected_version",
    "concurrency",
    "duplicate in batch",
    "stored id, other content",
    "mixed stored and new",
]


@st.composite
def bad_append(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """An append call with exactly one thing wrong with it."""
    fault = draw(st.sampled_from(APPEND_FAULTS))
    before = [good_event(draw) for _ in range(draw(st.integers(0, 3)))]
    after = [good_event(draw) for _ in range(draw(st.integers(0, 3)))]
    kwargs: dict[str, Any] = {"aggregate_id": draw(st.sampled_from([None, "acct-1", "fresh-1"]))}
    if kwargs["aggregate_id"] is not None:
        kwargs["aggregate_type"] = "Account"
    events: Any = [*before, NewEvent("Fine", {"ok": True}), *after]
    if fault == "events":
        events = draw(st.one_of(st.none(), st.integers(), st.floats(), st.builds(object)))
    elif fault == "event":
        events = [*before, draw(bad_event()), *after]
    elif fault == "aggregate_id":
        kwargs = {
            "aggregate_id": draw(
                st.one_of(BAD_STRING, NOT_A_STRING.filter(lambda v: v is not None))
            )
        }
    elif fault == "aggregate_type":
        wrong = [st.just("Ledger")] if kwargs["aggregate_id"] in (None, "acct-1") else []
        # acct-1 is an Account, and an aggregate keeps its type; without an
        # aggregate_id any aggregate_type is an error.
        kwargs["aggregate_type"] = draw(
            st.one_of(BAD_STRING, NOT_A_STRING.filter(lambda v: v is not None), *wrong)
        )
    elif fault == "expected_version":
        kwargs["aggregate_id"] = kwargs["aggregate_id"] or "acct-1"
        kwargs["expected_version"] = draw(
            st.one_of(
                st.integers(max_value=-1),
                st.booleans(),
                st.floats(),
                st.text(max_size=3),
                st.none(),
                st.just("ANY"),
            )
        )
    elif fault == "concurrency":
        kwargs["aggregate_id"] = "acct-1"  # stored at version 3
        kwargs["expected_version"] = draw(
            st.one_of(st.sampled_from([NO_STREAM, 0, 2, 4]), st.integers(5, 2**70))
        )
    elif fault == "duplicate in batch":
        twin = NewEvent("Twin", {"n": 1})
        events = [*before, twin, *after, NewEvent("Twin", {"n": 2}, event_id=twin.event_id)]
    elif fault == "stored id, other content":
        events = [NewEvent("Opened", {"n": draw(st.integers(100, 200))}, event_id=STORED_ID)]
        kwargs = {"aggregate_id": "acct-1", "expected_version": ANY}
    else:
        events = [NewEvent("Opened", {"n": 0}, event_id=STORED_ID), NewEvent("New", {})]
        kwargs = {"aggregate_id": "acct-1"}
    return events, kwargs


def _seed(es: EventStore) -> None:
    es.append(
        [
            NewEvent("Opened", {"n": 0}, event_id=STORED_ID),
            NewEvent("Deposited", {"amount": 5}, metadata={"actor": "alice"}),
            NewEvent("Deposited", {"amount": 7}),
        ],
        aggregate_id="acct-1",
        aggregate_type="Account",
    )
    es.append([NewEvent("Noted", {"text": "system"})])


def _assert_clear(error: BaseException) -> None:
    assert isinstance(error, StoreError), f"raw {type(error).__name__}: {error}"
    text = str(error)
    assert text.strip() and "\n" not in text, repr(text)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(call=bad_append())
def test_bad_appends_raise_store_errors_and_change_nothing(
    tmp_path: Path, call: tuple[Any, dict[str, Any]]
) -> None:
    path = tmp_path / "bad-input.db"
    fresh = not path.exists()
    with EventStore(str(path)) as es:
        if fresh:
            _seed(es)
        before = _digest(es)
        events, kwargs = call
        try:
            es.append(events, **kwargs)
        except BaseException as e:  # the type is what is checked
            _assert_clear(e)
        else:
            pytest.fail(f"append accepted a bad call: {events!r} {kwargs!r}")
        assert _digest(es) == before
        assert before[2]


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": [value]}
    return value


@pytest.mark.parametrize("where", ["data", "metadata"])
@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_absurdly_nested_payload_is_a_store_error(tmp_path: Path, where: str, depth: int) -> None:
    # Kept out of the hypothesis test: its example printer cannot show such values.
    with EventStore(str(tmp_path / "deep.db")) as es:
        _seed(es)
        before = _digest(es)
        event = NewEvent("Deep", **{where: _nested(depth)})
        with pytest.raises(BaseException) as info:
            es.append([event], aggregate_id="acct-1")
        _assert_clear(info.value)
        assert _digest(es) == before


# -- bad input through `sss import` ---------------------------------------------


IMPORT_FAULTS = [
    "not json",
    "not an object",
    "no type",
    "bad type",
    "bad data",
    "bad metadata",
    "bad event_id",
    "bad occurred_at",
    "bad aggregate",
    "bad schema_version",
    "surrogate",
    "nan",
    "stored id",
    "wrong version",
]


@st.composite
def bad_import_line(draw: st.DrawFn) -> str:
    """One JSON Lines line that an import must refuse."""
    kind = draw(st.sampled_from(IMPORT_FAULTS))
    record: dict[str, Any] = {"type": "Imported", "data": {"n": 1}}
    if kind == "not json":
        return draw(
            st.sampled_from(['{"type": "A"', "{type: 'A'}", "[1,", "nul", "{}}", '{"a":1}x'])
        )
    if kind == "not an object":
        return json.dumps(
            draw(
                st.one_of(
                    st.integers(),
                    st.lists(st.integers(), max_size=2),
                    st.text(max_size=3),
                    st.none(),
                )
            )
        )
    if kind == "no type":
        del record["type"]
    elif kind == "bad type":
        record["type"] = draw(
            st.one_of(
                st.just(""),
                st.just(" "),
                st.integers(),
                st.none(),
                st.lists(st.integers(), max_size=1),
            )
        )
    elif kind in ("bad data", "bad metadata"):
        record[kind.split()[1]] = draw(
            st.one_of(
                st.integers(),
                st.text(max_size=3),
                st.lists(st.integers(), max_size=2),
                st.booleans(),
            )
        )
    elif kind == "bad event_id":
        record["event_id"] = draw(
            st.one_of(st.integers(), st.text(max_size=12).filter(lambda s: not _is_uuid(s)))
        )
    elif kind == "bad occurred_at":
        record["occurred_at"] = draw(
            st.sampled_from(
                [
                    "yesterday",
                    "2024-01-01T10:00:00",
                    "2024-13-01T00:00:00Z",
                    5,
                    "0001-01-01T00:00:00+05:00",
                ]
            )
        )
    elif kind == "bad aggregate":
        record["aggregate_id"] = draw(
            st.one_of(st.integers(), st.just(""), st.lists(st.integers(), max_size=1))
        )
    elif kind == "bad schema_version":
        record["schema_version"] = draw(
            st.one_of(st.integers(max_value=0), st.just("2"), st.just(1.5), st.just(2**64))
        )
    elif kind == "surrogate":
        # json.dumps writes a lone surrogate as the escape "\\ud800", which
        # json.loads turns back into the lone surrogate.
        bad = draw(SURROGATE)
        where = draw(st.sampled_from(["type", "data", "key", "metadata", "aggregate_id"]))
        if where == "key":
            record["data"] = {bad: 1}
        elif where in ("data", "metadata"):
            record[where] = {"s": bad}
        else:
            record[where] = bad
    elif kind == "nan":
        record["data"] = {"x": draw(st.sampled_from([math.nan, math.inf, -math.inf]))}
    elif kind == "stored id":
        record.update(event_id=STORED_ID, aggregate_id="acct-1", data={"other": True})
    else:
        record.update(
            aggregate_id="acct-1", expected_version=draw(st.sampled_from([0, 1, 7, "no-stream"]))
        )
    return json.dumps(record)


def _import(path: str, lines: list[str], tmp: Path) -> tuple[int, str, str]:
    from workbench.cli import main

    source = tmp / f"import-{uuid.uuid4().hex}.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["import", path, str(source)])
    finally:
        source.unlink()
    return code, out.getvalue(), err.getvalue()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    good_before=st.integers(0, 3),
    good_after=st.integers(0, 3),
    bad=bad_import_line(),
)
def test_bad_imports_fail_in_one_line_and_change_nothing(
    tmp_path: Path, good_before: int, good_after: int, bad: str
) -> None:
    path = tmp_path / "import.db"
    fresh = not path.exists()
    with EventStore(str(path)) as es:
        if fresh:
            _seed(es)
        before = _digest(es)
    good = [
        json.dumps({"type": "Imported", "data": {"i": i}, "aggregate_id": "imp-1"})
        for i in range(good_before + good_after)
    ]
    lines = [*good[:good_before], bad, *good[good_before:]]
    code, _, err = _import(str(path), lines, tmp_path)
    assert code != 0, f"import accepted {bad!r}"
    assert err.startswith("sss: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert f"line {good_before + 1}" in err, err
    with EventStore(str(path)) as es:
        assert _digest(es) == before

"""The kept counts (store.counting): EventStore.counts() equals a count of the
log itself after any appends and rollbacks, on every backend; a store of
format 1 gets them built once; several writer processes and SIGKILL
mid-append leave them equal to COUNT(*) GROUP BY."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, StoreCounts

ROOT = Path(__file__).resolve().parents[2]


def reference(es: EventStore) -> StoreCounts:
    """The counts by a plain fold over every event read back."""
    types: Counter[str] = Counter()
    aggregates: Counter[str | None] = Counter()
    aggregate_events: Counter[str | None] = Counter()
    system = 0
    occurred = []
    for event in es.read():
        types[event.type] += 1
        occurred.append(event.occurred_at)
        if event.aggregate_id is None:
            system += 1
        else:
            aggregate_events[event.aggregate_type] += 1
            if event.version == 1:
                aggregates[event.aggregate_type] += 1
    none_first = lambda item: (item[0] is not None, item[0] or "")  # noqa: E731
    return StoreCounts(
        head=es.head(),
        events=sum(types.values()),
        system_events=system,
        event_types=dict(sorted(types.items())),
        aggregate_types=dict(sorted(aggregates.items(), key=none_first)),
        aggregate_type_events=dict(sorted(aggregate_events.items(), key=none_first)),
        first_occurred_at=min(occurred, default=None),
        last_occurred_at=max(occurred, default=None),
    )


BASE = datetime(2024, 1, 1, tzinfo=UTC)
appends = st.lists(
    st.tuples(
        st.sampled_from([None, "a-1", "a-2", "b-1", "c-1"]),  # aggregate, None: system event
        st.lists(
            st.tuples(st.sampled_from(["Placed", "Paid", "Tick"]), st.integers(-5, 5)),
            min_size=1,
            max_size=4,
        ),
        st.booleans(),  # inside a transaction that rolls back
    ),
    max_size=12,
)
AGGREGATE_TYPES = {"a-1": "A", "a-2": "A", "b-1": "B", "c-1": None}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=appends)
def test_kept_counts_equal_a_fold_of_the_log(make_store: Any, steps: Any) -> None:
    es = make_store()
    start = es.head()
    for aggregate_id, batch, rolled_back in steps:
        events = [
            NewEvent(t, {"k": k}, occurred_at=BASE + timedelta(days=start + k)) for t, k in batch
        ]
        kwargs: dict[str, Any] = {}
        if aggregate_id is not None:
            kwargs = {"aggregate_id": f"{aggregate_id}-{start}"}
            if AGGREGATE_TYPES[aggregate_id] is not None:
                kwargs["aggregate_type"] = AGGREGATE_TYPES[aggregate_id]
        if rolled_back:
            with pytest.raises(RuntimeError), es.transaction():
                es.append(events, **kwargs)
                raise RuntimeError("roll back")
        else:
            es.append(events, **kwargs)
    counts = es.counts()
    assert counts == reference(es)
    assert es.event_types() == counts.event_types
    assert es.aggregate_types() == counts.aggregate_types
    assert es.aggregate_types() == es.backend.aggregate_types()  # the aggregates table agrees


def test_counts_inside_a_transaction_see_its_own_appends(store: EventStore) -> None:
    store.append([NewEvent("Placed", {})], aggregate_id="o-1", aggregate_type="Order")
    with pytest.raises(RuntimeError), store.transaction():
        store.append([NewEvent("Paid", {}), NewEvent("Paid", {})], aggregate_id="o-1")
        assert store.counts().event_types == {"Paid": 2, "Placed": 1}
        raise RuntimeError("roll back")
    assert store.counts() == reference(store)
    assert store.counts().event_types == {"Placed": 1}


def test_an_empty_store_counts_nothing(store: EventStore) -> None:
    assert store.counts() == StoreCounts(0, 0, 0, {}, {}, {}, None, None)


def _reopenable(backend_name: str, location: str, tmp_path: Path) -> str:
    """A :memory: store cannot be reopened or reached by another connection
    or process: those tests use a file in its place."""
    return str(tmp_path / "events.db") if backend_name == "memory" else location


def _make_format_1(location: str) -> None:
    """Turn a fresh store into one of format 1: no kept counts."""
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute("DROP TABLE sss_counts")
            conn.execute("UPDATE sss_meta SET value = '1' WHERE key = 'format_version'")
            # An earlier release's function, which the upgrade must drop.
            conn.execute(
                "CREATE FUNCTION sss_append_1() RETURNS integer LANGUAGE sql AS 'SELECT 1'"
            )
    else:
        conn = sqlite3.connect(location, isolation_level=None)
        conn.execute("DROP TABLE sss_counts")
        conn.execute("UPDATE sss_meta SET value = '1' WHERE key = 'format_version'")
        conn.close()


def _format_version(es: EventStore) -> str:
    if es.label.startswith("postgresql"):
        return str(es.backend._run(  # type: ignore[attr-defined]
            lambda c: c.execute("SELECT value FROM sss_meta WHERE key = 'format_version'")
            .fetchone()[0]
        ))  # fmt: skip
    return str(
        es.backend.conn.execute(  # type: ignore[attr-defined]
            "SELECT value FROM sss_meta WHERE key = 'format_version'"
        ).fetchone()[0]
    )


def test_a_format_1_store_gets_its_counts_built_once(
    location: str, backend_name: str, tmp_path: Path
) -> None:
    location = _reopenable(backend_name, location, tmp_path)
    with EventStore(location) as es:
        for n in range(30):
            es.append(
                [NewEvent("Placed", {"n": n}), NewEvent("Paid", {})],
                aggregate_id=f"o-{n % 7}",
                aggregate_type="Order",
            )
        es.append([NewEvent("Tick", {})])
        expected = reference(es)
    _make_format_1(location)
    with EventStore(location, readonly=True) as es:
        assert _format_version(es) == "1"
        assert es.counts() == expected  # counted from the log, nothing written
    with EventStore(location, readonly=True) as es:
        assert _format_version(es) == "1"
    with EventStore(location) as es:  # the upgrade
        assert _format_version(es) == "2"
        assert es.counts() == expected
        assert es.verify().ok
        es.append([NewEvent("Shipped", {})], aggregate_id="o-1")
        assert es.counts() == reference(es)
        if location.startswith("postgresql"):
            names = es.backend._run(  # type: ignore[attr-defined]
                lambda c: [r[0] for r in c.execute(
                    "SELECT proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = current_schema() AND proname LIKE 'sss_append_%%'"
                )]
            )  # fmt: skip
            assert names == ["sss_append_2"]


def test_verify_finds_kept_counts_that_differ_from_the_log(
    location: str, backend_name: str, tmp_path: Path
) -> None:
    location = _reopenable(backend_name, location, tmp_path)
    with EventStore(location) as es:
        es.append([NewEvent("Placed", {}), NewEvent("Paid", {})], aggregate_id="o-1")
        es.append([NewEvent("Tick", {})])
        assert es.verify().ok
    statement = "UPDATE sss_counts SET events = events + 1 WHERE type = 'Paid'"
    if location.startswith("postgresql"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as conn:
            conn.execute(statement)
    else:
        conn = sqlite3.connect(location, isolation_level=None)
        conn.execute(statement)
        conn.close()
    with EventStore(location, readonly=True) as es:
        report = es.verify()
    assert not report.ok
    assert report.reason is not None and "kept counts" in report.reason
    assert "Paid" in report.reason


# -- real processes ------------------------------------------------------------


def _run_python(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def _group_by(location: str) -> list[tuple[Any, ...]]:
    """The counts by the database itself, in the kept counts' shape."""
    if location.startswith("postgresql"):
        import psycopg

        from store.postgres.schema import COUNT_EVENTS as PG_COUNT

        with psycopg.connect(location, autocommit=True) as conn:
            return sorted(
                (r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in conn.execute(PG_COUNT)
            )
    from store.sqlite.schema import COUNT_EVENTS

    conn = sqlite3.connect(location)
    try:
        return sorted(
            (r[0], r[1], int(r[2]), int(r[3]), int(r[4])) for r in conn.execute(COUNT_EVENTS)
        )
    finally:
        conn.close()


def _kept(es: EventStore) -> list[tuple[Any, ...]]:
    return sorted(row[:5] for row in es.backend.kept_counts()[1])


WRITER = r"""
import random, sys
from store import EventStore, NewEvent
location, writer, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(writer)
es = EventStore(location, timeout=60.0)
if sys.argv[4] == "True":  # PostgreSQL's general path instead of its append function
    es.backend.appends_direct = False
for n in range(rounds):
    kind = rng.randrange(4)
    batch = [NewEvent(rng.choice(["Placed", "Paid", "Tick"]), {"w": writer, "n": n})
             for _ in range(rng.randrange(1, 6))]
    if kind == 0:
        es.append(batch)
    elif kind == 1:
        es.append(batch, aggregate_id=f"w{writer}-{n % 5}", aggregate_type=f"T{writer % 2}")
    elif kind == 2:
        es.append(batch, aggregate_id=f"shared-{n % 3}", aggregate_type="Shared")
    else:
        with es.transaction():
            es.append(batch, aggregate_id=f"tx{writer}-{n}")
es.close()
print("ok")
"""


@pytest.mark.slow
def test_kept_counts_stay_exact_under_concurrent_writer_processes(
    location: str, backend_name: str, tmp_path: Path
) -> None:
    location = _reopenable(backend_name, location, tmp_path)
    EventStore(location).close()
    general = str(backend_name == "postgres-general")
    writers = [_run_python(WRITER, location, str(w), "60", general) for w in range(4)]
    for proc in writers:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "ok"
    with EventStore(location, readonly=True) as es:
        assert es.head() > 4 * 60
        assert _kept(es) == _group_by(location)
        assert es.counts() == reference(es)
        assert es.verify().ok


VICTIM = r"""
import sys
from store import EventStore, NewEvent
location, name = sys.argv[1], sys.argv[2]
es = EventStore(location, timeout=60.0)
if sys.argv[3] == "True":
    es.backend.appends_direct = False
print("started", flush=True)
n = 0
while True:
    batch = [NewEvent(("Loaded", "Checked")[k % 2], {"k": k, "pad": "x" * 64}) for k in range(400)]
    es.append(batch, aggregate_id=f"{name}-{n}", aggregate_type="Batch")
    es.append([NewEvent("Tick", {"n": n})])
    n += 1
"""


@pytest.mark.slow
def test_kept_counts_survive_sigkill_mid_append(
    location: str, backend_name: str, tmp_path: Path
) -> None:
    location = _reopenable(backend_name, location, tmp_path)
    EventStore(location).close()
    general = str(backend_name == "postgres-general")
    rng = random.Random(18)
    for round_ in range(8):
        proc = _run_python(VICTIM, location, f"r{round_}", general)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        with EventStore(location, readonly=True) as es:
            assert _kept(es) == _group_by(location), f"after kill {round_}"
    with EventStore(location) as es:
        assert es.head() > 0
        assert es.counts() == reference(es)
        assert es.verify().ok


row_parts = st.tuples(
    st.sampled_from([None, "a-1", "b-2"]),
    st.sampled_from([None, "A", "B"]),
    st.integers(1, 3),
    st.sampled_from(["Placed", "Paid", "Tick", "Shipped", "Closed", "Void"]),
    st.sampled_from([f"2024-01-0{d}T00:00:00.000000+00:00" for d in range(1, 8)]),
)


@given(parts=st.lists(row_parts, max_size=30), one_aggregate=st.booleans())
def test_batch_counts_equal_counting_row_by_row(parts: Any, one_aggregate: bool) -> None:
    """Against a plain fold of one row at a time (the one-row fast path
    included), for batches of one aggregate and of many."""
    from store.counting import batch_counts, merge

    def one_by_one(rows: list[Any]) -> list[Any]:
        total: dict[Any, Any] = {}
        for row in rows:
            merge(total, batch_counts([row]))
        return sorted((*key, *entry) for key, entry in total.items())

    rows = []
    for n, (aggregate_id, aggregate_type, version, type_, occurred) in enumerate(parts):
        if one_aggregate and parts:
            aggregate_id, aggregate_type = parts[0][0], parts[0][1]
        if aggregate_id is None:
            aggregate_type, version = None, None
        rows.append((n + 1, f"e{n}", aggregate_id, aggregate_type, version, type_, 1, "{}",
                     "{}", occurred, occurred, "d", "h"))  # fmt: skip
    assert batch_counts(rows) == one_by_one(rows)

"""The API's fault suite: hostile values through every public entry point.

Each call gets one hostile value in one argument (the others valid). What
must hold: only :class:`StoreError` subclasses come out, each with a one-line
message, and nothing stored changes. Hypothesis explores the values it can
show; a seeded loop adds the ones its example printer cannot (10,000-deep
nesting), across every method.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import threading
from collections.abc import Callable, Iterator
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
    Reducers,
    StoreError,
    ValidationError,
)
from store.codec import MAX_NESTING


def _deep_dict(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


class _BytesPath:
    def __fspath__(self) -> bytes:
        return b"/tmp/bytes.db"


class _RaisingPath:
    def __fspath__(self) -> str:
        raise RuntimeError("no path today")


class _Hostile:
    """Raises from every dunder a store might call on a value."""

    def __repr__(self) -> str:
        raise RuntimeError("repr refused")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("eq refused")

    def __hash__(self) -> int:
        raise RuntimeError("hash refused")

    def __index__(self) -> int:
        raise RuntimeError("index refused")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("iter refused")


class _StrLike(str):
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


ZONE = dt.timezone(dt.timedelta(hours=5))
HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([-1, 2**63, 2**64, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308]),
    st.text(max_size=6),
    st.sampled_from(["", " ", "\ud800", "a\udfffb", "\0", "x" * 300, "\u202e", "😀"]),
    st.binary(max_size=4),
    st.builds(bytearray, st.binary(max_size=2)),
    st.datetimes(),  # naive
    st.sampled_from(
        [
            dt.datetime(1, 1, 1, tzinfo=ZONE),
            dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=5))),
            dt.date(2024, 1, 1),
            dt.timedelta(days=1),
        ]
    ),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), max_size=2),
    st.builds(object),
    st.sampled_from([ANY, NO_STREAM, Path("/x"), _BytesPath(), _RaisingPath(), len]),
)
DEEP = [_deep_dict(10_000), _deep_list(10_000), _deep_dict(MAX_NESTING + 1)]


def _fill(es: EventStore) -> None:
    es.append(
        [
            NewEvent("Opened", {"n": 0, "addr": {"zip": "1000"}}),
            NewEvent("Deposited", {"amount": 5}, metadata={"actor": "alice"}),
            NewEvent("Deposited", {"amount": 7}),
        ],
        aggregate_id="acct-1",
        aggregate_type="Account",
    )
    es.append([NewEvent("Noted", {"text": "system"})])


def _fingerprint(es: EventStore) -> tuple[Any, ...]:
    return (
        es.head(),
        [e.hash for e in es.read()],
        [(a.aggregate_id, a.version) for a in es.aggregates()],
    )


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[EventStore, tuple[Any, ...]]]:
    path = tmp_path_factory.mktemp("faults") / "faults.db"
    es = EventStore(str(path), durable=False)
    _fill(es)
    yield es, _fingerprint(es)
    es.close()


CALLS = 0


def _call(fn: Callable[[], Any]) -> Any:
    """Run one call, consuming what it returns; only StoreErrors may escape,
    each with one line of text."""
    global CALLS
    CALLS += 1
    try:
        result = fn()
        if isinstance(result, Iterator):
            result = list(result)
    except StoreError as e:
        text = str(e)
        assert text.strip() and "\n" not in text, repr(text[:200])
        assert len(text) < 2_000, text[:200]
        return e
    return result


# Each method, with the argument the hostile value goes into.
READERS: dict[str, Callable[[EventStore, str, Any], Any]] = {
    "read": lambda es, arg, v: es.read(**{arg: v}),
    "read_rows": lambda es, arg, v: es.read_rows(**{arg: v}),
    "count": lambda es, arg, v: es.count(**{arg: v}),
    "stream": lambda es, arg, v: es.stream(**{"aggregate_id": "acct-1", arg: v}),
    "state_at": lambda es, arg, v: es.state_at(**{"aggregate_id": "acct-1", arg: v}),
    "history": lambda es, arg, v: es.history(**{"aggregate_id": "acct-1", arg: v}),
    "aggregate": lambda es, arg, v: es.aggregate(v),
    "aggregates": lambda es, arg, v: es.aggregates(v),
    "get": lambda es, arg, v: es.get(v),
    "position_at": lambda es, arg, v: es.position_at(v),
    "verify": lambda es, arg, v: es.verify(storage=v),
}
ARGUMENTS = {
    "read": [
        "from_position", "aggregate_id", "aggregate_type", "types", "since", "until",
        "limit", "backwards",
    ],
    "read_rows": ["from_position", "aggregate_id", "types", "limit", "page_size"],
    "count": ["aggregate_id", "aggregate_type", "types", "since", "until"],
    "stream": ["aggregate_id", "from_version", "to_version"],
    "state_at": ["aggregate_id", "version", "position", "at"],
    "history": ["aggregate_id", "from_version", "to_version"],
    "aggregate": ["aggregate_id"],
    "aggregates": ["aggregate_type"],
    "get": ["position"],
    "position_at": ["at"],
    "verify": ["storage"],
}  # fmt: skip
TARGETS = [(method, arg) for method, args in ARGUMENTS.items() for arg in args]


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=st.sampled_from(TARGETS), value=HOSTILE)
def test_hostile_arguments_to_reads_raise_only_store_errors(
    shared: tuple[EventStore, tuple[Any, ...]], target: tuple[str, str], value: Any
) -> None:
    es, before = shared
    method, arg = target
    _call(lambda: READERS[method](es, arg, value))
    assert _fingerprint(es) == before


APPEND_ARGUMENTS = [
    "events", "aggregate_id", "aggregate_type", "expected_version",
    "type", "data", "metadata", "schema_version", "event_id", "occurred_at", "data leaf",
    "data key", "metadata leaf",
]  # fmt: skip


def _append(es: EventStore, arg: str, value: Any) -> Any:
    event: dict[str, Any] = {"type": "Probe", "data": {"ok": 1}, "metadata": {"actor": "fuzz"}}
    call: dict[str, Any] = {"aggregate_id": "acct-1", "expected_version": 3}
    if arg in ("events", "aggregate_id", "aggregate_type", "expected_version"):
        call[arg] = value
    elif arg == "data leaf":
        event["data"] = {"x": [1, {"y": value}]}
    elif arg == "metadata leaf":
        event["metadata"] = {"actor": value}
    elif arg == "data key":
        try:
            event["data"] = {value: 1}
        except Exception:  # unhashable: no dict can hold it
            return None
    else:
        event[arg] = value
    if arg != "events":
        try:
            call["events"] = [NewEvent(**event)]
        except StoreError:
            raise
        except Exception:  # NewEvent itself refused: the value never reaches the store
            return None
    return es.append(**call)


@settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arg=st.sampled_from(APPEND_ARGUMENTS), value=HOSTILE)
def test_hostile_appends_raise_store_errors_or_store_what_was_given(
    tmp_path: Path, arg: str, value: Any
) -> None:
    with EventStore(":memory:") as es:
        _fill(es)
        before = _fingerprint(es)
        result = _call(lambda: _append(es, arg, value))
        if isinstance(result, list) and result:
            # Accepted: what was stored reads back as it was returned.
            assert [e.to_dict() for e in es.read(from_position=before[0] + 1)] == [
                e.to_dict() for e in result
            ]
        else:
            assert _fingerprint(es) == before


CONSTRUCTOR_ARGUMENTS = [
    "path", "readonly", "reducers", "upcasters", "snapshot_every", "durable", "timeout", "clock",
]  # fmt: skip


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(arg=st.sampled_from(CONSTRUCTOR_ARGUMENTS), value=HOSTILE)
def test_hostile_constructor_arguments_raise_only_store_errors(
    tmp_path: Path, arg: str, value: Any
) -> None:
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a text path that happens to be valid lands here
    try:
        kwargs = {"path": ":memory:", arg: value}
        if arg == "path" and value == ":memory:":
            return
        result = _call(lambda: EventStore(**kwargs))
        if isinstance(result, EventStore):
            try:
                # An accepted store works; a clock or timeout that slipped by would fail here.
                _call(lambda: result.append([NewEvent("Probe")], aggregate_id="p-1"))
                _call(lambda: list(result.read()))
            finally:
                result.close()
    finally:
        os.chdir(cwd)


def test_the_named_construction_faults_are_validation_errors(tmp_path: Path) -> None:
    for kwargs, says in [
        ({"path": str(tmp_path / "x\udcff.db")}, "not valid Unicode"),
        ({"path": _BytesPath()}, "returned bytes"),
        ({"path": _RaisingPath()}, "__fspath__ failed"),
        ({"path": str(tmp_path / "a\0b.db")}, "NUL"),
        ({"timeout": 10**400}, "timeout must be"),
        ({"timeout": math.nan}, "timeout must be"),
        ({"clock": 5}, "clock must be a function"),
        ({"readonly": "yes"}, "readonly must be True or False"),
    ]:
        kwargs.setdefault("path", ":memory:")
        with pytest.raises(ValidationError, match=says):
            EventStore(**kwargs)


def test_a_clock_that_fails_or_lies_is_a_validation_error() -> None:
    def broken() -> dt.datetime:
        raise OSError("no time source")

    for clock, says in [
        (broken, "clock\\(\\) raised OSError"),
        (lambda: "noon", "clock\\(\\) must be a datetime"),
        (lambda: dt.datetime(2024, 1, 1), "naive"),
    ]:
        with EventStore(clock=clock) as es:
            with pytest.raises(ValidationError, match=says):
                es.append([NewEvent("A")], aggregate_id="a-1")
            assert es.head() == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda es, v: es.read(aggregate_id=v),
        lambda es, v: es.read(limit=v),
        lambda es, v: es.read(types=[v]),
        lambda es, v: es.stream("acct-1", to_version=v),
        lambda es, v: es.stream(v),
        lambda es, v: es.state_at("acct-1", version=v),
        lambda es, v: es.state_at("acct-1", at=v),
        lambda es, v: es.history("acct-1", from_version=v),
        lambda es, v: es.append([NewEvent("Deep", v)], aggregate_id="acct-1"),
        lambda es, v: es.append([NewEvent("Deep", metadata=v)], aggregate_id="acct-1"),
        lambda es, v: es.append([NewEvent("Deep", {"v": v})], aggregate_id="acct-1"),
        lambda es, v: es.append([NewEvent("Deep")], aggregate_id=v),
        lambda es, v: es.append([NewEvent("Deep")], aggregate_id="acct-1", expected_version=v),
        lambda es, v: es.append([NewEvent("Deep", event_id=v)]),
        lambda es, v: es.append([NewEvent(v)]),
        lambda es, v: es.append(v),
    ],
)
def test_deep_nesting_anywhere_is_a_validation_error(
    shared: tuple[EventStore, tuple[Any, ...]], call: Callable[[EventStore, Any], Any]
) -> None:
    es, before = shared
    for value in DEEP:
        error = _call(lambda value=value: call(es, value))
        assert isinstance(error, ValidationError), type(error)
        assert len(str(error)) < 300, str(error)[:300]
    assert _fingerprint(es) == before


@pytest.mark.parametrize("where", ["data", "metadata"])
def test_the_nesting_limit_is_exact_and_named(tmp_path: Path, where: str) -> None:
    with EventStore(str(tmp_path / "deep.db")) as es:
        inside = _deep_dict(MAX_NESTING - 1)  # with the object around it: MAX_NESTING levels
        recorded = es.append([NewEvent("Deep", **{where: inside})])
        assert getattr(recorded[0], where) == inside
        assert getattr(es.get(1), where) == inside
        assert es.verify().ok
        with pytest.raises(ValidationError, match=f"more than {MAX_NESTING} levels"):
            es.append([NewEvent("Deeper", **{where: _deep_dict(MAX_NESTING)})])
        with pytest.raises(ValidationError, match=f"more than {MAX_NESTING} levels"):
            es.append([NewEvent("Deeper", **{where: {"k": _deep_list(MAX_NESTING)}})])
        assert es.head() == 1


def test_a_seeded_sweep_of_every_entry_point(shared: tuple[EventStore, tuple[Any, ...]]) -> None:
    """Values hypothesis cannot print, and mixes of them, in every argument."""
    es, before = shared
    rng = random.Random(9)
    values: list[Any] = [
        *DEEP, _Hostile(), _StrLike("acct-1"), "x" * 100_000, 10**5000, -(10**5000),
        math.nan, b"\xff", "\udcff", "\0",
        dt.datetime(2024, 1, 1), threading.Lock(), Reducers(), iter([1, 2]), type,
        {"a": {1, 2}}, [[[]]], 1e400, 2**63 - 1, 0, -1, "", " ", True,
    ]  # fmt: skip
    calls = 0
    for method, arg in TARGETS:
        for value in values:
            _call(lambda method=method, arg=arg, value=value: READERS[method](es, arg, value))
            calls += 1
    assert _fingerprint(es) == before
    with EventStore(":memory:") as scratch:
        _fill(scratch)
        for _ in range(1500):
            arg = rng.choice(APPEND_ARGUMENTS)
            value = rng.choice(values)
            head = scratch.head()
            result = _call(lambda arg=arg, value=value: _append(scratch, arg, value))
            if not isinstance(result, list) or not result:
                assert scratch.head() == head
            calls += 1
    assert calls > 1500

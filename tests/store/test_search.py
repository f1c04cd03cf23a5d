"""bisect: the expression language, and the first matching version against a
plain fold-and-check loop."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, NotFoundError, Reducers, StoreError, ValidationError
from store.conditions import ExpressionError, parse

STATE = {
    "status": "cancelled",
    "total": -5,
    "currency": "EUR",
    "flag": True,
    "gone": None,
    "addr": {"zip": "1011", "a/b": 1, "m~n": 2},
    "items": [{"sku": "x"}, {"sku": "y"}],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('/status == "cancelled"', True),
        ('/status != "cancelled"', False),
        ("/total < 0", True),
        ("/total <= -5", True),
        ("/total > -5", False),
        ("/total >= -5.0", True),
        ('/total < 0 and /currency == "EUR"', True),
        ('/total > 0 or /currency == "EUR"', True),
        ('/total > 0 or /currency == "USD" and /flag == true', False),
        ('(/total > 0 or /currency == "EUR") and /flag == true', True),
        ("/flag == 1", False),
        ("/flag == true", True),
        ("/refund exists", False),
        ("/refund missing", True),
        ("/gone exists", True),
        ("/gone == null", True),
        ("/refund != 3", True),
        ("/refund < 3", False),
        ("/status < 3", False),
        ('/status > "a"', True),
        ('/addr/zip == "1011"', True),
        ("/addr/a~1b == 1", True),
        ("/addr/m~0n == 2", True),
        ('/items/1/sku == "y"', True),
        ("/items/2 exists", False),
        ("/items/01 exists", False),
        ('/addr == {"zip": "1011", "a/b": 1, "m~n": 2}', True),
        ('/items == [{"sku": "x"}, {"sku": "y"}]', True),
        ('"/addr/zip" == "1011"', True),
        ("/status/x exists", False),
    ],
)
def test_expressions(text: str, expected: bool) -> None:
    assert parse(text)(STATE) is expected


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("", 1, "JSON Pointer"),
        ("status == 1", 1, "JSON Pointer"),
        ("/status", 8, "operator"),
        ("/status = 1", 9, "operator"),
        ("/status == cancelled", 12, "JSON value"),
        ("/status == ", 12, "JSON value"),
        ("/a == 1 and", 12, "JSON Pointer"),
        ("/a == 1 xor /b exists", 9, "'and', 'or'"),
        ("(/a == 1", 9, "')'"),
        ("/a == NaN", 7, "JSON value"),
        ('/a == "open', 7, "JSON value"),
    ],
)
def test_bad_expressions_name_the_column(text: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.column == column
    assert f"column {column}" in str(info.value)
    assert words in str(info.value)
    assert isinstance(info.value, ValidationError)


_examples = itertools.count()


def plain_first(es: EventStore, aggregate_id: str, test: Any) -> int | None:
    for step in es.history(aggregate_id):
        if test(step.after):
            return step.event.version
    return None


keys = st.sampled_from(["status", "total", "addr"])
values = st.one_of(
    st.none(),
    st.integers(-2, 2),
    st.sampled_from(["new", "paid", "cancelled"]),
    st.dictionaries(st.sampled_from(["zip", "city"]), st.one_of(st.none(), st.integers(0, 2))),
)
patches = st.dictionaries(
    st.one_of(keys, st.sampled_from(["note", "status-x"])), values, min_size=1, max_size=3
)
clauses = st.one_of(
    st.builds(
        lambda p, op, v: f"{p} {op} {json.dumps(v)}",
        st.sampled_from(["/status", "/total", "/addr/zip", "/addr"]),
        st.sampled_from(["==", "!=", "<", "<=", ">", ">="]),
        st.one_of(st.integers(-2, 2), st.sampled_from(["new", "paid", "cancelled"])),
    ),
    st.builds(
        lambda p, w: f"{p} {w}",
        st.sampled_from(["/status", "/addr/city", "/note", "/addr"]),
        st.sampled_from(["exists", "missing"]),
    ),
)
expressions = st.lists(
    st.tuples(clauses, st.sampled_from(["and", "or"])), min_size=1, max_size=3
).map(lambda parts: " ".join(itertools.chain.from_iterable(parts))[: -len(parts[-1][1]) - 1])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.lists(patches, min_size=1, max_size=4), min_size=1, max_size=6),
    expression=expressions,
    voids=st.lists(st.integers(0, 30), max_size=2),
)
def test_bisect_equals_a_plain_loop(
    store: EventStore, batches: list[list[dict[str, Any]]], expression: str, voids: list[int]
) -> None:
    number = next(_examples)  # every example appends to the same store
    aggregate, other = f"a-{number}", f"b-{number}"
    voidable: list[int] = []
    for i, batch in enumerate(batches):
        stored = store.append(
            [NewEvent("P", p) for p in batch], aggregate_id=aggregate, aggregate_type="T"
        )
        voidable.extend(e.position for e in stored)
        store.append([NewEvent("P", batches[-1 - i][0])], aggregate_id=other, aggregate_type="T")
        if voids and i == len(batches) // 2:  # a void in the middle of the history
            store.void(voidable.pop(voids.pop() % len(voidable)), reason="wrong")
    for k in voids[: len(voidable)]:  # and at its end
        store.void(voidable.pop(k % len(voidable)), reason="wrong")
    condition = parse(expression)
    expected = plain_first(store, aggregate, condition)
    step = store.bisect(aggregate, expression)
    assert (None if step is None else step.event.version) == expected
    if step is not None:
        plain = next(store.history(aggregate, step.event.version, step.event.version))
        assert (step.before, step.after, step.changes) == (plain.before, plain.after, plain.changes)
    # A callable takes the general path and agrees.
    by_callable = store.bisect(aggregate, lambda s: condition(s))
    assert (None if by_callable is None else by_callable.event.version) == expected
    # Across the type: one result per aggregate that ever matches.
    results = list(store.bisect_type("T", expression))
    found = {s.event.aggregate_id: s.event.version for s in results}
    for name in (aggregate, other):
        assert found.get(name) == plain_first(store, name, condition)
    positions = [s.event.position for s in results]
    assert positions == sorted(positions)


def test_bisect_with_reducers_and_errors(store: EventStore, tmp_path: Any) -> None:
    store.append([NewEvent("Added", {"n": 1}) for _ in range(5)], aggregate_id="c-1")
    assert store.bisect("c-1", "/n == 1") is not None
    assert store.bisect("c-1", "/n == 2") is None
    with pytest.raises(NotFoundError):
        store.bisect("nope", "/n == 1")
    with pytest.raises(ExpressionError, match="column 4"):
        store.bisect("c-1", "/n =")
    with pytest.raises(ValidationError, match="expression or a callable"):
        store.bisect("c-1", 3)
    reducers = Reducers()
    reducers.register(None, "Added", lambda s, e: {**s, "n": s.get("n", 0) + e.data["n"]})
    with EventStore(str(tmp_path / "r.db"), reducers=reducers) as es:
        es.append([NewEvent("Added", {"n": 1}) for _ in range(5)], aggregate_id="c-1")
        step = es.bisect("c-1", "/n >= 3")
        assert step is not None and step.event.version == 3
        assert (step.before, step.after) == ({"n": 2}, {"n": 3})
        progress: list[tuple[int, int]] = []
        steps = list(es.bisect_type(None, "/n == 4", progress=lambda d, t: progress.append((d, t))))
        assert [s.event.version for s in steps] == [4]
        assert progress[-1] == (5, 5)

        def broken(state: dict[str, Any]) -> bool:
            raise KeyError("x")

        with pytest.raises(KeyError):
            es.bisect("c-1", broken)
    assert issubclass(ExpressionError, StoreError)


def test_bisect_starts_its_before_state_from_a_stored_snapshot(make_store: Any) -> None:
    es = make_store(snapshot_every=4)
    es.append(
        [NewEvent("P", {"n": n, "sub": {f"k{n % 3}": n, "gone": None}}) for n in range(1, 21)],
        aggregate_id="s-1",
    )
    step = es.bisect("s-1", "/n >= 14")
    assert step is not None and step.event.version == 14
    assert step.before == es.state_at("s-1", version=13).state
    assert step.after == es.state_at("s-1", version=14).state

"""Conditions against a plain reference evaluator written from the module's
docstring: JSON Pointer lookup (RFC 6901), JSON equality by kind, order only
between two numbers or two strings, ``exists``/``missing``, and ``and``
binding tighter than ``or``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.conditions import ExpressionError, parse
from store.errors import ValidationError

MISSING = object()
KEYS = ["a", "b", "0", "", "d e", "x/y", "t~"]
TOKENS = [*KEYS, "1", "01", "2", "\u0661"]
OPERATORS = ["==", "!=", "<", "<=", ">", ">=", "exists", "missing"]

leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.sampled_from([0.0, 1.0, 1.5, -2.0]),
    st.sampled_from(["", "a", "b", "ab"]),
)
values = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)
states = st.dictionaries(st.sampled_from(KEYS), values, max_size=4)


def ref_resolve(value: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                return MISSING
            value = value[token]
        elif isinstance(value, list):
            canonical = token == "0" or (
                token != "" and token[0] in "123456789" and all(c in "0123456789" for c in token)
            )
            if not canonical or int(token) >= len(value):
                return MISSING
            value = value[int(token)]
        else:
            return MISSING
    return value


def canon(value: Any) -> Any:
    """A hashable form equal exactly when two JSON values are equal."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, list):
        return ("list", tuple(canon(v) for v in value))
    if isinstance(value, dict):
        return ("object", frozenset((k, canon(v)) for k, v in value.items()))
    return (type(value).__name__, value)


def ref_clause(state: dict[str, Any], tokens: list[str], operator: str, literal: Any) -> bool:
    value = ref_resolve(state, tokens)
    if operator == "exists":
        return value is not MISSING
    if operator == "missing":
        return value is MISSING
    equal = value is not MISSING and canon(value) == canon(literal)
    if operator == "==":
        return equal
    if operator == "!=":
        return not equal
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (value, literal))
    strings = isinstance(value, str) and isinstance(literal, str)
    if not (numbers or strings):
        return False
    below, above = bool(value < literal), bool(value > literal)
    return {"<": below, "<=": not above, ">": above, ">=": not below}[operator]


def pointer_text(tokens: list[str], quoted: bool) -> str:
    pointer = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)
    if quoted or pointer == "" or any(c in pointer for c in " ()=!<>"):
        return json.dumps(pointer)
    return pointer


@st.composite
def clauses(draw: st.DrawFn) -> tuple[str, Any]:
    tokens = draw(st.lists(st.sampled_from(TOKENS), max_size=3))  # [] is the whole state
    operator = draw(st.sampled_from(OPERATORS))
    literal = draw(values)
    text = pointer_text(tokens, draw(st.booleans()))
    if operator in ("exists", "missing"):
        text += " " + operator
    else:
        gap = draw(st.sampled_from(["", " "]))
        text += f"{gap}{operator}{gap}{json.dumps(literal)}"
    return text, lambda state: ref_clause(state, tokens, operator, literal)


def expressions(depth: int) -> st.SearchStrategy[tuple[str, Any]]:
    """``a and b or c ...`` over clauses and parenthesised expressions, with
    the reference's any-of-all-of reading of the precedence."""
    atom = (
        clauses()
        if depth == 0
        else st.one_of(clauses(), expressions(depth - 1).map(lambda e: (f"( {e[0]})", e[1])))
    )
    groups = st.lists(st.lists(atom, min_size=1, max_size=3), min_size=1, max_size=3)

    def build(chosen: list[list[tuple[str, Any]]]) -> tuple[str, Any]:
        text = " or ".join(" and ".join(t for t, _ in group) for group in chosen)
        tests = [[f for _, f in group] for group in chosen]
        return text, lambda state: any(all(f(state) for f in group) for group in tests)

    return groups.map(build)


@settings(max_examples=400, deadline=None)
@given(expression=expressions(2), state=states)
def test_a_condition_equals_the_reference_reading(expression: Any, state: Any) -> None:
    text, reference = expression
    assert parse(text)(state) is reference(state), text


@settings(max_examples=300, deadline=None)
@given(clause=clauses(), state=states)
def test_a_single_clause_equals_the_reference_reading(clause: Any, state: Any) -> None:
    text, reference = clause
    assert parse(text)(state) is reference(state), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/n != 5", True),  # present and different: not-equal holds
        ("/n != 3", False),
        ("/n != 3.0", False),  # 3 == 3.0
        ("/n != true", True),  # a bool is not a number
        ("/f != false", False),
        ("/l != [1, 2]", False),
        ("/l != [2, 1]", True),
        ('/o != {"k": null}', False),
        ("/gone != 3", True),  # missing: not-equal holds
        ("/z != null", False),
        ("/gone != null", True),
    ],
)
def test_not_equal_to_a_literal_that_is_not_text(text: str, expected: bool) -> None:
    state = {"n": 3, "f": False, "l": [1, 2], "o": {"k": None}, "z": None}
    assert parse(text)(state) is expected


@pytest.mark.parametrize("token", ["\u00b2", "\u0661", "\uff11"])
def test_an_array_index_is_ascii_digits_only(token: str) -> None:
    # RFC 6901: array-index = %x30 / ( %x31-39 *(%x30-39) ). Other Unicode
    # digits name no element (and must not fail the condition).
    state = {"items": [10, 20, 30]}
    assert parse(f"/items/{token} exists")(state) is False
    assert parse(f"/items/{token} missing")(state) is True
    assert parse(f"/items/{token} != 20")(state) is True


def test_the_empty_pointer_is_the_whole_state() -> None:
    assert parse('"" exists')({}) is True
    assert parse('"" == {"a": 1}')({"a": 1}) is True
    assert parse('"" == {}')({"a": 1}) is False
    assert parse('"/" == 2')({"": 2}) is True  # "/" is the key ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('/o == {"k": true}', False),  # inside an object, true is not 1
        ('/o == {"k": 1.0}', True),
        ('/o != {"k": true}', True),
        ("/l == [true, 0]", False),  # inside an array, true is not 1 and false not 0
        ("/l == [1, 0.0]", True),
        ("/l != [true, false]", True),
        ('/n == [{"k": true}]', False),
        ('/n == [{"k": 1}]', True),
    ],
)
def test_equality_inside_arrays_and_objects_is_by_json_kind(text: str, expected: bool) -> None:
    state = {"o": {"k": 1}, "l": [1, 0], "n": [{"k": 1}]}
    assert parse(text)(state) is expected


@pytest.mark.parametrize("text", [5, None, b"/a exists", ["/a exists"]])
def test_an_expression_must_be_text(text: Any) -> None:
    with pytest.raises(ValidationError, match=f"must be text, not {type(text).__name__}"):
        parse(text)


@pytest.mark.parametrize("text", ['"status" == 1', '"" == 1 or "a/b" exists'])
def test_a_quoted_pointer_starts_with_a_slash(text: str) -> None:
    with pytest.raises(ExpressionError, match="a quoted pointer must be a string starting with /"):
        parse(text)


@pytest.mark.parametrize("text", ["/a ==", "/a == ", "/a exists and /b <"])
def test_a_literal_missing_at_the_end_is_named_plainly(text: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    column = len(text) + 1
    assert caught.value.column == column
    assert str(caught.value) == (
        f'bad expression at column {column}: expected a JSON value such as "cancelled", 3 or true'
        f" (in {text!r})"
    )


def test_a_parsed_condition_is_an_immutable_value() -> None:
    where = parse("/a == 1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        where.text = "/a == 2"  # type: ignore[misc]
    assert {where: "kept"}[where] == "kept"  # hashable: usable as a cache key
    assert where.pointers == (("a",),) and where({"a": 1}) is True


def paths(value: Any, tokens: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every pointer into ``value`` that names something, with what it names."""
    found = [(tokens, value)]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*tokens, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*tokens, str(index)))
    return found


@settings(max_examples=300, deadline=None)
@given(state=states, data=st.data())
def test_a_clause_on_a_present_field_equals_the_reference_reading(state: Any, data: Any) -> None:
    # Pointers and literals taken from the state itself, so that equal and
    # ordered pairs (not only missing fields) are met often.
    tokens, _ = data.draw(st.sampled_from(paths(state)), label="pointer")
    candidates = [value for _, value in paths(state)]
    literal = data.draw(st.one_of(st.sampled_from(candidates), values), label="literal")
    operator = data.draw(st.sampled_from(OPERATORS), label="operator")
    text = pointer_text(list(tokens), data.draw(st.booleans(), label="quoted"))
    text += (
        f" {operator}"
        if operator in ("exists", "missing")
        else f" {operator} {json.dumps(literal)}"
    )
    assert parse(text)(state) is ref_clause(state, list(tokens), operator, literal), text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('/s < "b"', False),
        ('/s <= "b"', True),
        ('/s > "b"', False),
        ('/s >= "b"', True),
        ('/s < "c"', True),
        ('/s > "a"', True),
        ('/s >= "c"', False),
        ('/s <= "a"', False),
    ],
)
def test_text_is_ordered_with_its_bounds(text: str, expected: bool) -> None:
    assert parse(text)({"s": "b"}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [('/s != "c"', True), ('/s != "b"', False), ('/n != "1"', True), ('/gone != "b"', True)],
)
def test_not_equal_to_a_text(text: str, expected: bool) -> None:
    assert parse(text)({"s": "b", "n": 1}) is expected


@pytest.mark.parametrize(
    ("text", "column", "words"),
    [
        ("/a == 1 andy exists", 9, "expected 'and', 'or' or the end"),
        ("/a == 1 or_x exists", 9, "expected 'and', 'or' or the end"),
        ("/a existsx", 4, "expected an operator"),
        ("/a missing_", 4, "expected an operator"),
    ],
)
def test_a_word_ends_at_a_letter_digit_or_underscore_boundary(
    text: str, column: int, words: str
) -> None:
    with pytest.raises(ExpressionError, match=words) as caught:
        parse(text)
    assert caught.value.column == column

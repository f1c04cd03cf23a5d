"""Conditions on an aggregate's state, and the search for the first version
at which one holds ("when did this go wrong?").

The expression language, as ``es.bisect`` and ``sss bisect --where`` take it::

    expression := clause ( ("and" | "or") clause )*      "and" binds tighter than "or"
    clause     := "(" expression ")"
                | POINTER ("==" | "!=" | "<" | "<=" | ">" | ">=") LITERAL
                | POINTER ("exists" | "missing")

- POINTER is a JSON Pointer (RFC 6901) into the state: ``/status``,
  ``/address/zip``, ``/items/0/sku``; ``~1`` stands for ``/`` and ``~0`` for
  ``~`` in a key. It runs to the first space, parenthesis or operator
  character; a key with one of those in it is written as a JSON string,
  ``"/notes/due date" exists``.
- LITERAL is one JSON value: ``"cancelled"``, ``-5``, ``2.5``, ``true``,
  ``null``, ``[1, 2]``, ``{"a": 1}``.
- ``==`` compares JSON values (``1 == 1.0``, but ``true`` is not ``1``);
  ``!=`` is its negation, so it also holds when the field is missing.
  ``< <= > >=`` hold only between two numbers or two strings; against a
  missing field, or values of other kinds, they are false. ``exists`` holds
  for a field that is present, even as ``null``; ``missing`` for one that is not.
- ``and``, ``or`` and the operator words are lower case.

A bad expression raises :class:`ExpressionError` naming the column (1-based)
where parsing failed.

Example:
    >>> where = parse("/total < 0 and /currency == \\"EUR\\"")
    >>> where({"total": -5, "currency": "EUR"}), where({"total": 5})
    (True, False)
"""

from __future__ import annotations

import json
import operator as op
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import ValidationError

__all__ = ["Condition", "ExpressionError", "parse", "resolve"]

_MISSING = object()
_OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": op.lt, "<=": op.le, ">": op.gt, ">=": op.ge}
_WORDS = ("exists", "missing")
_POINTER_END = re.compile(r"[\s()=!<>]")
_INDEX = re.compile(r"0|[1-9][0-9]*")  # RFC 6901 array-index: ASCII digits only


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)


class ExpressionError(ValidationError):
    """A ``where`` expression could not be parsed.

    Attributes:
        column: where parsing failed, counting from 1.
    """

    def __init__(self, text: str, column: int, problem: str) -> None:
        self.text = text
        self.column = column
        super().__init__(f"bad expression at column {column}: {problem} (in {text!r})")


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def split_pointer(pointer: str) -> tuple[str, ...]:
    """A JSON Pointer's reference tokens: ``"/a~1b/0"`` -> ``("a/b", "0")``."""
    if pointer == "":
        return ()
    return tuple(_unescape(token) for token in pointer[1:].split("/"))


def resolve(state: Any, tokens: tuple[str, ...]) -> Any:
    """The value at a pointer's tokens, or a private marker when missing."""
    value = state
    for token in tokens:
        if isinstance(value, dict):
            value = value.get(token, _MISSING)
        elif isinstance(value, list) and _INDEX.fullmatch(token):
            index = int(token)
            value = value[index] if index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return value
    return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    if _kind(a) != _kind(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _ordered(a: Any, b: Any) -> bool:
    kind = _kind(a)
    return kind == _kind(b) and kind in ("number", "str")


_TESTS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda v, x: v is not _MISSING and _equal(v, x),
    "!=": lambda v, x: v is _MISSING or not _equal(v, x),
    "<": lambda v, x: _ordered(v, x) and v < x,
    "<=": lambda v, x: _ordered(v, x) and v <= x,
    ">": lambda v, x: _ordered(v, x) and v > x,
    ">=": lambda v, x: _ordered(v, x) and v >= x,
    "exists": lambda v, _: v is not _MISSING,
    "missing": lambda v, _: v is _MISSING,
}


def _compiled(operator: str, literal: Any) -> Callable[[Any], bool]:
    """The operator's test on a value, specialised for the literal's kind
    (a search calls it once per changed state, so it is kept cheap)."""
    test = _TESTS[operator]
    if operator in ("==", "!=") and isinstance(literal, str):
        if operator == "==":
            return lambda v: type(v) is str and v == literal
        return lambda v: type(v) is not str or v != literal
    if operator in _ORDER and _kind(literal) == "number":
        compare = _ORDER[operator]  # Python compares ints and floats exactly
        return lambda v: (type(v) is int or type(v) is float) and compare(v, literal)
    return lambda v: test(v, literal)


@dataclass(frozen=True, slots=True)
class Condition:
    """A parsed expression: call it on a state dict.

    ``pointers`` holds the reference tokens of every pointer it reads, so a
    search can skip events that touch none of them.
    """

    text: str
    test: Callable[[dict[str, Any]], bool]
    pointers: tuple[tuple[str, ...], ...]

    def __call__(self, state: dict[str, Any]) -> bool:
        return self.test(state)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.pointers: list[tuple[str, ...]] = []

    def fail(self, problem: str, at: int | None = None) -> ExpressionError:
        return ExpressionError(self.text, (self.at if at is None else at) + 1, problem)

    def skip(self) -> None:
        while self.at < len(self.text) and self.text[self.at].isspace():
            self.at += 1

    def word(self, *words: str) -> str | None:
        self.skip()
        for word in words:
            end = self.at + len(word)
            if self.text.startswith(word, self.at) and (
                end == len(self.text) or not (self.text[end].isalnum() or self.text[end] == "_")
            ):
                self.at = end
                return word
        return None

    def expression(self) -> Callable[[dict[str, Any]], bool]:
        alternatives = [self.conjunction()]
        while self.word("or"):
            alternatives.append(self.conjunction())
        if len(alternatives) == 1:
            return alternatives[0]
        return lambda state: any(test(state) for test in alternatives)

    def conjunction(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self.clause()]
        while self.word("and"):
            parts.append(self.clause())
        if len(parts) == 1:
            return parts[0]
        return lambda state: all(test(state) for test in parts)

    def clause(self) -> Callable[[dict[str, Any]], bool]:
        self.skip()
        if self.at >= len(self.text):
            raise self.fail("expected a JSON Pointer such as /status, or '('")
        if self.text[self.at] == "(":
            self.at += 1
            inner = self.expression()
            self.skip()
            if self.at >= len(self.text) or self.text[self.at] != ")":
                raise self.fail("expected ')'")
            self.at += 1
            return inner
        tokens = self.pointer()
        self.skip()
        start = self.at
        operator = self.word(*_WORDS) or next(
            (op for op in _OPERATORS if self.text.startswith(op, self.at)), None
        )
        if operator is None:
            raise self.fail("expected an operator (== != < <= > >= exists missing)", start)
        literal: Any = None
        if operator not in _WORDS:
            self.at += len(operator)
            literal = self.literal()
        self.pointers.append(tokens)
        check = _compiled(operator, literal)
        if len(tokens) == 1:  # the common case, a top-level field: one dict lookup
            key = tokens[0]
            return lambda state: check(state.get(key, _MISSING))
        return lambda state: check(resolve(state, tokens))

    def pointer(self) -> tuple[str, ...]:
        start = self.at
        if self.text[self.at] == '"':
            value = self.literal()
            if not isinstance(value, str) or not (value == "" or value.startswith("/")):
                raise self.fail("a quoted pointer must be a string starting with /", start)
            return split_pointer(value)
        if self.text[self.at] != "/":
            raise self.fail("expected a JSON Pointer such as /status")
        match = _POINTER_END.search(self.text, self.at)
        self.at = len(self.text) if match is None else match.start()
        return split_pointer(self.text[start : self.at])

    def literal(self) -> Any:
        self.skip()
        if self.at >= len(self.text):
            raise self.fail('expected a JSON value such as "cancelled", 3 or true')
        try:
            value, end = _DECODER.raw_decode(self.text, self.at)
        except json.JSONDecodeError as e:
            raise self.fail(
                f'expected a JSON value such as "cancelled", 3 or true ({e.msg})',
                max(self.at, e.pos),
            ) from None
        except ValueError:  # NaN, Infinity
            raise self.fail('expected a JSON value such as "cancelled", 3 or true') from None
        self.at = end
        return value


def parse(text: str) -> Condition:
    """Parse an expression (see the module docstring) into a :class:`Condition`."""
    if not isinstance(text, str):
        raise ValidationError(f"an expression must be text, not {type(text).__name__}")
    parser = _Parser(text)
    test = parser.expression()
    parser.skip()
    if parser.at < len(text):
        raise parser.fail("expected 'and', 'or' or the end")
    return Condition(text, test, tuple(parser.pointers))

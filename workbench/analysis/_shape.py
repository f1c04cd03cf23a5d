"""How payloads become columns: flattening, table and column names, cell values.

A payload ``{"total": 30, "address": {"zip": "10115"}, "items": [1, 2]}`` is
flattened to the paths ``("total",)``, ``("address", "zip")`` and
``("items",)``: nested objects are walked, their keys joined by
:data:`SEPARATOR` in column names (``address.zip``); lists stay whole, as JSON
text; an empty object is the JSON text ``{}``. A column is named after its
path; where that name is taken in its table (SQLite names are
case-insensitive, and a few names belong to the table's own columns) the
column gets a ``data.`` prefix, then a ``~2``, ``~3`` suffix. Which path each
column holds is recorded in the ``_sss_columns`` table, so a name never
changes meaning between exports.

Cells keep their JSON type: the tables are STRICT with payload columns of type
``ANY``, so ``"007"`` stays text and ``7`` stays an integer (a column typed
INTEGER or TEXT would convert one into the other). Booleans are stored as 0
and 1 (SQLite has no boolean; ``True == 1`` in Python), integers beyond
SQLite's 64 bits as their decimal text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

__all__ = [
    "SEPARATOR",
    "Columns",
    "cell",
    "flatten",
    "kind_of",
]

SEPARATOR = "."
"""Joins the keys of a nested object's path in a column name: ``address.zip``."""

_INT64 = (-(2**63), 2**63 - 1)

Path = tuple[str, ...]


def cell(value: Any) -> Any:
    """A JSON value as an SQLite cell: scalars as they are, lists and objects as JSON text."""
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
        return str(value)
    return value


_KINDS: dict[type, str] = {
    type(None): "null",
    bool: "boolean",
    int: "integer",
    float: "real",
    str: "text",
    list: "array",
    dict: "object",
}


def kind_of(value: Any) -> str:
    """The JSON type of a value: ``null``, ``boolean``, ``integer``, ``real``, ``text``,
    ``array`` or ``object``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "real"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "array"
    return "object"


def flatten(payload: Mapping[str, Any]) -> dict[Path, Any]:
    """The cells of a payload by path, as the type tables hold them.

    Example:
        >>> flatten({"total": 30, "address": {"zip": "10115"}, "items": [1, 2]})
        {('total',): 30, ('address', 'zip'): '10115', ('items',): '[1,2]'}
    """
    out: dict[Path, Any] = {}
    _walk((), payload, out)
    return out


def _walk(prefix: Path, obj: Mapping[str, Any], out: dict[Path, Any]) -> None:
    for key, value in obj.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            _walk(path, value, out)
        else:
            out[path] = cell(value)


class Columns:
    """The payload columns of one table: path -> column name, stable once given.

    ``fixed`` are the table's own columns (``position``, ...), which payload
    fields never take.
    """

    def __init__(self, table: str, fixed: Iterable[str]) -> None:
        self.table = table
        self.fixed = tuple(fixed)
        self.names: dict[Path, str] = {}
        self.kinds: dict[Path, set[str]] = {}
        self._taken = {name.lower() for name in self.fixed}
        self.new: list[str] = []  # columns named during this export, to be added

    def load(self, path: Path, name: str, kinds: Iterable[str]) -> None:
        self.names[path] = name
        self.kinds[path] = set(kinds)
        self._taken.add(name.lower())

    def name(self, path: Path) -> str:
        found = self.names.get(path)
        if found is not None:
            return found
        # SQL cannot name a column with a NUL or an empty name; the path is kept
        # in _sss_columns whatever the name.
        base = SEPARATOR.join(path).replace("\x00", "\\0") or "(empty)"
        candidate = base
        if candidate.lower() in self._taken:
            candidate = base = f"data{SEPARATOR}{base}"
        number = 1
        while candidate.lower() in self._taken:
            number += 1
            candidate = f"{base}~{number}"
        self.names[path] = candidate
        self.kinds.setdefault(path, set())
        self._taken.add(candidate.lower())
        self.new.append(candidate)
        return candidate

    def add(self, payload: Mapping[str, Any]) -> dict[Path, Any]:
        """The cells of ``payload`` by path (as :func:`flatten`), naming new paths
        and recording the JSON type of each value."""
        out: dict[Path, Any] = {}
        self._walk((), payload, out)
        return out

    def _walk(self, prefix: Path, obj: Mapping[str, Any], out: dict[Path, Any]) -> None:
        kinds = self.kinds
        for key, value in obj.items():
            path = (*prefix, key)
            if isinstance(value, dict) and value:
                self._walk(path, value, out)
                continue
            out[path] = cell(value)
            found = kinds.get(path)
            if found is None:
                self.name(path)
                found = kinds[path]
            found.add(_KINDS.get(type(value)) or kind_of(value))

    def path_of(self) -> dict[str, Path]:
        return {name: path for path, name in self.names.items()}


def table_name(wanted: str, taken: set[str]) -> str:
    """``wanted`` unless SQLite (case-insensitively) already has it; then ``wanted~2`` ..."""
    candidate = wanted
    number = 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{wanted}~{number}"
    taken.add(candidate.lower())
    return candidate

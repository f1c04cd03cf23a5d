"""The SQL both backends share: a read's WHERE clause, a keyset page, a
count and a page of aggregates, for one placeholder style.

SQLite and PostgreSQL differ here only in how a parameter is written
(``?`` or ``%s``) and how a list of event types is passed; everything else
about which rows a :class:`~store.backend.Query` selects, and in which
order, is written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .backend import Query

__all__ = ["POSTGRES", "SQLITE", "Dialect"]


@dataclass(frozen=True, slots=True)
class Dialect:
    """``mark``: a parameter's placeholder; ``any_of``: whether a list of
    types is one array parameter (``= ANY(%s::text[])``) rather than one
    placeholder per type (``IN (?, ?)``)."""

    mark: str
    any_of: bool

    def where(self, query: Query, type_: str | None) -> tuple[list[str], list[Any]]:
        """The clauses and parameters selecting a read's rows; ``type_``
        narrows to one event type (a merged read scans each type alone)."""
        mark = self.mark
        clauses: list[str] = []
        params: list[Any] = []
        if query.aggregate_id is not None:
            clauses.append(f"aggregate_id = {mark}")
            params.append(query.aggregate_id)
        if type_ is not None:
            clauses.append(f"type = {mark}")
            params.append(type_)
        elif query.types is not None:
            if self.any_of:
                clauses.append(f"type = ANY({mark}::text[])")
                params.append(list(query.types))
            else:
                clauses.append(f"type IN ({','.join(mark * len(query.types))})")
                params.extend(query.types)
        if query.aggregate_type is not None:
            clauses.append(f"aggregate_type = {mark}")
            params.append(query.aggregate_type)
        if query.lo > 1:
            clauses.append(f"position >= {mark}")
            params.append(query.lo)
        if query.hi is not None:
            clauses.append(f"position <= {mark}")
            params.append(query.hi)
        return clauses, params

    def page(
        self,
        query: Query,
        type_: str | None,
        after: int | None,
        backwards: bool,
        limit: int,
        columns: str,
    ) -> tuple[str, list[Any]]:
        """One keyset page: an aggregate's stream is keyed by version, any
        other read by position; ``after`` is the key already resolved (see
        :meth:`Backend.keyset_start`), None for the end the direction starts at."""
        clauses, params = self.where(query, type_)
        key = "version" if query.aggregate_id is not None else "position"
        if after is not None:
            clauses.append(f"{key} {'<' if backwards else '>'} {self.mark}")
            params.append(after)
        order = f"{key} {'DESC' if backwards else 'ASC'}"
        return (
            f"SELECT {columns} FROM events {_where(clauses)} ORDER BY {order} LIMIT {int(limit)}",
            params,
        )

    def count(self, query: Query) -> tuple[str, list[Any]]:
        clauses, params = self.where(query, None)
        return f"SELECT count(*) FROM events {_where(clauses)}", params

    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int, columns: str
    ) -> tuple[str, list[Any]]:
        """A page of the aggregates table ordered by id, after ``after``."""
        clauses: list[str] = []
        params: list[Any] = []
        if aggregate_type is not None:
            clauses.append(f"aggregate_type = {self.mark}")
            params.append(aggregate_type)
        if after is not None:
            clauses.append(f"aggregate_id > {self.mark}")
            params.append(after)
        return (
            f"SELECT {columns} FROM aggregates {_where(clauses)} "
            f"ORDER BY aggregate_id LIMIT {int(limit)}",
            params,
        )

    def versions(
        self, after: tuple[str, int] | None, upto: int, limit: int
    ) -> tuple[str, list[Any]]:
        """A page of (aggregate_id, version, position) in the order of the
        (aggregate_id, version) index, after that key, up to position ``upto``:
        verify's pass over every aggregate's versions, one aggregate at a time."""
        m = self.mark
        clauses = ["aggregate_id IS NOT NULL", f"position <= {m}"]
        params: list[Any] = [upto]
        if after is not None:
            clauses.append(f"(aggregate_id, version) > ({m}, {m})")
            params += list(after)
        return (
            f"SELECT aggregate_id, version, position FROM events {_where(clauses)} "
            f"ORDER BY aggregate_id, version LIMIT {int(limit)}",
            params,
        )


def _where(clauses: list[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


SQLITE = Dialect("?", any_of=False)
POSTGRES = Dialect("%s", any_of=True)

"""Verify's pass over every aggregate in the order of the (aggregate_id,
version) index, merged with the aggregates table: the checks of each
aggregate's versions in memory that does not grow with the store.

The chain walk (:class:`~store.integrity.ChainVerifier` given ``lasts``)
goes in position order and keeps no state per aggregate; this pass goes
aggregate by aggregate and holds one aggregate's versions at a time. The
two meet in three order-independent sums of keyed hashes (Python's string
hash is keyed per process): over every event with an aggregate, of (id,
version, position, type), where the walk takes the type from the event and
this pass from the aggregates table; over first events, of (id, position,
recorded_at) against the table's first position and created_at; and over
last events, of the same against the table's last position and updated_at.
The walk knows which events are last from :attr:`AggregatePass.lasts`, one
bit per position. Equal sums mean the log and the table agree, bar a
collision of 64-bit keyed hashes; anything else sends verify to the exact
walk, which names the first bad position.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from ._core import StoreCore
from .codec import format_time
from .integrity import ChainVerifier
from .models import AggregateInfo

__all__ = ["MASK", "AggregatePass", "aggregate_pass", "agrees", "check_aggregates"]

MASK = (1 << 64) - 1
VERSIONS_PAGE = 5000


@dataclass(slots=True)
class AggregatePass:
    """What the pass found: ``problem`` (None when every aggregate's versions
    and table row are consistent), the three sums, how many events with an
    aggregate it met, and the bit set of each aggregate's last position."""

    lasts: bytearray
    problem: str | None = None
    events: int = 0
    typed: int = 0
    created: int = 0
    updated: int = 0

    def flag(self, problem: str) -> None:
        if self.problem is None:
            self.problem = problem


def _versions(es: StoreCore, head: int) -> Iterator[tuple[str, int, int]]:
    after: tuple[str, int] | None = None
    while True:
        page = es._call(es._backend.versions, after, head, VERSIONS_PAGE)
        yield from page
        if len(page) < VERSIONS_PAGE:
            return
        after = (page[-1][0], page[-1][1])


def _table(es: StoreCore) -> Iterator[AggregateInfo]:
    from .paging import aggregates

    return aggregates(es, None)


def aggregate_pass(es: StoreCore, head: int) -> AggregatePass:
    """The pass over the store's events up to position ``head``."""
    return check_aggregates(_versions(es, head), _table(es), head)


def agrees(found: AggregatePass, walk: ChainVerifier) -> bool:
    """Whether the chain walk (given ``found.lasts``) and the pass agree."""
    return found.problem is None and (
        walk.aggregate_events == found.events
        and walk.typed & MASK == found.typed
        and walk.created & MASK == found.created
        and walk.updated & MASK == found.updated
    )


def check_aggregates(
    versions: Iterable[tuple[str, int, int]], table: Iterable[AggregateInfo], head: int
) -> AggregatePass:
    """The pass over (aggregate_id, version, position) in index order, up to
    position ``head``, merged with the aggregates table ordered by id."""
    found = AggregatePass(bytearray(head // 8 + 1))
    table = iter(table)
    info = next(table, None)
    for aggregate_id, group in itertools.groupby(versions, key=lambda r: r[0]):
        # Table rows before this id list aggregates without events up to the head.
        while info is not None and info.aggregate_id < aggregate_id:
            if info.first_position <= head:
                found.flag(f"the aggregates table lists {info.aggregate_id}, which has no events")
            info = next(table, None)
        if info is None or info.aggregate_id != aggregate_id:
            found.flag("the aggregates table misses aggregates found in the log")
            for _ in group:
                found.events += 1
            continue
        _check(found, info, list(group), head)
        info = next(table, None)
    while info is not None:
        if info.first_position <= head:
            found.flag(f"the aggregates table lists {info.aggregate_id}, which has no events")
        info = next(table, None)
    return found


def _check(
    found: AggregatePass, info: AggregateInfo, rows: list[tuple[str, int, int]], head: int
) -> None:
    """One aggregate's versions (index order) against its table row."""
    name, kind = info.aggregate_id, info.aggregate_type
    typed = found.typed
    last_position = 0
    for expected, (_, version, position) in enumerate(rows, 1):
        if version != expected or position <= last_position:
            found.flag(f"{name}: its versions are not 1, 2, ... in position order")
        last_position = position
        typed += hash((name, version, position, kind))
    found.typed = typed & MASK
    found.events += len(rows)
    first = rows[0][2]
    if info.first_position != first:
        found.flag(f"the aggregates table says {name} was created at {info.first_position}")
    found.created = (found.created + hash((name, first, format_time(info.created_at)))) & MASK
    if info.last_position > head:  # moved on after the walk's head
        if info.version < len(rows):
            found.flag(f"the aggregates table says {name} is at version {info.version}")
        return
    if info.version != len(rows) or info.last_position != last_position:
        found.flag(f"the aggregates table says {name} is at version {info.version}")
        return
    found.lasts[last_position >> 3] |= 1 << (last_position & 7)
    found.updated = (
        found.updated + hash((name, last_position, format_time(info.updated_at)))
    ) & MASK

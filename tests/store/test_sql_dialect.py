"""The SQL both backends share, seen through a backend: the pages of
aggregate versions verify walks, and the dialects themselves."""

from __future__ import annotations

import dataclasses

import pytest

from store import EventStore, NewEvent
from store.sql import POSTGRES, SQLITE


def test_version_pages_follow_the_aggregate_version_order_after_a_key(store: EventStore) -> None:
    # a-2 at 1 and 4, a-1 at 2 and 5, a-0 at 3 and 6; position 7 has no aggregate.
    for i in range(6):
        store.append([NewEvent("Set", {"i": i})], aggregate_id=f"a-{2 - i % 3}")
    store.append([NewEvent("Loose")])
    backend = store.backend
    every = [("a-0", 1, 3), ("a-0", 2, 6), ("a-1", 1, 2), ("a-1", 2, 5), ("a-2", 1, 1)]
    every.append(("a-2", 2, 4))
    assert [tuple(row) for row in backend.versions(None, 7, 100)] == every
    assert [tuple(row) for row in backend.versions(None, 7, 2)] == every[:2]
    assert [tuple(row) for row in backend.versions(("a-0", 2), 7, 2)] == every[2:4]
    assert [tuple(row) for row in backend.versions(("a-1", 1), 7, 100)] == every[3:]
    assert [tuple(row) for row in backend.versions(("a-2", 2), 7, 100)] == []
    # Only positions up to ``upto``.
    assert [tuple(row) for row in backend.versions(None, 4, 100)] == [
        ("a-0", 1, 3),
        ("a-1", 1, 2),
        ("a-2", 1, 1),
        ("a-2", 2, 4),
    ]


def test_the_dialects_are_fixed_values() -> None:
    assert (SQLITE.mark, SQLITE.any_of) == ("?", False)
    assert (POSTGRES.mark, POSTGRES.any_of) == ("%s", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        SQLITE.mark = "%s"  # type: ignore[misc]

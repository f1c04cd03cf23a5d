"""Incremental verify names the first position it cannot find, and reads only
the aggregates its walk met: its cost follows the events after the trusted
point, not the size of the aggregates table."""

from __future__ import annotations

from typing import Any

import pytest

from store import EventStore, NewEvent, paging

from .test_verify_from import build, more


def test_a_trusted_point_past_the_head_is_named_at_the_first_missing_position(
    store: EventStore,
) -> None:
    build(store)
    trusted = store.verify()
    report = store.verify(from_position=100, head_hash=trusted.head_hash or "")
    assert not report.ok
    assert report.first_bad_position == trusted.head_position + 1 == 9
    assert report.reason == "the store ends at position 8, before position 100"


def test_an_incremental_verify_never_reads_the_whole_aggregates_table(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    build(store)
    for n in range(20):  # aggregates the walk after the trusted point never meets
        store.append([NewEvent("Other", {"n": n})], aggregate_id=f"z-{n}")
    trusted = store.verify()
    more(store)

    def whole_table(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the whole aggregates table was read")

    monkeypatch.setattr(paging, "aggregates", whole_table)
    report = store.verify(from_position=trusted.head_position, head_hash=trusted.head_hash)
    assert report.ok, report
    assert report.checked == 3
    monkeypatch.undo()
    assert store.verify().ok  # the full walk does read it, and agrees

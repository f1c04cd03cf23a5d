"""What a walk from a trusted point reads: the events after it, with the head
as it stood when the walk began, and the rows of the aggregates those events
touch, not the kept counts nor the rest of the aggregates table."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent, StoreError


def test_a_walk_from_a_trusted_point_needs_only_the_head_not_the_kept_counts(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        store.append([NewEvent("Noted", {"i": i})], aggregate_id="a", aggregate_type="T")
    trusted = store.verify()
    assert trusted.ok and trusted.head_position == 3
    store.append([NewEvent("Noted", {"i": 3})], aggregate_id="a")
    store.append([NewEvent("Noted", {"i": 4})])

    def no_counts() -> Any:
        raise StoreError("the kept counts cannot be read")

    monkeypatch.setattr(store.backend, "kept_counts", no_counts)
    seen: list[tuple[int, int]] = []
    report = store.verify(
        from_position=3,
        head_hash=trusted.head_hash,
        progress=lambda checked, head: seen.append((checked, head)),
    )
    assert report.ok and report.checked == 2 and report.head_position == 5, report
    assert seen and all(head == 5 for _, head in seen), seen


def test_a_walk_from_a_trusted_point_reads_only_the_aggregates_it_touches(
    tmp_path: Path,
) -> None:
    """An edit to the row of an aggregate with no event after the trusted
    point is left to a full verify, as documented."""
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("Opened", {})], aggregate_id="old", aggregate_type="Acct")
        trusted = es.verify()
        assert trusted.ok and trusted.head_position == 1
        es.append([NewEvent("Opened", {})], aggregate_id="new", aggregate_type="Acct")
        es.append([NewEvent("Noted", {})])
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE aggregates SET last_position = 3 WHERE aggregate_id = 'old'")
    conn.close()
    with EventStore(str(path)) as es:
        report = es.verify(from_position=1, head_hash=trusted.head_hash)
        assert report.ok and report.checked == 2, report
        full = es.verify(storage="off")
    assert not full.ok and full.first_bad_position == 1, full
    assert full.reason is not None and "old" in full.reason

"""Incremental verify: ``verify(from_position=N, head_hash=H)`` walks only
the events after N, chained on from the hash trusted at N, and the
aggregates they touch; what it cannot see before N it says nothing about."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import EventStore, NewEvent, ValidationError
from store.codec import GENESIS_HASH
from store.integrity import ChainVerifier


def build(es: EventStore) -> None:
    for i in range(4):
        es.append([NewEvent("A", {"i": i})], aggregate_id="a", aggregate_type="T")
    es.append([NewEvent("B", {"k": k}) for k in range(3)], aggregate_id="b", aggregate_type="T")
    es.append([NewEvent("Tick", {})])


def more(es: EventStore) -> None:
    es.append([NewEvent("A", {"i": 9})], aggregate_id="a")  # goes on from version 4
    es.append([NewEvent("C", {})], aggregate_id="c", aggregate_type="U")  # new after N
    es.append([NewEvent("B", {"k": 9})], aggregate_id="b")


def test_only_the_events_after_the_trusted_point_are_walked(store: EventStore) -> None:
    build(store)
    trusted = store.verify()
    more(store)
    report = store.verify(from_position=trusted.head_position, head_hash=trusted.head_hash)
    full = store.verify()
    assert report.ok, report
    assert report.checked == 3 and full.checked == trusted.checked + 3
    assert (report.head_position, report.head_hash) == (full.head_position, full.head_hash)
    # Chaining on from the new head: nothing more to walk.
    again = store.verify(from_position=full.head_position, head_hash=full.head_hash)
    assert again.ok and again.checked == 0


def test_a_hash_the_store_does_not_hold_at_n_fails_at_n(store: EventStore) -> None:
    build(store)
    trusted = store.verify()
    more(store)
    wrong = "0" * 64
    report = store.verify(from_position=trusted.head_position, head_hash=wrong)
    assert not report.ok and report.first_bad_position == trusted.head_position
    assert "is not the one trusted" in (report.reason or "")
    beyond = store.verify(from_position=100, head_hash=trusted.head_hash or "")
    assert not beyond.ok and "ends at position 11" in (beyond.reason or "")
    assert wrong == GENESIS_HASH  # position 0 trusts only the chain's start
    assert store.verify(from_position=0, head_hash=wrong).checked == 11
    start = store.verify(from_position=0, head_hash="1" * 64)
    assert not start.ok and "is not the chain's start" in (start.reason or "")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"from_position": 3},
        {"head_hash": "ab"},
        {"from_position": -1, "head_hash": "ab"},
        {"from_position": 2, "head_hash": 5},
        {"from_position": True, "head_hash": "ab"},
    ],
)
def test_bad_arguments_are_refused_by_name(store: EventStore, kwargs: dict[str, object]) -> None:
    build(store)
    with pytest.raises(ValidationError, match=r"from_position|head_hash"):
        store.verify(**kwargs)  # type: ignore[arg-type]


def test_an_altered_event_after_n_is_found_and_one_before_is_not_looked_at(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        build(es)
        trusted = es.verify()
        more(es)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER events_guard_update")
        conn.execute("UPDATE events SET data = '{\"i\":99}' WHERE position = 2")
    conn.close()
    with EventStore(path) as es:
        assert es.verify(from_position=trusted.head_position, head_hash=trusted.head_hash).ok
        assert es.verify().first_bad_position == 2  # the full walk finds it
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE events SET data = '{\"k\":98}' WHERE position = 11")
    conn.close()
    with EventStore(path) as es:
        report = es.verify(from_position=trusted.head_position, head_hash=trusted.head_hash)
        assert not report.ok and report.first_bad_position == 11
        assert "digest" in (report.reason or "")


def test_versions_go_on_from_where_each_aggregate_stood_at_n(store: EventStore) -> None:
    build(store)
    trusted = store.verify()
    more(store)
    n = trusted.head_position
    rows = list(store.backend.chain_page(n, 100))
    aggregates = list(store.aggregates())
    right = {"a": (4, "T"), "b": (3, "T"), "c": (0, None)}
    verifier = ChainVerifier(n, trusted.head_hash or "", right.__getitem__)
    assert verifier.feed(rows) and verifier.finish(aggregates).ok
    behind = {**right, "a": (3, "T")}  # as if a had one event fewer at N
    verifier = ChainVerifier(n, trusted.head_hash or "", behind.__getitem__)
    assert not verifier.feed(rows)
    assert verifier.failure is not None and verifier.failure.first_bad_position == n + 1
    assert "a jumps to version 5, expected 4" in (verifier.failure.reason or "")
    retyped = {**right, "b": (3, "V")}
    verifier = ChainVerifier(n, trusted.head_hash or "", retyped.__getitem__)
    assert not verifier.feed(rows)
    assert "b changes type to T" in (verifier.failure.reason or "")
    # The aggregates table is checked for the aggregates walked only.
    verifier = ChainVerifier(n, trusted.head_hash or "", right.__getitem__)
    assert verifier.feed(rows)
    lying = [
        info
        if info.aggregate_id != "c"
        else type(info)(
            **{**{f: getattr(info, f) for f in info.__dataclass_fields__}, "first_position": 2}
        )
        for info in aggregates
    ]
    report = verifier.finish(lying)
    assert not report.ok and "c was created at position 2" in (report.reason or "")

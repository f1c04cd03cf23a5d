"""The chain verifier on its own: pages of stored rows in, a report out.

``EventStore.verify`` feeds it pages and stops at the head it saw when it
started; these tests drive it directly, so each rule holds whatever page
sizes and timing the store happens to use.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from store import EventStore, NewEvent
from store.integrity import ChainVerifier


def build(es: EventStore) -> None:
    """a: positions 1-3, then a batch of b (4-6, one recorded_at), a again (7),
    c last (8), so the head event belongs to an aggregate."""
    for i in range(3):
        es.append([NewEvent("A", {"i": i})], aggregate_id="a", aggregate_type="T")
    es.append([NewEvent("B", {"k": k}) for k in range(3)], aggregate_id="b", aggregate_type="T")
    es.append([NewEvent("A", {"i": 3})], aggregate_id="a")
    es.append([NewEvent("C", {})], aggregate_id="c")


def rows_and_aggregates(es: EventStore) -> tuple[list[Any], dict[str, Any]]:
    rows = list(es.backend.chain_page(0, 100))
    return rows, {info.aggregate_id: info for info in es.aggregates()}


def test_pages_of_any_size_give_the_same_report(store: EventStore) -> None:
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    assert len({row[10] for row in rows[3:6]}) == 1  # a batch shares its recorded_at
    for size in (1, 2, 3, 8):
        verifier = ChainVerifier()
        for start in range(0, len(rows), size):
            assert verifier.feed(rows[start : start + size]) is True
        assert verifier.feed([]) is True
        report = verifier.finish(aggregates.values())
        assert report.ok and report.checked == 8 and report.head_position == 8, report
        assert report.head_hash == rows[-1][12]


def test_after_a_failure_feeding_more_changes_nothing(store: EventStore) -> None:
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = ChainVerifier()
    assert verifier.feed(rows[:3] + rows[4:]) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 4 and failure.checked == 3
    assert verifier.feed(rows[3:]) is False  # the missing row, too late
    assert verifier.failure is failure and verifier.checked == 3
    assert verifier.finish(aggregates.values()) is failure


def test_an_unreadable_row_is_a_failure_not_a_crash(store: EventStore) -> None:
    build(store)
    rows, _ = rows_and_aggregates(store)
    bad = list(rows[1])
    bad[12] = None  # the hash column holds nothing comparable
    bad[10] = None
    verifier = ChainVerifier()
    assert verifier.feed([rows[0], tuple(bad)]) is False
    assert verifier.failure is not None
    assert verifier.failure.first_bad_position == 2 and not verifier.failure.ok
    # A row that is not even the right shape.
    verifier = ChainVerifier()
    assert verifier.feed([rows[0], rows[1][:5], rows[2]]) is False
    assert verifier.failure is not None and not verifier.failure.ok and verifier.checked == 1
    assert verifier.failure.first_bad_position == 2
    assert (verifier.failure.reason or "").startswith("unreadable row: ")


def test_aggregates_created_after_the_walk_are_left_out(store: EventStore) -> None:
    """A walk that stopped at position 7 has not seen c (created at 8, right
    after it): its row in the aggregates table is not a problem."""
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = ChainVerifier()
    assert verifier.feed(rows[:7])
    report = verifier.finish(aggregates.values())
    assert report.ok and report.checked == 7, report


def test_aggregates_that_moved_on_are_checked_as_far_as_the_walk_saw(store: EventStore) -> None:
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = ChainVerifier()
    assert verifier.feed(rows[:6])  # a is at version 3 here; the table says 4, last at 7
    assert verifier.finish(aggregates.values()).ok
    # But a table that is behind what the walk saw is wrong even so.
    behind = {**aggregates, "a": replace(aggregates["a"], version=2)}
    report = verifier.finish(behind.values())
    assert not report.ok and "a is at version 2, the log says 3" in (report.reason or "")


@pytest.mark.parametrize(
    ("name", "change", "fragment"),
    [
        ("c", {"version": 2}, "c is at version 2, the log says 1"),
        ("c", {"last_position": 7}, "c was last changed at position 7, the log says 8"),
        ("c", {"updated_at_shift": 1}, "c was last changed at position 8, the log says 8"),
        ("b", {"last_position": 5}, "b was last changed at position 5, the log says 6"),
        ("b", {"first_position": 5}, "b was created at position 5, the log says 4"),
        ("b", {"aggregate_type": "U"}, "b is a U, the log says T"),
        ("a", {"version": 5}, "a is at version 5, the log says 4"),
    ],
)
def test_every_column_is_checked_up_to_the_head(
    store: EventStore, name: str, change: dict[str, Any], fragment: str
) -> None:
    """Including the aggregate whose last event is the head itself."""
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    if "updated_at_shift" in change:
        info = aggregates[name]
        wrong = replace(info, updated_at=info.updated_at + timedelta(microseconds=1))
    else:
        wrong = replace(aggregates[name], **change)
    verifier = ChainVerifier()
    assert verifier.feed(rows)
    report = verifier.finish({**aggregates, name: wrong}.values())
    assert not report.ok and fragment in (report.reason or ""), report


def test_a_missing_or_extra_aggregate_row(store: EventStore) -> None:
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = ChainVerifier()
    assert verifier.feed(rows)
    report = verifier.finish([aggregates["a"], aggregates["c"]])
    assert not report.ok and report.first_bad_position is None
    assert report.reason == "the aggregates table misses aggregates found in the log"
    ghost = replace(aggregates["a"], aggregate_id="ghost")
    report = verifier.finish([*aggregates.values(), ghost])
    assert not report.ok and "lists ghost, which has no events" in (report.reason or "")


def test_verify_reads_past_one_page(store: EventStore) -> None:
    """More events than one page of the walk: every one is checked."""
    from store.verifying import PAGE

    store.append([NewEvent("Bulk", {"k": k}) for k in range(PAGE + 5)], aggregate_id="bulk")
    report = store.verify()
    assert report.ok and report.checked == PAGE + 5 == report.head_position, report


# -- the bounded pass: the aggregate pass and the walk without state per aggregate --


def bounded(
    es: EventStore, table: list[Any] | None = None, head: int | None = None
) -> tuple[Any, ChainVerifier]:
    """The aggregate pass over the store's version index against ``table``
    (the store's aggregates table unless given), then the walk given its
    last positions, both up to ``head``."""
    from store.aggregate_pass import check_aggregates

    rows, aggregates = rows_and_aggregates(es)
    head = len(rows) if head is None else head
    versions = sorted((r[2], r[4], r[0]) for r in rows if r[2] is not None and r[0] <= head)
    found = check_aggregates(versions, list(aggregates.values()) if table is None else table, head)
    walk = ChainVerifier(lasts=found.lasts)
    assert walk.feed(rows[:head])
    return found, walk


def test_the_bounded_pass_agrees_on_an_intact_store(store: EventStore) -> None:
    from store.aggregate_pass import agrees

    build(store)
    found, walk = bounded(store)
    assert found.problem is None and found.events == walk.aggregate_events == 8
    assert agrees(found, walk)
    assert walk.versions == {}  # nothing kept per aggregate


@pytest.mark.parametrize("head", [3, 5, 6, 7])
def test_the_bounded_pass_checks_aggregates_that_moved_on_as_far_as_the_walk(
    store: EventStore, head: int
) -> None:
    from store.aggregate_pass import agrees

    build(store)
    _, aggregates = rows_and_aggregates(store)
    created_later = [info for info in aggregates.values() if info.first_position <= head]
    found, walk = bounded(store, list(aggregates.values()), head)
    assert agrees(found, walk), found
    found, walk = bounded(store, created_later, head)
    assert agrees(found, walk), found


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("c", {"version": 2}),
        ("c", {"last_position": 7}),
        ("c", {"updated_at_shift": 1}),
        ("c", {"created_at_shift": 1}),
        ("b", {"last_position": 5}),
        ("b", {"first_position": 5}),
        ("b", {"aggregate_type": "U"}),
        ("a", {"aggregate_type": None}),
        ("a", {"version": 5}),
        ("a", {"version": 3}),
    ],
)
def test_the_bounded_pass_sees_every_column_of_the_table(
    store: EventStore, name: str, change: dict[str, Any]
) -> None:
    from store.aggregate_pass import agrees

    build(store)
    _, aggregates = rows_and_aggregates(store)
    info = aggregates[name]
    if "updated_at_shift" in change:
        wrong = replace(info, updated_at=info.updated_at + timedelta(microseconds=1))
    elif "created_at_shift" in change:
        wrong = replace(info, created_at=info.created_at - timedelta(microseconds=1))
    else:
        wrong = replace(info, **change)
    found, walk = bounded(store, list({**aggregates, name: wrong}.values()))
    assert not agrees(found, walk), found


def test_the_bounded_pass_sees_a_missing_or_extra_aggregate_row(store: EventStore) -> None:
    build(store)
    _, aggregates = rows_and_aggregates(store)
    found, _ = bounded(store, [aggregates["a"], aggregates["c"]])
    assert found.problem == "the aggregates table misses aggregates found in the log"
    ghost = replace(aggregates["a"], aggregate_id="ghost")
    found, _ = bounded(store, sorted([*aggregates.values(), ghost], key=lambda i: i.aggregate_id))
    assert found.problem is not None and "lists ghost, which has no events" in found.problem


def test_the_bounded_pass_sees_versions_out_of_order() -> None:
    from store.aggregate_pass import check_aggregates

    with EventStore(":memory:") as es:
        build(es)
        aggregates = list(es.aggregates())
    a = [("a", 1, 1), ("a", 2, 2), ("a", 3, 3), ("a", 4, 7)]
    rest = [("b", 1, 4), ("b", 2, 5), ("b", 3, 6), ("c", 1, 8)]
    assert check_aggregates(a + rest, aggregates, 8).problem is None
    gap = [("a", 1, 1), ("a", 2, 2), ("a", 4, 7)]
    assert "not 1, 2" in (check_aggregates(gap + rest, aggregates, 8).problem or "")
    backwards = [("a", 1, 1), ("a", 2, 3), ("a", 3, 2), ("a", 4, 7)]
    assert "not 1, 2" in (check_aggregates(backwards + rest, aggregates, 8).problem or "")


@pytest.mark.parametrize("column", [1, 2, 5])
def test_text_that_is_not_utf8_is_named_as_such(store: EventStore, column: int) -> None:
    """A file altered by hand can hold bytes that are not UTF-8; the reader
    hands them over as lone surrogates, and the report names the column."""
    build(store)
    rows, _ = rows_and_aggregates(store)
    bad = list(rows[1])
    bad[column] = bad[column][:-1] + "\udcff" + bad[column][-1:]
    verifier = ChainVerifier()
    assert verifier.feed([rows[0], tuple(bad)]) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 2
    name = {1: "event_id", 2: "aggregate_id", 5: "type"}[column]
    assert failure.reason == f"the stored {name} is not valid UTF-8 text (the file was altered)"


def test_the_first_failure_is_the_one_reported(store: EventStore) -> None:
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = ChainVerifier()
    verifier.fail(3, "position 3 cannot be read")
    verifier.fail(5, "position 5 cannot be read")
    assert verifier.feed(rows) is False and verifier.checked == 0
    report = verifier.finish(aggregates.values())
    assert not report.ok and report.first_bad_position == 3
    assert report.reason == "position 3 cannot be read"
    # A failure found by the walk is not replaced by a later one either.
    verifier = ChainVerifier()
    assert verifier.feed(rows[:2] + rows[3:]) is False
    verifier.fail(7, "later")
    assert verifier.failure is not None and verifier.failure.first_bad_position == 3


_NAMES = (
    "position", "event_id", "aggregate_id", "aggregate_type", "version", "type",
    "schema_version", "data", "metadata", "occurred_at", "recorded_at", "data_hash", "hash",
)  # fmt: skip
_WRONG = [
    *((column, 7, "int") for column in (1, 3, 5, 7, 8, 9, 10, 11)),
    (2, b"a", "bytes"),
    (4, "2", "str"),
    (6, True, "bool"),
    (6, 1.0, "float"),
    (12, None, "NoneType"),
]


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (c, v, f"the stored {_NAMES[c]} is a {kind}, not what the log wrote")
        for c, v, kind in _WRONG
    ],
)
def test_a_column_of_the_wrong_kind_is_named(
    store: EventStore, column: int, value: object, reason: str
) -> None:
    """A damaged page may give a blob or a number where the log wrote text."""
    build(store)
    rows, _ = rows_and_aggregates(store)
    bad = list(rows[1])
    bad[column] = value
    verifier = ChainVerifier()
    assert verifier.feed([rows[0], tuple(bad)]) is False
    assert verifier.failure is not None and verifier.failure.first_bad_position == 2
    assert verifier.failure.reason == reason


def _from(rows: list[Any], after: int) -> ChainVerifier:
    """A verifier trusting the chain up to ``after``, told what each
    aggregate was at that point, as ``EventStore.verify(from_position=...)``
    sets it up."""
    as_of: dict[str, tuple[int, str | None]] = {}
    for row in rows[:after]:
        if row[2] is not None:
            as_of[row[2]] = (row[4], row[3])
    return ChainVerifier(
        after=after, head_hash=rows[after - 1][12], before=lambda name: as_of.get(name, (0, None))
    )


def test_a_walk_from_a_trusted_point_skips_the_aggregates_it_did_not_reach(
    store: EventStore,
) -> None:
    """From position 6 on, b (4-6) is unchanged: its row is not checked, even
    given; a (1-3, 7) and c (8) are checked as far as the walk goes."""
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = _from(rows, 6)
    assert verifier.feed(rows[6:])
    report = verifier.finish(aggregates.values())
    assert report.ok and report.checked == 2 and report.head_position == 8, report
    # b's row may then say anything the walk cannot see.
    unseen = {**aggregates, "b": replace(aggregates["b"], version=9)}
    assert verifier.finish(unseen.values()).ok
    # a's row must still agree with the walk.
    wrong = {**aggregates, "a": replace(aggregates["a"], version=5)}
    assert "a is at version 5, the log says 4" in (verifier.finish(wrong.values()).reason or "")


def test_a_walk_from_a_trusted_point_knows_only_that_an_aggregate_came_before(
    store: EventStore,
) -> None:
    """Walking from position 4, b (created at 4) and a (created at 1) are
    both "created before 5": the table may say 1 or 4, but not 5."""
    build(store)
    rows, aggregates = rows_and_aggregates(store)
    verifier = _from(rows, 4)
    assert verifier.feed(rows[4:])
    assert verifier.finish(aggregates.values()).ok
    at_the_point = {**aggregates, "a": replace(aggregates["a"], first_position=4)}
    assert verifier.finish(at_the_point.values()).ok
    after_it = {**aggregates, "b": replace(aggregates["b"], first_position=5)}
    report = verifier.finish(after_it.values())
    assert not report.ok
    assert (
        report.reason
        == "the aggregates table says b was created at position 5, the log says before 5"
    )

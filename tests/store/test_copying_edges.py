"""store.copy_store at its edges: the targets it refuses (read-only, the
same file, longer than the bound, another history, aggregates without
events), a copy that does not verify or does not end at the source's head
(both rolled back), verify=False, bounds and progress when a prefix is
extended, the snapshots at the bound, and receipts copied into a target
that holds some of what they erase."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

import store.copying
from store import (
    ERASED,
    EventStore,
    HistoryMismatchError,
    NewEvent,
    ReadOnlyError,
    StoreError,
    ValidationError,
    copy_store,
)
from tests.store.test_forged import SQLiteForger
from tests.store.test_replay import _counting


def _fill(es: EventStore, count: int) -> None:
    for i in range(count):
        es.append(
            [NewEvent("Changed", {"n": i})], aggregate_id=f"item-{i % 2}", aggregate_type="Item"
        )


def test_a_read_only_target_is_refused_by_name(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "source.db")) as source:
        _fill(source, 4)
        EventStore(str(tmp_path / "target.db")).close()
        with EventStore(str(tmp_path / "target.db"), readonly=True) as target:
            with pytest.raises(ReadOnlyError, match="is open read-only; it cannot be copied into"):
                copy_store(source, target)
            # Refused before anything else is looked at, a bad bound included.
            with pytest.raises(ReadOnlyError, match="cannot be copied into"):
                copy_store(source, target, until_position=99)
            assert target.head() == 0


def test_a_copy_that_does_not_verify_is_rolled_back(tmp_path: Path) -> None:
    path = tmp_path / "source.db"
    with EventStore(str(path), snapshot_every=2) as source:
        _fill(source, 6)
    # A stored snapshot that lies about its state: the rows and the chain are
    # intact, so the copy ends at the source's head, but it does not verify.
    conn = sqlite3.connect(path)
    with conn:
        changed = conn.execute(
            "UPDATE snapshots SET state = '{\"forged\": true}' WHERE aggregate_id = 'item-0' "
            "AND version = 2"
        ).rowcount
    conn.close()
    assert changed == 1
    with EventStore(str(path), snapshot_every=2) as source:
        assert "the snapshot of item-0 at version 2 differs" in (source.verify().reason or "")
        with EventStore(str(tmp_path / "copy.db"), snapshot_every=2) as target:
            with pytest.raises(
                StoreError, match=r"the copy does not verify \(position 3: "
            ) as info:
                copy_store(source, target)
            assert "nothing was written to" in str(info.value)
            assert target.head() == 0 and list(target.aggregates()) == []
            assert target.backend.snapshot_page(None, 100) == []


def test_a_source_that_loses_its_last_events_while_copied_is_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source's head is read first; if the source is cut back meanwhile
    (replaced by an older copy of itself, say), the rows it still holds form
    a chain that verifies but ends short of that head: nothing is written."""
    monkeypatch.setattr(store.copying, "PAGE", 2)
    path = tmp_path / "source.db"
    with EventStore(str(path)) as source:
        _fill(source, 6)

        def cut_back(copied: int, total: int) -> None:
            if copied == 2:
                conn = sqlite3.connect(path, isolation_level=None)
                conn.execute("DROP TRIGGER events_refuse_delete")
                conn.execute("DELETE FROM events WHERE position > 2")
                conn.close()

        with EventStore(str(tmp_path / "copy.db")) as target:
            with pytest.raises(StoreError) as info:
                copy_store(source, target, progress=cut_back)
            assert str(info.value).startswith(
                f"the copy ends at 2 ({source.get(2).hash}), the source at 6 ("
            )
            assert "nothing was written to" in str(info.value)
            assert target.head() == 0 and list(target.aggregates()) == []


def test_a_snapshot_at_the_bound_comes_with_the_prefix(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "source.db"), snapshot_every=2) as source:
        _fill(source, 8)
        taken = sorted(s.position for _, s, _ in source.backend.snapshot_page(None, 100))
        assert taken == [3, 4, 7, 8]  # each aggregate's versions 2 and 4
        for bound, kept in ((3, [3]), (4, [3, 4]), (6, [3, 4]), (7, [3, 4, 7])):
            with EventStore(str(tmp_path / f"upto{bound}.db"), snapshot_every=2) as target:
                report = copy_store(source, target, until_position=bound)
                copied = sorted(s.position for _, s, _ in target.backend.snapshot_page(None, 100))
                assert (report.snapshots, copied) == (len(kept), kept), bound
                # Extending the copy brings the rest, each snapshot once.
                more = copy_store(source, target)
                assert more.snapshots == len(taken) - len(kept), bound
                copied = sorted(s.position for _, s, _ in target.backend.snapshot_page(None, 100))
                assert copied == taken


def _source_with_sets(path: Path) -> None:
    with EventStore(str(path)) as es:
        for k in range(1, 4):
            es.append([NewEvent("Set", {"k": k})], aggregate_id="a")
        es.append([NewEvent("Tick", {})])
        es.append([NewEvent("Tick", {})])


@pytest.mark.parametrize("positions", ['"none"', "null", "7", '{"3": 3}', '["x", 9]'])
def test_a_receipt_that_erases_nothing_here_keeps_the_targets_states(
    tmp_path: Path, positions: str
) -> None:
    """An event of the receipt type whose positions are not a list (no erased
    payload names it, so the chain verifies) erases nothing in the target:
    the states the target has folded stay cached."""
    path = tmp_path / "source.db"
    _source_with_sets(path)
    forger = SQLiteForger(str(path))
    forger.execute(
        f"UPDATE events SET type = 'sss.Erased', data = '{{\"positions\": {positions}}}' "
        "WHERE position = 5"
    )
    forger.rechain()
    reducers, folded = _counting()
    with (
        EventStore(str(path), readonly=True) as source,
        EventStore(str(tmp_path / "copy.db"), reducers=reducers) as target,
    ):
        assert source.verify().ok and source.get(5).type == "sss.Erased"
        copy_store(source, target, until_position=4)
        assert target.state_at("a").state == {"k": 3} and folded == [1, 2, 3]
        folded.clear()
        assert copy_store(source, target).events == 1
        assert target.state_at("a").state == {"k": 3} and folded == []


def test_a_receipt_that_erases_what_the_target_holds_drops_its_states(tmp_path: Path) -> None:
    path = tmp_path / "source.db"
    _source_with_sets(path)
    reducers, folded = _counting()
    with (
        EventStore(str(path)) as source,
        EventStore(str(tmp_path / "copy.db"), reducers=reducers) as target,
    ):
        copy_store(source, target)
        assert target.state_at("a").state == {"k": 3} and folded == [1, 2, 3]
        source.erase(positions=[3], reason="asked to")
        folded.clear()
        assert copy_store(source, target).events == 1
        assert target.get(3).erased_by == 6
        # The cached state held the erased value: it is folded again.
        assert target.state_at("a").state == {"k": ERASED} and folded == [1, 2, 3]


@pytest.mark.parametrize("shared", [0, 5])
def test_a_target_that_parts_before_its_head_is_named_at_the_first_difference(
    tmp_path: Path, shared: int
) -> None:
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "other.db")) as other,
    ):
        _fill(source, 20)
        if shared:
            copy_store(source, other, until_position=shared)
        for i in range(9):  # the next nine positions are the other store's own
            other.append([NewEvent("Mine", {"i": i})])
        before = other.backend.chain_page(0, 100)
        for bound in (None, 17):
            with pytest.raises(
                HistoryMismatchError, match=f"differs from .* at position {shared + 1};"
            ) as info:
                copy_store(source, other, until_position=bound)
            assert info.value.position == shared + 1
        assert other.backend.chain_page(0, 100) == before


def test_two_handles_on_one_file_are_the_same_store(tmp_path: Path) -> None:
    path = str(tmp_path / "one.db")
    with EventStore(path) as first, EventStore(path) as second:
        _fill(first, 3)
        with pytest.raises(ValidationError, match="the source and the target are the same store"):
            copy_store(first, second)


def test_a_target_that_holds_more_than_the_bound_is_refused(tmp_path: Path) -> None:
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "copy.db")) as target,
    ):
        _fill(source, 10)
        copy_store(source, target)
        with pytest.raises(HistoryMismatchError, match="holds 10 events, more than the 4") as info:
            copy_store(source, target, until_position=4)
        assert info.value.position == 5 and target.head() == 10


def test_without_verify_the_rows_are_copied_as_stored(tmp_path: Path) -> None:
    """verify=False skips the check: a source that does not verify (here, a
    stored snapshot that lies) is copied as it is, and the copy fails verify
    the same way."""
    path = tmp_path / "source.db"
    with EventStore(str(path), snapshot_every=2) as source:
        _fill(source, 6)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE snapshots SET state = '{\"forged\": true}' WHERE version = 2")
    conn.close()
    with (
        EventStore(str(path), snapshot_every=2) as source,
        EventStore(str(tmp_path / "copy.db"), snapshot_every=2) as target,
    ):
        report = copy_store(source, target, verify=False)
        assert (report.events, report.head_position, report.snapshots) == (6, 6, 2)
        assert report.head_hash == source.get(6).hash == target.get(6).hash
        assert target.verify().reason == source.verify().reason
        assert not target.verify().ok


def test_a_copy_report_cannot_be_changed(tmp_path: Path) -> None:
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "copy.db")) as target,
    ):
        _fill(source, 2)
        report = copy_store(source, target)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.events = 0  # type: ignore[misc]
    assert report.events == 2 and hash(report) == hash(dataclasses.replace(report))


def test_a_bound_at_the_source_head_copies_everything(tmp_path: Path) -> None:
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "copy.db")) as target,
    ):
        _fill(source, 5)
        report = copy_store(source, target, until_position=5)
        assert (report.events, report.head_position) == (5, 5)
        assert report.head_hash == source.get(5).hash == target.verify().head_hash
        assert copy_store(source, target, until_position=5).events == 0


def test_a_copied_erasure_reaches_only_what_the_target_held(tmp_path: Path) -> None:
    """Receipts copied into a target that holds a prefix: what they list
    beyond the prefix came erased with the copy (the target's cached states
    stay), an ordinary event with a ``positions`` field erases nothing, and
    a receipt naming the prefix's last event erases it there, parked
    subscriptions told which receipt did it."""
    reducers, folded = _counting()
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "copy.db"), reducers=reducers) as target,
    ):
        for k in range(1, 4):
            source.append([NewEvent("Set", {"k": k})], aggregate_id="a")
        source.append([NewEvent("Tick", {"n": 4})])
        source.append([NewEvent("Listed", {"positions": [1, 2, 3, 4]})])
        source.append([NewEvent("Tick", {"n": 6})])
        copy_store(source, target, until_position=4)
        target.subscribe("s", lambda event: None, follow=False)
        target.park_event("s", 4, "poison")
        assert target.state_at("a").state == {"k": 3} and folded == [1, 2, 3]
        assert source.erase(positions=[6], reason="asked to").position == 7
        folded.clear()
        assert copy_store(source, target).events == 3
        assert [target.get(p).erased_by for p in range(1, 7)] == [None] * 5 + [7]
        assert target.state_at("a").state == {"k": 3} and folded == []
        source.append([NewEvent("Tick", {"n": 8})])
        assert copy_store(source, target).events == 1
        target.park_event("s", 8, "poison")
        # The target's last event (the prefix's bound) is erased there too.
        assert source.erase(positions=[4, 8], reason="asked to").position == 9
        assert copy_store(source, target).events == 1
        assert [target.get(p).erased_by for p in (4, 8)] == [9, 9]
        assert target.get(8).data == {"n": ERASED}
        assert [p.reason for p in target.parked_events()] == [
            "not kept: the payload of this event was erased (receipt at position 9)"
        ] * 2
        assert target.state_at("a").state == {"k": 3} and folded == [1, 2, 3]
        assert target.verify().ok


def test_extending_a_prefix_to_a_bound_copies_up_to_it_and_counts_progress_from_the_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store.copying, "PAGE", 2)
    with (
        EventStore(str(tmp_path / "source.db")) as source,
        EventStore(str(tmp_path / "copy.db")) as target,
    ):
        _fill(source, 10)
        copy_store(source, target, until_position=3)
        seen: list[tuple[int, int]] = []
        report = copy_store(
            source,
            target,
            until_position=8,
            progress=lambda done, total: seen.append((done, total)),
        )
        assert seen == [(2, 5), (4, 5), (5, 5)]
        assert (report.events, report.head_position, target.head()) == (5, 8, 8)
        assert report.head_hash == source.get(8).hash


def test_a_target_with_aggregates_but_no_events_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    with EventStore(str(tmp_path / "source.db")) as source:
        _fill(source, 3)
        EventStore(str(path)).close()
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(
                "INSERT INTO aggregates VALUES ('x', 'Item', 1, 1, 1, "
                "'2026-01-01T00:00:00.000000+00:00', '2026-01-01T00:00:00.000000+00:00')"
            )
        conn.close()
        with EventStore(str(path)) as target:
            with pytest.raises(StoreError, match="has aggregates but no events; it is not a store"):
                copy_store(source, target)
            assert target.head() == 0

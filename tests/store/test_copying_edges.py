"""store.copy_store at its edges: a read-only target, a copy that does not
verify or does not end at the source's head (both rolled back), and the
snapshots at the bound of a prefix."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import store.copying
from store import (
    ERASED,
    EventStore,
    NewEvent,
    ReadOnlyError,
    RecordedEvent,
    Reducers,
    StoreError,
    copy_store,
)
from tests.store.test_forged import SQLiteForger


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


def _counting() -> tuple[Reducers, list[int]]:
    """Reducers that note the version of every event they fold."""
    folded: list[int] = []
    reducers = Reducers()

    @reducers.on(None, "Set")
    def set_(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        folded.append(event.version or 0)
        return {**state, **event.data}

    return reducers, folded


def _source_with_sets(path: Path) -> None:
    with EventStore(str(path)) as es:
        for k in range(1, 4):
            es.append([NewEvent("Set", {"k": k})], aggregate_id="a")
        es.append([NewEvent("Tick", {})])
        es.append([NewEvent("Tick", {})])


def test_a_receipt_that_erases_nothing_here_keeps_the_targets_states(tmp_path: Path) -> None:
    """An event of the receipt type whose positions are not a list (no erased
    payload names it, so the chain verifies) erases nothing in the target:
    the states the target has folded stay cached."""
    path = tmp_path / "source.db"
    _source_with_sets(path)
    forger = SQLiteForger(str(path))
    forger.execute(
        "UPDATE events SET type = 'sss.Erased', data = '{\"positions\": \"none\"}' "
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

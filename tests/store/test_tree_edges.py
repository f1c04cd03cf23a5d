"""The store's Merkle tree when its inputs are damaged: a stored subtree hash
that is no hash (or is gone) is recomputed from the events, and a hole in the
events is named by its position."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import CorruptStoreError, EventStore, NewEvent, verify_proof
from store.codec import format_time
from store.merkle import MemoryTree, inclusion_proof, leaf_hash
from store.tree import CHUNK, leaf_of_row, tree_of

EVENTS = 4 * CHUNK + 40  # four chunks: two nodes at level 9, one at level 10


def fill(path: str, count: int) -> list[bytes]:
    """``count`` events; the leaf hashes of their stored rows."""
    with EventStore(path) as es:
        with es.transaction():
            for i in range(count):
                es.append([NewEvent("Noted", {"i": i})], aggregate_id=f"a{i % 3}")
        rows = es.backend.chain_page(0, count)
    return [leaf_hash(leaf_of_row(row)) for row in rows]


def raw(path: str, *statements: str) -> None:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    "damage",
    [
        ["UPDATE sss_tree SET hash = 'not hex at all' WHERE level = 8 AND idx = 1"],
        ["UPDATE sss_tree SET hash = 'abcd' WHERE level = 8 AND idx = 1"],
        ["DELETE FROM sss_tree WHERE level = 8 AND idx = 1"],
        [
            "UPDATE sss_tree SET hash = 'not hex' WHERE level = 9",
            "DELETE FROM sss_tree WHERE idx = 1",
        ],
        ["DELETE FROM sss_tree WHERE level = 9"],
        ["DELETE FROM sss_tree WHERE level >= 9"],
    ],
)
def test_a_stored_subtree_hash_that_is_no_hash_is_recomputed(
    tmp_path: Path, damage: list[str]
) -> None:
    path = str(tmp_path / "events.db")
    leaves = fill(path, EVENTS)
    with EventStore(path) as es:
        es.checkpoint()  # stores the chunks and the node above them
        assert es.backend.tree_filled(8) == 4 and es.backend.tree_filled(9) == 2
    raw(path, *damage)
    reference = MemoryTree(leaves)
    with EventStore(path) as es:  # a fresh open: nothing in memory
        bundle = es.prove(1)
        assert bundle["path"] == [
            base64.b64encode(p).decode() for p in inclusion_proof(reference.subtree, 0, EVENTS)
        ]
        assert verify_proof(bundle).ok
        cp = es.checkpoint()
        assert cp.root_bytes == reference.root()


def test_a_hole_inside_the_events_is_named_by_its_position(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    fill(path, 5)
    raw(path, "DROP TRIGGER events_refuse_delete", "DELETE FROM events WHERE position = 3")
    with EventStore(path, readonly=True) as es:
        with pytest.raises(CorruptStoreError, match="position 3 is missing; run sss verify"):
            es.checkpoint()
        with pytest.raises(CorruptStoreError, match="position 3 is missing"):
            es.prove(1)


def test_a_tree_larger_than_the_events_names_the_first_missing_position() -> None:
    with EventStore(":memory:") as es:
        for i in range(5):
            es.append([NewEvent("Noted", {"i": i})])
        tree = tree_of(es)
        with pytest.raises(CorruptStoreError, match="position 6 is missing; run sss verify"):
            tree.root(8)
        with pytest.raises(CorruptStoreError, match="position 6 is missing"):
            tree.leaf(6)
        assert tree.root(5) == es.checkpoint().root_bytes


def test_an_open_store_has_one_tree_and_a_transaction_one_of_its_own() -> None:
    with EventStore(":memory:") as es, EventStore(":memory:") as other:
        es.append([NewEvent("Noted", {"i": 0})])
        tree = tree_of(es)
        assert tree_of(es) is tree and tree_of(other) is not tree
        with es.transaction():
            inside = tree_of(es)
            assert inside is not tree and tree_of(es) is not inside
        assert tree_of(es) is tree


def test_a_leaf_holds_when_the_event_occurred_and_when_it_was_recorded() -> None:
    occurred = datetime(2020, 5, 6, 7, 8, 9, tzinfo=UTC)
    with EventStore(":memory:") as es:
        es.append([NewEvent("Noted", {"i": 0}, occurred_at=occurred)])
        event = es.get(1)
        fields = json.loads(es.prove(1)["leaf"])
        assert fields[9] == format_time(occurred) != fields[10]
        assert fields[10] == format_time(event.recorded_at)

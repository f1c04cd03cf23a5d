"""The stored tree is derived data: damage to it is named in one error by
checkpoint and prove (never a bare exception), and dropping the table makes
it again from the events, with the same root."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import CorruptStoreError, EventStore, NewEvent, verify_proof


def test_a_tree_index_that_is_not_a_number_is_named_and_dropping_the_table_mends_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(300):  # more than one 256-event chunk
            es.append([NewEvent("Noted", {"i": i})])
        checkpoint = es.checkpoint()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO sss_tree VALUES (8, 'not a number', 'ab')")
    conn.commit()
    conn.close()
    for readonly in (True, False):
        with EventStore(str(path), readonly=readonly) as es:
            with pytest.raises(CorruptStoreError, match=r"sss_tree .*drop it"):
                es.checkpoint()
            with pytest.raises(CorruptStoreError, match="sss_tree"):
                es.prove(5)
            assert [e.position for e in es.read(from_position=299)] == [299, 300]
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE sss_tree")
    conn.commit()
    conn.close()
    with EventStore(str(path)) as es:
        again = es.checkpoint()
        assert (again.size, again.root) == (checkpoint.size, checkpoint.root)
        assert verify_proof(es.prove(5)).ok
        assert es.verify(checkpoint=checkpoint).ok

"""The ``erased_by`` column must hold a whole number (or nothing) for verify to
accept the row: a damaged page or a hand-edited file may put text, a blob, a
float or a boolean there, and verify names the column rather than reading the
value as a receipt's position."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import EventStore, NewEvent
from store.integrity import ChainVerifier


def _erased_log(es: EventStore) -> list[tuple[Any, ...]]:
    """Three events, the second erased by the receipt at position 4."""
    for i in range(3):
        es.append([NewEvent("Noted", {"i": i, "who": "someone"})])
    assert es.erase(positions=[2], reason="asked to").position == 4
    rows = list(es.backend.chain_page(0, 10))
    assert [row[13] for row in rows] == [None, 4, None, None]
    return rows


@pytest.mark.parametrize(
    ("value", "kind"),
    [("4", "str"), (4.0, "float"), (True, "bool"), (b"\x04", "bytes")],
)
def test_an_erased_by_of_the_wrong_kind_is_named(
    store: EventStore, value: object, kind: str
) -> None:
    rows = _erased_log(store)
    verifier = ChainVerifier()
    assert verifier.feed(rows) is True  # as erase left it
    bad = list(rows)
    bad[1] = (*rows[1][:13], value)
    verifier = ChainVerifier()
    assert verifier.feed(bad) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 2 and failure.checked == 1
    assert failure.reason == f"the stored erased_by is a {kind}, not what the log wrote"


def test_text_written_into_erased_by_by_hand_fails_verify(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(3):
            es.append([NewEvent("Noted", {"i": i})])
        assert es.verify().ok
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TRIGGER events_guard_update")
        conn.execute("UPDATE events SET erased_by = 'by hand' WHERE position = 2")
    conn.close()
    with EventStore(str(path)) as es:
        report = es.verify(storage="off")
    assert not report.ok and report.first_bad_position == 2 and report.checked == 1, report
    assert report.reason == "the stored erased_by is a str, not what the log wrote"

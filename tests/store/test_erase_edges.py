"""erase on a store open read-only is refused before anything is read or
written, with the erasure's own message."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import EventStore, NewEvent, NotFoundError, ReadOnlyError


def test_erase_on_a_read_only_store_is_refused_as_an_erasure(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        es.append([NewEvent("Registered", {"email": "a@example.org"})], aggregate_id="p")
    with EventStore(path, readonly=True) as ro:
        for kwargs in ({"positions": [1]}, {"aggregate_id": "p"}, {"positions": [99]}):
            with pytest.raises(ReadOnlyError, match="is open read-only; erasures are refused"):
                ro.erase(**kwargs, reason="asked")
    with EventStore(path) as es:
        assert es.head() == 1 and not es.get(1).erased


def test_erase_takes_one_position_as_an_int_and_names_a_position_past_the_head() -> None:
    with EventStore(":memory:") as es:
        for i in range(3):
            es.append([NewEvent("Registered", {"email": f"{i}@example.org"})], aggregate_id="p")
        receipt = es.erase(positions=2, reason="asked")  # type: ignore[arg-type]
        assert receipt.data["positions"] == [2] and es.get(2).erased
        with pytest.raises(NotFoundError, match=r"there is no event at position 9 in .* head is 4"):
            es.erase(positions=[1, 9], reason="asked")
        assert not es.get(1).erased

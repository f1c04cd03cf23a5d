"""A revert to a state holding a ``null`` is a whole-state replacement even
under the default reducer: a merge patch cannot set a ``null``. Such states
come from a replace-mode revert appended while other reducers were in use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from store import EventStore, NewEvent, RecordedEvent, Reducers


def nulling() -> Reducers:
    reducers = Reducers()

    @reducers.on(None, "Add")
    def add(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        return {**state, **event.data, "last": None, "inner": {"seen": None}}

    return reducers


def test_a_state_with_nulls_is_restored_whole_under_the_default_reducer(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path, reducers=nulling()) as es:
        es.append([NewEvent("Add", {"n": 1})], "a-1", "Thing")
        es.append([NewEvent("Add", {"n": 2})], "a-1", "Thing")
        es.revert("a-1", version=1, reason="second add was a mistake")  # version 3
    with EventStore(path) as es:  # the default reducer from here on
        restored = {"n": 1, "last": None, "inner": {"seen": None}}
        assert es.state_at("a-1").state == restored
        es.append([NewEvent("Set", {"last": 5, "inner": {"seen": 1}})], "a-1")
        assert es.state_at("a-1").state == {"n": 1, "last": 5, "inner": {"seen": 1}}
        event = es.revert("a-1", version=3, reason="back to the restored state")
        assert event.metadata["revert_mode"] == "replace"
        assert event.data == restored
        assert es.state_at("a-1").state == restored


def test_a_state_without_nulls_is_reverted_by_a_merge_patch(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "events.db")) as es:
        es.append([NewEvent("Set", {"n": 1, "o": {"k": 1}})], "a-1", "Thing")
        es.append([NewEvent("Set", {"n": 2, "o": {"j": 2}})], "a-1")
        event = es.revert("a-1", version=1, reason="undo")
        assert event.metadata["revert_mode"] == "merge-patch"
        assert event.data == {"n": 1, "o": {"j": None}}
        assert es.state_at("a-1").state == {"n": 1, "o": {"k": 1}}

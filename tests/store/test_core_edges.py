"""Opening a store: the bounds of its arguments, and what it says about itself."""

from __future__ import annotations

from pathlib import Path

import pytest

from store import EventStore, NewEvent, Reducers, StoreError, Upcasters, ValidationError
from store._core import MAX_TIMEOUT
from store.sqlite.backend import SQLiteBackend


def test_timeouts_from_zero_to_a_year_are_taken(tmp_path: Path) -> None:
    for timeout in (0, 0.5, MAX_TIMEOUT):
        with EventStore(str(tmp_path / "events.db"), timeout=timeout) as es:
            assert es.append([NewEvent("A")])[0].type == "A"
    for bad in (-0.001, MAX_TIMEOUT + 1, True, "5", None):
        with pytest.raises(ValidationError, match="timeout must be a number of seconds from 0"):
            EventStore(":memory:", timeout=bad)  # type: ignore[arg-type]


def test_snapshot_every_must_be_a_positive_int() -> None:
    with EventStore(":memory:", snapshot_every=1) as es:
        assert es.snapshot_every == 1
    for bad in (0, -3, True, 2.0, "2"):
        with pytest.raises(ValidationError, match="snapshot_every must be a positive int"):
            EventStore(":memory:", snapshot_every=bad)  # type: ignore[arg-type]


def test_flags_must_be_booleans() -> None:
    for name in ("readonly", "durable", "group_commit"):
        with pytest.raises(ValidationError, match=f"^{name} must be True or False, not 1$"):
            EventStore(":memory:", **{name: 1})  # type: ignore[arg-type]


def test_repr_and_group_commit_tell_a_read_only_store(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        assert repr(es) == f"EventStore({path!r})"
        assert es.group_commit is True
    with EventStore(path, group_commit=False) as es:
        assert es.group_commit is False
    with EventStore(path, readonly=True) as es:
        assert repr(es) == f"EventStore({path!r}, readonly=True)"
        assert es.group_commit is False


def test_one_type_name_given_as_text_is_one_type_not_its_letters(store: EventStore) -> None:
    store.append([NewEvent("Placed"), NewEvent("P"), NewEvent("Paid")])
    assert [e.type for e in store.read(types="Placed")] == ["Placed"]
    assert store.count(types="Paid") == 1


def test_reducers_upcasters_and_clock_must_be_what_they_say() -> None:
    with pytest.raises(ValidationError, match=r"reducers must be a store\.Reducers, not dict"):
        EventStore(":memory:", reducers={})  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"upcasters must be a store\.Upcasters, not list"):
        EventStore(":memory:", upcasters=[])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="clock must be a function returning a datetime"):
        EventStore(":memory:", clock="now")  # type: ignore[arg-type]
    with EventStore(":memory:", reducers=Reducers(), upcasters=Upcasters()) as es:
        assert es.append([NewEvent("A")])[0].position == 1


def test_a_closed_store_refuses_calls_and_closes_once(tmp_path: Path) -> None:
    es = EventStore(str(tmp_path / "events.db"))
    es.append([NewEvent("A")])
    es.close()
    es.close()
    with pytest.raises(StoreError, match="is closed"):
        es.head()


def test_durable_stores_sync_every_commit(tmp_path: Path) -> None:
    """durable=True (the default) is synchronous=FULL; False is NORMAL."""
    path = str(tmp_path / "events.db")
    for kwargs, level in (({}, 2), ({"durable": False}, 1), ({"durable": True}, 2)):
        with EventStore(path, **kwargs) as es:  # type: ignore[arg-type]
            backend = es.backend
            assert isinstance(backend, SQLiteBackend)
            assert backend.conn.execute("PRAGMA synchronous").fetchone()[0] == level

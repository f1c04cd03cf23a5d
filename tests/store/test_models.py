"""The records the store hands out and takes in: what a caller reads off them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import datetime

import pytest

from store import ANY, NO_STREAM, EventStore, NewEvent, RecordedEvent
from store.models import EVENT_FIELDS


def test_metadata_shortcuts_read_the_stored_metadata(store: EventStore) -> None:
    (tagged, bare, numeric) = store.append(
        [
            NewEvent(
                "Tagged",
                metadata={"actor": "alice", "correlation_id": "c-1", "causation_id": "e-0"},
            ),
            NewEvent("Bare"),
            NewEvent("Numeric", metadata={"actor": 7, "correlation_id": 8, "causation_id": 9}),
        ]
    )
    for event in (tagged, *store.read(limit=1)):
        assert (event.actor, event.correlation_id, event.causation_id) == ("alice", "c-1", "e-0")
    stored_bare, stored_numeric = store.read(from_position=2)
    for event in (bare, stored_bare):
        assert (event.actor, event.correlation_id, event.causation_id) == (None, None, None)
    # Whatever JSON value the caller stored comes back as text.
    for event in (numeric, stored_numeric):
        assert (event.actor, event.correlation_id, event.causation_id) == ("7", "8", "9")


def test_new_event_ids_are_uuid7_in_time_order() -> None:
    before = time.time_ns() // 1_000_000
    ids = [NewEvent("A").event_id for _ in range(200)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert str(parsed) == text  # canonical lower-case 8-4-4-4-12 form
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert before <= parsed.int >> 80 <= after
    # The random bits vary in every field after the timestamp.
    assert len({uuid.UUID(t).int & ((1 << 62) - 1) for t in ids}) == len(ids)
    assert len({(uuid.UUID(t).int >> 64) & 0xFFF for t in ids}) > 1


def test_expected_version_prints_as_its_name_and_reads_as_its_value() -> None:
    assert repr(ANY) == "ANY" and str(ANY) == "any"
    assert repr(NO_STREAM) == "NO_STREAM" and str(NO_STREAM) == "no stream"


def test_to_dict_names_every_field_and_erased_by_only_when_erased(store: EventStore) -> None:
    store.append([NewEvent("A", {"secret": "x"})], aggregate_id="a-1", aggregate_type="Thing")
    (event,) = store.read()
    plain = event.to_dict()
    assert list(plain) == list(EVENT_FIELDS)
    assert plain["aggregate_type"] == "Thing" and plain["data"] == {"secret": "x"}
    assert datetime.fromisoformat(plain["recorded_at"]) == event.recorded_at
    assert datetime.fromisoformat(plain["occurred_at"]) == event.occurred_at
    receipt = store.erase(positions=[1], reason="asked")
    (erased,) = store.read(limit=1)
    assert erased.to_dict()["erased_by"] == receipt.position
    assert list(erased.to_dict()) == [*EVENT_FIELDS, "erased_by"]


def test_event_fields_follow_the_recorded_event_and_leave_out_erased_by() -> None:
    names = [f.name for f in dataclasses.fields(RecordedEvent)]
    assert names[-1] == "erased_by"
    assert list(EVENT_FIELDS) == names[:-1]


def test_records_are_frozen(store: EventStore) -> None:
    new = NewEvent("A")
    (recorded,) = store.append([new])
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.type = "B"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        recorded.position = 9  # type: ignore[misc]

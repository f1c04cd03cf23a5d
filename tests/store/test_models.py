"""The records the store hands out and takes in: what a caller reads off them."""

from __future__ import annotations

import dataclasses
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from store import ANY, NO_STREAM, EventStore, NewEvent, RecordedEvent
from store.models import EVENT_FIELDS, Change, ReadStatement, VerifyReport


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


def test_records_are_frozen(tmp_path: Path) -> None:
    with EventStore(str(tmp_path / "events.db")) as es:
        new = NewEvent("A", {"n": 1})
        (recorded,) = es.append([new], aggregate_id="a-1", aggregate_type="Thing")
        es.append([NewEvent("B", {"n": 2})], aggregate_id="a-1")
        step = list(es.history("a-1"))[-1]
        statement = es.read_statement()
        assert statement is not None
        records: list[object] = [
            new,
            recorded,
            statement,
            es.aggregate("a-1"),
            es.state_at("a-1"),
            step,
            step.changes[0],
            es.verify(),
            es.counts(),
        ]
    for record in records:
        name = dataclasses.fields(record)[0].name  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, name, None)
    # Records of hashable fields can be set members and dict keys.
    assert hash(step.changes[0]) == hash(Change("/n", 1, 2))
    assert hash(statement) == hash(ReadStatement(*dataclasses.astuple(statement)))


def test_a_verify_report_made_by_hand_defaults_to_an_empty_walk() -> None:
    report = VerifyReport(False, 3, 2, "broken")
    assert (report.head_position, report.head_hash, report.root) == (0, None, None)
    assert (report.checkpoint, report.erased) == (None, 0)


def test_erased_tells_an_erased_event_from_a_kept_one(store: EventStore) -> None:
    store.append([NewEvent("A", {"x": 1}), NewEvent("A", {"x": 2})], aggregate_id="a-1")
    store.erase(positions=[1], reason="asked")
    first, second = store.read(limit=2)
    assert first.erased is True and second.erased is False


def test_a_new_event_is_schema_version_1_unless_told(store: EventStore) -> None:
    assert NewEvent("A").schema_version == 1
    plain, upgraded = store.append([NewEvent("A"), NewEvent("A", schema_version=3)])
    assert (plain.schema_version, upgraded.schema_version) == (1, 3)
    assert [e.schema_version for e in store.read()] == [1, 3]

"""The argument checks shared by the store's methods, on their own."""

from __future__ import annotations

import uuid

import pytest

from store import EventStore, ValidationError
from store.checks import check_event_id, check_int, check_types
from store.codec import MAX_INT


def test_check_int_returns_what_it_accepts() -> None:
    assert check_int(0, "n") == 0 and check_int(MAX_INT, "n") == MAX_INT
    assert check_int(7, "n", minimum=7) == 7
    for bad in (True, 1.0, "1", None, -1, MAX_INT + 1):
        with pytest.raises(ValidationError, match=r"^n must be"):
            check_int(bad, "n")


@pytest.mark.parametrize("types", [5, 1.5, object()])
def test_types_that_are_not_a_list_are_refused_by_name(store: EventStore, types: object) -> None:
    with pytest.raises(ValidationError, match="types must be a list of event type names"):
        list(store.read(types=types))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="types must be a list"):
        check_types(types)


def test_types_are_sorted_and_deduplicated() -> None:
    assert check_types("A") == ("A",)
    assert check_types(["b", "a", "b"]) == ("a", "b")
    assert check_types(iter(["z", "y"])) == ("y", "z")


def test_types_must_be_names() -> None:
    for bad in ([None], ["A", ""], [5]):
        with pytest.raises(ValidationError, match="event type must be a non-empty string"):
            check_types(bad)


def test_event_ids_are_uuid_strings_in_canonical_form() -> None:
    canonical = "6f1c2d9e-0000-4000-8000-0000000000ab"
    assert check_event_id(canonical) == canonical
    assert check_event_id(canonical.upper()) == canonical
    assert check_event_id("{" + canonical.replace("-", "") + "}") == canonical
    for bad in (5, None, uuid.UUID(canonical), b"x"):
        with pytest.raises(ValidationError, match="event_id must be a UUID string"):
            check_event_id(bad)
    with pytest.raises(ValidationError, match="is not a UUID"):
        check_event_id("order-1")

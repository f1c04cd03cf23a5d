"""The codec's own rules: what a payload may hold, how a bad one is named,
and the hash parts a server backend builds the chain from."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from store import MAX_NESTING, EventStore, NewEvent, ValidationError
from store.codec import chain_middle, encode_checked, encode_object


def canonical(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"items": [1, {"k": float("nan")}]}, "data/items/1/k holds nan"),
        ({"ok": [1, 2], "bad": (1, 2)}, "data/bad holds a tuple"),
        ({"n": 2**64}, "data/n holds an integer beyond 64 bits"),
        ({"n": -(2**63) - 1}, "data/n holds an integer beyond 64 bits"),
        ({"deep": [[{"x": {1, 2}}]]}, "data/deep/0/0/x holds a set"),
        ({"k": {2: "int key"}}, "data/k has a non-string key 2"),
        # The checking walk passes the integers at the ends of 64 bits.
        ({"lo": -(2**63), "hi": 2**64 - 1, "f": 1.5, "t": (1,)}, "data/t holds a tuple"),
        ({"s": "\ud800"}, "data holds a lone surrogate"),
        ({"deep": nested(300)}, f"data is nested more than {MAX_NESTING} levels deep"),
    ],
)
def test_a_bad_payload_is_named_by_its_path(
    store: EventStore, data: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ValidationError) as info:
        store.append([NewEvent("T", data)])
    assert fragment in str(info.value), info.value
    assert store.head() == 0


@pytest.mark.parametrize("value", [2**63 - 1, 2**64 - 1, -(2**63)])
def test_integers_within_64_bits_are_kept(store: EventStore, value: int) -> None:
    (event,) = store.append([NewEvent("T", {"n": value, "list": [value]})])
    assert store.get(event.position).data == {"n": value, "list": [value]}


@pytest.mark.parametrize("encode", [encode_object, encode_checked])
@pytest.mark.parametrize("value", [[1], "text", None, 5])
def test_only_an_object_is_a_payload(encode: Any, value: object) -> None:
    with pytest.raises(ValidationError, match="data must be a JSON object"):
        encode(value, "data")


def test_encoding_agrees_on_both_paths() -> None:
    """The quick path (one dump) and the checking path store the same text."""
    value = {"b": [1, 2.5, None, True], "a": {"é": "😀"}}
    text, decoded = encode_checked(value, "data")
    assert text == encode_object(value, "data") and decoded == value


def test_chain_middle_is_the_middle_of_the_recipe_body() -> None:
    """A server backend hashes prefix + middle + suffix; the middle must be
    the canonical JSON of [type, schema_version, data_hash, metadata] as the
    README's recipe writes it, without the brackets."""
    data_hash = hashlib.sha256(canonical({"x": 1})).hexdigest()
    metadata = {"zé": [1, None, "a\nb"], "actor": "alice", "n": -3}
    middle = chain_middle("Typé", 4, data_hash, metadata)
    assert middle == canonical(["Typé", 4, data_hash, metadata]).decode()[1:-1]

"""verify_proof on malformed bundles (a report naming what is wrong, never an
exception), and prove refusing a checkpoint it cannot prove against."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from typing import Any

import pytest

from store import EventStore, NewEvent, NotFoundError, StoreError, ValidationError, verify_proof


@pytest.mark.parametrize("bundle", ["[1, 2]", '"text"', "42", "null", b"[]", [1, 2], 42, None])
def test_a_bundle_that_is_not_an_object_is_refused_by_the_report(bundle: object) -> None:
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == "not a proof bundle: not a JSON object"
    assert report.position is None and report.signed is None


def good_bundle() -> dict[str, Any]:
    with EventStore(":memory:") as es:
        for i in range(5):
            es.append([NewEvent("Noted", {"i": i})], aggregate_id="a")
        return es.prove(3)


def test_a_good_bundle_verifies() -> None:
    report = verify_proof(good_bundle())
    assert report.ok and report.reason is None
    assert (report.position, report.tree_size, report.signed) == (3, 5, "unsigned")


@pytest.mark.parametrize(
    ("field", "value", "kind"),
    [
        ("position", None, "int"),
        ("position", "3", "int"),
        ("position", True, "int"),
        ("index", 2.0, "int"),
        ("index", False, "int"),
        ("tree_size", "5", "int"),
        ("leaf", None, "str"),
        ("leaf", ["a"], "str"),
        ("path", "AAAA", "list"),
        ("path", None, "list"),
        ("checkpoint", None, "str"),
        ("checkpoint", b"text", "str"),
    ],
)
def test_a_bundle_field_of_the_wrong_kind_is_named(field: str, value: object, kind: str) -> None:
    bundle = good_bundle()
    bundle[field] = value
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == f"the bundle's {field} is missing or not a {kind}"
    del bundle[field]
    assert verify_proof(bundle).reason == f"the bundle's {field} is missing or not a {kind}"


@pytest.mark.parametrize("fmt", [None, "sss-inclusion-proof/2", 1])
def test_a_bundle_of_another_format_is_refused(fmt: object) -> None:
    bundle = good_bundle()
    bundle["format"] = fmt
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == "not a proof bundle: format is not sss-inclusion-proof/1"
    assert not verify_proof(json.dumps(bundle)).ok


def test_prove_refuses_what_is_not_a_checkpoint() -> None:
    with EventStore(":memory:") as es:
        es.append([NewEvent("Noted", {"i": 0})])
        cp = es.checkpoint()
        for wrong in (cp.text, {"size": 1}):
            with pytest.raises(ValidationError, match="checkpoint must be a Checkpoint, not "):
                es.prove(1, checkpoint=wrong)  # type: ignore[arg-type]


def test_prove_refuses_a_checkpoint_larger_than_the_store() -> None:
    with EventStore(":memory:") as es:
        for i in range(3):
            es.append([NewEvent("Noted", {"i": i})])
        bigger = dataclasses.replace(es.checkpoint(), size=4)
        with pytest.raises(StoreError, match="the checkpoint is of 4 events, the store holds 3"):
            es.prove(1, checkpoint=bigger)


def test_prove_refuses_a_checkpoint_the_store_does_not_extend() -> None:
    with EventStore(":memory:") as es:
        for i in range(3):
            es.append([NewEvent("Noted", {"i": i})])
        cp = es.checkpoint()
        other = base64.b64encode(hashlib.sha256(b"another history").digest()).decode()
        with pytest.raises(StoreError, match=r"does not extend this checkpoint \(its root"):
            es.prove(2, checkpoint=dataclasses.replace(cp, root=other))
        assert verify_proof(es.prove(2, checkpoint=cp)).ok


def test_prove_refuses_a_position_after_the_checkpoint() -> None:
    with EventStore(":memory:") as es:
        es.append([NewEvent("Noted", {"i": 0})])
        cp = es.checkpoint()
        es.append([NewEvent("Noted", {"i": 1})])
        with pytest.raises(ValidationError, match="position 2 is after the checkpoint's 1 events"):
            es.prove(2, checkpoint=cp)
        assert verify_proof(es.prove(1, checkpoint=cp)).ok


def test_a_proof_report_is_an_immutable_hashable_value() -> None:
    bundle = good_bundle()
    report = verify_proof(bundle)
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.ok = False  # type: ignore[misc]
    assert report == verify_proof(bundle)
    assert len({report, verify_proof(bundle), verify_proof("[]")}) == 2


def test_a_leaf_that_is_not_json_is_named() -> None:
    bundle = good_bundle()
    bundle["leaf"] = "[3, not json"
    report = verify_proof(bundle)
    assert not report.ok and report.reason == "the leaf is not JSON"
    assert report.position == 3 and report.tree_size == 5


@pytest.mark.parametrize("item", ["!!!!", 1, None, "QUJD"[:3]])
def test_a_path_item_that_is_not_base64_is_named(item: object) -> None:
    bundle = good_bundle()
    bundle["path"] = [*bundle["path"][:1], item, *bundle["path"][1:]]
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == "the path holds something that is not a base64 hash"


def test_a_path_item_with_a_character_outside_base64_is_refused() -> None:
    """Lenient decoding would drop the stray character and accept the proof."""
    bundle = good_bundle()
    first = bundle["path"][0]
    bundle["path"][0] = first[:4] + "*" + first[4:]
    report = verify_proof(bundle)
    assert not report.ok
    assert report.reason == "the path holds something that is not a base64 hash"


def test_prove_names_what_the_store_holds_for_a_position_it_lacks() -> None:
    with EventStore(":memory:") as es:
        with pytest.raises(NotFoundError, match=r"no event at position 1: the store is empty$"):
            es.prove(1)
        es.append([NewEvent("Noted", {"i": 0})])
        with pytest.raises(NotFoundError, match=r"position 2: the store holds positions 1 to 1$"):
            es.prove(2)
        with pytest.raises(NotFoundError, match=r"position 0: the store holds positions 1 to 1$"):
            es.prove(0)

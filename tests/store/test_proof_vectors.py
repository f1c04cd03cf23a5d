"""Proof bundles as shipped test vectors (``vectors/proofs.json``): good ones
verify, and every falsified one fails, through :func:`store.verify_proof`
and through the README's standard-library recipe run verbatim.

The vectors come from a store with fixed ids, times and keys; regenerate
them with ``SSS_UPDATE_GOLDEN=1`` (and look at the diff before committing).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from store import Checkpoint, EventStore, NewEvent, SigningKey, verify_proof

HERE = Path(__file__).parent
VECTORS = HERE / "vectors" / "proofs.json"
README = (HERE.parent.parent / "README.md").read_text()


def _key(name: str, seed_text: str) -> SigningKey:
    return SigningKey(name, hashlib.sha256(seed_text.encode()).digest())


def _flip(text: str, at: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[at] ^= 1
    return base64.b64encode(bytes(raw)).decode()


def generate() -> dict[str, Any]:
    signer = _key("vectors", "sss test vector key")
    same_name = _key("vectors", "another key of the same name")
    other = _key("other", "a key of another name")
    start = datetime(2024, 1, 1, tzinfo=UTC)
    ticks = iter(range(10_000))
    with EventStore(":memory:", clock=lambda: start + timedelta(seconds=next(ticks))) as es:
        for i in range(13):
            es.append(
                [
                    NewEvent(
                        "Noted",
                        {"i": i, "text": "ünïcode"},
                        {"actor": "vectors"},
                        event_id=str(uuid.UUID(int=i + 1)),
                        occurred_at=start,
                    )
                ],
                aggregate_id=f"n{i % 3}",
                aggregate_type="Note",
            )
        store_id = es.info()["store_id"]
        # A fixed origin, so regenerating changes nothing but what should change.
        cp = es.checkpoint()
        fixed = Checkpoint("sss-test-vectors", cp.size, cp.root, cp.chain_head, start, None)
        signed = fixed.signed(signer)
        good = es.prove(6, checkpoint=signed)
        last = es.prove(13, checkpoint=signed)
        first_of_one = es.prove(1, checkpoint=_prefix(es, 1, start, signer))
        unsigned = es.prove(9, checkpoint=fixed)
    assert store_id
    cases: list[dict[str, Any]] = [
        {"name": "good", "bundle": good, "key": "signer", "ok": True},
        {"name": "good, no key given", "bundle": good, "key": None, "ok": True},
        {"name": "the last event of a tree of 13", "bundle": last, "key": "signer", "ok": True},
        {"name": "a tree of one event", "bundle": first_of_one, "key": "signer", "ok": True},
        {"name": "unsigned, no key given", "bundle": unsigned, "key": None, "ok": True},
    ]

    def bad(name: str, base: dict[str, Any], key: str | None, reason: str, **change: Any) -> None:
        bundle = copy.deepcopy(base)
        for field, value in change.items():
            bundle[field] = value(bundle[field]) if callable(value) else value
        cases.append({"name": name, "bundle": bundle, "key": key, "ok": False, "reason": reason})

    path = good["path"]
    bad("falsified path", good, None, "does not lead", path=[path[0], _flip(path[1]), *path[2:]])
    bad("a path element removed", good, None, "does not lead", path=path[:-1])
    bad("a path element added", good, None, "does not lead", path=[*path, path[0]])
    bad("a path that is empty", good, None, "does not lead", path=[])
    bad("wrong size", good, None, "the proof is for 14 events", tree_size=14)
    bad(
        "wrong size in the checkpoint too",
        good,
        None,
        "does not lead",
        tree_size=7,
        checkpoint=lambda text: text.replace("\n13\n", "\n7\n", 1),
    )
    # Leaf 5 has the same path in trees of 12 and 13 leaves: only the
    # signature binds the size to the root.
    bad(
        "wrong size in the checkpoint, signed",
        good,
        "signer",
        "does not verify",
        tree_size=12,
        checkpoint=lambda text: text.replace("\n13\n", "\n12\n", 1),
    )
    bad("wrong index", good, None, "index 6 is not the leaf of position 6", index=6)
    bad("wrong position and index", good, None, "not the event at position 7", position=7, index=6)
    bad(
        "another leaf",
        good,
        None,
        "does not lead",
        leaf=lambda text: text.replace('"Noted"', '"Forged"'),
    )
    lines = good["checkpoint"].split("\n")
    forged_root = "\n".join([*lines[:2], _flip(lines[2], 5), *lines[3:]])
    bad("wrong root", good, None, "does not lead", checkpoint=forged_root)
    bad("wrong root, signed", good, "signer", "does not lead", checkpoint=forged_root)
    bad("another key of the same name", good, "same_name", "does not verify")
    bad("a key of another name", good, "other", "not signed by key other")
    bad("unsigned, a key given", unsigned, "signer", "the checkpoint is unsigned")
    bad("no checkpoint", good, None, "the bundle's checkpoint", checkpoint=None)
    bad("a checkpoint that is no note", good, None, "not valid", checkpoint="13\n")
    signature_only = {"another key of the same name", "a key of another name"}
    signature_only |= {"unsigned, a key given", "wrong size in the checkpoint, signed"}
    for case in cases:
        # What the standard-library recipe, which checks no signature, must say.
        case["path_ok"] = case["ok"] or case["name"] in signature_only
    return {
        "note": "Inclusion proof bundles (sss prove); ok says whether each must verify, "
        "key names the public key to check the checkpoint's signature with (null: none).",
        "keys": {
            "signer": signer.verifier.text,
            "same_name": same_name.verifier.text,
            "other": other.verifier.text,
        },
        "cases": cases,
    }


def _prefix(es: EventStore, size: int, when: datetime, key: SigningKey) -> Checkpoint:
    from store.tree import tree_of

    root = base64.b64encode(tree_of(es).root(size)).decode()
    head = es.get(size).hash
    return Checkpoint("sss-test-vectors", size, root, head, when, None).signed(key)


def load() -> dict[str, Any]:
    if os.environ.get("SSS_UPDATE_GOLDEN"):
        VECTORS.write_text(json.dumps(generate(), indent=1, ensure_ascii=False) + "\n")
    vectors: dict[str, Any] = json.loads(VECTORS.read_text())
    return vectors


DATA = load()
CASES = DATA["cases"]


def test_the_vectors_are_what_the_store_makes() -> None:
    """The store still makes the shipped good proofs, byte for byte."""
    assert json.loads(json.dumps(generate())) == DATA


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_verify_proof_on_the_vectors(case: dict[str, Any]) -> None:
    key = None if case["key"] is None else DATA["keys"][case["key"]]
    report = verify_proof(case["bundle"], key)
    assert report.ok is case["ok"], report.reason
    if not case["ok"]:
        assert case["reason"] in (report.reason or "")


def recipes() -> list[str]:
    return re.findall(r"```py\n(.*?)```", README, flags=re.S)


def test_the_readme_has_the_two_recipes() -> None:
    found = recipes()
    assert len(found) == 2
    assert "import hashlib" in found[0] and "cryptography" not in found[0]
    assert "Ed25519PublicKey" in found[1]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_readme_recipe_on_the_vectors(case: dict[str, Any], tmp_path: Path) -> None:
    """The standard-library recipe, verbatim, accepts the good proofs and
    refuses every falsified one whose path, size, index, leaf or root was
    changed (a signature needs the second recipe)."""
    (tmp_path / "proof.json").write_text(json.dumps(case["bundle"]), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-I", "-c", recipes()[0]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode == 0) is case["path_ok"], result.stderr
    if case["path_ok"]:
        assert "the event is in the checkpoint's tree" in result.stdout


@pytest.mark.parametrize("name", ["good", "another key of the same name", "a key of another name"])
def test_the_readme_signature_recipe(name: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c["name"] == name)
    (tmp_path / "proof.json").write_text(json.dumps(case["bundle"]), encoding="utf-8")
    (tmp_path / "KEY.pub").write_text(DATA["keys"][case["key"]] + "\n")
    result = subprocess.run(
        [sys.executable, "-c", recipes()[1]], cwd=tmp_path, capture_output=True, text=True
    )
    assert (result.returncode == 0) is case["ok"], result.stderr

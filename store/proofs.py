"""Inclusion proofs of one event, checked without the store.

:func:`prove` makes a self-contained bundle (a JSON object)::

    {"format": "sss-inclusion-proof/1",
     "position": 5, "index": 4, "tree_size": 8,
     "leaf": "[5,\\"...event id...\\",...]",   the event's canonical form
     "path": ["base64", ...],                  the RFC 6962 audit path
     "checkpoint": "...note text..."}

``leaf`` is the event's canonical form with the payload only as its digest
(:func:`store.codec.event_body`): position, event id, aggregate id and type,
version, type, schema version, payload digest, metadata, occurred_at,
recorded_at. Whoever holds the payload checks it against the digest; the
path leads from ``SHA-256(0x00 || leaf)`` to the checkpoint's root. The
README gives the check with the standard library alone; :func:`verify_proof`
is the same check plus the checkpoint's signature.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ._core import StoreCore
from .checks import check_int
from .errors import NotFoundError, StoreError, ValidationError
from .merkle import verify_inclusion
from .notes import Checkpoint, VerifierKey
from .tree import tree_of

__all__ = ["FORMAT", "ProofReport", "prove", "verify_proof"]

FORMAT = "sss-inclusion-proof/1"


@dataclass(frozen=True, slots=True)
class ProofReport:
    """What :func:`verify_proof` found: ``ok``, or the ``reason`` it fails;
    the event's ``position``, the ``tree_size`` and ``root`` it was proved in,
    the ``store_id``, and ``signed`` ("unsigned", "not checked (no key
    given)" or "verified with NAME")."""

    ok: bool
    reason: str | None
    position: int | None = None
    tree_size: int | None = None
    root: str | None = None
    store_id: str | None = None
    signed: str | None = None


def prove(es: StoreCore, position: int, against: Checkpoint | None = None) -> dict[str, Any]:
    """See :meth:`EventStore.prove <store.eventstore.EventStore.prove>`."""
    from .checkpoints import checkpoint

    check_int(position, "position")
    head = es._call(es._backend.head)
    if not 1 <= position <= head:
        holds = "is empty" if head == 0 else f"holds positions 1 to {head}"
        raise NotFoundError(f"no event at position {position}: the store {holds}")
    tree = tree_of(es)
    if against is None:
        against = checkpoint(es)
    else:
        if not isinstance(against, Checkpoint):
            raise ValidationError(f"checkpoint must be a Checkpoint, not {type(against).__name__}")
        if against.size > head:
            raise StoreError(
                f"the checkpoint is of {against.size} events, the store holds {head}: "
                "run sss verify --checkpoint"
            )
        if position > against.size:
            raise ValidationError(
                f"position {position} is after the checkpoint's {against.size} events; "
                "take a newer checkpoint"
            )
        if tree.root(against.size) != against.root_bytes:
            raise StoreError(
                "the store does not extend this checkpoint (its root differs); "
                "run sss verify --checkpoint"
            )
    path = tree.inclusion(position - 1, against.size)
    return {
        "format": FORMAT,
        "position": position,
        "index": position - 1,
        "tree_size": against.size,
        "leaf": tree.leaf(position).decode("utf-8"),
        "path": [base64.b64encode(p).decode() for p in path],
        "checkpoint": against.text,
    }


def _fail(reason: str, **known: Any) -> ProofReport:
    return ProofReport(False, reason, **known)


def verify_proof(bundle: object, key: VerifierKey | str | None = None) -> ProofReport:
    """Check a bundle from :func:`prove` (a dict, or its JSON text) without
    the store: the leaf is the event at its position, the path leads from
    the leaf to the checkpoint's root for the checkpoint's size, and, given
    ``key`` (a public key), the checkpoint is signed by it. Never raises on
    a bad bundle: the report says what is wrong."""
    if isinstance(key, str):
        key = VerifierKey.parse(key)
    if isinstance(bundle, (str, bytes)):
        try:
            bundle = json.loads(bundle)
        except (ValueError, RecursionError):
            return _fail("not a proof bundle: not JSON")
    if not isinstance(bundle, dict):
        return _fail("not a proof bundle: not a JSON object")
    if bundle.get("format") != FORMAT:
        return _fail(f"not a proof bundle: format is not {FORMAT}")
    position, index, size = bundle.get("position"), bundle.get("index"), bundle.get("tree_size")
    leaf, path, note = bundle.get("leaf"), bundle.get("path"), bundle.get("checkpoint")
    for name, value, kind in (
        ("position", position, int), ("index", index, int), ("tree_size", size, int),
        ("leaf", leaf, str), ("path", path, list), ("checkpoint", note, str),
    ):  # fmt: skip
        if not isinstance(value, kind) or isinstance(value, bool):
            return _fail(f"the bundle's {name} is missing or not a {kind.__name__}")
    assert isinstance(position, int) and isinstance(index, int) and isinstance(size, int)
    assert isinstance(leaf, str) and isinstance(path, list)
    try:
        cp = Checkpoint.parse(note)
    except ValidationError as e:
        return _fail(f"the bundle's checkpoint is not valid: {e}")
    known: dict[str, Any] = {
        "position": position, "tree_size": cp.size, "root": cp.root, "store_id": cp.store_id,
    }  # fmt: skip
    if size != cp.size:
        return _fail(f"the proof is for {size} events, its checkpoint for {cp.size}", **known)
    if index != position - 1:
        return _fail(f"index {index} is not the leaf of position {position}", **known)
    try:
        fields = json.loads(leaf)
    except (ValueError, RecursionError):
        return _fail("the leaf is not JSON", **known)
    if not isinstance(fields, list) or len(fields) != 11 or fields[0] != position:
        return _fail(f"the leaf is not the event at position {position}", **known)
    hashes = []
    for item in path:
        try:
            hashes.append(base64.b64decode(item, validate=True))
        except (TypeError, ValueError, binascii.Error):
            return _fail("the path holds something that is not a base64 hash", **known)
    leaf_digest = hashlib.sha256(b"\x00" + leaf.encode("utf-8")).digest()
    if not verify_inclusion(index, size, leaf_digest, hashes, cp.root_bytes):
        return _fail(
            f"the inclusion path does not lead from the event to the root of {size} events",
            **known,
        )
    if key is None:
        signed = "unsigned" if cp.signature is None else "not checked (no key given)"
    else:
        problem = cp.signature_problem(key)
        if problem is not None:
            return _fail(problem, **known)
        signed = f"verified with {key.name}"
    return ProofReport(True, None, signed=signed, **known)

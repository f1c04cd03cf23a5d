"""Checkpoints of a store, and the check that a store still extends one.

:func:`checkpoint` states the store's size, Merkle root and chain head now
(from the stored subtree hashes, :mod:`store.tree`), signed with a key when
one is given. :func:`compare` is what ``verify(checkpoint=...)`` adds to the
chain walk: the walk recomputes every leaf from the stored rows, so the
verdict never rests on stored tree nodes:

- a checkpoint larger than the store: the tail was cut;
- the root of the first ``size`` events differs from the checkpoint's:
  history before that point was rewritten, reordered or forked (where the
  stored subtree hashes still hold the old history, the first 256 events
  that differ are named);
- otherwise the store's consistency proof from ``size`` to today's head
  must verify against the checkpoint's root and the recomputed root.
"""

from __future__ import annotations

import base64
from dataclasses import replace

from ._core import StoreCore
from .codec import GENESIS_HASH
from .errors import ValidationError
from .integrity import CHUNK_LEVEL, ChainVerifier
from .merkle import EMPTY_ROOT, verify_consistency
from .models import VerifyReport
from .notes import Checkpoint, SigningKey, VerifierKey
from .tree import tree_of

__all__ = ["checkpoint", "compare", "signing_key", "verifier_key"]

_CHUNK = 1 << CHUNK_LEVEL


def signing_key(key: object) -> SigningKey:
    if isinstance(key, SigningKey):
        return key
    if isinstance(key, str):
        return SigningKey.parse(key)
    raise ValidationError(f"key must be a private key's text, not {type(key).__name__}")


def verifier_key(key: object) -> VerifierKey:
    if isinstance(key, VerifierKey):
        return key
    if isinstance(key, SigningKey):
        return key.verifier
    if isinstance(key, str):
        return VerifierKey.parse(key)
    raise ValidationError(f"key must be a public key's text, not {type(key).__name__}")


def checkpoint(es: StoreCore, key: object = None) -> Checkpoint:
    """See :meth:`EventStore.checkpoint <store.eventstore.EventStore.checkpoint>`."""
    signer = None if key is None else signing_key(key)
    size = es._call(es._backend.head)
    tree = tree_of(es)
    root = tree.root(size)
    chain_head = GENESIS_HASH if size == 0 else tree.rows(size - 1, 1)[0][12]
    store_id = es._call(es._backend.info).get("store_id") or es.label
    made = Checkpoint(
        str(store_id), size, base64.b64encode(root).decode(), chain_head, es._now(), None
    )
    return made if signer is None else made.signed(signer)


def compare(
    es: StoreCore,
    report: VerifyReport,
    verifier: ChainVerifier,
    against: Checkpoint,
    key: VerifierKey | None,
) -> VerifyReport:
    """The walk's report, failed when the store does not extend ``against``."""
    report = replace(report, checkpoint=against)
    if key is not None:
        problem = against.signature_problem(key)
        if problem is not None:
            return replace(report, ok=False, first_bad_position=None, reason=problem)
    if not report.ok:
        return report
    size, head = against.size, report.head_position

    def fail(position: int | None, reason: str) -> VerifyReport:
        return replace(report, ok=False, first_bad_position=position, reason=reason)

    if size > head:
        return fail(
            head + 1,
            f"the checkpoint is of {size} events, the store holds {head}: the last "
            f"{size - head} were cut off (positions {head + 1} to {size})",
        )
    old_hash: str | None = GENESIS_HASH
    if size == 0:
        old_root = EMPTY_ROOT
    else:
        old_root, old_hash = verifier.mark_root or b"", verifier.mark_hash
    if old_root != against.root_bytes:
        where = _first_changed_chunk(es, verifier, size)
        said = f"; the first changed events lie at positions {where}" if where else ""
        chain = ""
        if against.chain_head is not None and old_hash != against.chain_head:
            chain = f", and the chain's hash at {size} is not the checkpoint's"
        return fail(
            int(where.split(" ")[0]) if where else None,
            f"the first {size} events are not those the checkpoint was taken of (its root "
            f"differs{chain}): history before position {size + 1} was rewritten, reordered "
            f"or forked{said}",
        )
    if against.chain_head is not None and old_hash != against.chain_head:
        return fail(size, f"the chain's hash at position {size} is not the checkpoint's")
    new_root = base64.b64decode(report.root or "")
    proof = tree_of(es).consistency(size, head)
    if not verify_consistency(size, head, old_root, new_root, proof):
        return fail(
            None,
            "the events extend the checkpoint, but the stored subtree hashes (table "
            "sss_tree, derived data) disagree with them: proofs made now would not verify; "
            "delete that table's rows to have them made again",
        )
    return report


def _first_changed_chunk(es: StoreCore, verifier: ChainVerifier, size: int) -> str | None:
    """Positions "a to b" of the first chunk whose recomputed hash differs
    from its stored hash (kept from when the events were first hashed)."""
    chunks = verifier.tree.chunks if verifier.tree is not None else []
    count = min(len(chunks), size // _CHUNK)
    if not count:
        return None
    keys = [(CHUNK_LEVEL, i) for i in range(count)]
    stored = es._call(es._backend.tree_nodes, keys)
    for index in range(count):
        old = stored.get((CHUNK_LEVEL, index))
        if old is not None and old != chunks[index].hex():
            return f"{index * _CHUNK + 1} to {(index + 1) * _CHUNK}"
    return None

"""Erasure and proofs together: a payload's erasure changes no leaf of the
Merkle tree, so checkpoints signed and proofs made before it still verify
after it, on every backend; and the store's Merkle root stays the same."""

from __future__ import annotations

from store import EventStore, NewEvent, generate_key, verify_proof

MARKER = "MARKER-9d2f-carol@example.com"


def _fill(es: EventStore) -> None:
    for k in range(40):
        es.append(
            [NewEvent("Registered", {"email": f"{MARKER}-{k}", "n": k})],
            aggregate_id=f"person-{k % 7}",
            aggregate_type="Person",
        )


def test_checkpoints_and_proofs_from_before_an_erasure_still_verify(store: EventStore) -> None:
    _fill(store)
    key = generate_key("auditor")
    before = store.checkpoint(key.text)
    proofs = [store.prove(position, checkpoint=before) for position in (1, 8, 15, 40)]
    receipt = store.erase(aggregate_id="person-1", reason="asked to be forgotten")
    assert receipt.type == "sss.Erased"
    erased = [e for e in store.read() if e.erased]
    assert [e.position for e in erased] == [2, 9, 16, 23, 30, 37]
    # The store extends the checkpoint taken before the erasure, signed.
    report = store.verify(checkpoint=before, key=key.verifier.text)
    assert report.ok, report.reason
    assert report.erased == 6
    # Each proof made before the erasure still verifies, with the key.
    for bundle in proofs:
        assert verify_proof(bundle, key.verifier.text).ok
    # A proof made after the erasure, of an erased event, verifies against
    # the old checkpoint too: its leaf holds the payload's digest, not the payload.
    after = store.prove(9, checkpoint=before)
    assert verify_proof(after, key.verifier.text).ok
    # The root of the first 40 events is the one signed before.
    now = store.checkpoint()
    assert now.size == 41 and before.size == 40
    assert store.verify(checkpoint=before).ok and store.verify(checkpoint=now).ok


def test_a_proof_of_an_erased_event_has_the_same_leaf_as_before(store: EventStore) -> None:
    _fill(store)
    checkpoint = store.checkpoint()
    first = store.prove(9, checkpoint=checkpoint)
    store.erase(positions=[9], reason="asked")
    again = store.prove(9, checkpoint=checkpoint)
    assert again == first  # the same leaf, path and checkpoint
    assert MARKER not in str(first)  # a proof never carries the payload

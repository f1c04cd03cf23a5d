"""verify(checkpoint=...) at its edges: a root that differs (the reason adds
that the chain's hash differs too only when it does), a chain head that
differs alone, a checkpoint larger than the store, the empty checkpoint,
stored subtree hashes that disagree with the events, keys of every accepted
kind and a signature that fails, and a broken chain."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import EventStore, NewEvent, ValidationError, generate_key
from store.codec import GENESIS_HASH
from store.merkle import EMPTY_ROOT
from tests.store.test_forged import SQLiteForger

OTHER_ROOT = base64.b64encode(hashlib.sha256(b"another history").digest()).decode()
OTHER_HEAD = hashlib.sha256(b"another chain").hexdigest()
FIXED = datetime(2024, 1, 1, tzinfo=UTC)  # one recorded_at, as the forger keeps it
CHAIN_TOO = ", and the chain's hash at 5 is not the checkpoint's"


def fill(es: EventStore, count: int) -> None:
    with es.transaction():
        for i in range(count):
            es.append([NewEvent("Noted", {"i": i})], aggregate_id=f"a{i % 3}")


def five_events() -> EventStore:
    es = EventStore(":memory:")
    for i in range(5):
        es.append([NewEvent("Noted", {"i": i})], aggregate_id="a")
    return es


def test_a_root_that_differs_with_the_same_chain_head_says_only_the_root() -> None:
    with five_events() as es:
        cp = es.checkpoint()
        report = es.verify(checkpoint=dataclasses.replace(cp, root=OTHER_ROOT))
        assert not report.ok
        assert report.reason is not None
        assert "(its root differs): history before position 6 was rewritten" in report.reason
        assert CHAIN_TOO not in report.reason


def test_a_root_and_a_chain_head_that_differ_are_both_named() -> None:
    with five_events() as es:
        cp = es.checkpoint()
        forged = dataclasses.replace(cp, root=OTHER_ROOT, chain_head=OTHER_HEAD)
        report = es.verify(checkpoint=forged)
        assert not report.ok
        assert report.reason is not None
        assert f"(its root differs{CHAIN_TOO}): history before position 6" in report.reason


def test_a_root_that_differs_in_a_checkpoint_without_chain_head_says_only_the_root() -> None:
    with five_events() as es:
        cp = es.checkpoint()
        report = es.verify(checkpoint=dataclasses.replace(cp, root=OTHER_ROOT, chain_head=None))
        assert not report.ok
        assert report.reason is not None
        assert "(its root differs): history" in report.reason


def test_a_checkpoint_larger_than_the_store_names_the_cut_tail() -> None:
    with five_events() as es:
        report = es.verify(checkpoint=dataclasses.replace(es.checkpoint(), size=8))
        assert not report.ok and report.first_bad_position == 6
        assert report.reason == (
            "the checkpoint is of 8 events, the store holds 5: the last 3 were cut off "
            "(positions 6 to 8)"
        )


def test_the_empty_checkpoint_is_extended_by_every_store() -> None:
    with EventStore(":memory:") as es:
        empty = es.checkpoint()
        assert (empty.size, empty.chain_head) == (0, GENESIS_HASH)
        assert empty.root_bytes == EMPTY_ROOT
        assert es.verify(checkpoint=empty).ok
        for i in range(3):
            es.append([NewEvent("Noted", {"i": i})])
        report = es.verify(checkpoint=empty)
        assert report.ok and report.checkpoint == empty
        forged = es.verify(checkpoint=dataclasses.replace(empty, root=OTHER_ROOT))
        assert not forged.ok and forged.first_bad_position is None
        assert forged.reason is not None and forged.reason.startswith(
            "the first 0 events are not those the checkpoint was taken of (its root differs)"
        )
        chain = es.verify(checkpoint=dataclasses.replace(empty, chain_head=OTHER_HEAD))
        assert not chain.ok and chain.first_bad_position == 0
        assert chain.reason == "the chain's hash at position 0 is not the checkpoint's"


def test_a_chain_head_that_differs_alone_is_named_at_the_checkpoint_size() -> None:
    with five_events() as es:
        cp = es.checkpoint()
        assert cp.chain_head == es.get(5).hash
        for i in range(3):
            es.append([NewEvent("Noted", {"i": i})])
        report = es.verify(checkpoint=dataclasses.replace(cp, chain_head=OTHER_HEAD))
        assert not report.ok and report.first_bad_position == 5
        assert report.reason == "the chain's hash at position 5 is not the checkpoint's"
        assert es.verify(checkpoint=dataclasses.replace(cp, chain_head=None)).ok
        assert es.verify(checkpoint=cp).ok


def test_a_stored_subtree_hash_that_disagrees_with_the_events_is_named(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, 300)
        old = es.checkpoint()
        fill(es, 300)
        es.checkpoint()  # stores the chunks of the 600 events
    conn = sqlite3.connect(path)
    conn.execute("UPDATE sss_tree SET hash = ? WHERE level = 8 AND idx = 0", (OTHER_HEAD,))
    conn.commit()
    conn.close()
    with EventStore(path) as es:
        report = es.verify(checkpoint=old)
        assert not report.ok and report.first_bad_position is None
        assert report.reason is not None
        assert report.reason.startswith(
            "the events extend the checkpoint, but the stored subtree hashes (table sss_tree"
        )
        assert es.verify().ok


def test_keys_are_taken_as_objects_or_text_and_anything_else_is_refused() -> None:
    key = generate_key("audit")
    with five_events() as es:
        with pytest.raises(ValidationError, match="key must be a private key's text, not int"):
            es.checkpoint(key=42)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not a private key"):
            es.checkpoint(key=key.verifier.text)
        by_text = es.checkpoint(key=key.text)
        by_object = es.checkpoint(key=key)  # type: ignore[arg-type]
        for cp in (by_text, by_object):
            assert cp.signers == ["audit"]
            for public in (key.verifier.text, key.verifier, key):
                assert es.verify(checkpoint=cp, key=public).ok  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="key must be a public key's text, not int"):
            es.verify(checkpoint=by_text, key=42)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="not a public key"):
            es.verify(checkpoint=by_text, key=key.text)


def test_a_signature_that_fails_fails_the_report_without_a_position() -> None:
    key, other = generate_key("audit"), generate_key("audit")
    with five_events() as es:
        unsigned = es.checkpoint()
        for public in (key.verifier.text, key.verifier, key):
            report = es.verify(checkpoint=unsigned, key=public)  # type: ignore[arg-type]
            assert not report.ok and report.first_bad_position is None
            assert report.reason == "the checkpoint is unsigned" and report.checkpoint == unsigned
        signed = es.checkpoint(key=key.text)
        wrong = es.verify(checkpoint=signed, key=other.verifier.text)
        assert not wrong.ok and wrong.first_bad_position is None
        assert wrong.reason is not None and "does not verify with this key" in wrong.reason
        assert es.verify(checkpoint=signed).ok  # no key: the signature is not checked


def test_a_broken_chain_is_reported_as_such_with_a_checkpoint(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, 5)
        cp = es.checkpoint()
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_guard_update")
    conn.execute("UPDATE events SET type = 'Forged' WHERE position = 2")
    conn.commit()
    conn.close()
    with EventStore(path) as es:
        plain = es.verify()
        report = es.verify(checkpoint=cp)
        assert not plain.ok and plain.first_bad_position == 2
        assert not report.ok and report.checkpoint == cp
        assert (report.first_bad_position, report.reason) == (2, plain.reason)


def test_a_checkpoint_names_the_store_by_its_id(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, 3)
        store_id = es.info()["store_id"]
        assert store_id and store_id != es.label
        assert es.checkpoint().store_id == store_id
    with EventStore(path, readonly=True) as es:
        assert es.checkpoint().store_id == store_id


def test_only_chunks_inside_the_checkpoint_are_named_as_where_history_parts(
    tmp_path: Path,
) -> None:
    """The checkpoint covers 300 events (one whole chunk). Position 280 is
    rewritten and the stored tree caught up from the rewritten history; a
    later rewrite at 600 leaves the chunk of 513 to 768 stored from before it.
    That chunk lies past the checkpoint: it says nothing about where the first
    300 events part, so no position is named."""
    path = str(tmp_path / "events.db")
    with EventStore(path, clock=lambda: FIXED) as es:
        fill(es, 300)
        cp = es.checkpoint()
        fill(es, 500)
    forger = SQLiteForger(path)
    forger.execute("UPDATE events SET data = '{\"i\": -1}' WHERE position = 280")
    forger.rechain()
    with EventStore(path) as es:
        es.checkpoint()  # stores the chunks 257-512 and 513-768 as rewritten
    forger.execute("UPDATE events SET data = '{\"i\": -2}' WHERE position = 600")
    forger.rechain()
    with EventStore(path) as es:
        assert es.verify().ok  # the chain alone cannot see it
        report = es.verify(checkpoint=cp)
        assert not report.ok and report.first_bad_position is None
        assert report.reason is not None
        assert "history before position 301 was rewritten" in report.reason
        assert "first changed events" not in report.reason

"""verify(checkpoint=...) when the checkpoint's root differs: the reason adds
that the chain's hash differs too only when it does (and only when the
checkpoint states one)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

from store import EventStore, NewEvent

OTHER_ROOT = base64.b64encode(hashlib.sha256(b"another history").digest()).decode()
OTHER_HEAD = hashlib.sha256(b"another chain").hexdigest()
CHAIN_TOO = ", and the chain's hash at 5 is not the checkpoint's"


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

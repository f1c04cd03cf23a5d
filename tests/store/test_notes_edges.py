"""Checkpoint notes at their edges: how a signature stands in words with and
without a key, a text that opens with its blank line, and a checkpoint as a
value (immutable, hashable, equal by content)."""

from __future__ import annotations

import base64
import dataclasses
import hashlib

import pytest

from store import Checkpoint, ValidationError, generate_key
from store.notes import MAX_NOTE

ROOT = base64.b64encode(hashlib.sha256(b"some root").digest()).decode()
HEAD = hashlib.sha256(b"some head").hexdigest()


def plain() -> Checkpoint:
    return Checkpoint("store-1", 7, ROOT, HEAD, None)


def test_an_unsigned_checkpoint_says_unsigned_with_or_without_a_key() -> None:
    key = generate_key("audit")
    cp = plain()
    assert cp.signature_state(None) == "unsigned"
    assert cp.signature_state(key.verifier) == "unsigned"


def test_a_signed_checkpoint_without_a_key_names_its_signers_unchecked() -> None:
    first, second = generate_key("audit"), generate_key("backup")
    once = plain().signed(first)
    assert once.signature_state(None) == "signed by audit; not checked (no key given)"
    twice = once.signed(second)
    assert twice.signature_state(None) == "signed by audit, backup; not checked (no key given)"
    assert twice.signature_state(second.verifier) == "verified with backup"
    other = generate_key("audit")
    assert twice.signature_state(other.verifier).startswith("NOT VALID: ")


def test_a_note_that_opens_with_its_blank_line_lacks_origin_size_and_root() -> None:
    for text in ("\n\n", "\n\n\u2014 audit AAAAAAAA\n"):
        with pytest.raises(ValidationError, match="it needs an origin, a size and a root"):
            Checkpoint.parse(text)
    with pytest.raises(ValidationError, match="a note ends its text with a blank line"):
        Checkpoint.parse("store-1\n7\n" + ROOT + "\n")


def test_a_checkpoint_is_an_immutable_hashable_value() -> None:
    cp = plain()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cp.size = 8  # type: ignore[misc]
    same = Checkpoint.parse(cp.text)
    assert same == cp and hash(same) == hash(cp)
    assert len({cp, same, cp.signed(generate_key("audit"))}) == 2


def test_a_note_of_up_to_64_kib_is_read_and_a_longer_one_refused() -> None:
    # The first blank line at the very end: the length check is what speaks.
    longest = "x" * (MAX_NOTE - 2) + "\n\n"
    with pytest.raises(ValidationError, match="needs an origin, a size and a root"):
        Checkpoint.parse(longest)
    for text in ("x" * (MAX_NOTE - 1) + "\n\n", "y" * 100_000 + "\n\n"):
        with pytest.raises(ValidationError, match=f"this is {len(text)} characters"):
            Checkpoint.parse(text)


def test_a_checkpoint_without_chain_head_or_time_has_only_the_three_lines() -> None:
    cp = Checkpoint("store-1", 7, ROOT, None, None)
    assert cp.body == f"store-1\n7\n{ROOT}\n"
    assert cp.text == f"store-1\n7\n{ROOT}\n\n"
    again = Checkpoint.parse(cp.text)
    assert again.chain_head is None and again.created_at is None and again.signature is None
    with_head = Checkpoint("store-1", 7, ROOT, HEAD, None)
    assert with_head.body == f"store-1\n7\n{ROOT}\nsss-chain-head {HEAD}\n"

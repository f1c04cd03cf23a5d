"""Checkpoint.parse and the key parsers, line by line: each malformed part
is refused with a message naming it (and its line number), each well-formed
variant is read back as it was written."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from datetime import UTC, datetime

import pytest

from store import Checkpoint, SigningKey, ValidationError, VerifierKey, generate_key

ROOT = base64.b64encode(hashlib.sha256(b"a root").digest()).decode()
HEAD = hashlib.sha256(b"a head").hexdigest()
WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
KEY = SigningKey("audit", hashlib.sha256(b"a fixed seed").digest())
DASH = "\u2014"


def full() -> Checkpoint:
    return Checkpoint("store-1", 42, ROOT, HEAD, WHEN).signed(KEY)


def refused(text: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Checkpoint.parse(text)
    assert fragment in str(caught.value), str(caught.value)


def test_a_full_checkpoint_reads_back_from_text_and_from_bytes() -> None:
    cp = full()
    assert Checkpoint.parse(cp.text) == cp
    assert Checkpoint.parse(cp.text.encode("utf-8")) == cp
    assert cp.signers == ["audit"]
    assert cp.signature_problem(KEY.verifier) is None


def test_an_unsigned_checkpoint_has_no_signers() -> None:
    cp = Checkpoint("store-1", 42, ROOT, HEAD, WHEN)
    assert cp.signers == []
    assert Checkpoint.parse(cp.text).signers == []
    assert cp.signature_problem(KEY.verifier) == "the checkpoint is unsigned"


def test_text_that_is_not_utf8_or_not_text_is_refused() -> None:
    refused(b"\xff\xfe" + full().text.encode(), "a checkpoint is UTF-8 text; this is not")
    refused(42, "a checkpoint is text, not int")
    refused(None, "a checkpoint is text, not NoneType")


@pytest.mark.parametrize("bad", ["\r", "\0"])
def test_carriage_returns_and_nul_are_refused(bad: str) -> None:
    text = full().text
    refused(text.replace("store-1", "store" + bad + "1"), "carriage returns or NUL")
    refused(text[:-1] + bad + "\n", "carriage returns or NUL")


def test_a_note_without_blank_line_or_final_newline_is_refused() -> None:
    text = full().text
    refused(text.replace("\n\n", "\n"), "a note ends its text with a blank line")
    refused(text[:-1], "a note ends its text with a blank line")
    refused(Checkpoint("s", 1, ROOT, None, None).text[:-1], "a note ends its text")


def test_a_note_of_two_lines_lacks_the_root() -> None:
    refused("store-1\n42\n\n", "it needs an origin, a size and a root")


@pytest.mark.parametrize("origin", [" store-1", "store-1 ", "\tstore-1"])
def test_an_empty_or_padded_origin_is_refused(origin: str) -> None:
    refused(f"{origin}\n42\n{ROOT}\n\n", "checkpoint line 1 (the origin) is empty or padded")


def test_an_empty_origin_is_refused() -> None:
    refused(f"\n42\n{ROOT}\n\n", "checkpoint line 1 (the origin) is empty or padded")


def test_an_origin_with_inner_spaces_is_kept() -> None:
    assert Checkpoint.parse(f"my store\n42\n{ROOT}\n\n").store_id == "my store"


@pytest.mark.parametrize("size", ["-1", "07", "1e3", " 5", "x", "1" * 20, "+5"])
def test_a_size_that_is_not_a_decimal_count_is_refused(size: str) -> None:
    refused(f"s\n{size}\n{ROOT}\n\n", "checkpoint line 2 is not a size")


@pytest.mark.parametrize("size", ["0", "9", "10", "9" * 19])
def test_a_decimal_size_is_read(size: str) -> None:
    assert Checkpoint.parse(f"s\n{size}\n{ROOT}\n\n").size == int(size)


def test_a_root_that_is_not_base64_or_not_32_bytes_is_refused() -> None:
    refused("s\n1\nnot base64!\n\n", "checkpoint line 3 (the root) is not base64")
    refused("s\n1\nr\u00e9\n\n", "checkpoint line 3 (the root) is not base64")
    for length in (31, 33, 1):
        root = base64.b64encode(bytes(length)).decode()
        refused(f"s\n1\n{root}\n\n", "checkpoint line 3 is not a 32-byte root")


def test_extension_lines_are_checked_and_numbered() -> None:
    refused(f"s\n1\n{ROOT}\nsss-chain-head abc\n\n", "checkpoint line 4: the chain head is no hash")
    refused(
        f"s\n1\n{ROOT}\nsss-created-at {WHEN.isoformat()}\nsss-chain-head {HEAD.upper()}\n\n",
        "checkpoint line 5: the chain head is no hash",
    )
    refused(f"s\n1\n{ROOT}\nsss-created-at yesterday\n\n", "checkpoint line 4: not a time")
    refused(
        f"s\n1\n{ROOT}\nx-other 1\nsss-created-at 2026-01-02T03:04:05\n\n",
        "checkpoint line 5: a time without zone",
    )


def test_unknown_extension_lines_are_ignored_and_known_ones_read() -> None:
    cp = Checkpoint.parse(
        f"s\n1\n{ROOT}\nx-other 1\nsss-chain-head {HEAD}\nsss-created-at {WHEN.isoformat()}\n\n"
    )
    assert (cp.chain_head, cp.created_at, cp.signature) == (HEAD, WHEN, None)
    only = Checkpoint.parse(f"s\n1\n{ROOT}\nx-other 1\n\n")
    assert (only.chain_head, only.created_at) == (None, None)


def test_signature_lines_are_checked_and_numbered() -> None:
    body = Checkpoint("s", 1, ROOT, None, None).body
    good = KEY.sign_line(body.encode())
    sig = good.split(" ")[2]
    assert Checkpoint.parse(f"{body}\n{good}\n").signature == good
    for line in (
        f"- audit {sig}",
        f"{DASH} audit {sig} extra",
        f"{DASH} audit",
        f"{DASH} a+b {sig}",
        f"{DASH}  {sig}",
    ):
        refused(f"{body}\n{line}\n", "checkpoint signature line 1 is malformed")
        refused(f"{body}\n{good}\n{line}\n", "checkpoint signature line 2 is malformed")
    refused(f"{body}\n{DASH} audit not-base64\n", "checkpoint signature line 1 is not base64")
    four = base64.b64encode(bytes(4)).decode()
    refused(f"{body}\n{good}\n{DASH} audit {four}\n", "checkpoint signature line 2 is too short")


def test_a_signature_line_of_five_bytes_is_read_and_does_not_verify() -> None:
    body = Checkpoint("s", 1, ROOT, None, None).body
    five = base64.b64encode(KEY.verifier.key_id + b"x").decode()
    cp = Checkpoint.parse(f"{body}\n{DASH} audit {five}\n")
    assert cp.signers == ["audit"]
    problem = cp.signature_problem(KEY.verifier)
    assert problem is not None and "does not verify with this key" in problem


def test_two_signatures_read_back_and_each_key_verifies() -> None:
    other = generate_key("backup")
    cp = full().signed(other)
    again = Checkpoint.parse(cp.text)
    assert again == cp and again.signers == ["audit", "backup"]
    assert again.signature_problem(KEY.verifier) is None
    assert again.signature_problem(other.verifier) is None
    stranger = generate_key("stranger").verifier
    assert again.signature_problem(stranger) == (
        "the checkpoint is not signed by key stranger (signed by audit, backup)"
    )


def test_a_signature_with_the_right_key_id_but_a_wrong_signature_does_not_verify() -> None:
    cp = full()
    raw = bytearray(base64.b64decode(cp.signature.split(" ")[2]))  # type: ignore[union-attr]
    raw[-1] ^= 1
    forged = cp.text.replace(cp.signature or "", f"{DASH} audit {base64.b64encode(raw).decode()}")
    problem = Checkpoint.parse(forged).signature_problem(KEY.verifier)
    assert problem is not None and "does not verify with this key" in problem


def test_a_signature_by_another_key_of_the_same_name_does_not_verify() -> None:
    twin = SigningKey("audit", hashlib.sha256(b"another seed").digest())
    cp = Checkpoint("store-1", 42, ROOT, HEAD, WHEN).signed(twin)
    problem = cp.signature_problem(KEY.verifier)
    assert problem is not None and "signed by another key of that name" in problem
    assert cp.signature_state(KEY.verifier) == f"NOT VALID: {problem}"
    # the right key id with another key's signature bytes
    raw = KEY.verifier.key_id + base64.b64decode(cp.signature.split(" ")[2])[4:]  # type: ignore[union-attr]
    mixed = cp.text.replace(cp.signature or "", f"{DASH} audit {base64.b64encode(raw).decode()}")
    assert Checkpoint.parse(mixed).signature_problem(KEY.verifier) is not None


# -- keys ------------------------------------------------------------------


def test_keys_read_back_from_their_text() -> None:
    assert SigningKey.parse(KEY.text) == KEY
    assert SigningKey.parse("  " + KEY.text + "\n") == KEY
    assert VerifierKey.parse(KEY.verifier.text) == KEY.verifier
    assert VerifierKey.parse(KEY.verifier.text + "\n") == KEY.verifier


def test_a_public_key_parser_refuses_a_private_key_and_malformed_text() -> None:
    for text in (KEY.text, "audit+abcd", "audit", "PRIVATE+x+y"):
        with pytest.raises(ValidationError, match="not a public key: expected NAME"):
            VerifierKey.parse(text)
    name, key_id, encoded = KEY.verifier.text.split("+")
    with pytest.raises(ValidationError, match="a key name must be text without spaces"):
        VerifierKey.parse(f"my key+{key_id}+{encoded}")
    with pytest.raises(ValidationError, match="the public key is not base64"):
        VerifierKey.parse(f"{name}+{key_id}+@@@@")
    raw = base64.b64decode(encoded)
    for wrong in (raw[:-1], raw + b"x", b"\x02" + raw[1:]):
        with pytest.raises(ValidationError, match="not an Ed25519 public key"):
            VerifierKey.parse(f"{name}+{key_id}+{base64.b64encode(wrong).decode()}")
    with pytest.raises(ValidationError, match="the public key's id does not match"):
        VerifierKey.parse(f"{name}+{'0' * 8}+{encoded}")
    with pytest.raises(ValidationError, match="the public key's id does not match"):
        VerifierKey.parse(f"other+{key_id}+{encoded}")


def test_a_private_key_parser_refuses_a_public_key_and_malformed_text() -> None:
    for text in (KEY.verifier.text, "PRIVATE+KEY+audit+abcd", "PUBLIC+KEY+a+b+c"):
        with pytest.raises(ValidationError, match="not a private key: expected PRIVATE"):
            SigningKey.parse(text)
    _, _, name, key_id, encoded = KEY.text.split("+")
    with pytest.raises(ValidationError, match="a key name must be text without spaces"):
        SigningKey.parse(f"PRIVATE+KEY+a b+{key_id}+{encoded}")
    with pytest.raises(ValidationError, match="the private key is not base64"):
        SigningKey.parse(f"PRIVATE+KEY+{name}+{key_id}+!!!!")
    raw = base64.b64decode(encoded)
    for wrong in (raw[:-1], raw + b"x", b"\x00" + raw[1:]):
        with pytest.raises(ValidationError, match="not an Ed25519 private key"):
            SigningKey.parse(f"PRIVATE+KEY+{name}+{key_id}+{base64.b64encode(wrong).decode()}")
    with pytest.raises(ValidationError, match="the private key's id does not match"):
        SigningKey.parse(f"PRIVATE+KEY+{name}+{'f' * 8}+{encoded}")


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", 7, None])
def test_a_key_name_with_spaces_or_plus_or_not_text_is_refused(name: object) -> None:
    with pytest.raises(ValidationError, match="a key name must be text without spaces or '\\+'"):
        generate_key(name)  # type: ignore[arg-type]


def test_a_generated_key_signs_what_its_verifier_checks() -> None:
    key = generate_key("fresh")
    other = generate_key("fresh")
    assert key.seed != other.seed and key.verifier.key_id != other.verifier.key_id
    line = key.sign_line(b"message")
    raw = base64.b64decode(line.split(" ")[2])
    assert raw[:4] == key.verifier.key_id and len(raw) == 4 + 64
    assert key.verifier.verifies(raw[4:], b"message")
    assert not key.verifier.verifies(raw[4:], b"another message")
    assert not other.verifier.verifies(raw[4:], b"message")
    assert not key.verifier.verifies(b"short", b"message")


def test_a_public_key_that_is_no_curve_point_verifies_nothing() -> None:
    key = VerifierKey("odd", b"\x00" * 4, b"\xff" * 32)
    assert key.verifies(b"\x00" * 64, b"message") is False


def test_keys_are_immutable_hashable_values() -> None:
    again = SigningKey.parse(KEY.text)
    with pytest.raises(dataclasses.FrozenInstanceError):
        again.name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        again.verifier.name = "other"  # type: ignore[misc]
    assert len({KEY, again, generate_key("audit")}) == 2
    assert len({KEY.verifier, VerifierKey.parse(KEY.verifier.text)}) == 1


def test_a_long_bad_size_is_quoted_by_its_first_40_characters() -> None:
    refused(f"s\n{'x' * 50}\n{ROOT}\n\n", f"checkpoint line 2 is not a size: {'x' * 40!r}")


def test_a_lone_newline_after_the_blank_line_is_a_malformed_signature_line() -> None:
    refused(f"s\n1\n{ROOT}\n\n\n", "checkpoint signature line 1 is malformed")

"""Checkpoints as signed notes, and their Ed25519 keys.

A checkpoint is a note in the C2SP tlog-checkpoint layout
(https://c2sp.org/tlog-checkpoint): the origin (the store's id), the tree
size in decimal, the root in base64, then extension lines, then a blank
line and one signature line per key (https://c2sp.org/signed-note)::

    5f0c...-store-id
    1024
    nD0s...base64-root...=
    sss-chain-head 3c1f...hex
    sss-created-at 2026-12-02T01:00:00.000000+00:00

    \u2014 audit-key Wk9h...base64(key id || signature)...

The extension lines carry the chain's hash at that size (what an incremental
``verify`` goes on from) and when the checkpoint was taken. A checkpoint
made without a key ends at the blank line, with no signature line: it is
*unsigned*, and every front end says so.

Keys use the formats of the Go ``golang.org/x/mod/sumdb/note`` package: a
verifier key ``NAME+KEYID+BASE64(0x01 || public key)`` (what ``KEY.pub``
holds) and a signer key ``PRIVATE+KEY+NAME+KEYID+BASE64(0x01 || seed)``; the
key id is the first four bytes of SHA-256(NAME || "\\n" || 0x01 || public
key), in hex in the key, big-endian before the signature in a signature line.
Signing and checking go through the ``cryptography`` package.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .codec import format_time
from .errors import ValidationError

__all__ = ["Checkpoint", "SigningKey", "VerifierKey", "generate_key"]

_NAME = re.compile(r"[^\s+]+")
_DASH = "\u2014"
_ED25519 = b"\x01"
MAX_NOTE = 1 << 16
"""The longest checkpoint text accepted (a checkpoint is a few hundred bytes)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValidationError(f"{what} is not base64") from None


def _key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:4]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValidationError(f"a key name must be text without spaces or '+', not {name!r}")
    return name


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement of a store's state: ``store_id`` (the note's
    origin), ``size`` (events), ``root`` (the Merkle root, base64),
    ``chain_head`` (the hash chain's hash at ``size``), ``created_at``, and
    ``signature`` (the note's signature lines, None when unsigned)."""

    store_id: str
    size: int
    root: str
    chain_head: str | None
    created_at: datetime | None
    signature: str | None = None

    @property
    def body(self) -> str:
        """The signed part of the note: every line up to the blank one."""
        lines = [self.store_id, str(self.size), self.root]
        if self.chain_head is not None:
            lines.append(f"sss-chain-head {self.chain_head}")
        if self.created_at is not None:
            lines.append(f"sss-created-at {format_time(self.created_at)}")
        return "\n".join(lines) + "\n"

    @property
    def text(self) -> str:
        """The whole note, as a checkpoint file holds it."""
        signatures = "" if self.signature is None else self.signature + "\n"
        return self.body + "\n" + signatures

    @property
    def root_bytes(self) -> bytes:
        return base64.b64decode(self.root)

    @property
    def signers(self) -> list[str]:
        """The key names of the signature lines."""
        if self.signature is None:
            return []
        return [line.split(" ")[1] for line in self.signature.split("\n")]

    @classmethod
    def parse(cls, text: object) -> Checkpoint:
        """Read a checkpoint note; ValidationError naming what is wrong."""
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise ValidationError("a checkpoint is UTF-8 text; this is not") from None
        if not isinstance(text, str):
            raise ValidationError(f"a checkpoint is text, not {type(text).__name__}")
        if len(text) > MAX_NOTE:
            raise ValidationError(f"a checkpoint is a few lines; this is {len(text)} characters")
        if "\r" in text or "\0" in text:
            raise ValidationError("a checkpoint holds carriage returns or NUL characters")
        end = text.find("\n\n")
        if end < 0 or not text.endswith("\n"):
            raise ValidationError(
                "not a checkpoint: a note ends its text with a blank line, then signatures"
            )
        lines = text[: end + 1].split("\n")[:-1]
        if len(lines) < 3:
            raise ValidationError("not a checkpoint: it needs an origin, a size and a root")
        origin, size_text, root = lines[:3]
        if not origin or origin != origin.strip():
            raise ValidationError("checkpoint line 1 (the origin) is empty or padded")
        if not re.fullmatch(r"0|[1-9][0-9]{0,18}", size_text):
            raise ValidationError(f"checkpoint line 2 is not a size: {size_text[:40]!r}")
        if len(_unb64(root, "checkpoint line 3 (the root)")) != 32:
            raise ValidationError("checkpoint line 3 is not a 32-byte root")
        chain_head: str | None = None
        created_at: datetime | None = None
        for number, line in enumerate(lines[3:], start=4):
            if not line:
                raise ValidationError(f"checkpoint line {number} is empty")
            word, _, value = line.partition(" ")
            if word == "sss-chain-head":
                if not re.fullmatch(r"[0-9a-f]{64}", value):
                    raise ValidationError(f"checkpoint line {number}: the chain head is no hash")
                chain_head = value
            elif word == "sss-created-at":
                try:
                    created_at = datetime.fromisoformat(value)
                except ValueError:
                    raise ValidationError(f"checkpoint line {number}: not a time") from None
                if created_at.tzinfo is None:
                    raise ValidationError(f"checkpoint line {number}: a time without zone")
        signature_lines = text[end + 2 : -1].split("\n") if text[end + 2 :] else []
        for number, line in enumerate(signature_lines, start=1):
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != _DASH or not _NAME.fullmatch(parts[1]):
                raise ValidationError(f"checkpoint signature line {number} is malformed")
            if len(_unb64(parts[2], f"checkpoint signature line {number}")) < 5:
                raise ValidationError(f"checkpoint signature line {number} is too short")
        return cls(
            origin,
            int(size_text),
            root,
            chain_head,
            created_at,
            "\n".join(signature_lines) if signature_lines else None,
        )

    def signed(self, key: SigningKey) -> Checkpoint:
        """This checkpoint with a signature line by ``key`` added."""
        line = key.sign_line(self.body.encode())
        signature = line if self.signature is None else self.signature + "\n" + line
        return Checkpoint(
            self.store_id, self.size, self.root, self.chain_head, self.created_at, signature
        )

    def signature_state(self, key: VerifierKey | None) -> str:
        """How the signature stands, in words: "unsigned", "signed by NAME;
        not checked (no key given)", "verified with NAME", or what is wrong."""
        if self.signature is None:
            return "unsigned"
        if key is None:
            return f"signed by {', '.join(self.signers)}; not checked (no key given)"
        problem = self.signature_problem(key)
        return f"verified with {key.name}" if problem is None else f"NOT VALID: {problem}"

    def signature_problem(self, key: VerifierKey) -> str | None:
        """None when a signature line by ``key`` verifies over the body, else why not."""
        if self.signature is None:
            return "the checkpoint is unsigned"
        mine = [line for line in self.signature.split("\n") if line.split(" ")[1] == key.name]
        if not mine:
            return (
                f"the checkpoint is not signed by key {key.name} "
                f"(signed by {', '.join(self.signers)})"
            )
        body = self.body.encode()
        for line in mine:
            raw = base64.b64decode(line.split(" ")[2])
            if raw[:4] == key.key_id and key.verifies(raw[4:], body):
                return None
        return (
            f"the checkpoint's signature by {key.name} does not verify with this key: "
            "the checkpoint was altered, or signed by another key of that name"
        )


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A public key (``KEY.pub``): ``NAME+KEYID+BASE64``."""

    name: str
    key_id: bytes
    public: bytes

    @classmethod
    def parse(cls, text: str) -> VerifierKey:
        parts = text.strip().split("+", 2)
        if len(parts) != 3 or text.strip().startswith("PRIVATE+"):
            raise ValidationError(
                "not a public key: expected NAME+KEYID+BASE64 (the .pub file sss keygen writes)"
            )
        name, hex_id, encoded = parts
        _check_name(name)
        raw = _unb64(encoded, "the public key")
        if len(raw) != 33 or raw[:1] != _ED25519:
            raise ValidationError("not an Ed25519 public key")
        key_id = _key_id(name, raw[1:])
        if hex_id != key_id.hex():
            raise ValidationError("the public key's id does not match its name and key")
        return cls(name, key_id, raw[1:])

    @property
    def text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(_ED25519 + self.public)}"

    def verifies(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        try:
            Ed25519PublicKey.from_public_bytes(self.public).verify(signature, message)
        except (InvalidSignature, ValueError):
            return False
        return True


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key (``KEY``): ``PRIVATE+KEY+NAME+KEYID+BASE64``."""

    name: str
    seed: bytes

    @classmethod
    def parse(cls, text: str) -> SigningKey:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise ValidationError(
                "not a private key: expected PRIVATE+KEY+NAME+KEYID+BASE64 "
                "(the file sss keygen writes, not its .pub)"
            )
        name = _check_name(parts[2])
        raw = _unb64(parts[4], "the private key")
        if len(raw) != 33 or raw[:1] != _ED25519:
            raise ValidationError("not an Ed25519 private key")
        key = cls(name, raw[1:])
        if parts[3] != key.verifier.key_id.hex():
            raise ValidationError("the private key's id does not match its name and key")
        return key

    def _private(self) -> Any:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def verifier(self) -> VerifierKey:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        public = self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return VerifierKey(self.name, _key_id(self.name, public), public)

    @property
    def text(self) -> str:
        key_id = self.verifier.key_id.hex()
        return f"PRIVATE+KEY+{self.name}+{key_id}+{_b64(_ED25519 + self.seed)}"

    def sign_line(self, message: bytes) -> str:
        signature = self._private().sign(message)
        return f"{_DASH} {self.name} {_b64(self.verifier.key_id + signature)}"


def generate_key(name: str) -> SigningKey:
    """A new Ed25519 key pair named ``name`` (its ``.verifier`` is the public half)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    _check_name(name)
    seed = Ed25519PrivateKey.generate().private_bytes(
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return SigningKey(name, seed)

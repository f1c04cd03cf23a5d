"""``sss keygen``, ``sss checkpoint``, ``sss prove`` and ``sss verify-proof``:
proof for outsiders (``sss verify --checkpoint`` is in :mod:`.audit`).

A checkpoint is a signed note (origin = the store's id, size, base64 Merkle
root); a proof bundle is JSON an outsider checks without the store. See
:mod:`store.notes`, :mod:`store.checkpoints` and :mod:`store.proofs`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from store import (
    Checkpoint,
    EventStore,
    ReadOnlyError,
    SigningKey,
    VerifierKey,
    generate_key,
    verify_proof,
)
from workbench.cli.common import CliError
from workbench.inputs import InputError, open_store, parse_position, read_text_file
from workbench.outputs import check_output, open_output
from workbench.safetext import shown

__all__ = ["load_checkpoint", "load_public_key", "register"]


def load_checkpoint(path: str) -> Checkpoint:
    """The checkpoint in file ``path``, or one line saying why it is none."""
    text = read_text_file(path, "checkpoint file", limit=1 << 16)
    try:
        return Checkpoint.parse(text)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(f"checkpoint file {shown(path)}: {e}") from None


def load_public_key(path: str) -> VerifierKey:
    text = read_text_file(path, "key file", limit=4096)
    try:
        return VerifierKey.parse(text)
    except ValueError as e:
        raise InputError(f"key file {shown(path)}: {e}") from None


def _load_private_key(path: str) -> SigningKey:
    text = read_text_file(path, "key file", limit=4096)
    try:
        return SigningKey.parse(text)
    except ValueError as e:
        raise InputError(f"key file {shown(path)}: {e}") from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = subparsers.add_parser(
        "keygen",
        help="make an Ed25519 key pair for signing checkpoints",
        description=(
            "Write a new Ed25519 key pair: KEY (the private key, readable by you only; "
            "sss checkpoint --key signs with it) and KEY.pub (the public key, for whoever "
            "checks checkpoints: sss verify --checkpoint --key, sss verify-proof --key). "
            "The formats are those of Go's sumdb/note package. An existing KEY is never "
            "overwritten."
        ),
    )
    keygen.add_argument("-o", "--output", required=True, metavar="KEY", help="the private key")
    keygen.add_argument(
        "--name",
        help="the key's name in signature lines (default: KEY's file name); no spaces or '+'",
    )
    keygen.set_defaults(func=run_keygen)

    checkpoint = subparsers.add_parser(
        "checkpoint",
        help="write a (signed) checkpoint of the store: size and Merkle root",
        description=(
            "Write a checkpoint of the store as it is now: a note in the C2SP "
            "tlog-checkpoint layout (the store's id, the number of events, the base64 "
            "Merkle root, then the chain's head hash and the time as extension lines), "
            "signed with --key, or unsigned (no signature line) without it. Keep it "
            "outside the store: sss verify --checkpoint proves later that the store "
            "still extends it."
        ),
    )
    checkpoint.add_argument("path", metavar="PATH", help="the store")
    checkpoint.add_argument("--key", metavar="KEY", help="the private key to sign with")
    checkpoint.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="the checkpoint file (- for stdout)"
    )
    checkpoint.set_defaults(func=run_checkpoint)

    prove = subparsers.add_parser(
        "prove",
        help="write an inclusion proof of one event for a third party",
        description=(
            "Write a self-contained JSON proof that the event at POSITION is in the "
            "store: its canonical form (payload as its digest), the RFC 6962 audit path "
            "and the checkpoint it leads to (--checkpoint FILE, which the store must "
            "extend; otherwise a fresh unsigned one). sss verify-proof checks it without "
            "the store; the README gives the check with Python's standard library."
        ),
    )
    prove.add_argument("path", metavar="PATH", help="the store")
    prove.add_argument("position", metavar="POSITION", help="the event's position")
    prove.add_argument("--checkpoint", metavar="FILE", help="prove against this checkpoint")
    prove.add_argument(
        "-o", "--output", required=True, metavar="PROOF.json", help="the proof file (- for stdout)"
    )
    prove.set_defaults(func=run_prove)

    check = subparsers.add_parser(
        "verify-proof",
        help="check an inclusion proof without the store",
        description=(
            "Check a proof from sss prove: the leaf is the event at its position, its "
            "audit path leads to the checkpoint's root, and with --key the checkpoint is "
            "signed by that public key. Exit 0 when it holds, 1 naming what fails."
        ),
    )
    check.add_argument("proof", metavar="PROOF.json", help="the proof file")
    check.add_argument("--key", metavar="KEY.pub", help="the public key the checkpoint must carry")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(func=run_verify_proof)


def _key_name(path: str, name: str | None) -> str:
    if name is not None:
        return name
    stem = os.path.splitext(os.path.basename(path))[0]
    cleaned = "".join(c for c in stem if c.isascii() and c.isprintable() and c not in " +")
    return cleaned or "sss"


def run_keygen(args: argparse.Namespace) -> int:
    private = check_output(args.output, stream=False)
    public = check_output(args.output + ".pub", stream=False)
    if os.path.exists(private):
        raise CliError(f"{shown(args.output)} exists; a key is never overwritten", 1)
    try:
        key = generate_key(_key_name(args.output, args.name))
    except ValueError as e:
        raise CliError(f"--name: {e}", 2) from None
    with open_output(public, stream=False) as out:
        out.write(key.verifier.text + "\n")
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise CliError(f"cannot write {shown(args.output)}: {e.strerror or e}", 1) from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key.text + "\n")
    sys.stdout.write(
        f"wrote {shown(args.output)} (private key {key.name}, keep it secret) and "
        f"{shown(args.output + '.pub')} (public key {key.verifier.text})\n"
    )
    return 0


def _open(path: str) -> EventStore:
    """The store, writable when it can be, so that the Merkle tree's stored
    subtree hashes are kept for the next checkpoint or proof (read-only
    media and read-only roles compute them in memory)."""
    try:
        return open_store(path, write=True, create=False)
    except ReadOnlyError:
        return open_store(path)


def run_checkpoint(args: argparse.Namespace) -> int:
    key = None if args.key is None else _load_private_key(args.key)
    check_output(args.output, protect=[args.path])
    with _open(args.path) as es:
        made = es.checkpoint(key.text if key is not None else None)
    with open_output(args.output, protect=[args.path]) as out:
        out.write(made.text)
    signed = f"signed by {key.name}" if key is not None else "unsigned"
    if args.output != "-":
        sys.stdout.write(
            f"checkpoint of {made.size} events, root {made.root} ({signed}) "
            f"written to {shown(args.output)}\n"
        )
    return 0


def run_prove(args: argparse.Namespace) -> int:
    position = parse_position(args.position)
    against = None if args.checkpoint is None else load_checkpoint(args.checkpoint)
    check_output(args.output, protect=[args.path])
    with _open(args.path) as es:
        bundle = es.prove(position, checkpoint=against)
    with open_output(args.output, protect=[args.path]) as out:
        out.write(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n")
    if args.output != "-":
        sys.stdout.write(
            f"proof of position {position} in {bundle['tree_size']} events "
            f"written to {shown(args.output)}\n"
        )
    return 0


def run_verify_proof(args: argparse.Namespace) -> int:
    key = None if args.key is None else load_public_key(args.key)
    text = read_text_file(args.proof, "proof file", limit=1 << 22)
    report = verify_proof(text, key)
    if args.json:
        sys.stdout.write(
            json.dumps(
                {
                    "ok": report.ok,
                    "reason": report.reason,
                    "position": report.position,
                    "tree_size": report.tree_size,
                    "root": report.root,
                    "store_id": report.store_id,
                    "signature": report.signed,
                }
            )
            + "\n"
        )
        return 0 if report.ok else 1
    if not report.ok:
        sys.stderr.write(f"sss: error: the proof does not hold: {shown(report.reason)}\n")
        return 1
    sys.stdout.write(
        f"ok: the event at position {report.position} is in the {report.tree_size} events "
        f"of store {shown(report.store_id)}, root {report.root}; signature: {report.signed}\n"
    )
    return 0

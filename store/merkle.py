"""RFC 6962 Merkle trees: hashing, proofs and their verification.

A leaf hashes as ``SHA-256(0x00 || leaf)``, a node as
``SHA-256(0x01 || left || right)``; a tree of ``n`` leaves splits at the
largest power of two below ``n`` (RFC 6962 section 2.1, RFC 9162 section
2.1). Everything here works on a function ``subtree(lo, hi)`` giving the
hash of leaves ``lo`` (inclusive) to ``hi`` (exclusive), so the same proof
code runs over a list in memory (:class:`MemoryTree`, the tests' reference)
and over the store's stored subtree hashes (:mod:`store.tree`).

The verifiers follow RFC 9162 sections 2.1.3.2 and 2.1.4.2 literally and
refuse anything malformed (an index beyond the size, a hash that is not 32
bytes, a path too long or too short) by returning False, never by raising.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "Frontier",
    "MemoryTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_of",
    "split",
    "verify_consistency",
    "verify_inclusion",
]

_sha256 = hashlib.sha256

EMPTY_ROOT = _sha256(b"").digest()
"""The root of the empty tree (RFC 6962: the hash of the empty string)."""

Subtree = Callable[[int, int], bytes]


def leaf_hash(leaf: bytes) -> bytes:
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two below ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(subtree: Subtree, lo: int, hi: int) -> bytes:
    """The RFC 6962 hash of leaves ``lo``..``hi`` built from ``subtree``
    calls on the two halves (``subtree`` may answer any range itself)."""
    if hi == lo:
        return EMPTY_ROOT
    return subtree(lo, hi)


def inclusion_proof(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """The audit path of leaf ``index`` in the tree of the first ``size``
    leaves (RFC 6962 2.1.1), leaf-side first."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split(hi - lo)
        if index < lo + k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(subtree: Subtree, first: int, second: int) -> list[bytes]:
    """The proof that the tree of ``first`` leaves is a prefix of the tree of
    ``second`` leaves (RFC 6962 2.1.2, SUBPROOF), leaf-side first."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    lo, hi, m, whole = 0, second, first, True
    while m != hi - lo:
        k = split(hi - lo)
        if m <= k:
            path.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree(lo, lo + k))
            lo, m, whole = lo + k, m - k, False
    if not whole:
        path.append(subtree(lo, hi))
    path.reverse()
    return path


def _hashes_ok(*hashes: object) -> bool:
    return all(isinstance(h, bytes) and len(h) == 32 for h in hashes)


def verify_inclusion(
    index: int, size: int, leaf: bytes, path: Sequence[bytes], root: bytes
) -> bool:
    """True when ``path`` proves leaf hash ``leaf`` at ``index`` in the tree
    of ``size`` leaves whose root is ``root`` (RFC 9162 2.1.3.2)."""
    if not (isinstance(index, int) and isinstance(size, int)) or not 0 <= index < size:
        return False
    if not _hashes_ok(leaf, root, *path):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """True when ``path`` proves that the tree of ``first`` leaves with root
    ``first_root`` is a prefix of the tree of ``second`` leaves with root
    ``second_root`` (RFC 9162 2.1.4.2; the empty tree is a prefix of every
    tree, with an empty proof)."""
    if not (isinstance(first, int) and isinstance(second, int)) or not 0 <= first <= second:
        return False
    if not _hashes_ok(first_root, second_root, *path):
        return False
    if first == 0:
        return not path and first_root == EMPTY_ROOT
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # a power of two: the old root is a node of the new tree
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


class MemoryTree:
    """A tree over leaf hashes held in a list: recomputed from the leaves on
    every call, the plain reference the store's tree is tested against."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.leaves = list(leaves)

    def subtree(self, lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return self.leaves[lo]
        k = split(hi - lo)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        return root_of(self.subtree, 0, len(self.leaves) if size is None else size)


class Frontier:
    """The compact form of a growing tree: the roots of its complete
    subtrees, largest first, fed one leaf hash at a time (O(log n) memory;
    the set bits of :attr:`size` are their levels).

    ``chunk_level`` k keeps, besides, the hash of every complete aligned
    subtree of 2^k leaves as it is finished (:attr:`chunks`): what
    verification compares with the stored subtree hashes to say where two
    histories part.
    """

    def __init__(self, chunk_level: int | None = None) -> None:
        self.size = 0
        self.stack: list[bytes] = []
        self.chunk_level = -1 if chunk_level is None else chunk_level
        self.chunks: list[bytes] = []

    def add(self, leaf: bytes) -> None:
        stack, n, value = self.stack, self.size, leaf
        if self.chunk_level == 0:
            self.chunks.append(leaf)
        level = 0
        while n & 1:  # each trailing one of the size: a complete subtree to merge
            value = _sha256(b"\x01" + stack.pop() + value).digest()
            n >>= 1
            level += 1
            if level == self.chunk_level:
                self.chunks.append(value)
        stack.append(value)
        self.size += 1

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        value = self.stack[-1]
        for left in reversed(self.stack[:-1]):
            value = node_hash(left, value)
        return value

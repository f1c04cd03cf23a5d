"""The store's Merkle tree over its events (RFC 6962, :mod:`store.merkle`).

The leaf of the event at position p is leaf index p - 1; its bytes are the
event's canonical form with the payload only as its digest
(:func:`store.codec.event_body`, the same bytes the hash chain hashes), so
erasing a payload never changes a leaf, and the tree is the same on SQLite
and PostgreSQL and in every copy (``sss migrate``, backup, replicate).

How it is kept: **stored subtree hashes, made lazily**. Table ``sss_tree``
holds the hash of every complete, aligned subtree of 2^8 = 256 leaves (a
*chunk*) and of every complete subtree above them, by (level, index). The
append path does not touch it: whoever needs the tree (a checkpoint, a
proof) first catches it up to the head, reading only the events appended
since the last catch-up, a chunk at a time, and stores what it computed
(``INSERT ... ON CONFLICT DO NOTHING``, so concurrent catch-ups agree). A
store open read-only, or a role that may not write, computes the same nodes
in memory. Below the chunk level nothing is stored: a proof recomputes the
leaves of the one or two chunks it needs from their events, in one range
read each. A root, an inclusion proof or a consistency proof then takes
O(log n) stored nodes and at most two chunk reads.

Why not at append: the append paths (the general one and PostgreSQL's
one-statement function) stay exactly as fast as before, and the tree is
derived data, like the snapshots: it can always be rebuilt from the events.
The cost moves to the first checkpoint or proof after many appends, about
the cost of reading those events once.

Trust: these stored hashes are a cache. ``verify`` never reads them for its
verdict: it recomputes every leaf from the stored rows (see
:mod:`store.checkpoints`), and uses stored chunks only to say *where* a
rewritten history parts from the one they were computed from.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

from ._core import StoreCore
from .backend import ChainRow
from .codec import event_body, loads_stored
from .errors import CorruptStoreError
from .integrity import CHUNK_LEVEL
from .merkle import EMPTY_ROOT, consistency_proof, inclusion_proof, leaf_hash, node_hash, split

__all__ = ["CHUNK_LEVEL", "StoreTree", "leaf_of_row", "tree_of"]

CHUNK = 1 << CHUNK_LEVEL
_BATCH = 64  # chunks read and stored per catch-up step (16384 events)


def leaf_of_row(row: ChainRow) -> bytes:
    """The leaf bytes of a stored row (see :func:`store.codec.event_body`)."""
    return event_body(
        position=row[0],
        event_id=row[1],
        aggregate_id=row[2],
        aggregate_type=row[3],
        version=row[4],
        type=row[5],
        schema_version=row[6],
        data_hash=row[11],
        metadata=loads_stored(row[8]),
        occurred_at=row[9],
        recorded_at=row[10],
    )


class StoreTree:
    """The Merkle tree of one open store; see the module's docstring."""

    def __init__(self, es: StoreCore) -> None:
        self.es = es
        self.memory: dict[tuple[int, int], bytes] = {}
        self._chunk: tuple[int, int, list[bytes]] | None = None  # (index, size, leaf hashes)

    # -- reading events --------------------------------------------------

    def rows(self, after: int, count: int) -> list[ChainRow]:
        es = self.es
        rows = es._call(es._backend.chain_page, after, count)
        for offset, row in enumerate(rows):
            if row[0] != after + offset + 1:
                raise CorruptStoreError(
                    f"{es.label}: position {after + offset + 1} is missing; run sss verify"
                )
        if len(rows) != count:
            raise CorruptStoreError(
                f"{es.label}: position {after + len(rows) + 1} is missing; run sss verify"
            )
        return rows

    def chunk_leaves(self, index: int, size: int) -> list[bytes]:
        """The leaf hashes of chunk ``index`` within a tree of ``size`` leaves."""
        count = min(CHUNK, size - index * CHUNK)
        cached = self._chunk
        if cached is not None and cached[0] == index and cached[1] >= count:
            return cached[2][:count]
        leaves = [leaf_hash(leaf_of_row(row)) for row in self.rows(index * CHUNK, count)]
        self._chunk = (index, count, leaves)
        return leaves

    # -- nodes -------------------------------------------------------------

    def node(self, level: int, index: int) -> bytes:
        """The hash of the complete subtree of 2^level leaves at ``index``
        (level >= CHUNK_LEVEL): from memory, the table, or computed."""
        key = (level, index)
        found = self.memory.get(key)
        if found is not None:
            return found
        es = self.es
        stored = es._call(es._backend.tree_nodes, [key]).get(key)
        if stored is not None:
            try:
                value = bytes.fromhex(stored)
            except ValueError:
                value = b""
            if len(value) == 32:
                self.memory[key] = value
                return value
        if level == CHUNK_LEVEL:
            value = _hash_list(self.chunk_leaves(index, (index + 1) * CHUNK))
        else:
            value = node_hash(self.node(level - 1, 2 * index), self.node(level - 1, 2 * index + 1))
        self.memory[key] = value
        return value

    def subtree(self, lo: int, hi: int) -> bytes:
        """The RFC 6962 hash of leaves lo..hi (a range of the tree's splits)."""
        n = hi - lo
        if n >= CHUNK and n & (n - 1) == 0 and lo % n == 0:
            return self.node(n.bit_length() - 1, lo // n)
        if n <= CHUNK and lo // CHUNK == (hi - 1) // CHUNK:
            index = lo // CHUNK
            leaves = self.chunk_leaves(index, hi)
            start = index * CHUNK
            return _hash_list(leaves[lo - start : hi - start])
        k = split(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    # -- keeping up ----------------------------------------------------------

    def catch_up(self, size: int) -> None:
        """Compute (and store, when the store may be written) every complete
        chunk and the complete subtrees above them up to ``size`` leaves that
        are not stored yet, reading only the events after the last stored chunk."""
        es = self.es
        chunks = size // CHUNK
        start = es._call(es._backend.tree_filled, CHUNK_LEVEL)
        if start == 0 and (CHUNK_LEVEL, 0) in self.memory:
            start = max(i for (level, i) in self.memory if level == CHUNK_LEVEL) + 1
        while start < chunks:
            stop = min(chunks, start + _BATCH)
            rows = self.rows(start * CHUNK, (stop - start) * CHUNK)
            made: list[tuple[int, int, str]] = []
            for index in range(start, stop):
                part = rows[(index - start) * CHUNK : (index - start + 1) * CHUNK]
                value = _hash_list([leaf_hash(leaf_of_row(row)) for row in part])
                level, i = CHUNK_LEVEL, index
                self.memory[(level, i)] = value
                made.append((level, i, value.hex()))
                while i & 1:  # a right child completes its parent
                    value = node_hash(self.node(level, i - 1), value)
                    level, i = level + 1, i >> 1
                    self.memory[(level, i)] = value
                    made.append((level, i, value.hex()))
            es._call(es._backend.save_tree_nodes, made)
            start = stop

    # -- what callers use ------------------------------------------------

    def root(self, size: int) -> bytes:
        if size == 0:
            return EMPTY_ROOT
        self.catch_up(size)
        return self.subtree(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        self.catch_up(size)
        return inclusion_proof(self.subtree, index, size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        self.catch_up(second)
        return consistency_proof(self.subtree, first, second)

    def leaf(self, position: int) -> bytes:
        """The leaf bytes of the event at ``position``."""
        return leaf_of_row(self.rows(position - 1, 1)[0])


def _hash_list(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(_hash_list(leaves[:k]), _hash_list(leaves[k:]))


_TREES: weakref.WeakKeyDictionary[StoreCore, StoreTree] = weakref.WeakKeyDictionary()


def tree_of(es: StoreCore) -> StoreTree:
    """The one StoreTree of an open store (its nodes stay in memory with it).
    Inside ``es.transaction()`` a tree of its own, forgotten afterwards: what
    it computes from uncommitted events may be rolled back (its stored rows
    go with the transaction)."""
    if es._writer is not None:
        return StoreTree(es)
    tree = _TREES.get(es)
    if tree is None:
        tree = _TREES[es] = StoreTree(es)
    return tree

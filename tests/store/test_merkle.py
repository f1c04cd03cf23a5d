"""RFC 6962 hashing and proofs: the published vectors, a plain reference
tree, and the store's own tree (stored subtree hashes, chunk reads) on every
backend, against that reference for random sizes; tampered proofs fail."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent
from store.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)
from store.tree import CHUNK, StoreTree, leaf_of_row, tree_of

VECTORS = json.loads((Path(__file__).parent / "vectors" / "rfc6962.json").read_text())
LEAVES = [leaf_hash(bytes.fromhex(x)) for x in VECTORS["leaves"]]
ROOTS = [bytes.fromhex(x) for x in VECTORS["roots"]]


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH written out directly from the definition."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def test_leaf_and_node_hashes_match_the_published_vectors() -> None:
    for level, hashes in enumerate(VECTORS["nodes"]):
        width = 1 << level
        for index, expected in enumerate(hashes):
            got = reference_root(LEAVES[index * width : (index + 1) * width])
            assert got.hex() == expected


def test_roots_of_every_prefix_match_the_published_vectors() -> None:
    tree = MemoryTree(LEAVES)
    frontier = Frontier()
    assert frontier.root() == ROOTS[0] == EMPTY_ROOT
    for size in range(1, 9):
        assert tree.root(size) == ROOTS[size]
        frontier.add(LEAVES[size - 1])
        assert frontier.root() == ROOTS[size]


@pytest.mark.parametrize("case", VECTORS["inclusion"], ids=lambda c: f"{c['index']}-{c['size']}")
def test_inclusion_paths_match_the_published_vectors(case: dict[str, Any]) -> None:
    path = [bytes.fromhex(x) for x in case["path"]]
    tree = MemoryTree(LEAVES[: case["size"]])
    assert inclusion_proof(tree.subtree, case["index"], case["size"]) == path
    leaf, root = LEAVES[case["index"]], ROOTS[case["size"]]
    assert verify_inclusion(case["index"], case["size"], leaf, path, root)
    for bad in tampered_inclusions(case["index"], case["size"], leaf, path, root):
        assert not verify_inclusion(*bad)


@pytest.mark.parametrize(
    "case", VECTORS["consistency"], ids=lambda c: f"{c['first']}-{c['second']}"
)
def test_consistency_paths_match_the_published_vectors(case: dict[str, Any]) -> None:
    first, second = case["first"], case["second"]
    path = [bytes.fromhex(x) for x in case["path"]]
    tree = MemoryTree(LEAVES[:second])
    assert consistency_proof(tree.subtree, first, second) == path
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], path)
    if path:
        for bad in tampered_consistencies(first, second, ROOTS[first], ROOTS[second], path):
            assert not verify_consistency(*bad)


SOME = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def tampered_inclusions(
    index: int, size: int, leaf: bytes, path: list[bytes], root: bytes
) -> Iterator[tuple[Any, ...]]:
    """Every way of falsifying an inclusion proof that must fail (the probes
    of the transparency-dev verifier tests; cf. immudb GHSA-672p-m5jq-mrh8)."""
    yield index + 1, size, leaf, path, root
    if index:
        yield index - 1, size, leaf, path, root
    if index ^ 2 < size and index ^ 2 != index:
        yield index ^ 2, size, leaf, path, root
    yield index, size * 2, leaf, path, root
    if size > 1:
        yield index, size // 2, leaf, path, root
    yield index, size, leaf_hash(b"WrongLeaf"), path, root
    yield index, size, leaf, path, EMPTY_ROOT
    yield index, size, leaf, path, SOME
    yield index, size, leaf, [*path, b""], root
    yield index, size, leaf, [*path, root], root
    yield index, size, leaf, [b"", *path], root
    yield index, size, leaf, [root, *path], root
    for i in range(len(path)):
        flipped = bytearray(path[i])
        flipped[0] ^= 8
        yield index, size, leaf, [*path[:i], bytes(flipped), *path[i + 1 :]], root
    if path:
        yield index, size, leaf, path[:-1], root
    if len(path) > 1:
        yield index, size, leaf, [path[0], SOME, *path[1:]], root


def tampered_consistencies(
    first: int, second: int, r1: bytes, r2: bytes, path: list[bytes]
) -> Iterator[tuple[Any, ...]]:
    yield first - 1, second, r1, r2, path
    yield first + 1, second, r1, r2, path
    if first ^ 2 != first:
        yield first ^ 2, second, r1, r2, path
    yield first, second * 2, r1, r2, path
    yield first, second // 2, r1, r2, path
    yield first, second, SOME, r2, path
    yield first, second, r1, SOME, path
    yield first, second, r2, r1, path
    yield first, second, r1, r2, []
    yield first, second, r1, r2, [*path, b""]
    yield first, second, r1, r2, [*path, r1]
    yield first, second, r1, r2, [*path, r2]
    yield first, second, r1, r2, [b"", *path]
    yield first, second, r1, r2, [r1, *path]
    yield first, second, r1, r2, [r2, *path]
    yield first, second, r1, r2, [path[0], *path]
    yield first, second, r1, r2, path[:-1]
    for i in range(len(path)):
        flipped = bytearray(path[i])
        flipped[0] ^= 16
        yield first, second, r1, r2, [*path[:i], bytes(flipped), *path[i + 1 :]]


def leaves_of(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))))
def test_inclusion_proofs_verify_and_tampered_ones_fail(case: tuple[int, int]) -> None:
    size, index = case
    leaves = leaves_of(size)
    tree, root = MemoryTree(leaves), reference_root(leaves)
    path = inclusion_proof(tree.subtree, index, size)
    assert verify_inclusion(index, size, leaves[index], path, root)
    for bad in tampered_inclusions(index, size, leaves[index], path, root):
        assert not verify_inclusion(*bad), bad[:2]


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 600).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))))
def test_consistency_proofs_verify_and_tampered_ones_fail(case: tuple[int, int]) -> None:
    first, second = case
    leaves = leaves_of(second)
    tree = MemoryTree(leaves)
    r1, r2 = reference_root(leaves[:first]), reference_root(leaves)
    path = consistency_proof(tree.subtree, first, second)
    assert verify_consistency(first, second, r1, r2, path)
    if path:
        for bad in tampered_consistencies(first, second, r1, r2, path):
            assert not verify_consistency(*bad), bad[:2]
    assert verify_consistency(0, second, EMPTY_ROOT, r2, [])


def test_frontier_chunks_are_the_complete_subtrees() -> None:
    leaves = leaves_of(3 * 256 + 7)
    frontier = Frontier(8)
    for leaf in leaves:
        frontier.add(leaf)
    assert frontier.chunks == [reference_root(leaves[i * 256 : (i + 1) * 256]) for i in range(3)]
    assert frontier.root() == reference_root(leaves)


# -- the store's tree ----------------------------------------------------------

STORE_EVENTS = 3 * CHUNK + 77


def fill(es: EventStore, count: int) -> None:
    with es.transaction():
        for i in range(count):
            es.append(
                [NewEvent("Noted", {"i": i, "text": "é" * (i % 3)}, {"n": i})],
                aggregate_id=f"x{i % 5}" if i % 7 else None,
            )


def store_leaves(es: EventStore) -> list[bytes]:
    rows = es.backend.chain_page(0, 1_000_000)
    return [leaf_hash(leaf_of_row(row)) for row in rows]


def test_the_store_tree_equals_the_reference_on_every_backend(
    make_store: Callable[..., EventStore],
) -> None:
    es = make_store()
    fill(es, STORE_EVENTS)
    leaves = store_leaves(es)
    tree = tree_of(es)
    for size in (1, 2, 255, 256, 257, 512, 700, STORE_EVENTS):
        assert tree.root(size) == reference_root(leaves[:size]), size
    for index, size in ((0, 1), (0, STORE_EVENTS), (300, 513), (STORE_EVENTS - 1, STORE_EVENTS)):
        path = tree.inclusion(index, size)
        assert verify_inclusion(index, size, leaves[index], path, reference_root(leaves[:size]))
    for first, second in ((1, STORE_EVENTS), (256, 512), (300, 800), (700, STORE_EVENTS)):
        path = tree.consistency(first, second)
        assert path == consistency_proof(MemoryTree(leaves).subtree, first, second)
    assert es.verify().root is None
    assert es.verify(merkle=True).root == base64.b64encode(reference_root(leaves)).decode()


def test_stored_nodes_are_kept_and_a_fresh_open_reads_them(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, STORE_EVENTS)
        root = es.checkpoint().root
        stored = es.backend.tree_filled(8)
    assert stored == STORE_EVENTS // CHUNK
    with EventStore(path, readonly=True) as es:
        tree = StoreTree(es)
        assert base64.b64encode(tree.root(STORE_EVENTS)).decode() == root
        # Only the partial last chunk was read from the events; the rest came stored.
        assert set(tree.memory) <= {(level, i) for level in range(8, 12) for i in range(4)}


def test_a_read_only_store_without_the_table_computes_in_memory(tmp_path: Path) -> None:
    path = str(tmp_path / "events.db")
    with EventStore(path) as es:
        fill(es, 600)
        assert es.backend.tree_filled(8) == 0
    with EventStore(path, readonly=True) as es:
        cp = es.checkpoint()
        assert cp.size == 600 and es.backend.tree_filled(8) == 0
        assert cp.root == es.verify(merkle=True).root


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[EventStore, list[bytes]]]:
    path = str(tmp_path_factory.mktemp("tree") / "events.db")
    with EventStore(path) as es:
        fill(es, 5 * CHUNK + 3)
        yield es, store_leaves(es)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_store_proofs_verify_against_the_reference_tree(
    big_store: tuple[EventStore, list[bytes]], data: st.DataObject
) -> None:
    es, leaves = big_store
    size = data.draw(st.integers(1, len(leaves)))
    index = data.draw(st.integers(0, size - 1))
    first = data.draw(st.integers(0, size))
    tree = StoreTree(es) if data.draw(st.booleans()) else tree_of(es)
    root = reference_root(leaves[:size])
    assert tree.root(size) == root
    path = tree.inclusion(index, size)
    assert verify_inclusion(index, size, leaves[index], path, root)
    for bad in tampered_inclusions(index, size, leaves[index], path, root):
        assert not verify_inclusion(*bad)
    proof = tree.consistency(first, size)
    old = reference_root(leaves[:first])
    assert verify_consistency(first, size, old, root, proof)
    if proof:
        for bad in tampered_consistencies(first, size, old, root, proof):
            assert not verify_consistency(*bad)


def test_a_checkpoint_inside_a_rolled_back_transaction_leaves_nothing(
    make_store: Callable[..., EventStore],
) -> None:
    es = make_store()
    fill(es, 300)
    before = es.checkpoint()
    with pytest.raises(RuntimeError), es.transaction():
        fill(es, 600)
        inside = es.checkpoint()
        assert inside.size == 900 and inside.root != before.root
        raise RuntimeError("roll back")
    fill(es, 600)  # other events at the same positions
    after = es.checkpoint()
    leaves = store_leaves(es)
    assert after.root == base64.b64encode(reference_root(leaves)).decode() != inside.root
    assert es.verify(checkpoint=after).ok and es.verify(checkpoint=before).ok

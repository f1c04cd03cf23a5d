"""Proof makers refuse what is not in the tree (a leaf index outside the
tree, a consistency proof from a larger tree or a negative size), and the
verifiers answer every refusal with the boolean False, never another falsy
value."""

from __future__ import annotations

from typing import Any

import pytest

from store.merkle import (
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)

TREE = MemoryTree([leaf_hash(bytes([i])) for i in range(5)])


@pytest.mark.parametrize(("index", "size"), [(5, 5), (6, 5), (-1, 5), (0, 0), (3, 3)])
def test_an_inclusion_proof_of_a_leaf_outside_the_tree_is_refused(index: int, size: int) -> None:
    with pytest.raises(ValueError, match=f"leaf {index} is not in a tree of {size}"):
        inclusion_proof(TREE.subtree, index, size)


@pytest.mark.parametrize(("first", "second"), [(4, 3), (-1, 5), (1, 0)])
def test_a_consistency_proof_from_a_larger_or_negative_tree_is_refused(
    first: int, second: int
) -> None:
    with pytest.raises(ValueError, match=f"no consistency proof from {first} to {second}"):
        consistency_proof(TREE.subtree, first, second)


def test_proofs_at_the_edges_of_the_tree_are_made() -> None:
    assert len(inclusion_proof(TREE.subtree, 4, 5)) == 1
    assert len(inclusion_proof(TREE.subtree, 0, 1)) == 0
    assert consistency_proof(TREE.subtree, 0, 5) == []
    assert consistency_proof(TREE.subtree, 5, 5) == []


ROOTS = {size: TREE.root(size) for size in range(1, 6)}
LEAF = TREE.leaves


def refused_inclusions() -> list[tuple[Any, ...]]:
    path = inclusion_proof(TREE.subtree, 2, 5)
    return [
        (5, 5, LEAF[2], path, ROOTS[5]),  # index beyond the tree
        ("2", 5, LEAF[2], path, ROOTS[5]),  # not an int
        (2, 5, b"short", path, ROOTS[5]),  # not a 32-byte hash
        (2, 5, LEAF[2], [*path, ROOTS[5]], ROOTS[5]),  # one step too many
        (2, 5, LEAF[2], path[:-1], ROOTS[5]),  # one step short
        (2, 5, LEAF[3], path, ROOTS[5]),  # another leaf
    ]


def refused_consistencies() -> list[tuple[Any, ...]]:
    path = consistency_proof(TREE.subtree, 3, 5)
    return [
        (4, 3, ROOTS[4], ROOTS[3], []),  # from a larger tree
        (3, 5.0, ROOTS[3], ROOTS[5], path),  # not an int
        (3, 5, ROOTS[3], b"", path),  # not a 32-byte hash
        (3, 5, ROOTS[3], ROOTS[5], []),  # no proof at all
        (3, 5, ROOTS[3], ROOTS[5], [*path, ROOTS[5]]),  # one step too many
        (3, 5, ROOTS[3], ROOTS[5], path[:-1]),  # one step short
        (0, 5, ROOTS[3], ROOTS[5], []),  # the empty tree has the empty root
        (5, 5, ROOTS[5], ROOTS[5], path),  # the same tree needs no proof
        (5, 5, ROOTS[4], ROOTS[5], []),  # the same tree has the same root
    ]


@pytest.mark.parametrize("case", refused_inclusions())
def test_a_refused_inclusion_proof_is_the_boolean_false(case: tuple[Any, ...]) -> None:
    assert verify_inclusion(*case) is False


@pytest.mark.parametrize("case", refused_consistencies())
def test_a_refused_consistency_proof_is_the_boolean_false(case: tuple[Any, ...]) -> None:
    assert verify_consistency(*case) is False


def test_the_unrefused_proofs_are_the_boolean_true() -> None:
    path = inclusion_proof(TREE.subtree, 2, 5)
    assert verify_inclusion(2, 5, LEAF[2], path, ROOTS[5]) is True
    for first in range(0, 6):
        proof = consistency_proof(TREE.subtree, first, 5)
        old = TREE.root(first)
        assert verify_consistency(first, 5, old, ROOTS[5], proof) is True

"""Proof makers refuse what is not in the tree: a leaf index outside the
tree, a consistency proof from a larger tree or a negative size."""

from __future__ import annotations

import pytest

from store.merkle import MemoryTree, consistency_proof, inclusion_proof, leaf_hash

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

"""The reducer registry's helpers: loading ``module:attribute`` specs and
fingerprints of reducers that are not plain functions."""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import store.codec
from store import Reducers, ValidationError, diff, load_object, merge_patch


def test_load_object_follows_module_and_dotted_attribute() -> None:
    assert load_object("store.codec:canonical") is store.codec.canonical
    assert load_object("store:Reducers.fingerprint") is Reducers.fingerprint
    assert load_object("store.codec:json") is store.codec.json


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("store.codec", "is not of the form module:attribute"),
        (":canonical", "is not of the form module:attribute"),
        ("store.codec:", "is not of the form module:attribute"),
        ("no_such_module_here:x", "cannot import 'no_such_module_here'"),
        ("store.codec:nothing_here", "module 'store.codec' has no attribute 'nothing_here'"),
        ("store:Reducers.nothing", "module 'store' has no attribute 'Reducers.nothing'"),
    ],
)
def test_load_object_names_what_is_wrong(spec: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_object(spec)
    assert fragment in str(info.value)


class Adder:
    def __call__(self, state: dict[str, Any], event: Any) -> dict[str, Any]:
        return {**state, "n": state.get("n", 0) + 1}


def test_reducers_that_are_not_plain_functions_have_a_fingerprint() -> None:
    """A callable object, a partial or a class has no code object of its own;
    it is known by its name (an instance by its repr, so the same instance)."""

    def make(fn: Any) -> Reducers:
        reducers = Reducers()
        reducers.register("Order", "Placed", fn)
        return reducers

    partial = functools.partial(lambda state, event, k: state, k=1)
    for fn in (Adder(), partial, dict):
        assert len(make(fn).fingerprint) == 64
    adder = Adder()
    assert make(adder).fingerprint == make(adder).fingerprint
    assert make(dict).fingerprint == make(dict).fingerprint
    assert make(adder).fingerprint != make(dict).fingerprint != Reducers().fingerprint


RULES = """
from store import Reducers
reducers = Reducers()

@reducers.on("Order", "Placed")
def placed(state, event):
    total = sum(map(lambda item: item["price"], event.data["items"]))
    return {**state, "total": total}

print(reducers.fingerprint)
"""


def test_a_fingerprint_is_the_same_in_every_process(tmp_path: Any) -> None:
    """Snapshots outlive the process that took them, so the fingerprint of the
    same code (nested functions included) must not depend on the process."""
    import subprocess
    import sys

    (tmp_path / "rules.py").write_text(RULES)
    prints = {
        subprocess.run(
            [sys.executable, str(tmp_path / "rules.py")], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(prints) == 1 and len(prints.pop()) == 64


def test_size_and_copy_free_follow_registrations() -> None:
    reducers = Reducers()
    assert len(reducers) == 0 and reducers.copy_free is True
    reducers.register("Order", None, Adder())
    assert len(reducers) == 1 and reducers.copy_free is False


# -- diff over states that share what a merge patch left alone --------------------


_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["a", "b", "~/"])
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["x", "y", "z/", "~"]), inner, max_size=3)
    ),
    max_leaves=12,
)
_objects = st.dictionaries(st.sampled_from(["x", "y", "z/", "~"]), _json, max_size=4)


@settings(max_examples=200, deadline=None)
@given(before=_objects, patch=_objects)
def test_diff_of_shared_states_equals_diff_of_copies(
    before: dict[str, Any], patch: dict[str, Any]
) -> None:
    after = merge_patch(before, patch)  # shares the sub-objects the patch left alone
    assert diff(before, after) == diff(copy.deepcopy(before), copy.deepcopy(after))
    assert diff(before, before) == []

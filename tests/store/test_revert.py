"""``revert``: one ``sss.Reverted`` event after which the state is the
target's, with the default reducer and with custom ones; history is kept."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, RecordedEvent, Reducers, ValidationError
from store.correcting import merge_diff
from store.reducers import merge_patch

keys = st.sampled_from(["a", "b", "c", "d"])
leaf = st.one_of(
    st.integers(-3, 3), st.booleans(), st.text(max_size=2), st.lists(st.integers(-5, 5), max_size=2)
)
patches = st.recursive(
    st.dictionaries(keys, st.one_of(leaf, st.none()), max_size=3),
    lambda inner: st.dictionaries(keys, st.one_of(leaf, st.none(), inner), max_size=3),
    max_leaves=8,
)


def custom() -> Reducers:
    reducers = Reducers()

    @reducers.on(None, "Add")
    def add(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        state["log"] = [*state.get("log", []), event.data]
        state["n"] = state.get("n", 0) + 1
        state["last"] = None  # a null a merge patch could not restore
        return state

    @reducers.on(None, "sss.Reverted")
    def never(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        raise AssertionError("the store applies sss.Reverted itself")

    return reducers


@pytest.fixture(params=["default", "custom"])
def make_store(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Any]:
    opened: list[EventStore] = []

    def make() -> EventStore:
        kwargs = {} if request.param == "default" else {"reducers": custom()}
        es = EventStore(str(tmp_path / f"s{len(opened)}.db"), **kwargs)
        opened.append(es)
        return es

    yield make
    for es in opened:
        es.close()


@settings(deadline=None)
@given(before=patches, after=patches)
def test_merge_diff_turns_one_state_into_another(before: Any, after: Any) -> None:
    a, b = merge_patch({}, before), merge_patch({}, after)
    assert merge_patch(a, merge_diff(a, b)) == b


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(patches, min_size=1, max_size=8), data=st.data())
def test_after_a_revert_the_state_is_the_targets(make_store: Any, steps: Any, data: Any) -> None:
    es = make_store()
    for step in steps:
        es.append([NewEvent("Add", step)], "agg-1", "Thing")
    head = es.aggregate("agg-1").version
    target = data.draw(st.integers(0, head - 1), label="target")
    expected = es.state_at("agg-1", version=target).state
    event = es.revert("agg-1", version=target, reason="entered twice", metadata={"actor": "ann"})
    assert event.type == "sss.Reverted" and event.version == head + 1
    assert event.metadata["reason"] == "entered twice" and event.metadata["actor"] == "ann"
    assert event.metadata["reverted_to_version"] == target
    assert es.state_at("agg-1").state == es.state_at("agg-1", version=target).state == expected
    es.snapshot("agg-1")  # a snapshot taken after the revert agrees, and verify holds
    assert es.state_at("agg-1").state == expected
    assert es.verify().ok
    # History shows the revert as a step whose after is the target's state.
    steps_seen = list(es.history("agg-1"))
    assert steps_seen[-1].event.type == "sss.Reverted" and steps_seen[-1].after == expected


def test_revert_by_position_and_time(tmp_path: Any) -> None:
    with EventStore(str(tmp_path / "s.db")) as es:
        first = es.append([NewEvent("Set", {"x": 1})], "a")[0]
        es.append([NewEvent("Set", {"x": 2, "y": {"z": 1}})], "a")
        es.revert("a", position=first.position, reason="wrong")
        assert es.state_at("a").state == {"x": 1}
        es.revert("a", at=first.recorded_at, reason="still wrong")
        assert es.state_at("a").state == {"x": 1}
        assert [s.event.type for s in es.history("a")] == [
            "Set",
            "Set",
            "sss.Reverted",
            "sss.Reverted",
        ]


@pytest.mark.parametrize("reason", [None, "", "   ", 3])
def test_a_reason_is_required(tmp_path: Any, reason: Any) -> None:
    with EventStore(str(tmp_path / "s.db")) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        es.append([NewEvent("Set", {"x": 2})], "a")
        with pytest.raises(ValidationError, match="reason is required"):
            es.revert("a", version=1, reason=reason)
        with pytest.raises(ValidationError, match="point to revert to"):
            es.revert("a", reason="why")
        with pytest.raises(ValidationError, match="already"):
            es.revert("a", version=2, reason="why")
        assert es.head() == 2


@pytest.mark.postgres
def test_revert_on_postgres(request: pytest.FixtureRequest) -> None:
    from tests.store.pg import fresh_postgres_url

    urls = fresh_postgres_url(request.node.name)
    url = next(urls)
    try:
        with EventStore(url, reducers=custom()) as es:
            for n in range(4):
                es.append([NewEvent("Add", {"n": n})], "a")
            es.revert("a", version=2, reason="back")
            assert es.state_at("a").state == es.state_at("a", version=2).state
            assert es.verify().ok
    finally:
        urls.close()


def test_cli_revert(tmp_path: Any) -> None:
    from workbench.cli import main

    path = str(tmp_path / "s.db")
    with EventStore(path) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        es.append([NewEvent("Set", {"x": 2})], "a")
    assert (
        main(["revert", path, "a", "--to-version", "1", "--reason", "typo", "--actor", "bo"]) == 0
    )
    assert main(["revert", path, "a", "--to-version", "1"]) == 2  # --reason is required
    assert main(["revert", path, "a", "--to-version", "1", "--reason", " "]) == 1
    assert main(["revert", path, "nope", "--to-version", "1", "--reason", "x"]) == 1
    with EventStore(path, readonly=True) as es:
        assert es.head() == 3 and es.state_at("a").state == {"x": 1}
        assert es.get(3).metadata["actor"] == "bo"

"""``void``: one ``sss.Voided`` event naming a wrong event. Replays at or
after the void skip it, replays before it include it; snapshots and
checkpoints built before the void are never used for a replay that must skip
it. The property: replay with voids equals a plain fold of the log without
the voided events (and without the voids), at every version."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, NotFoundError, RecordedEvent, Reducers, ValidationError

patches = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(st.integers(-3, 3), st.none()), max_size=2
)


def custom() -> Reducers:
    reducers = Reducers()

    @reducers.on(None, "Add")
    def add(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        state["log"] = [*state.get("log", []), event.position]
        return state

    return reducers


def reference(es: EventStore, aggregate_id: str, version: int) -> dict[str, Any]:
    """A plain fold, by the reducers alone, of the events up to ``version``
    minus the ones voided at or before it."""
    events = list(es.stream(aggregate_id, to_version=version))
    voided = {e.data["voided_position"] for e in events if e.type == "sss.Voided"}
    state: dict[str, Any] = {}
    reducers = es.reducers
    for event in events:
        if event.type != "sss.Voided" and event.position not in voided:
            state = reducers.apply(state, event)
    return state


# Actions: ("add", patch) appends an event; ("void", k) voids the k-th event
# still voidable (modulo their count); ("look", v) replays an earlier version
# so in-memory checkpoints exist before later voids; ("snap",) stores a snapshot.
actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), patches),
        st.tuples(st.just("void"), st.integers(0, 50)),
        st.tuples(st.just("look"), st.integers(0, 50)),
        st.tuples(st.just("snap")),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=actions, use_custom=st.booleans(), every=st.sampled_from([None, 2, 3]))
def test_replay_with_voids_equals_replay_without_the_voided(
    tmp_path_factory: pytest.TempPathFactory, steps: Any, use_custom: bool, every: int | None
) -> None:
    path = str(tmp_path_factory.mktemp("void") / "s.db")
    kwargs: dict[str, Any] = {"snapshot_every": every}
    if use_custom:
        kwargs["reducers"] = custom()
    with EventStore(path, **kwargs) as es:
        es.append([NewEvent("Add", {"a": 1})], "agg", "T")
        voidable = [1]
        for step in steps:
            if step[0] == "add":
                voidable.append(es.append([NewEvent("Add", step[1])], "agg", "T")[0].position)
            elif step[0] == "void" and voidable:
                position = voidable.pop(step[1] % len(voidable))
                es.void(position, reason="wrong amount")
            elif step[0] == "look":
                head = es.aggregate("agg").version
                es.state_at("agg", version=step[1] % head + 1)
            elif step[0] == "snap":
                es.snapshot("agg")
        head = es.aggregate("agg").version
        for version in range(1, head + 1):
            assert es.state_at("agg", version=version).state == reference(es, "agg", version)
        assert es.state_at("agg").state == reference(es, "agg", head)
        assert es.verify().ok
    # A fresh process (no checkpoints), reading the stored snapshots only.
    with EventStore(
        path, readonly=True, **{k: v for k, v in kwargs.items() if k == "reducers"}
    ) as es:
        for version in range(1, head + 1):
            assert es.state_at("agg", version=version).state == reference(es, "agg", version)


def test_replays_before_the_void_include_the_event(tmp_path: Any) -> None:
    with EventStore(str(tmp_path / "s.db"), snapshot_every=1) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        wrong = es.append([NewEvent("Set", {"y": 99})], "a")[0]
        es.append([NewEvent("Set", {"z": 3})], "a")
        assert es.state_at("a").state == {"x": 1, "y": 99, "z": 3}  # checkpoints too
        before = es.head()
        void = es.void(wrong.position, reason="typed the wrong amount", metadata={"actor": "cy"})
        assert void.type == "sss.Voided" and void.aggregate_id == "a" and void.version == 4
        assert void.metadata["reason"] == "typed the wrong amount"
        assert void.metadata["actor"] == "cy"
        assert es.state_at("a").state == {"x": 1, "z": 3}
        assert es.state_at("a", position=before).state == {"x": 1, "y": 99, "z": 3}
        assert es.state_at("a", at=es.get(before).recorded_at).state["y"] == 99
        steps = list(es.history("a"))
        assert steps[-1].event.type == "sss.Voided" and steps[-1].after == {"x": 1, "z": 3}
        assert [c.path for c in steps[-1].changes] == ["/y"]
        assert es.verify().ok


def test_voids_past_one_page_of_the_index_are_all_skipped(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The voids are read a page at a time (pages of two here), with the
    voids of other aggregates in between: every one still counts."""
    import store.replay

    monkeypatch.setattr(store.replay, "PAGE", 2)
    with EventStore(str(tmp_path / "s.db")) as es:
        for k in range(6):
            es.append([NewEvent("Set", {f"a{k}": k})], "a")
            es.append([NewEvent("Set", {f"b{k}": k})], "b")
        for k in range(0, 6, 2):
            es.void(
                es.stream("a", from_version=k + 1, to_version=k + 1).__next__().position,
                reason="wrong",
            )
            es.void(
                es.stream("b", from_version=k + 1, to_version=k + 1).__next__().position,
                reason="wrong",
            )
        assert es.state_at("a").state == {"a1": 1, "a3": 3, "a5": 5}
        assert es.state_at("b").state == {"b1": 1, "b3": 3, "b5": 5}


def test_bad_voids_are_clear_errors(tmp_path: Any) -> None:
    with EventStore(str(tmp_path / "s.db")) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        void = es.void(1, reason="wrong")
        with pytest.raises(ValidationError, match="voided already"):
            es.void(1, reason="again")
        with pytest.raises(ValidationError, match="a void cannot be voided"):
            es.void(void.position, reason="undo")
        with pytest.raises(NotFoundError, match="no event at position 9"):
            es.void(9, reason="nothing there")
        with pytest.raises(ValidationError, match="reason is required"):
            es.void(1, reason="")
        with pytest.raises(ValidationError):
            es.void(0, reason="zero")
        assert es.head() == 2


@pytest.mark.postgres
def test_void_on_postgres(request: pytest.FixtureRequest) -> None:
    from tests.store.pg import fresh_postgres_url

    urls = fresh_postgres_url(request.node.name)
    url = next(urls)
    try:
        with EventStore(url, snapshot_every=1) as es:
            es.append([NewEvent("Set", {"x": 1})], "a")
            es.append([NewEvent("Set", {"y": 2})], "a")
            es.void(2, reason="wrong")
            assert es.state_at("a").state == {"x": 1}
            assert es.state_at("a", version=2).state == {"x": 1, "y": 2}
            assert es.verify().ok
    finally:
        urls.close()


def test_cli_void(tmp_path: Any) -> None:
    from workbench.cli import main

    path = str(tmp_path / "s.db")
    with EventStore(path) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        es.append([NewEvent("Set", {"y": 2})], "a")
    assert main(["void", path, "2", "--reason", "wrong"]) == 0
    assert main(["void", path, "2", "--reason", "wrong"]) == 1
    assert main(["void", path, "2"]) == 2
    assert main(["void", path, "abc", "--reason", "x"]) == 1
    with EventStore(path, readonly=True) as es:
        assert es.head() == 3 and es.state_at("a").state == {"x": 1}


def test_only_a_void_voids(tmp_path: Any) -> None:
    """An ordinary event whose data happens to name a voided_position voids
    nothing: not in a replay, and not in verify's re-fold of the snapshots."""
    with EventStore(str(tmp_path / "s.db"), snapshot_every=1) as es:
        es.append([NewEvent("Set", {"x": 1})], "a")
        es.append([NewEvent("Set", {"voided_position": 1, "voided_version": 1})], "a")
        es.append([NewEvent("Set", {"z": 3})], "a")
        expected = {"x": 1, "voided_position": 1, "voided_version": 1, "z": 3}
        assert es.state_at("a").state == expected
        assert [step.after for step in es.history("a")][-1] == expected
        report = es.verify()
        assert report.ok, report

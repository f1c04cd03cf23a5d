"""The in-memory checkpoints: nearest at or below, replaced in place, and
bounded in bytes with the least recently used aggregate evicted first."""

from __future__ import annotations

from store import EventStore, NewEvent
from store.statecache import StateCache

FP = "fingerprint"


def _state(size: int) -> dict[str, str]:
    """A state whose JSON form is exactly ``size`` bytes: {"s":"..."}."""
    return {"s": "x" * (size - 8)}


def _held(cache: StateCache, *aggregates: str) -> list[str]:
    return [a for a in aggregates if cache.nearest(FP, a, 10**9) is not None]


def test_nearest_is_the_highest_checkpoint_at_or_below() -> None:
    cache = StateCache()
    assert cache.nearest(FP, "a", 5) is None
    cache.put(FP, "a", 4, 9, None, {"n": 4})
    cache.put(FP, "a", 8, 19, None, {"n": 8})
    assert cache.nearest(FP, "a", 3) is None
    found = cache.nearest(FP, "a", 7)
    assert found is not None
    assert (found.version, found.position, found.state) == (4, 9, {"n": 4})
    found = cache.nearest(FP, "a", 8)
    assert found is not None and found.version == 8
    assert cache.nearest("another fingerprint", "a", 8) is None


def test_a_state_that_is_not_json_is_not_kept() -> None:
    cache = StateCache()
    cache.put(FP, "a", 1, 1, None, {"when": object()})
    assert cache.nearest(FP, "a", 1) is None


def test_the_bound_holds_states_that_fill_it_exactly() -> None:
    cache = StateCache(max_bytes=200)
    cache.put(FP, "a", 1, 1, None, _state(100))
    cache.put(FP, "b", 1, 2, None, _state(100))
    assert _held(cache, "a", "b") == ["a", "b"]


def test_past_the_bound_the_least_recently_used_aggregate_goes() -> None:
    cache = StateCache(max_bytes=250)
    cache.put(FP, "a", 1, 1, None, _state(100))
    cache.put(FP, "b", 1, 2, None, _state(100))
    assert cache.nearest(FP, "a", 1) is not None  # a is now used more recently than b
    cache.put(FP, "c", 1, 3, None, _state(100))
    assert _held(cache, "a", "b", "c") == ["a", "c"]
    # The evicted bytes were given back: two more fit beside the one kept.
    cache.put(FP, "d", 1, 4, None, _state(100))
    assert _held(cache, "a", "c", "d") == ["c", "d"]


def test_two_aggregates_past_the_bound_keep_only_the_newest() -> None:
    cache = StateCache(max_bytes=150)
    cache.put(FP, "a", 1, 1, None, _state(100))
    cache.put(FP, "b", 1, 2, None, _state(100))
    assert _held(cache, "a", "b") == ["b"]


def test_the_newest_aggregate_is_kept_even_alone_past_the_bound() -> None:
    cache = StateCache(max_bytes=50)
    cache.put(FP, "a", 1, 1, None, _state(100))
    assert _held(cache, "a") == ["a"]


def test_a_checkpoint_put_again_at_its_version_replaces_its_bytes() -> None:
    cache = StateCache(max_bytes=300)
    cache.put(FP, "a", 1, 1, None, _state(100))
    for _ in range(10):
        cache.put(FP, "b", 1, 2, None, _state(100))
    assert _held(cache, "a", "b") == ["a", "b"]
    found = cache.nearest(FP, "b", 1)
    assert found is not None and found.state == _state(100)


def test_clear_forgets_states_and_their_bytes() -> None:
    cache = StateCache(max_bytes=200)
    cache.put(FP, "a", 1, 1, None, _state(150))
    cache.clear()
    assert cache.nearest(FP, "a", 1) is None
    cache.put(FP, "b", 1, 2, None, _state(100))
    cache.put(FP, "c", 1, 3, None, _state(100))
    assert _held(cache, "b", "c") == ["b", "c"]


def test_the_documented_defaults() -> None:
    cache = StateCache()
    assert (cache.every, cache.max_bytes) == (256, 32 * 1024 * 1024)


def test_a_fold_leaves_checkpoints_every_256_versions_and_where_it_ended() -> None:
    store = EventStore(":memory:")
    store.append([NewEvent("Set", {"n": n}) for n in range(1, 601)], aggregate_id="a")
    assert store.state_at("a", version=600).state == {"n": 600}
    fingerprint = store._fingerprint
    kept = [store._states.nearest(fingerprint, "a", v) for v in (255, 256, 511, 512, 599, 600)]
    versions = [None if k is None else k.version for k in kept]
    assert versions == [None, 256, 256, 512, 512, 600]

"""The first version of an aggregate at which a condition on its state holds.

``es.bisect(aggregate_id, where)`` and ``es.bisect_type(aggregate_type,
where)``: the step (event, state before and after, changes) after which
``where`` first holds, for one aggregate, or for each aggregate of a type
where it ever does. ``where`` is an expression (:mod:`store.conditions`) or
a callable on the state dict (which must not change the dict it is given).
Conditions need not be monotonic: the answer is the *first* version whose
state satisfies it, even if a later one does not, so the search is a scan
in version order, never a binary search that could land on a later flip.

Why the scan is fast: with the default reducer (a JSON merge patch of
``data``, no upcasters) and an expression, the state at a pointer changes
only when an event's payload names the pointer's first key, and merge
patches keep top-level keys independent. So the scan reads the rows as
stored text, keeps only those top-level keys of the state, decodes a
payload only when its text contains one of the keys (as the store writes
it; a false hit merely costs a decode), and tests the condition only when
they change. The full state before the matching event is then folded from
the rows already read (from the nearest stored snapshot below it, if any).
With other reducers, upcasters or a callable, it
folds every event with the store's reducers.

Across a type the scan is one pass over the type's events in log order,
keeping one small state per aggregate not yet matched: results stream out
as they are found (in order of the matching event's position).

Voids: each state is the state as known at its version (as
:meth:`EventStore.history` shows it), so a void's step leaves out the event
it voids. An aggregate with a void (found by one probe of the type index) is
searched with the store's replay of the states as known then, not the fast
scan; across a type those aggregates are searched first, one by one, and
their answers merged into the stream in position order.

The fast scan reads only each event's version and payload text through
:meth:`Backend.payloads <store.backend.Backend.payloads>`, a page at a time.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from . import paging, replay
from ._core import StoreCore
from .bitemporal import _apply
from .codec import loads_stored
from .conditions import Condition, parse
from .errors import ValidationError
from .models import Step
from .reducers import VOIDED, diff, merge_patch

__all__ = ["Where", "first_step", "first_steps"]

Where = str | Condition | Callable[[dict[str, Any]], bool]
Progress = Callable[[int, int], None]
_PAGE = 10_000
_ABSENT = object()


def condition(where: Where) -> Condition | Callable[[dict[str, Any]], bool]:
    """An expression parsed, a callable as it is."""
    if isinstance(where, str):
        return parse(where)
    if callable(where):
        return where
    raise ValidationError(
        f"where must be an expression or a callable on the state, not {type(where).__name__}"
    )


def _projected(es: StoreCore, test: Any) -> set[str] | None:
    """The top-level keys a fast scan must keep, or None when it cannot be used."""
    if not isinstance(test, Condition) or not es.reducers.copy_free or es.upcasters:
        return None
    if any(not tokens for tokens in test.pointers):
        return None  # a pointer to the whole state
    return {tokens[0] for tokens in test.pointers}


class _Projection:
    """The part of states that a condition reads, per aggregate."""

    def __init__(self, keys: set[str]) -> None:
        self.keys = keys
        self.needles = [(key, orjson.dumps(key).decode()) for key in sorted(keys)]

    def touch(self, state: dict[str, Any], text: str) -> bool:
        """Fold a payload's text into ``state``; True when a kept key changed."""
        hits = [key for key, needle in self.needles if needle in text]
        if not hits:
            return False
        data = loads_stored(text)
        changed = False
        for key in hits:
            if key not in data:
                continue
            value = data[key]
            current = state.get(key, _ABSENT)
            if value is None:
                if current is not _ABSENT:
                    del state[key]
                    changed = True
                continue
            if isinstance(value, dict):
                value = merge_patch(current if isinstance(current, dict) else {}, value)
            if type(value) is not type(current) or value != current:
                state[key] = value
                changed = True
        return changed


def _step(es: StoreCore, aggregate_id: str, version: int) -> Step:
    return next(replay.history(es, aggregate_id, version, version))


def first_step(es: StoreCore, aggregate_id: str, where: Where) -> Step | None:
    """``es.bisect``: the first step of the aggregate after which ``where``
    holds, or None."""
    test = condition(where)
    info = paging.aggregate(es, aggregate_id)  # NotFoundError for an unknown aggregate
    keys = _projected(es, test)
    if keys is None or es._call(replay.voids_of, es, aggregate_id, info.version):
        return _first_folded(es, aggregate_id, test)
    projection = _Projection(keys)
    state: dict[str, Any] = {}
    texts: list[str] = []
    first = True
    touch = projection.touch
    while page := es._call(es._backend.payloads, aggregate_id, len(texts), _PAGE):
        for version, text in page:
            if version != len(texts) + 1:  # a gap: verify() names it; never guess
                return _first_folded(es, aggregate_id, test)
            texts.append(text)
            if (touch(state, text) or first) and test(state):
                return _built_step(es, aggregate_id, texts)
            first = False
        if len(page) < _PAGE:
            break
    return None


def _built_step(es: StoreCore, aggregate_id: str, texts: list[str]) -> Step:
    """The step at version ``len(texts)``, its state before folded from the
    payloads read (a merge patch each: the fast path's reducer)."""
    version = len(texts)
    # Start from a stored snapshot below the match when there is one (its
    # state is freshly decoded, so it may be changed in place).
    snapshot = es._call(es.backend.snapshot, aggregate_id, es._fingerprint, version - 1)
    start = 0 if snapshot is None else snapshot.version
    before: dict[str, Any] = {} if snapshot is None else snapshot.state
    for text in texts[start : version - 1]:
        _merge_into(before, loads_stored(text))
    event = next(paging.stream(es, aggregate_id, version, version))
    after = merge_patch(before, event.data)
    return Step(event, before, after, diff(before, after))


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """A merge patch applied in place, for a state only this module holds:
    every object in it comes from a payload decoded for it alone."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict):
            current = target.get(key)
            if isinstance(current, dict):
                _merge_into(current, value)
            else:
                fresh: dict[str, Any] = {}
                _merge_into(fresh, value)  # drops the nulls inside, as RFC 7396 does
                target[key] = fresh
        else:
            target[key] = value


def _first_folded(
    es: StoreCore, aggregate_id: str, test: Callable[[dict[str, Any]], bool]
) -> Step | None:
    """The scan with the store's reducers, each state as known at its version
    (a void's step leaves out the event it voids, as history does)."""
    last = paging.aggregate(es, aggregate_id).version
    if es._call(replay.voids_of, es, aggregate_id, last):
        before: dict[str, Any] = {}
        for event, after in replay.states(es, aggregate_id, last):
            if test(after):
                return Step(event, before, after, diff(before, after))
            before = copy.deepcopy(after)
        return None
    protect = not es.reducers.copy_free
    before = {}
    for event in paging.stream(es, aggregate_id, 1, None):
        after = _apply(es.reducers, copy.deepcopy(before) if protect else before, event)
        if test(after):
            return Step(event, before, after, diff(before, after))
        before = after
    return None


def first_steps(
    es: StoreCore,
    aggregate_type: str | None,
    where: Where,
    progress: Progress | None = None,
) -> Iterator[Step]:
    """``es.bisect_type``: for each aggregate of the type at whose some
    version ``where`` holds, the first such step, as soon as it is found.

    ``progress(position, head)`` is called after each page read.
    """
    test = condition(where)
    head = es._call(es._backend.head)
    # Aggregates with a void are searched one by one (as known at each
    # version); their answers join the stream in position order.
    voided = {
        void.aggregate_id
        for void in paging.read(es, None, None, aggregate_type, [VOIDED], None, None, None, False)
        if void.position <= head and void.aggregate_id is not None
    }
    apart = sorted(
        (
            step
            for aggregate in voided
            if (step := _first_folded(es, aggregate, test)) is not None
            and step.event.position <= head
        ),
        key=lambda step: step.event.position,
    )
    pending = iter(apart)
    waiting = next(pending, None)
    for step in _scan(es, aggregate_type, test, head, progress, voided):
        while waiting is not None and waiting.event.position < step.event.position:
            yield waiting
            waiting = next(pending, None)
        yield step
    if waiting is not None:
        yield waiting
    yield from pending


def _scan(
    es: StoreCore,
    aggregate_type: str | None,
    test: Callable[[dict[str, Any]], bool],
    head: int,
    progress: Progress | None,
    skipped: set[str],
) -> Iterator[Step]:
    """One pass over the type's events up to ``head``, leaving out the
    aggregates in ``skipped``."""
    keys = _projected(es, test)
    if keys is None:
        yield from _steps_folded(es, aggregate_type, test, head, progress, skipped)
        return
    projection = _Projection(keys)
    states: dict[str, dict[str, Any]] = {}
    done: set[str] = set(skipped)
    for page in paging.read_rows(
        es, None, None, aggregate_type, None, None, None, None, False, _PAGE
    ):
        for row in page:
            aggregate = row[2]
            if aggregate is None or aggregate in done or row[0] > head:
                continue
            state = states.get(aggregate)
            fresh = state is None
            if state is None:
                state = states[aggregate] = {}
            if (projection.touch(state, row[7]) or fresh) and test(state):
                done.add(aggregate)
                del states[aggregate]
                yield _step(es, aggregate, row[4])
        if progress is not None and page:
            progress(page[-1][0], head)
        if page and page[-1][0] >= head:
            break


def _steps_folded(
    es: StoreCore,
    aggregate_type: str | None,
    test: Callable[[dict[str, Any]], bool],
    head: int,
    progress: Progress | None,
    skipped: set[str],
) -> Iterator[Step]:
    protect = not es.reducers.copy_free
    states: dict[str, dict[str, Any]] = {}
    done: set[str] = set(skipped)
    seen = 0
    for event in paging.read(es, None, None, aggregate_type, None, None, None, None, False):
        if event.position > head:
            break
        aggregate = event.aggregate_id
        seen += 1
        if progress is not None and seen % _PAGE == 0:
            progress(event.position, head)
        if aggregate is None or aggregate in done:
            continue
        before = states.get(aggregate, {})
        after = _apply(es.reducers, copy.deepcopy(before) if protect else before, event)
        if test(after):
            done.add(aggregate)
            states.pop(aggregate, None)
            yield Step(event, before, after, diff(before, after))
        else:
            states[aggregate] = after
    if progress is not None:
        progress(head, head)

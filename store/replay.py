"""Rebuilding state: folding an aggregate's events through the reducers from
the nearest snapshot or in-memory checkpoint, as of a version, a position or
a time, and the step-by-step history with the fields each event changed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import paging
from ._core import PAGE, StoreCore, reducer_error
from .backend import Query, Snapshot
from .checks import check_int
from .codec import format_time, require_aware
from .errors import NotFoundError, ValidationError, shorten
from .models import AggregateState, RecordedEvent, Step
from .reducers import VOIDED, diff

__all__ = ["fold", "history", "state_at", "states", "voids_of"]


Void = tuple[int, int, int]
"""A void in an aggregate's stream: (its version, the voided event's version
and position)."""


def voids_of(es: StoreCore, aggregate_id: str, version: int) -> list[Void]:
    """The ``sss.Voided`` events of the aggregate at or below ``version``.

    Read through the index by type, whole-store: voids are rare, so this is
    one short index probe per fold, whatever the aggregate's length."""
    found = Query(1, None, None, None, (VOIDED,))
    voids: list[Void] = []
    after: int | None = 0
    while page := es._backend.page(found, VOIDED, after, False, PAGE):
        for event in page:
            if event.aggregate_id == aggregate_id and (event.version or 0) <= version:
                data = event.data
                voids.append((event.version or 0, data["voided_version"], data["voided_position"]))
        if len(page) < PAGE:
            break
        after = page[-1].position
    return voids


def _spoiled(voids: list[Void], version: int) -> int | None:
    """A state at ``version`` folds in the events voided at or before it and
    none voided later: as a start for a fold past a later void of one of its
    events it is spoiled. Returns the highest version below the earliest such
    voided event (a start there is safe from it), or None when none is."""
    bad = [voided for at, voided, _ in voids if voided <= version < at]
    return min(bad) - 1 if bad else None


def fold(es: StoreCore, aggregate_id: str, version: int, *, committed: bool = True) -> Snapshot:
    """The state after ``version``, from the nearest stored snapshot or
    in-memory checkpoint. ``committed=False`` (inside an append) keeps the
    fold out of the checkpoints: its events may yet be rolled back.

    Events voided at or before ``version`` are skipped; a snapshot or
    checkpoint that folded in an event voided later than itself (and not
    later than ``version``) is not used as the start."""
    fingerprint = es._fingerprint
    voids = voids_of(es, aggregate_id, version) if version else []
    skipped = {position for at, _, position in voids}
    bound = version
    while True:
        start = es._backend.snapshot(aggregate_id, fingerprint, bound)
        cached = es._states.nearest(fingerprint, aggregate_id, bound)
        if cached is not None and (start is None or cached.version > start.version):
            start = cached
        lower = _spoiled(voids, start.version) if start is not None else None
        if lower is None:
            break
        if lower <= 0:
            start = None
            break
        bound = lower
    state: dict[str, Any] = start.state if start else {}
    position = start.position if start else 0
    done = start.version if start else 0
    recorded_at = start.recorded_at if start else None
    if done < version:
        apply = es.reducers.apply
        every = es._states.every
        checkpoint = committed and es._writer is None
        for event in paging.stream(es, aggregate_id, done + 1, version):
            if event.position not in skipped:
                try:
                    state = apply(state, event)
                except Exception as e:
                    raise reducer_error(event, e) from e
            position = event.position
            done = event.version or done
            recorded_at = event.recorded_at
            if (
                checkpoint
                and (done % every == 0 or done == version)
                and _spoiled(voids, done) is None
            ):
                es._states.put(fingerprint, aggregate_id, done, position, recorded_at, state)
    return Snapshot(aggregate_id, done, position, state, recorded_at)


def states(
    es: StoreCore, aggregate_id: str, to_version: int
) -> Iterator[tuple[RecordedEvent, dict[str, Any]]]:
    """Each event of the aggregate up to ``to_version`` with the state after
    it, as known then: a void's step folds again without the events it and
    the voids before it voided. Uses no snapshot (verify compares them)."""
    apply = es.reducers.apply
    protect = not es.reducers.copy_free
    voided: set[int] = set()
    state: dict[str, Any] = {}
    seen: list[RecordedEvent] = []
    for event in paging.stream(es, aggregate_id, 1, to_version):
        seen.append(event)
        try:
            if event.type == VOIDED and isinstance(event.data.get("voided_position"), int):
                voided.add(event.data["voided_position"])
                state = {}
                for earlier in seen:
                    if earlier.position not in voided:
                        state = apply(state, earlier)
            else:
                state = apply(copy.deepcopy(state) if protect else state, event)
        except Exception as e:
            raise reducer_error(event, e) from e
        yield event, state


def state_at(
    es: StoreCore,
    aggregate_id: str,
    version: int | None,
    position: int | None,
    at: datetime | None,
) -> AggregateState:
    given = [
        name
        for name, value in (("version", version), ("position", position), ("at", at))
        if value is not None
    ]
    if len(given) > 1:
        raise ValidationError(f"give at most one of version, position, at (got {', '.join(given)})")
    for name, value in (("version", version), ("position", position)):
        if value is not None:
            check_int(value, name)
    moment = None if at is None else format_time(require_aware(at, "at"))
    info = paging.aggregate(es, aggregate_id)

    def run() -> AggregateState:
        if version is not None:
            if version > info.version:
                raise NotFoundError(
                    f"{shorten(aggregate_id)} has {info.version} versions; "
                    f"there is no version {version}"
                )
            target = version
        elif position is not None:
            target = es._backend.version_at(aggregate_id, position)
        elif moment is not None:
            target = es._backend.version_at(aggregate_id, es._backend.last_position_until(moment))
        else:
            target = info.version
        if target == 0:
            return AggregateState(aggregate_id, info.aggregate_type, 0, 0, None, {})
        snap = fold(es, aggregate_id, target)
        recorded = snap.recorded_at
        if recorded is None and target == info.version:
            recorded = info.updated_at
        if recorded is None:
            event = es._backend.page(Query(1, None, aggregate_id), None, target - 1, False, 1)
            recorded = event[0].recorded_at if event else None
        return AggregateState(
            aggregate_id, info.aggregate_type, snap.version, snap.position, recorded, snap.state
        )

    return es._call(run)


def history(
    es: StoreCore, aggregate_id: str, from_version: int, to_version: int | None
) -> Iterator[Step]:
    check_int(from_version, "from_version", minimum=1)
    if to_version is not None:
        check_int(to_version, "to_version")
    before = state_at(es, aggregate_id, from_version - 1, None, None).state
    return _history(es, aggregate_id, before, from_version, to_version)


def _history(
    es: StoreCore,
    aggregate_id: str,
    before: dict[str, Any],
    from_version: int,
    to_version: int | None,
) -> Iterator[Step]:
    # The default reducer never changes its input; a user's may, so give it a copy.
    protect = not es.reducers.copy_free
    apply = es.reducers.apply
    for event in paging.stream(es, aggregate_id, from_version, to_version):
        if event.type == VOIDED:
            # The state as known after the void: folded again without the voided event.
            after = fold(es, aggregate_id, event.version or 0).state
            yield Step(event, before, after, diff(before, after))
            before = after
            continue
        try:
            after = apply(copy.deepcopy(before) if protect else before, event)
        except Exception as e:
            raise reducer_error(event, e) from e
        yield Step(event, before, after, diff(before, after))
        before = after

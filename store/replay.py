"""Rebuilding state: folding an aggregate's events through the reducers from
the nearest snapshot or in-memory checkpoint, as of a version, a position or
a time, and the step-by-step history with the fields each event changed."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from . import paging
from ._core import StoreCore, reducer_error
from .backend import Query, Snapshot
from .checks import check_int
from .codec import format_time, require_aware
from .errors import NotFoundError, ValidationError, shorten
from .models import AggregateState, Step
from .reducers import diff

__all__ = ["fold", "history", "state_at"]


def fold(es: StoreCore, aggregate_id: str, version: int, *, committed: bool = True) -> Snapshot:
    """The state after ``version``, from the nearest stored snapshot or
    in-memory checkpoint. ``committed=False`` (inside an append) keeps the
    fold out of the checkpoints: its events may yet be rolled back."""
    fingerprint = es._fingerprint
    start = es._backend.snapshot(aggregate_id, fingerprint, version)
    cached = es._states.nearest(fingerprint, aggregate_id, version)
    if cached is not None and (start is None or cached.version > start.version):
        start = cached
    state: dict[str, Any] = start.state if start else {}
    position = start.position if start else 0
    done = start.version if start else 0
    recorded_at = start.recorded_at if start else None
    if done < version:
        apply = es.reducers.apply
        every = es._states.every
        checkpoint = committed and es._writer is None
        for event in paging.stream(es, aggregate_id, done + 1, version):
            try:
                state = apply(state, event)
            except Exception as e:
                raise reducer_error(event, e) from e
            position = event.position
            done = event.version or done
            recorded_at = event.recorded_at
            if checkpoint and (done % every == 0 or done == version):
                es._states.put(fingerprint, aggregate_id, done, position, recorded_at, state)
    return Snapshot(aggregate_id, done, position, state, recorded_at)


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
        try:
            after = apply(copy.deepcopy(before) if protect else before, event)
        except Exception as e:
            raise reducer_error(event, e) from e
        yield Step(event, before, after, diff(before, after))
        before = after

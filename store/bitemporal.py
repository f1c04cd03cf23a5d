"""Two clocks: an aggregate's state as of a business time, as it was known at
a system time.

``recorded_at`` is when the store learned of an event, ``occurred_at`` when
it happened in the business; a late correction has an early ``occurred_at``.
The state *as of business time B, known at K* folds the events recorded at
or before K whose ``occurred_at`` is at or before B, in (occurred_at,
position) order. ``recorded_at`` never decreases along the log, so "known at
K" is a prefix of the aggregate's versions; "occurred by B" is not a prefix
of anything, and the fold order is not the log's order once a late event
has been back-dated.

When a stored snapshot or an in-memory checkpoint can be used:
    Both hold the state after a *version*, folded in position order. The one
    after version s is a correct start for this fold exactly when the fold's
    first s events are versions 1..s in that order, which holds if and only if

    1. every version 1..s is in the fold (recorded at or before K and
       occurred at or before B),
    2. their ``occurred_at`` never decreases from one version to the next, and
    3. every later event in the fold occurred at or after version s did
       (equal times are ordered by position, so they come after s anyway).

    If s qualifies, so does every lower version, so the fold starts from the
    highest qualifying s (reading only the events' times, not their payloads,
    to find it), lets the ordinary replay take it from the nearest snapshot or
    checkpoint at or below s, and folds the rest in (occurred_at, position)
    order. When no version qualifies (version 1 occurred after B, or an event
    back-dated before version 1) the fold starts from nothing. Results of
    this fold are never put into the checkpoints, which hold position-order
    states only.

Voids:
    A void (``sss.Voided``) is knowledge about the log, so it counts by system
    time alone: a void recorded at or before K removes the event it names
    from the fold, whatever the business time B and whatever the void's own
    ``occurred_at``; a void recorded after K does not (what was believed at
    K still held the event). A position-order start at version s folds in
    the events voided at or before s only, so a known void later than s of
    an event at or below s lowers s to below that event.

The returned :class:`AggregateState` names the highest version and position
folded and the latest ``recorded_at`` among them (the events folded are not
always a prefix of the aggregate's versions; voided events are not folded).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from . import paging, replay
from ._core import StoreCore
from .codec import format_time, require_aware
from .errors import ReducerError, StoreError, ValidationError
from .models import AggregateState, RecordedEvent
from .reducers import VOIDED, Reducers

__all__ = [
    "bitemporal_state",
    "bitemporal_states",
    "check_point",
    "moment",
    "safe_from_voids",
    "usable_prefix",
]

_END = "\U0010ffff"  # sorts after every stored time text


def moment(value: datetime | None, name: str) -> str | None:
    """A bound as stored time text (fixed width, so text order is time order)."""
    return None if value is None else format_time(require_aware(value, name))


def _apply(reducers: Reducers, state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
    try:
        return reducers.apply(state, event)
    except StoreError:
        raise
    except Exception as e:
        raise ReducerError(
            f"the reducer for {event.type} failed on {event.aggregate_id} version "
            f"{event.version} (position {event.position}): {type(e).__name__}: {e}"
        ) from e


def usable_prefix(occurred: list[str], business: str | None) -> int:
    """How many leading versions a position-order state may stand for.

    ``occurred`` holds the ``occurred_at`` text of versions 1..n known at the
    cut-off, in version order; the answer is the highest s meeting the three
    conditions of the module docstring (0 when none does).

    Example:
        >>> usable_prefix(["2024-01-01", "2024-01-03", "2024-01-02"], None)
        1
    """
    bound = _END if business is None else business
    # later[i]: the earliest occurred_at among folded versions after index i.
    later = [_END] * (len(occurred) + 1)
    low = _END
    for i in range(len(occurred) - 1, -1, -1):
        later[i + 1] = low
        text = occurred[i]
        if text <= bound and text < low:
            low = text
    best = 0
    previous = ""
    for i, text in enumerate(occurred):
        if text > bound or text < previous or later[i + 1] < text:
            break
        previous = text
        best = i + 1
    return best


def safe_from_voids(prefix: int, voids: list[replay.Void]) -> int:
    """Lower ``prefix`` until no void after it names an event at or below it
    (a position-order state at ``prefix`` would still hold that event).

    Example:
        >>> safe_from_voids(5, [(7, 3, 30)])  # the void at version 7 names version 3
        2
    """
    while True:
        late = [voided for at, voided, _ in voids if voided <= prefix < at]
        if not late:
            return prefix
        prefix = min(late) - 1


def _fold(
    reducers: Reducers,
    start: dict[str, Any],
    events: Iterable[RecordedEvent],
    business: str | None,
    skipped: set[int] | frozenset[int] = frozenset(),
) -> tuple[dict[str, Any], list[RecordedEvent]]:
    chosen = [
        e
        for e in events
        if (business is None or format_time(e.occurred_at) <= business)
        and e.position not in skipped
    ]
    chosen.sort(key=lambda e: (e.occurred_at, e.position))
    state = start
    for event in chosen:
        state = _apply(reducers, state, event)
    return state, chosen


def bitemporal_state(
    es: StoreCore,
    aggregate_id: str,
    occurred: datetime | None,
    known_at: datetime | None,
) -> AggregateState:
    """``es.state_at(aggregate_id, occurred=B, known_at=K)``; see the module
    docstring. ``None`` for B means no business-time bound, for K everything
    known now."""
    business = moment(occurred, "occurred")
    moment(known_at, "known_at")
    info = paging.aggregate(es, aggregate_id)
    times: list[str] = []
    for page in paging.read_rows(
        es, None, aggregate_id, None, None, None, known_at, None, False, 10_000
    ):
        times.extend(row[9] for row in page)
    last_known = len(times)  # versions 1..last_known were recorded by K
    voids = es._call(replay.voids_of, es, aggregate_id, last_known) if last_known else []
    skipped = {position for _, _, position in voids}
    prefix = safe_from_voids(usable_prefix(times, business), voids)
    state: dict[str, Any] = {}
    version = position = 0
    recorded: datetime | None = None
    if prefix:
        snap = es._call(replay.fold, es, aggregate_id, prefix)
        state, version, position = snap.state, snap.version, snap.position
        recorded = snap.recorded_at
    if prefix < last_known:
        tail = paging.stream(es, aggregate_id, prefix + 1, last_known)
        state, folded = _fold(es.reducers, state, tail, business, skipped)
        for event in folded:
            if event.position > position:
                position, recorded = event.position, event.recorded_at
            version = max(version, event.version or 0)
    if recorded is None and version:
        recorded = next(paging.stream(es, aggregate_id, version, version)).recorded_at
    return AggregateState(aggregate_id, info.aggregate_type, version, position, recorded, state)


def bitemporal_states(
    es: StoreCore,
    aggregate_type: str | None,
    occurred: datetime | None,
    known_at: datetime | None,
) -> dict[str, AggregateState]:
    """Every aggregate of a type (``None``: every aggregate) as of business
    time ``occurred`` known at ``known_at``, in order of creation; aggregates
    with no event in the fold are absent.

    Two passes over the type's events recorded by ``known_at``: the first
    reads only ids and times and finds the aggregates whose fold order is not
    their log order; the second folds the others as it reads and keeps just
    the events of those, to sort and fold at the end. Memory stays bounded by
    the states and the back-dated aggregates' events.
    """
    business = moment(occurred, "occurred")
    moment(known_at, "known_at")
    head = es._call(
        es._backend.head
    )  # both passes stop here: events appended meanwhile are not seen
    skipped = {
        void.data["voided_position"]
        for void in paging.read(
            es, None, None, aggregate_type, [VOIDED], None, known_at, None, False
        )
        if void.position <= head
    }
    last: dict[str, str] = {}
    disordered: set[str] = set()
    for page in paging.read_rows(
        es, None, None, aggregate_type, None, None, known_at, None, False, 10_000
    ):
        for row in page:
            aggregate, text = row[2], row[9]
            if (
                row[0] > head
                or aggregate is None
                or row[0] in skipped
                or (business is not None and text > business)
            ):
                continue
            if text < last.get(aggregate, ""):
                disordered.add(aggregate)
            else:
                last[aggregate] = text
    reducers = es.reducers
    states: dict[str, AggregateState] = {}
    held: dict[str, list[RecordedEvent]] = {}
    for event in paging.read(es, None, None, aggregate_type, None, None, known_at, None, False):
        aggregate = event.aggregate_id
        if event.position > head:
            break
        if aggregate is None or event.position in skipped:
            continue
        if business is not None and format_time(event.occurred_at) > business:
            continue
        if aggregate in disordered:
            held.setdefault(aggregate, []).append(event)
            states.setdefault(aggregate, _placeholder(event))
            continue
        before = states.get(aggregate)
        state = _apply(reducers, {} if before is None else before.state, event)
        states[aggregate] = AggregateState(
            aggregate, event.aggregate_type, event.version or 0, event.position,
            event.recorded_at, state,
        )  # fmt: skip
    for aggregate, events in held.items():
        state, folded = _fold(reducers, {}, events, None)
        newest = max(folded, key=lambda e: e.position)
        states[aggregate] = AggregateState(
            aggregate, newest.aggregate_type, max(e.version or 0 for e in folded),
            newest.position, newest.recorded_at, state,
        )  # fmt: skip
    return states


def _placeholder(event: RecordedEvent) -> AggregateState:
    # Keeps the aggregate's place in creation order until its fold is done.
    return AggregateState(event.aggregate_id or "", event.aggregate_type, 0, 0, None, {})


def check_point(
    version: int | None, position: int | None, at: datetime | None, bitemporal: bool
) -> None:
    """Refuse a mix of a log point (version, position, at) with the two clocks."""
    if bitemporal and (version is not None or position is not None or at is not None):
        raise ValidationError(
            "occurred/known_at do not go with version, position or at: "
            "give either a point in the log or the two clocks"
        )

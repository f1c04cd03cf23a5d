"""Erasure for privacy law: :meth:`EventStore.erase
<store.eventstore.EventStore.erase>` replaces the payloads of chosen events
by their erased form and appends one ``sss.Erased`` receipt.

What stays and what goes:

- the payload's values go, nested objects included; its top-level field
  names stay, each holding :data:`~store.models.ERASED` (``⟨erased⟩``), so a
  replay shows which fields were erased instead of losing them;
- ``data_hash``, ``hash`` and every other column stay as they were, so the
  hash chain, the digests a Merkle tree is built over and ``verify()`` stay
  valid (verify counts the erased payloads);
- snapshots of the erased aggregates from the first erased version on are
  deleted, the in-memory states of this EventStore are dropped, and parked
  reasons and subscription failures recorded for erased positions are
  replaced by a note (they may quote the payload);
- the database is then told to drop the old bytes from its files (SQLite:
  ``secure_delete`` while erasing, then a truncating WAL checkpoint;
  PostgreSQL: VACUUM of the tables touched).

The receipt has no aggregate, so no aggregate's version moves and no
reducer ever sees it. Its data lists the erased ``positions`` and
``event_ids`` and the ``aggregate_id`` asked for (or null); its metadata
holds ``reason`` and ``actor``; its ``recorded_at`` says when.

What a reducer sees of an erased event: the event with ``erased_by`` set
(``event.erased`` is true) and that erased data; the default reducer (JSON
merge patch) therefore sets each erased field of the state to the marker.
Upcasters are not applied to an erased event.

Erasing events already erased changes nothing and appends nothing: erase
then returns the receipt of the earlier erasure (the latest among them).
The store's own ``sss.Voided`` events and receipts are structural and never
erased: an aggregate's erasure skips its voids, and naming one by position
is refused.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from . import appending, paging
from ._core import StoreCore
from .checks import check_int, check_name
from .correcting import actor_of, check_reason
from .errors import NotFoundError, ReadOnlyError, ValidationError, describe
from .integrity import RECEIPT
from .models import ANY, NewEvent, RecordedEvent
from .reducers import VOIDED

__all__ = ["RECEIPT", "erase"]

_STRUCTURAL = (VOIDED, RECEIPT)


def erase(
    es: StoreCore,
    positions: object,
    aggregate_id: object,
    reason: object,
    metadata: object,
) -> RecordedEvent:
    """See :meth:`EventStore.erase <store.eventstore.EventStore.erase>`."""
    if es.readonly:
        raise ReadOnlyError(f"{es._label} is open read-only; erasures are refused")
    if es._writer == threading.get_ident():
        raise ValidationError(
            "erase runs in a transaction of its own (the files are scrubbed after it "
            "commits); call it outside es.transaction()"
        )
    reason = check_reason(reason)
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict, not {describe(metadata)}")
    if (positions is None) == (aggregate_id is None):
        raise ValidationError("give what to erase: positions or aggregate_id (one of them)")
    wanted = _positions(positions) if positions is not None else None
    aggregate = None if aggregate_id is None else check_name(aggregate_id, "aggregate_id")
    with appending.transaction(es):
        events = _chosen(es, wanted, aggregate)
        todo = [event for event in events if not event.erased]
        if not todo:
            receipt = paging.get(es, max(event.erased_by or 0 for event in events))
        else:
            meta: dict[str, Any] = dict(metadata or {})
            meta.update(reason=reason, actor=actor_of(meta))
            data = {
                "positions": [event.position for event in todo],
                "event_ids": [event.event_id for event in todo],
                "aggregate_id": aggregate,
            }
            (receipt,) = appending.append_receipt(
                es, [NewEvent(RECEIPT, data, meta)], None, None, ANY
            )
            note = (
                f"not kept: the payload of this event was erased (receipt at position "
                f"{receipt.position})"
            )
            with es._backend.write() as tx:
                tx.flush()
                tx.erase([event.position for event in todo], receipt.position, note)
    es._states.clear()
    problem = es._call(es._backend.scrub)
    if problem is not None:
        warnings.warn(problem, RuntimeWarning, stacklevel=3)
    return receipt


def _positions(positions: object) -> list[int]:
    if isinstance(positions, int) and not isinstance(positions, bool):
        positions = [positions]
    if isinstance(positions, (str, bytes)) or not hasattr(positions, "__iter__"):
        raise ValidationError(f"positions must be a list of positions, not {describe(positions)}")
    chosen = sorted({check_int(p, "position", minimum=1) for p in positions})
    if not chosen:
        raise ValidationError("positions is empty: name at least one event to erase")
    return chosen


def _chosen(
    es: StoreCore, positions: list[int] | None, aggregate: str | None
) -> list[RecordedEvent]:
    """The events to erase, all found, or an error naming what is not."""
    if positions is not None:
        head = es._call(es._backend.head)
        beyond = [p for p in positions if p > head]
        if beyond:
            raise NotFoundError(
                f"there is no event at position {beyond[0]} in {es._label} (its head is {head})"
            )
        events = [paging.get(es, p) for p in positions]
        for event in events:
            if event.type in _STRUCTURAL:
                raise ValidationError(
                    f"the event at position {event.position} is an {event.type} event, which "
                    "holds no personal data and is never erased"
                )
        return events
    assert aggregate is not None
    if es._call(es._backend.aggregate, aggregate) is None:
        raise NotFoundError(f"no aggregate {describe(aggregate)} in {es._label}")
    events = [
        event
        for event in paging.read(es, None, aggregate, None, None, None, None, None, False)
        if event.type not in _STRUCTURAL
    ]
    if not events:
        raise ValidationError(
            f"{describe(aggregate)} holds only the store's own events; nothing to erase"
        )
    return events

"""Correcting an aggregate without deleting history: ``revert`` appends one
``sss.Reverted`` event that takes the state back to an earlier point.

The event's ``data`` depends on the reducers in use when it is appended:

- with the default reducer (JSON merge patch) it is the merge patch that
  turns the current state into the target's state, so it folds like any
  other event (the default reducer's states never hold ``null``, which a
  merge patch cannot set);
- with custom reducers it is the target's whole state, and the metadata says
  ``"revert_mode": "replace"``.

Either way the store applies ``sss.Reverted`` itself (see
:meth:`store.Reducers.resolve`): a reducer registered for that type is never
called, so a revert means the same whatever the user's reducers do. The
metadata holds ``reason``, ``actor`` (the caller's, else the login name),
``reverted_to_version``, ``reverted_to_position`` and ``revert_mode``.
"""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import Any

from . import appending, paging, replay
from ._core import StoreCore
from .checks import check_int, check_name
from .errors import NotFoundError, ValidationError, describe
from .models import ANY, NewEvent, RecordedEvent
from .reducers import REVERTED, VOIDED

__all__ = ["REVERTED", "VOIDED", "merge_diff", "revert", "void"]


def merge_diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The RFC 7396 merge patch turning ``before`` into ``after`` (which holds
    no ``null`` inside objects): ``merge_patch(before, merge_diff(before,
    after)) == after``."""
    patch: dict[str, Any] = {}
    for key in before.keys() - after.keys():
        patch[key] = None
    for key, new in after.items():
        if key not in before:
            patch[key] = new
            continue
        old = before[key]
        if isinstance(old, dict) and isinstance(new, dict):
            inner = merge_diff(old, new)
            if inner:
                patch[key] = inner
        elif old != new or type(old) is not type(new):
            patch[key] = new
    return patch


def _has_null(value: Any) -> bool:
    if isinstance(value, dict):
        return any(v is None or _has_null(v) for v in value.values())
    return False


def check_reason(reason: object) -> str:
    """A reason is required: text that is not blank."""
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError(f"a reason is required (say why, in words), not {describe(reason)}")
    return reason


def actor_of(metadata: dict[str, Any]) -> str | None:
    actor = metadata.get("actor")
    if isinstance(actor, str) and actor:
        return actor
    try:
        return getpass.getuser()
    except Exception:  # no login name (a container without a passwd entry)
        return None


def revert(
    es: StoreCore,
    aggregate_id: str,
    version: int | None,
    position: int | None,
    at: datetime | None,
    reason: object,
    metadata: object,
) -> RecordedEvent:
    """See :meth:`EventStore.revert <store.eventstore.EventStore.revert>`."""
    check_name(aggregate_id, "aggregate_id", optional=False)
    reason = check_reason(reason)
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict, not {describe(metadata)}")
    if version is None and position is None and at is None:
        raise ValidationError("give the point to revert to: version, position or at")
    with appending.transaction(es):
        current = replay.state_at(es, aggregate_id, None, None, None)
        target = replay.state_at(es, aggregate_id, version, position, at)
        if target.version == current.version:
            raise ValidationError(
                f"{describe(aggregate_id)} is at version {current.version} already; "
                "nothing to revert"
            )
        mode = "merge-patch"
        data = merge_diff(current.state, target.state)
        if not es.reducers.copy_free or _has_null(target.state):
            mode, data = "replace", target.state
        meta = dict(metadata or {})
        meta.update(
            reason=reason,
            actor=actor_of(meta),
            reverted_to_version=target.version,
            reverted_to_position=target.position,
            revert_mode=mode,
        )
        (event,) = appending.append_receipt(
            es,
            [NewEvent(REVERTED, data, meta)],
            aggregate_id,
            current.aggregate_type,
            current.version,
        )
    return event


def void(es: StoreCore, position: object, reason: object, metadata: object) -> RecordedEvent:
    """See :meth:`EventStore.void <store.eventstore.EventStore.void>`."""
    check_int(position, "position", minimum=1)
    assert isinstance(position, int)
    reason = check_reason(reason)
    if metadata is not None and not isinstance(metadata, dict):
        raise ValidationError(f"metadata must be a dict, not {describe(metadata)}")
    with appending.transaction(es):
        if position > es._call(es._backend.head):
            raise NotFoundError(f"there is no event at position {position} in {es._label}")
        wrong = paging.get(es, position)
        if wrong.type == VOIDED:
            raise ValidationError(
                f"the event at position {position} is a void; a void cannot be voided"
            )
        for earlier in paging.read(es, position + 1, None, None, [VOIDED], None, None, None, False):
            if earlier.data.get("voided_position") == position:
                raise ValidationError(
                    f"the event at position {position} is voided already (by the void at "
                    f"position {earlier.position})"
                )
        meta = dict(metadata or {})
        meta.update(reason=reason, actor=actor_of(meta))
        data = {
            "voided_position": position,
            "voided_event_id": wrong.event_id,
            "voided_type": wrong.type,
            "voided_version": wrong.version,
        }
        (event,) = appending.append_receipt(
            es, [NewEvent(VOIDED, data, meta)], wrong.aggregate_id, wrong.aggregate_type, ANY
        )
    return event

"""In-memory checkpoints of rebuilt states, so stepping and seeking through a
long aggregate folds a few events instead of its whole history.

The log is append-only, so the state after version v of an aggregate never
changes for given reducers and upcasters: checkpoints are keyed by their
fingerprint and never go stale. They are kept as JSON bytes, so a caller who
changes a state it was given cannot change the cache.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any

import orjson

from .backend import Snapshot

__all__ = ["StateCache"]


class StateCache:
    """Checkpoints every ``every`` versions (and where a fold ended), for the
    most recently used aggregates, within ``max_bytes``.

    Example:
        >>> cache = StateCache(every=2)
        >>> cache.put("fp", "a", 4, 9, None, {"n": 4})
        >>> cache.nearest("fp", "a", 5).version
        4
    """

    def __init__(self, *, every: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.every = every
        self.max_bytes = max_bytes
        self._size = 0
        self._states: OrderedDict[
            tuple[str, str], dict[int, tuple[int, datetime | None, bytes]]
        ] = OrderedDict()

    def nearest(self, fingerprint: str, aggregate_id: str, version: int) -> Snapshot | None:
        """The checkpoint at the highest version at or below ``version``."""
        key = (fingerprint, aggregate_id)
        states = self._states.get(key)
        if not states:
            return None
        self._states.move_to_end(key)
        best = max((v for v in states if v <= version), default=None)
        if best is None:
            return None
        position, recorded_at, blob = states[best]
        return Snapshot(aggregate_id, best, position, orjson.loads(blob), recorded_at)

    def put(
        self,
        fingerprint: str,
        aggregate_id: str,
        version: int,
        position: int,
        recorded_at: datetime | None,
        state: dict[str, Any],
    ) -> None:
        try:
            blob = orjson.dumps(state)
        except TypeError:
            return  # a reducer built a state that is not JSON; fold it again next time
        key = (fingerprint, aggregate_id)
        states = self._states.setdefault(key, {})
        self._states.move_to_end(key)
        old = states.get(version)
        if old is not None:
            self._size -= len(old[2])
        states[version] = (position, recorded_at, blob)
        self._size += len(blob)
        while self._size > self.max_bytes and len(self._states) > 1:
            _, evicted = self._states.popitem(last=False)
            self._size -= sum(len(entry[2]) for entry in evicted.values())

    def clear(self) -> None:
        self._states.clear()
        self._size = 0

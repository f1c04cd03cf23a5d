"""The store handles the TUI's widgets are given through their constructors."""

from __future__ import annotations

import threading
from pathlib import Path

from store import VOIDED, EventStore, RecordedEvent, StoreError
from workbench.locations import is_url, short_name
from workbench.safetext import shown

__all__ = ["StoreHandles", "Voids"]


class Voids:
    """Which events of the store are voided: voided position -> (position of
    the void, its reason), read from the store's ``sss.Voided`` events (one
    probe of the type index, then only the ones appended since).

    Thread-safety: :meth:`refresh` may run in any worker; readers see a
    position either voided or not, never half-recorded.
    """

    def __init__(self) -> None:
        self._by_position: dict[int, tuple[int, str]] = {}
        self._seen = 0
        self._lock = threading.Lock()

    def refresh(self, store: EventStore) -> None:
        """Read the voids appended since the last refresh."""
        with self._lock:
            for event in store.read(from_position=self._seen + 1, types=[VOIDED]):
                self.note(event)

    def note(self, event: RecordedEvent) -> bool:
        """Record ``event`` if it is a void; True when it was one."""
        if event.type != VOIDED or not isinstance(event.data.get("voided_position"), int):
            return False
        reason = event.metadata.get("reason")
        self._by_position[event.data["voided_position"]] = (
            event.position,
            reason if isinstance(reason, str) else "",
        )
        self._seen = max(self._seen, event.position)
        return True

    def of(self, position: int) -> tuple[int, str] | None:
        """(void position, reason) when the event at ``position`` is voided."""
        return self._by_position.get(position)


class StoreHandles:
    """The store the screen pages through, and a second read-only handle on it.

    Long reads of background workers (counts, the catalogue: a pass over the
    whole log on a large store) go through :attr:`side`, so they never hold up
    the store the timeline pages through. An in-memory store has no second
    handle: ``side`` is the store itself.

    Thread-safety: ``side`` may be asked for from any worker thread; the
    handle is opened once, and none is opened after :meth:`close`.
    """

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self._side: EventStore | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.voids = Voids()
        """Which events are voided, for every widget that lists events."""

    @property
    def readonly(self) -> bool:
        return self.store.readonly

    @property
    def name(self) -> str:
        """The store's file name (the full path is long and says little on
        screen); for a server store, its database and schema."""
        path = self.store.path
        if is_url(path):
            return shown(f"postgresql:{short_name(path)}")
        return shown(Path(path).name or path)

    @property
    def side(self) -> EventStore:
        if self._side is not None:
            return self._side
        path = self.store.path
        if self._closed or not (is_url(path) or Path(path).is_file()):
            return self.store
        with self._lock:
            if self._closed:
                return self.store
            if self._side is None:
                try:
                    self._side = EventStore(
                        path,
                        readonly=True,
                        reducers=self.store.reducers,
                        upcasters=self.store.upcasters,
                    )
                except StoreError:
                    return self.store
            return self._side

    @property
    def side_is_open(self) -> bool:
        return self._side is not None

    def close(self) -> None:
        """Close the second handle (the store itself belongs to the caller)."""
        with self._lock:
            self._closed = True  # a worker finishing late opens no new handle
            side, self._side = self._side, None
        if side is not None:
            side.close()

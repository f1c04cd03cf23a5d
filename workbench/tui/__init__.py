"""The workbench TUI (Textual): browse, filter, tail and replay an event store.

    >>> from workbench.tui import run
    >>> run("events.db")  # doctest: +SKIP

``run`` opens the store read-only by default, blocks until the user quits and
returns an exit code. A missing, locked, corrupt or non-store file is reported
as one line on stderr (exit code 1), never a traceback.
"""

from __future__ import annotations

import sys
from typing import Any

from store import EventStore, Reducers, StoreError, Upcasters, load_object

__all__ = ["open_store", "run"]


def _resolve(value: Any, kind: type) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        loaded = load_object(value)
        if not isinstance(loaded, kind):
            raise StoreError(f"{value} is a {type(loaded).__name__}, not a {kind.__name__}")
        return loaded
    raise StoreError(f"expected a {kind.__name__} or 'module:attribute', not {value!r}")


def open_store(
    path: str,
    *,
    reducers: Reducers | str | None = None,
    upcasters: Upcasters | str | None = None,
    readonly: bool = True,
) -> EventStore:
    """Open ``path`` for the TUI; raises StoreError with a one-line message."""
    from pathlib import Path

    from workbench.locations import is_url

    if path != ":memory:" and not readonly and not is_url(path) and not Path(path).exists():
        # Read-write would silently create a new, empty store: say so instead.
        raise StoreError(f"no event store at {path}: the file does not exist")
    return EventStore(
        path,
        readonly=readonly,
        reducers=_resolve(reducers, Reducers),
        upcasters=_resolve(upcasters, Upcasters),
    )


def run(
    path: str,
    *,
    reducers: Reducers | str | None = None,
    upcasters: Upcasters | str | None = None,
    readonly: bool = True,
) -> int:
    """Run the TUI on the store at ``path`` until the user quits; return an exit code."""
    try:
        es = open_store(path, reducers=reducers, upcasters=upcasters, readonly=readonly)
    except StoreError as error:
        from workbench.safetext import one_line

        print(f"sss: error: {one_line(error)}", file=sys.stderr)
        return 1
    from .app import WorkbenchApp

    try:
        app = WorkbenchApp(es)
        app.run()
    finally:
        es.close()
    return app.return_code or 0

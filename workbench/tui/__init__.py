"""The workbench TUI (Textual): browse, filter, tail and replay an event store.

    >>> from workbench.tui import run
    >>> run("events.db")  # doctest: +SKIP

``run`` opens the store read-only by default, blocks until the user quits and
returns an exit code. A missing, locked, corrupt or non-store file is reported
as one line on stderr (exit code 1), never a traceback.
"""

from __future__ import annotations

import sys

from store import Reducers, StoreError, Upcasters

__all__ = ["run"]


def run(
    path: str,
    *,
    reducers: Reducers | str | None = None,
    upcasters: Upcasters | str | None = None,
    readonly: bool = True,
) -> int:
    """Run the TUI on the store at ``path`` until the user quits; return an exit code.

    ``reducers``/``upcasters`` are objects or ``module:attribute`` specs. Opened
    for writing, a missing file is an error rather than a new, empty store.
    """
    from workbench.inputs import open_store

    try:
        es = open_store(
            path, write=not readonly, create=False, reducers=reducers, upcasters=upcasters
        )
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

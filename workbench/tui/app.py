"""The workbench App: a store, its handles and the main screen; nothing more."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from textual.app import App
from textual.notifications import SeverityLevel

from store import EventStore
from workbench.safetext import shown

from .commands import WorkbenchCommands
from .handles import StoreHandles
from .main import MainScreen

__all__ = ["WorkbenchApp"]


class WorkbenchApp(App[int]):
    """Browse, filter, tail and replay an event store."""

    TITLE = "System State Store"
    COMMANDS = App.COMMANDS | {WorkbenchCommands}

    def __init__(self, store: EventStore, *, verify_on_start: bool = True) -> None:
        super().__init__()
        self.store = store
        self.handles = StoreHandles(store)
        self.main = MainScreen(self.handles, verify_on_start=verify_on_start)

    def on_load(self) -> None:
        # Thread workers run in the loop's default executor (os.cpu_count() + 4
        # threads): on a small machine the start-up work would fill it and a
        # key's page load would queue behind it. Threads that wait on a
        # database are cheap.
        asyncio.get_running_loop().set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="sss-worker")
        )

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification (the app's and its screens') may quote a name from
        the store, so each is shown safely here, once: control characters
        escaped, and never read as markup (a stored ``[@click=...]`` would
        otherwise become a link that runs an action). ``markup`` is accepted
        for the signature's sake and ignored."""
        super().notify(
            shown(message, multiline=True),
            title=shown(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def get_default_screen(self) -> MainScreen:
        return self.main

    def on_unmount(self) -> None:
        self.handles.close()

"""The command palette provider: every action of the screen below it, by name.

The provider knows no screen: a screen that offers commands has a
``palette_commands()`` method (:class:`CommandSource`), and the themes come
from the App every Textual app is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Protocol, runtime_checkable

from textual.command import DiscoveryHit, Hit, Hits, Provider

__all__ = ["Command", "CommandSource", "WorkbenchCommands"]

Command = tuple[str, str, Callable[[], object]]
"""(name, help, callback) as shown in the palette."""

HIDDEN = ("Open aggregate:", "Theme:", "Filter by type:")
"""Commands found by typing only: listing each would bury the actions."""


@runtime_checkable
class CommandSource(Protocol):
    def palette_commands(self) -> Iterator[Command]: ...

    def palette_fallback(self, query: str) -> Command | None: ...


class WorkbenchCommands(Provider):
    """The screen's actions, its aggregates and event types, and the themes."""

    def commands(self) -> Iterator[Command]:
        screen = self.screen
        if isinstance(screen, CommandSource):
            yield from screen.palette_commands()
        app = self.app
        for theme in sorted(app.available_themes):
            yield (f"Theme: {theme}", "Switch the colour theme", partial(_set_theme, app, theme))

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            if not name.startswith(HIDDEN):
                yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, text=name, help=help_text)
        screen = self.screen
        if isinstance(screen, CommandSource):
            fallback = screen.palette_fallback(query)
            if fallback is not None:
                name, help_text, callback = fallback
                yield Hit(0.01, name, callback, text=name, help=help_text)


def _set_theme(app: object, name: str) -> None:
    app.theme = name  # type: ignore[attr-defined]

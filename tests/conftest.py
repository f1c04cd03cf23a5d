"""Suite-wide settings: PostgreSQL tests run only where a server is named.

Tests marked ``postgres`` need ``SSS_TEST_POSTGRES_URL``. Without it they are
deselected (and the summary says so) rather than collected and skipped; with
it, a server that does not answer fails them.
"""

from __future__ import annotations

import os

import pytest

ENV = "SSS_TEST_POSTGRES_URL"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get(ENV):
        return
    keep = [item for item in items if item.get_closest_marker("postgres") is None]
    dropped = [item for item in items if item.get_closest_marker("postgres") is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not os.environ.get(ENV):
        terminalreporter.write_line(
            f"PostgreSQL tests not run: {ENV} is not set (see the README's PostgreSQL section)"
        )

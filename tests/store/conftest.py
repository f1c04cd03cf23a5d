"""The contract fixture: every test taking ``store`` or ``make_store`` runs
against each backend. A test that only one backend passes is a bug in the other.

PostgreSQL runs twice: ``postgres`` appends in one statement through the
server's function (:meth:`Backend.append_direct`), ``postgres-general``
through the general path every append inside ``transaction()`` takes. The
function restates the append rules on the server, so running the whole suite
through both holds the two equal.

``file-grouped`` and ``postgres-grouped`` send every append, even a lone
one, through group commit's path (one transaction, each batch in its own
savepoint: :mod:`store.grouping`), so the whole suite holds that path to
the same contract."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from store import EventStore

BACKENDS = ["memory", "file", "file-grouped"]
if os.environ.get("SSS_TEST_POSTGRES_URL"):
    BACKENDS += ["postgres", "postgres-general", "postgres-grouped"]


@pytest.fixture(params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    if str(request.param).startswith("postgres"):
        request.applymarker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def location(backend_name: str, tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """Where a fresh, empty store lives for this test."""
    if backend_name == "memory":
        yield ":memory:"
    elif backend_name.startswith("file"):
        yield str(tmp_path / "events.db")
    else:
        from tests.store.pg import fresh_postgres_url

        yield from fresh_postgres_url(request.node.name)


@pytest.fixture
def make_store(location: str, backend_name: str) -> Iterator[Callable[..., EventStore]]:
    """Open stores on this test's location (a second call opens the same store,
    except for :memory:, which is private to its connection)."""
    opened: list[EventStore] = []

    def make(**kwargs: Any) -> EventStore:
        es = EventStore(location, **kwargs)
        if backend_name == "postgres-general":
            es.backend.appends_direct = False
        if backend_name.endswith("-grouped") and es._grouper is not None:
            es._grouper.solo = False
        opened.append(es)
        return es

    yield make
    for es in opened:
        es.close()


@pytest.fixture
def store(make_store: Callable[..., EventStore]) -> EventStore:
    return make_store()


@pytest.fixture
def url(request: pytest.FixtureRequest) -> Iterator[str]:
    """For a test marked ``postgres``: the URL of a fresh schema, dropped after
    it (the test fails when ``SSS_TEST_POSTGRES_URL`` is not set)."""
    from tests.store.pg import ENV, fresh_postgres_url

    if not os.environ.get(ENV):
        pytest.fail(f"{ENV} is not set; tests marked postgres need it", pytrace=False)
    yield from fresh_postgres_url(request.node.name)

"""A PostgreSQL store whose meta table has no format_version row is read as
format 0: its upgrade writes the row, so the next open, read-only or not,
reads the format it now has (the SQLite twin is in test_sqlite_backend_edges)."""

from __future__ import annotations

from typing import Any

import pytest

from store import EventStore, NewEvent

from .test_erase_upgrade import V1_POSTGRES

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.filterwarnings("ignore:.*sessions older than the erasure:RuntimeWarning"),
]


def test_a_postgres_store_without_a_format_version_is_upgraded_and_says_so(
    request: Any,
) -> None:
    import psycopg

    from tests.store.pg import fresh_postgres_url

    for url in fresh_postgres_url(request.node.name):
        with EventStore(url) as es:
            es.append([NewEvent("Registered", {"email": "a@example.com"})], aggregate_id="p")
            es.append([NewEvent("Moved", {"city": "Oslo"})], aggregate_id="p")
        with psycopg.connect(url, autocommit=True) as raw:
            for statement in V1_POSTGRES[:-1]:
                raw.execute(statement)
            raw.execute("DROP TABLE sss_counts")
            raw.execute("DELETE FROM sss_meta WHERE key = 'format_version'")
            with EventStore(url, readonly=True) as es:
                assert [e.data for e in es.read()] == [{"email": "a@example.com"}, {"city": "Oslo"}]
            with EventStore(url) as es:
                assert es.counts().events == 2
                receipt = es.erase(positions=[1], reason="asked")
            row = raw.execute("SELECT value FROM sss_meta WHERE key = 'format_version'").fetchone()
            assert row == ("2",)
            with EventStore(url, readonly=True) as es:
                first, second, _ = es.read()
                assert (first.erased_by, second.erased_by) == (receipt.position, None)
                report = es.verify()
                assert report.ok and report.erased == 1, report

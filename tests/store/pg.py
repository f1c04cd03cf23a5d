"""PostgreSQL for tests: a fresh private schema per test, dropped afterwards.

``SSS_TEST_POSTGRES_URL`` names the server (e.g.
``postgresql://postgres@127.0.0.1:5432/test``). When it is set but the server
does not answer, the tests that need it fail; they never skip.
"""

from __future__ import annotations

import os
import re
import urllib.parse
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

ENV = "SSS_TEST_POSTGRES_URL"


def base_url() -> str:
    url = os.environ.get(ENV)
    if not url:
        raise RuntimeError(f"{ENV} is not set")
    return url


def with_schema(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to one schema (libpq ``options``)."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k != "options"]
    query.append(("options", f"-csearch_path={schema}"))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def admin() -> psycopg.Connection[tuple[object, ...]]:
    url = base_url()
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"{ENV} is set, but PostgreSQL at {url} does not answer: {e}", pytrace=False)


def schema_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", test_name.lower()).strip("_")[:40]
    return f"t_{slug}_{uuid.uuid4().hex[:8]}"


def drop_schema(schema: str) -> None:
    with admin() as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def fresh_postgres_url(test_name: str) -> Iterator[str]:
    """Yield a URL whose store lives in a new, empty schema; drop it afterwards."""
    schema = schema_name(test_name)
    with admin() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield with_schema(base_url(), schema)
    finally:
        drop_schema(schema)

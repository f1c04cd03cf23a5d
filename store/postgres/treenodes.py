"""The Merkle tree's stored subtree hashes on PostgreSQL (:mod:`store.tree`):
derived data in table ``sss_tree`` of the store's schema, created by the
first writer that needs it; a role that may not create it keeps the hashes
in memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import psycopg

from ..errors import StoreError

Conn = psycopg.Connection[tuple[Any, ...]]
T = TypeVar("T")
Run = Callable[[Callable[[Conn], Any]], Any]

TREE_SCHEMA = """CREATE TABLE IF NOT EXISTS sss_tree (
    level integer NOT NULL,
    idx bigint NOT NULL,
    hash text NOT NULL,
    PRIMARY KEY (level, idx)
)"""


def _present(conn: Conn) -> bool:
    return conn.execute("SELECT to_regclass('sss_tree') IS NOT NULL").fetchone() == (True,)


def nodes(run: Run, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
    def read(conn: Conn) -> dict[tuple[int, int], str]:
        if not keys or not _present(conn):
            return {}
        rows = conn.execute(
            "SELECT level, idx, hash FROM sss_tree t JOIN unnest(%s::int[], %s::bigint[]) "
            "AS k(l, i) ON t.level = k.l AND t.idx = k.i",
            ([k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
        return {(int(r[0]), int(r[1])): str(r[2]) for r in rows}

    found: dict[tuple[int, int], str] = run(read)
    return found


def filled(run: Run, level: int) -> int:
    def read(conn: Conn) -> int:
        if not _present(conn):
            return 0
        row = conn.execute("SELECT max(idx) FROM sss_tree WHERE level = %s", (level,)).fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    count: int = run(read)
    return count


def save(
    run: Run,
    write: Callable[[], AbstractContextManager[object]],
    readonly: bool,
    rows: Sequence[tuple[int, int, str]],
) -> bool:
    if readonly:
        return False

    def insert(conn: Conn) -> None:
        if not _present(conn):
            conn.execute(TREE_SCHEMA)
        conn.cursor().executemany(
            "INSERT INTO sss_tree VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", rows
        )

    try:
        with write():
            run(insert)
    except StoreError:
        return False  # no right to create or write it: kept in memory
    return True

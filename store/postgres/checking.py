"""The storage check of a PostgreSQL store (``verify(storage=...)``)."""

from __future__ import annotations

import psycopg
from psycopg import sql

from .schema import Conn

__all__ = ["amcheck"]


def amcheck(conn: Conn, full: bool) -> list[str]:
    """The store's b-tree indexes checked by the ``amcheck`` extension,
    when the database has it installed (``CREATE EXTENSION amcheck``);
    with ``full`` every table row is also looked up in each index
    (``heapallindexed``). Without amcheck there is nothing to run: the
    server's own page checksums (``initdb --data-checksums``) guard the
    pages, and this returns no problems."""
    found = conn.execute(
        "SELECT n.nspname FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'amcheck'"
    ).fetchone()
    if found is None:
        return []
    check = sql.SQL("SELECT {}.bt_index_check(%s::regclass, %s)").format(sql.Identifier(found[0]))
    indexes = conn.execute(
        "SELECT i.indexrelid::regclass::text FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid "
        "JOIN pg_am a ON a.oid = (SELECT relam FROM pg_class WHERE oid = i.indexrelid) "
        "WHERE c.relnamespace = current_schema()::regnamespace "
        "AND c.relname IN ('events', 'aggregates', 'snapshots') AND a.amname = 'btree' "
        "ORDER BY 1"
    ).fetchall()
    problems = []
    for (index,) in indexes:
        try:
            with conn.transaction():
                conn.execute(check, (index, full))
        except (psycopg.errors.IndexCorrupted, psycopg.errors.DataCorrupted) as e:
            problems.append(f"index {index}: {e.diag.message_primary or e}")
        except psycopg.errors.InsufficientPrivilege:
            return []  # this role may not run amcheck: nothing was checked
    return problems

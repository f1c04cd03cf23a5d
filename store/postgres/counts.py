"""The kept counts (store.counting) as PostgreSQL reads them."""

from __future__ import annotations

from ..codec import format_time
from ..counting import KeptCount
from .schema import COUNT_EVENTS, Conn, has_counts_table

__all__ = ["read_kept_counts"]


def read_kept_counts(conn: Conn) -> tuple[int, list[KeptCount]]:
    """The head and the counts as of it, in one statement (one snapshot)."""
    if has_counts_table(conn):
        source = (
            "SELECT type, aggregate_type, system, events, aggregates, "
            "first_occurred_at, last_occurred_at FROM sss_counts"
        )
    else:  # a format 1 store opened read-only: from the log itself
        source = COUNT_EVENTS
    rows = conn.execute(
        f"SELECT h.position, c.* FROM sss_head h LEFT JOIN ({source}) "
        "AS c(t, at, s, n, a, f, l) ON true"
    ).fetchall()
    head = int(rows[0][0]) if rows else 0
    return head, [
        (r[1], r[2], int(r[3]), int(r[4]), int(r[5]), format_time(r[6]), format_time(r[7]))
        for r in rows
        if r[1] is not None
    ]

"""bisect on a log with a hole, and the progress a search across a type
reports, whichever way it scans."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from store import EventStore, NewEvent


def test_bisect_on_an_aggregate_with_a_hole_names_the_stored_event(tmp_path: Path) -> None:
    """A row removed by hand (the triggers dropped first): the fast scan
    does not guess versions from the rows' order but folds what is there."""
    path = str(tmp_path / "s.db")
    with EventStore(path) as es:
        for n in range(1, 5):
            es.append([NewEvent("Set", {"n": n})], aggregate_id="a")
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER events_refuse_delete")
    conn.execute("DELETE FROM events WHERE position = 2")
    conn.commit()
    conn.close()
    with EventStore(path) as es:
        step = es.bisect("a", "/n == 3")
        assert step is not None
        assert (step.event.version, step.event.position) == (3, 3)
        assert step.before == {"n": 1} and step.after == {"n": 3}
        assert es.bisect("a", "/n == 2") is None


def test_a_search_across_a_type_reports_progress_per_page_either_way() -> None:
    """An expression (the fast scan of payload texts) and a callable (a fold
    of every event) report the same progress: after each page of 10 000
    events read, then the head."""
    with EventStore(":memory:") as es:
        for start in range(0, 10_001, 1_000):
            batch = [NewEvent("Set", {"n": n}) for n in range(start, min(start + 1_000, 10_001))]
            es.append(batch, aggregate_id="a", aggregate_type="T")
        head = 10_001

        def seen(where: Any) -> list[tuple[int, int]]:
            progress: list[tuple[int, int]] = []
            assert (
                list(es.bisect_type("T", where, progress=lambda p, h: progress.append((p, h))))
                == []
            )
            return progress

        assert seen("/n == -1") == [(10_000, head), (head, head)]
        assert seen(lambda state: False) == [(10_000, head), (head, head)]


def test_a_search_across_a_type_stops_at_the_head_it_started_from() -> None:
    """Events appended while the search runs (here past its first page of
    reads) are not searched: the answer is the log as of the first step."""
    with EventStore(":memory:") as es:
        es.append([NewEvent("Set", {"hit": True})], aggregate_id="first", aggregate_type="T")
        es.append([NewEvent("Set", {"n": n}) for n in range(999)], "a", "T")

        def search(where: Any, late: str) -> list[str]:
            found = es.bisect_type("T", where)
            names = [next(found).event.aggregate_id or ""]
            es.append([NewEvent("Set", {"hit": True})], aggregate_id=late, aggregate_type="T")
            return names + [step.event.aggregate_id or "" for step in found]

        assert search("/hit == true", "late-1") == ["first"]
        assert search(lambda state: state.get("hit") is True, "late-2") == ["first", "late-1"]
        assert [s.event.aggregate_id for s in es.bisect_type("T", "/hit == true")] == [
            "first",
            "late-1",
            "late-2",
        ]

"""Reports mark events recorded long after they occurred, and say what they cover."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from workbench.late import LATE_AFTER, late_note
from workbench.reports import write_report
from workbench.reports.twoclocks import BACK_DATED

PLACED = datetime(2024, 5, 30, 10, 0, tzinfo=UTC)
CORRECTED = datetime(2024, 6, 25, 13, 0, tzinfo=UTC)


@pytest.fixture
def corrected(tmp_path: Path) -> Path:
    """An order placed on time, and a correction recorded 26 days later, dated back."""
    now = iter([PLACED + timedelta(seconds=2), CORRECTED])
    path = tmp_path / "late.db"
    with EventStore(path, clock=lambda: next(now)) as es:
        es.append(
            [NewEvent("OrderPlaced", {"total": 30}, occurred_at=PLACED)],
            aggregate_id="order-1",
            aggregate_type="Order",
        )
        es.append(
            [NewEvent("OrderTotalCorrected", {"total": 27}, occurred_at=PLACED)],
            aggregate_id="order-1",
        )
    return path


def test_the_threshold_is_an_hour_and_exclusive() -> None:
    assert timedelta(hours=1) == LATE_AFTER
    assert late_note(PLACED, PLACED + LATE_AFTER) is None
    assert late_note(PLACED, PLACED + LATE_AFTER + timedelta(seconds=1)) is not None
    assert BACK_DATED == LATE_AFTER  # the reports mark what the TUI marks


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_a_back_dated_correction_is_marked_late(corrected: Path, tmp_path: Path, fmt: str) -> None:
    target = tmp_path / f"r.{fmt}"
    write_report(corrected, target, format=fmt)
    text = target.read_text(encoding="utf-8")
    note = "↶ back-dated 26 d 3 h"
    assert text.count(note) == 1  # the correction only, not the order placed on time
    row = next(line for line in text.splitlines() if note in line)  # a row is one line
    assert "OrderTotalCorrected" in row and "OrderPlaced" not in row


@pytest.mark.parametrize("fmt", ["html", "md"])
def test_an_aggregate_report_does_not_claim_every_event(
    corrected: Path, tmp_path: Path, fmt: str
) -> None:
    whole, one = tmp_path / f"all.{fmt}", tmp_path / f"one.{fmt}"
    write_report(corrected, whole, format=fmt)
    write_report(corrected, one, format=fmt, aggregate_id="order-1")
    assert "none (every event)" in whole.read_text(encoding="utf-8")
    text = one.read_text(encoding="utf-8")
    assert "every event" not in text and "order-1" in text

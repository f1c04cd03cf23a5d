"""`sss replay --occurred/--known-at` and `sss bisect`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from tests.workbench.test_cli_read import assert_one_line_error, run

BACKENDS = ["file"] + (["postgres"] if os.environ.get("SSS_TEST_POSTGRES_URL") else [])


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 3, 30, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=BACKENDS)
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store with a late correction: order-1 placed (total 100) on 30 March,
    shipped on 2 April, and corrected to 90 on 10 April, dated 30 March."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        from tests.store.pg import fresh_postgres_url

        urls = fresh_postgres_url(request.node.name)
        where = next(urls)
    else:
        urls, where = iter(()), str(tmp_path / "events.db")
    clock = Clock()
    with EventStore(where, clock=clock) as es:
        es.append(
            [NewEvent("Placed", {"total": 100, "status": "new"}, metadata={"actor": "ann"})],
            aggregate_id="order-1",
            aggregate_type="Order",
        )
        es.append(
            [NewEvent("Placed", {"total": 5})], aggregate_id="order-2", aggregate_type="Order"
        )
        clock.now = datetime(2024, 4, 2, tzinfo=UTC)
        es.append([NewEvent("Shipped", {"status": "shipped"})], aggregate_id="order-1")
        clock.now = datetime(2024, 4, 10, tzinfo=UTC)
        fix = NewEvent(
            "Corrected",
            {"total": 90},
            metadata={"actor": "bob"},
            occurred_at=datetime(2024, 3, 30, 12, tzinfo=UTC),
        )
        es.append([fix], aggregate_id="order-1")
        es.append([NewEvent("Refunded", {"total": -5})], aggregate_id="order-2")
    yield where
    for _ in urls:
        pass


def test_replay_with_two_clocks(capsys: pytest.CaptureFixture[str], location: str) -> None:
    code, out, _ = run(
        capsys, "replay", location, "order-1", "--occurred", "2024-03-31Z",
        "--known-at", "2024-04-01Z", "--state-only",
    )  # fmt: skip
    assert code == 0
    assert json.loads(out) == {"total": 100, "status": "new"}
    code, out, _ = run(capsys, "replay", location, "order-1", "--occurred", "2024-03-31Z")
    assert code == 0
    got = json.loads(out)
    assert got["state"] == {"total": 90, "status": "new"}
    assert got["version"] == 3
    code, _, err = run(capsys, "replay", location, "order-1", "--occurred", "-2h", "--version", "1")
    assert_one_line_error(code, err, "--version does not go with --occurred")
    code, _, err = run(capsys, "replay", location, "order-1", "--known-at", "2024-04-01")
    assert_one_line_error(code, err, "--known-at", "no timezone")


def test_bisect_one_aggregate_and_a_type(capsys: pytest.CaptureFixture[str], location: str) -> None:
    code, out, _ = run(capsys, "bisect", location, "order-1", "--where", "/total < 100", "--json")
    assert code == 0
    record = json.loads(out)
    assert (record["version"], record["position"], record["actor"]) == (3, 4, "bob")
    assert record["changes"] == [{"path": "/total", "old": 100, "new": 90}]
    assert record["occurred_at"].startswith("2024-03-30T12:00")
    code, out, _ = run(capsys, "bisect", location, "--aggregate-type", "Order", "--where",
                       '/total < 10 or /status == "shipped"')  # fmt: skip
    assert code == 0
    lines = [line for line in out.splitlines() if not line.startswith(" ")]
    assert lines[0].startswith("order-2  v1  #2  Placed")
    assert lines[1].startswith("order-1  v2  #3  Shipped")
    assert "occurred 2024-04-02" in lines[1]
    code, out, err = run(capsys, "bisect", location, "order-1", "--where", "/refund exists")
    assert (code, out) == (1, "")
    assert "no version of order-1 satisfies /refund exists" in err


def test_bisect_errors(capsys: pytest.CaptureFixture[str], location: str) -> None:
    code, _, err = run(capsys, "bisect", location, "order-1", "--where", "/total <")
    assert_one_line_error(code, err, "column 9", "JSON value")
    code, _, err = run(capsys, "bisect", location, "--where", "/a exists")
    assert_one_line_error(code, err, "AGGREGATE or --aggregate-type")
    code, _, err = run(capsys, "bisect", location, "nope", "--where", "/a exists")
    assert_one_line_error(code, err, "no aggregate 'nope'")


def test_help_texts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "bisect", "--help")
    assert code == 0
    assert "exists, missing" in out and "column" in out
    code, out, _ = run(capsys, "replay", "--help")
    assert code == 0
    assert "--occurred TIME" in out and "--known-at TIME" in out

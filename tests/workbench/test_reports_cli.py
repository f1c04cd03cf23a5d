"""``sss report``: the same reports from the command line, errors as one line."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from workbench.cli import main


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with EventStore(path) as es:
        for n in range(1, 4):
            es.append(
                [NewEvent("OrderPlaced", {"total": n * 10}, metadata={"actor": "alice"})],
                aggregate_id=f"order-{n}",
                aggregate_type="Order",
            )
        es.append([NewEvent("OrderPaid", {"paid": True}, metadata={"actor": "bob"})], "order-1")
        es.append([NewEvent("Deployed", {"service": "api"})])
    return path


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_aggregate_report(shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "order-1.jsonl"
    assert main(["report", str(shop), "--aggregate", "order-1", "-o", str(out)]) == 0
    lines = _lines(out)
    assert lines[0]["scope"]["aggregate_id"] == "order-1"  # type: ignore[index]
    assert [line["version"] for line in lines[1:]] == [1, 2]
    assert lines[2]["changes"] == [{"path": "/paid", "old": None, "new": True}]
    said = capsys.readouterr().out
    assert "wrote jsonl report of 2 events" in said and "integrity: OK" in said


def test_filters_match_the_other_commands(shop: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    argv = ["report", str(shop), "--aggregate-type", "Order", "--type", "OrderPlaced"]
    argv += ["--type", "OrderPaid", "--since", "-1d", "--until", "now", "--from-position", "2"]
    assert main([*argv, "--limit", "2", "--format", "csv", "-o", str(out)]) == 0
    rows = [line for line in out.read_text().splitlines() if not line.startswith("#")]
    assert [row.split(",")[0] for row in rows[1:]] == ["2", "3"]
    head = out.read_text()
    assert '# scope.filters: {"from_position":2,"aggregate_type":"Order"' in head
    html = tmp_path / "r.html"
    assert main(["report", str(shop), "--backwards", "--limit", "1", "-o", str(html)]) == 0
    assert "positions 5 to 5 (1 event)" in html.read_text()


@pytest.mark.parametrize("fmt", ["html", "md", "parquet"])
def test_every_format_is_written(shop: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "report.out"
    assert main(["report", str(shop), "--format", fmt, "-o", str(out), "--title", "Q3"]) == 0
    data = out.read_bytes()
    assert data.startswith(b"PAR1") if fmt == "parquet" else b"Q3" in data


def test_errors_are_one_line(
    shop: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = [
        (["report", str(shop), "-o", str(tmp_path / "r.txt")], 2, "add --format"),
        (["report", str(tmp_path / "missing.db"), "-o", str(tmp_path / "r.md")], 1, "missing.db"),
        (["report", str(shop), "--aggregate", "nope", "-o", str(tmp_path / "r.md")], 1, "nope"),
        (["report", str(shop), "--since", "2024-01-01", "-o", str(tmp_path / "r.md")], 1, "zone"),
        (["report", str(shop), "--format", "html", "-o", str(tmp_path)], 1, "directory"),
        (["report", str(shop)], 2, "-o"),
    ]
    for argv, code, words in cases:
        assert main(argv) == code, argv
        err = capsys.readouterr().err
        assert err.startswith("sss: error:") and err.count("\n") == 1, err
        assert words in err and "Traceback" not in err
    assert not (tmp_path / "r.md").exists()


def test_a_failed_verification_exits_non_zero(shop: Path, tmp_path: Path) -> None:
    conn = sqlite3.connect(shop)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("UPDATE events SET type = 'OrderCancelled' WHERE position = 3")
    conn.commit()
    conn.close()
    out = tmp_path / "r.md"
    assert main(["report", str(shop), "-o", str(out)]) == 1
    assert "**Integrity: FAILED.**" in out.read_text()
    assert main(["report", str(shop), "--no-verify", "-o", str(out)]) == 0
    assert "NOT VERIFIED" in out.read_text()

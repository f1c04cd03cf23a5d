"""`sss events`, `export`, `replay`, `verify` and `stats` on a small known store."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest

from store import NO_STREAM, EventStore, NewEvent
from workbench.cli import main


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert err.startswith("sss: error: "), err
    assert err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    """order-1 (3 versions), cust-1 (1 version) and one system event: positions 1-5."""
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        order = {"aggregate_id": "order-1", "aggregate_type": "Order"}
        es.append(
            [NewEvent("OrderPlaced", {"total": 30, "ship_to": {"city": "Lyon", "zip": "69001"}},
                      metadata={"actor": "alice", "correlation_id": "c-1"})],
            **order, expected_version=NO_STREAM,
        )  # fmt: skip
        es.append(
            [NewEvent("CustomerRegistered", {"name": "Ada"}, metadata={"actor": "svc:crm"})],
            aggregate_id="cust-1",
            aggregate_type="Customer",
        )
        es.append(
            [NewEvent("CouponApplied", {"total": 27, "coupon": "SPRING10"},
                      metadata={"actor": "bob"})],
            **order, expected_version=1,
        )  # fmt: skip
        es.append([NewEvent("BackupCompleted", {"size_mb": 3})])
        es.append(
            [NewEvent("OrderShipped", {"coupon": None, "ship_to": {"zip": "69002"}})],
            **order, expected_version=2,
        )  # fmt: skip
    return path


# ---------------------------------------------------------------------------
# events


def test_events_prints_a_table(capsys, store_path: Path) -> None:
    code, out, err = run(capsys, "events", store_path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["POSITION", "RECORDED_AT", "(UTC)", "AGGREGATE", "VERSION", "TYPE",
                                "ACTOR"]  # fmt: skip
    assert len(lines) == 6
    first = lines[1].split()
    assert first[0] == "1" and first[3:] == ["order-1", "1", "OrderPlaced", "alice"]
    assert lines[4].split()[3:] == ["-", "-", "BackupCompleted", "-"]


def test_events_json_is_the_export_format(capsys, store_path: Path) -> None:
    code, out, _ = run(capsys, "events", store_path, "--json", "--limit", "2")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["position"] for r in records] == [1, 2]
    assert set(records[0]) == {
        "position", "event_id", "aggregate_id", "aggregate_type", "version", "type",
        "schema_version", "data", "metadata", "occurred_at", "recorded_at", "hash",
    }  # fmt: skip


def positions(out: str) -> list[int]:
    return [json.loads(line)["position"] for line in out.splitlines()]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], [1, 2, 3, 4, 5]),
        (["--backwards"], [5, 4, 3, 2, 1]),
        (["--backwards", "--limit", "2"], [5, 4]),
        (["--from-position", "3"], [3, 4, 5]),
        (["--from-position", "3", "--backwards"], [3, 2, 1]),
        (["--aggregate", "order-1"], [1, 3, 5]),
        (["--aggregate-type", "Customer"], [2]),
        (["--type", "OrderPlaced", "--type", "BackupCompleted"], [1, 4]),
        (["--type", "Nothing"], []),
        (["--since", "-1h"], [1, 2, 3, 4, 5]),
        (["--since", "2999-01-01T00:00:00Z"], []),
        (["--until", "2000-01-01T00:00:00+02:00"], []),
        (["--until", "now", "--aggregate", "order-1", "--limit", "1"], [1]),
    ],
)
def test_events_filters(capsys, store_path: Path, filters: list[str], expected: list[int]) -> None:
    code, out, _ = run(capsys, "events", store_path, "--json", *filters)
    assert code == 0
    assert positions(out) == expected


def test_events_rejects_naive_times_and_bad_numbers(capsys, store_path: Path) -> None:
    code, _, err = run(capsys, "events", store_path, "--since", "2024-01-01T00:00:00")
    assert_one_line_error(code, err, "--since", "has no timezone")
    code, _, err = run(capsys, "events", store_path, "--until", "2024-01-01")
    assert_one_line_error(code, err, "--until", "has no timezone")
    code, _, err = run(capsys, "events", store_path, "--limit", "-3")
    assert_one_line_error(code, err, "--limit")
    assert code == 2
    code, _, err = run(capsys, "events", store_path, "--since", "-1h", "--until", "-2h")
    assert_one_line_error(code, err, "is after --until")


# ---------------------------------------------------------------------------
# export


def test_export_jsonl_to_stdout_with_filters(capsys, store_path: Path) -> None:
    code, out, _ = run(capsys, "export", store_path, "--aggregate", "order-1", "--type",
                       "OrderShipped")  # fmt: skip
    assert code == 0
    [record] = [json.loads(line) for line in out.splitlines()]
    assert record["position"] == 5 and record["data"] == {
        "coupon": None,
        "ship_to": {"zip": "69002"},
    }


def test_export_csv_to_a_file(capsys, store_path: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    code, out, _ = run(capsys, "export", store_path, "--format", "csv", "-o", target)
    assert code == 0 and out.strip() == f"exported 5 events to {target}"
    rows = list(csv.DictReader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert [row["position"] for row in rows] == ["1", "2", "3", "4", "5"]
    assert json.loads(rows[0]["data"]) == {"total": 30, "ship_to": {"city": "Lyon", "zip": "69001"}}
    assert json.loads(rows[1]["metadata"]) == {"actor": "svc:crm"}
    assert rows[3]["aggregate_id"] == "" and rows[3]["version"] == ""
    assert rows[0]["recorded_at"].endswith("+00:00")
    assert list(rows[0]) == ["position", "event_id", "aggregate_id", "aggregate_type", "version",
                             "type", "schema_version", "data", "metadata", "occurred_at",
                             "recorded_at", "hash"]  # fmt: skip


def test_export_failures_leave_no_file(capsys, store_path: Path, tmp_path: Path) -> None:
    code, _, err = run(capsys, "export", store_path, "-o", tmp_path / "nowhere" / "out.jsonl")
    assert_one_line_error(code, err, "nowhere")
    target = tmp_path / "out.jsonl"
    code, _, err = run(capsys, "export", store_path, "--since", "2024-01-01", "-o", target)
    assert_one_line_error(code, err, "has no timezone")
    assert not target.exists() and not list(tmp_path.glob(".sss-export-*"))
    code, _, err = run(capsys, "export", store_path, "--format", "xml")
    assert_one_line_error(code, err, "invalid choice: 'xml'")


# ---------------------------------------------------------------------------
# replay


def test_replay_prints_the_latest_state_in_a_wrapper(capsys, store_path: Path) -> None:
    code, out, err = run(capsys, "replay", store_path, "order-1")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result["aggregate_id"] == "order-1" and result["aggregate_type"] == "Order"
    assert (result["version"], result["position"]) == (3, 5)
    assert result["state"] == {"total": 27, "ship_to": {"city": "Lyon", "zip": "69002"}}
    code, out, _ = run(capsys, "replay", store_path, "order-1", "--state-only")
    assert json.loads(out) == result["state"]


@pytest.mark.parametrize(
    ("point", "version", "state"),
    [
        (["--version", "1"], 1, {"total": 30, "ship_to": {"city": "Lyon", "zip": "69001"}}),
        (["--position", "4"], 2,
         {"total": 27, "coupon": "SPRING10", "ship_to": {"city": "Lyon", "zip": "69001"}}),
        (["--at", "2000-01-01T00:00:00Z"], 0, {}),
        (["--at", "now"], 3, {"total": 27, "ship_to": {"city": "Lyon", "zip": "69002"}}),
        (["--version", "0"], 0, {}),
    ],
)  # fmt: skip
def test_replay_as_of_a_point(
    capsys, store_path: Path, point: list[str], version: int, state: dict[str, object]
) -> None:
    code, out, _ = run(capsys, "replay", store_path, "order-1", *point)
    assert code == 0
    result = json.loads(out)
    assert (result["version"], result["state"]) == (version, state)


def test_replay_history_shows_each_change(capsys, store_path: Path) -> None:
    code, out, _ = run(capsys, "replay", store_path, "order-1", "--history")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("v1  #1  ") and lines[0].endswith("OrderPlaced  by alice")
    assert "  + /total: 30" in lines
    assert "  ~ /total: 30 -> 27" in lines
    assert '  + /coupon: "SPRING10"' in lines
    assert '  - /coupon: "SPRING10"' in lines
    assert '  ~ /ship_to/zip: "69001" -> "69002"' in lines
    code, out, _ = run(capsys, "replay", store_path, "order-1", "--history", "--json",
                       "--version", "2")  # fmt: skip
    steps = [json.loads(line) for line in out.splitlines()]
    assert [s["version"] for s in steps] == [1, 2]
    assert {"path": "/total", "old": 30, "new": 27} in steps[1]["changes"]
    assert steps[1]["actor"] == "bob" and steps[1]["type"] == "CouponApplied"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["nobody"], "no aggregate 'nobody'"),
        (["order-1", "--version", "9"], "--version 9 is beyond"),
        (["order-1", "--version", "-1"], "must not be negative"),
        (["order-1", "--at", "2024-01-01T00:00"], "has no timezone"),
        (["order-1", "--version", "1", "--position", "2"], "not allowed with argument"),
        (["order-1", "--json"], "--json goes with --history"),
        (["order-1", "--reducers", "no_such_module_xyz:reducers"], "no_such_module_xyz"),
        (["order-1", "--reducers", "just-a-name"], "module:attribute"),
    ],
)
def test_replay_errors_are_one_line(
    capsys, store_path: Path, args: list[str], fragment: str
) -> None:
    code, out, err = run(capsys, "replay", store_path, *args)
    assert_one_line_error(code, err, fragment)
    assert out == ""


def test_replay_with_user_reducers(capsys, monkeypatch, store_path: Path, tmp_path: Path) -> None:
    module = tmp_path / "shop_reducers.py"
    module.write_text(
        textwrap.dedent(
            """
            from store import Reducers

            reducers = Reducers()

            @reducers.on("Order", None)
            def count(state, event):
                return {**state, "events": state.get("events", 0) + 1, "last": event.type}

            not_reducers = 42
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    code, out, err = run(capsys, "replay", store_path, "order-1", "--reducers",
                         "shop_reducers:reducers")  # fmt: skip
    assert (code, err) == (0, "")
    assert json.loads(out)["state"] == {"events": 3, "last": "OrderShipped"}
    code, _, err = run(capsys, "replay", store_path, "order-1", "--reducers",
                       "shop_reducers:not_reducers")  # fmt: skip
    assert_one_line_error(code, err, "reducers must be a store.Reducers")
    code, _, err = run(capsys, "replay", store_path, "order-1", "--reducers",
                       "shop_reducers:missing")  # fmt: skip
    assert_one_line_error(code, err, "no attribute 'missing'")


# ---------------------------------------------------------------------------
# verify and stats


def test_verify_ok(capsys, store_path: Path) -> None:
    code, out, err = run(capsys, "verify", store_path)
    assert (code, err) == (0, "")
    with EventStore(str(store_path), readonly=True) as es:
        head_hash = es.get(5).hash
        root = es.checkpoint().root
    assert out.splitlines() == [
        f"ok: 5 events checked; head position 5, hash {head_hash}",
        f"merkle tree: size 5, root {root}",
    ]
    code, out, _ = run(capsys, "verify", store_path, "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["checked"] == 5
    assert (json.loads(out)["size"], json.loads(out)["root"]) == (5, root)


def tamper(path: Path, position: int) -> None:
    """Rewrite one payload behind the store's back, as an attacker with sqlite3 could."""
    conn = sqlite3.connect(path)
    try:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("UPDATE events SET data = ? WHERE position = ?", ('{"total": 1}', position))
        conn.commit()
    finally:
        conn.close()


def test_verify_names_the_first_bad_position(capsys, store_path: Path) -> None:
    tamper(store_path, 3)
    code, out, err = run(capsys, "verify", store_path)
    assert code == 1 and out == ""
    assert_one_line_error(code, err, "hash chain broken at position 3", "(2 events checked)")
    code, out, _ = run(capsys, "verify", store_path, "--json")
    report = json.loads(out)
    assert code == 1 and report["ok"] is False and report["first_bad_position"] == 3


def test_stats(capsys, store_path: Path) -> None:
    code, out, err = run(capsys, "stats", store_path, "--json")
    assert (code, err) == (0, "")
    stats = json.loads(out)
    assert stats["head_position"] == stats["events"] == 5
    assert stats["event_types"] == {
        "BackupCompleted": 1,
        "CouponApplied": 1,
        "CustomerRegistered": 1,
        "OrderPlaced": 1,
        "OrderShipped": 1,
    }
    assert stats["aggregate_types"] == {"Customer": 1, "Order": 1}
    assert stats["aggregates"] == 2 and stats["system_events"] == 1
    assert stats["file_size"] > 0
    assert stats["first_recorded_at"] <= stats["last_recorded_at"]
    code, out, _ = run(capsys, "stats", store_path)
    assert code == 0
    assert "head          position 5" in out
    assert "event types: 5" in out and "OrderPlaced" in out


def test_stats_of_an_empty_store(capsys, tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    EventStore(str(path)).close()
    code, out, _ = run(capsys, "stats", path, "--json")
    assert code == 0 and json.loads(out)["events"] == 0


@pytest.mark.parametrize(
    "command",
    [["events"], ["export"], ["replay", "PATH_ONLY", "order-1"], ["verify"], ["stats"]],
)
def test_reading_a_missing_or_foreign_file_is_one_line(
    capsys, tmp_path: Path, command: list[str]
) -> None:
    name, *rest = command
    rest = [arg for arg in rest if arg != "PATH_ONLY"]
    missing = tmp_path / "missing.db"
    code, _, err = run(capsys, name, missing, *rest)
    assert_one_line_error(code, err, "missing.db")
    assert not missing.exists()
    foreign = tmp_path / "photo.jpg"
    foreign.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 4096)
    code, _, err = run(capsys, name, foreign, *rest)
    assert_one_line_error(code, err, "photo.jpg")
    code, _, err = run(capsys, name, tmp_path, *rest)
    assert_one_line_error(code, err, "directory")

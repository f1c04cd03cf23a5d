"""`sss append` and `sss import`: what gets stored, and that bad input stores nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from store import NO_STREAM, EventStore, NewEvent
from workbench.cli import main

EVENT_ID = "0b3c3c1e-5a43-4a53-9a4b-2d1f6e2a1c11"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert err.startswith("sss: error: "), err
    assert err.count("\n") == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def contents(path: Path) -> list[tuple[int, str, str]] | None:
    """What is stored, or None when there is no file."""
    if not path.exists():
        return None
    with EventStore(str(path), readonly=True) as es:
        return [(event.position, event.event_id, event.hash) for event in es.read()]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        es.append(
            [NewEvent("OrderPlaced", {"total": 30}, metadata={"actor": "alice"})],
            aggregate_id="order-1",
            aggregate_type="Order",
            expected_version=NO_STREAM,
        )
    return path


def write_lines(path: Path, records: list[object]) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
        encoding="utf-8",
    )
    return path


# ---------------------------------------------------------------------------
# append


def test_append_prints_the_recorded_event(capsys, store_path: Path) -> None:
    code, out, err = run(
        capsys, "append", store_path, "--type", "OrderPaid", "--data", '{"paid": true}',
        "--aggregate", "order-1", "--expected-version", "1",
        "--metadata", '{"actor": "bob", "correlation_id": "c-9"}',
        "--occurred-at", "2024-03-01T10:00:00+01:00",
    )  # fmt: skip
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "OrderPaid"
    assert event["data"] == {"paid": True}
    assert event["metadata"] == {"actor": "bob", "correlation_id": "c-9"}
    assert (event["aggregate_id"], event["aggregate_type"], event["version"]) == (
        "order-1",
        "Order",
        2,
    )
    assert event["position"] == 2
    assert event["occurred_at"].startswith("2024-03-01T09:00:00")
    assert set(event) >= {"event_id", "recorded_at", "hash", "schema_version"}
    with EventStore(str(store_path), readonly=True) as es:
        assert es.state_at("order-1").state == {"total": 30, "paid": True}


def test_append_creates_a_store_and_system_events(capsys, tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    code, out, _ = run(capsys, "append", path, "--type", "SystemStarted")
    assert code == 0
    event = json.loads(out)
    assert event["aggregate_id"] is None and event["version"] is None and event["data"] == {}
    assert contents(path) is not None and len(contents(path) or []) == 1


def test_append_with_an_event_id_is_an_idempotent_retry(capsys, store_path: Path) -> None:
    args = ("append", store_path, "--type", "Noted", "--aggregate", "n-1", "--event-id", EVENT_ID)
    first = run(capsys, *args, "--data", '{"n": 1}')
    again = run(capsys, *args, "--data", '{"n": 1}')
    assert first[0] == again[0] == 0
    assert json.loads(first[1]) == json.loads(again[1])
    assert len(contents(store_path) or []) == 2
    code, _, err = run(capsys, *args, "--data", '{"n": 2}')
    assert_one_line_error(code, err, EVENT_ID)
    assert len(contents(store_path) or []) == 2


def test_append_reads_data_from_a_file_and_stdin(capsys, monkeypatch, store_path: Path) -> None:
    payload = store_path.parent / "payload.json"
    payload.write_text('{"from": "file"}', encoding="utf-8")
    code, out, _ = run(capsys, "append", store_path, "--type", "A", "--data", f"@{payload}")
    assert code == 0 and json.loads(out)["data"] == {"from": "file"}
    monkeypatch.setattr("sys.stdin", io.StringIO('{"from": "stdin"}'))
    code, out, _ = run(capsys, "append", store_path, "--type", "B", "--data", "-")
    assert code == 0 and json.loads(out)["data"] == {"from": "stdin"}


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--data", "{not json"], "--data is not valid JSON"),
        (["--data", "[1, 2]"], "must be a JSON object"),
        (["--metadata", '"actor"'], "--metadata must be a JSON object"),
        (["--aggregate", "order-1", "--expected-version", "0"], "expected version 0 of order-1"),
        (["--aggregate", "order-1", "--expected-version", "no-stream"], "order-1 but it is at 1"),
        (["--aggregate", "order-1", "--expected-version", "soon"], "'soon' is not a version"),
        (["--expected-version", "1"], "--expected-version needs --aggregate"),
        (["--occurred-at", "2024-03-01T10:00:00"], "has no timezone"),
        (["--occurred-at", "yesterday"], "is not a time"),
        (["--event-id", "not-a-uuid"], "is not a UUID"),
        (["--aggregate", "order-1", "--aggregate-type", "Customer"], "'Order', not 'Customer'"),
        (["--data", "@/no/such/file.json"], "No such file"),
    ],
)
def test_append_rejects_bad_input_and_stores_nothing(
    capsys, store_path: Path, extra: list[str], fragment: str
) -> None:
    before = contents(store_path)
    code, out, err = run(capsys, "append", store_path, "--type", "OrderPaid", *extra)
    assert_one_line_error(code, err, fragment)
    assert out == ""
    assert contents(store_path) == before


def test_append_to_a_non_store_file_is_one_line(capsys, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("shopping list\n" * 100, encoding="utf-8")
    code, _, err = run(capsys, "append", path, "--type", "A")
    assert_one_line_error(code, err, "notes.txt")
    assert path.read_text(encoding="utf-8") == "shopping list\n" * 100


# ---------------------------------------------------------------------------
# import

GOOD = [
    {"type": "CustomerRegistered", "data": {"name": "Ada"}, "aggregate_id": "cust-1",
     "aggregate_type": "Customer", "metadata": {"actor": "svc:crm"}},
    {"type": "OrderPaid", "data": {"paid": True}, "aggregate_id": "order-1",
     "expected_version": 1},
    {"type": "OrderShipped", "data": {"status": "shipped"}, "aggregate_id": "order-1",
     "occurred_at": "2024-02-01T08:00:00Z"},
    {"type": "BackupCompleted", "data": {"size_mb": 3}},
    {"type": "CustomerEmailChanged", "data": {"email": "ada@example.com"},
     "aggregate_id": "cust-1", "event_id": EVENT_ID, "schema_version": 2},
]  # fmt: skip


def test_import_stores_every_line_in_order(capsys, store_path: Path, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [GOOD[0], GOOD[1], "", *GOOD[2:]])
    code, out, err = run(capsys, "import", store_path, source)
    assert (code, err) == (0, "")
    assert out.strip() == f"imported 5 events into {store_path} (positions 2-6)"
    with EventStore(str(store_path), readonly=True) as es:
        events = list(es.read(from_position=2))
        assert [e.type for e in events] == [r["type"] for r in GOOD]
        assert [e.version for e in events] == [1, 2, 3, None, 2]
        assert events[2].occurred_at.isoformat() == "2024-02-01T08:00:00+00:00"
        assert events[4].event_id == EVENT_ID and events[4].schema_version == 2
        assert events[0].metadata == {"actor": "svc:crm"}
        assert es.state_at("order-1").state == {"total": 30, "paid": True, "status": "shipped"}


def test_import_again_skips_what_is_stored(capsys, store_path: Path, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [GOOD[4]])
    assert run(capsys, "import", store_path, source)[0] == 0
    code, out, _ = run(capsys, "import", store_path, source)
    assert code == 0
    assert "imported 0 events" in out and "1 already stored" in out
    assert len(contents(store_path) or []) == 2


def test_import_reads_stdin(capsys, monkeypatch, store_path: Path) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(GOOD[3]) + "\n"))
    code, out, _ = run(capsys, "import", store_path, "-")
    assert code == 0 and "imported 1 event into" in out and "(position " in out


def test_export_then_import_reproduces_the_log(capsys, store_path: Path, tmp_path: Path) -> None:
    run(capsys, "import", store_path, write_lines(tmp_path / "in.jsonl", GOOD))
    exported = tmp_path / "out.jsonl"
    assert run(capsys, "export", store_path, "-o", exported)[0] == 0
    copy = tmp_path / "copy.db"
    code, out, _ = run(capsys, "import", copy, exported)
    assert code == 0 and "imported 6 events" in out

    def essence(path: Path) -> list[tuple[object, ...]]:
        with EventStore(str(path), readonly=True) as es:
            return [
                (e.event_id, e.aggregate_id, e.aggregate_type, e.version, e.type, e.data,
                 e.metadata, e.occurred_at)
                for e in es.read()
            ]  # fmt: skip

    assert essence(copy) == essence(store_path)


BAD_LINES = [
    ("{not json", 2, "not valid JSON"),
    ('{"type": "A", "data":', 2, "not valid JSON: Expecting value at column 22"),
    ('["OrderPlaced"]', 2, "expected a JSON object"),
    ({"data": {"x": 1}}, 2, 'missing "type"'),
    ({"type": ""}, 2, '"type" must be a non-empty string'),
    ({"type": "A", "data": [1]}, 2, '"data" must be a JSON object'),
    ({"type": "A", "data": "text"}, 2, '"data" must be a JSON object'),
    ({"type": "A", "metadata": 3}, 2, '"metadata" must be a JSON object'),
    ({"type": "A", "occurred_at": "2024-01-01T10:00:00"}, 2, "has no timezone"),
    ({"type": "A", "occurred_at": "last tuesday"}, 2, "is not a time"),
    ({"type": "A", "agregate_id": "x"}, 2, "unknown field 'agregate_id'"),
    ({"type": "A", "event_id": "nope"}, 2, "is not a UUID"),
    ({"type": "A", "aggregate_type": "Order"}, 2, '"aggregate_type" given without'),
    ({"type": "A", "aggregate_id": "order-1", "expected_version": 0}, 2, "expected version 0"),
    ({"type": "A", "aggregate_id": "order-1", "expected_version": "later"}, 2, "'later'"),
    ({"type": "A", "aggregate_id": "order-1", "aggregate_type": "Customer"}, 2, "type 'Order'"),
    ({"type": "A", "schema_version": 0}, 2, '"schema_version"'),
]


@pytest.mark.parametrize(("bad", "line", "fragment"), BAD_LINES)
def test_import_reports_the_bad_line_and_stores_nothing(
    capsys, store_path: Path, tmp_path: Path, bad: object, line: int, fragment: str
) -> None:
    # Good lines for other aggregates around the bad one: the import is one transaction.
    source = write_lines(tmp_path / "in.jsonl", [GOOD[0], bad, GOOD[3]])
    before = contents(store_path)
    code, out, err = run(capsys, "import", store_path, source)
    assert_one_line_error(code, err, f"line {line}", fragment, "nothing was imported")
    assert out == ""
    assert contents(store_path) == before


def test_import_failing_on_the_last_line_keeps_nothing(
    capsys, store_path: Path, tmp_path: Path
) -> None:
    stale = {"type": "OrderPaid", "aggregate_id": "order-1", "expected_version": 1}
    source = write_lines(tmp_path / "in.jsonl", [*GOOD[:1], *GOOD[3:], stale, stale | {}])
    before = contents(store_path)
    code, _, err = run(capsys, "import", store_path, source)
    # The first stale line passes (order-1 is at 1); the second finds it at 2.
    assert_one_line_error(code, err, "line 5", "expected version 1 of order-1 but it is at 2")
    assert contents(store_path) == before


def test_import_rejects_an_event_id_used_twice(capsys, store_path: Path, tmp_path: Path) -> None:
    record = {"type": "A", "event_id": EVENT_ID}
    source = write_lines(tmp_path / "in.jsonl", [record, GOOD[3], record])
    code, _, err = run(capsys, "import", store_path, source)
    assert_one_line_error(code, err, "line 3", "already on line 1")


def test_failed_import_into_a_new_path_leaves_no_file(capsys, tmp_path: Path) -> None:
    source = write_lines(tmp_path / "in.jsonl", [GOOD[3], "{broken"])
    target = tmp_path / "new.db"
    code, _, err = run(capsys, "import", target, source)
    assert_one_line_error(code, err, "line 2")
    assert not target.exists()
    assert not list(tmp_path.glob("new.db*"))


def test_import_of_a_missing_or_binary_file_is_one_line(capsys, store_path: Path) -> None:
    code, _, err = run(capsys, "import", store_path, store_path.parent / "missing.jsonl")
    assert_one_line_error(code, err, "missing.jsonl", "No such file")
    binary = store_path.parent / "blob.jsonl"
    binary.write_bytes(b'{"type": "A"}\n\xff\xfe\x00garbage\n')
    code, _, err = run(capsys, "import", store_path, binary)
    assert_one_line_error(code, err, "line 2", "not UTF-8")
    assert len(contents(store_path) or []) == 1

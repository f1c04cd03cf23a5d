"""`sss import` run again, extended, or refused: every line once, and the one bad line named."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from workbench.cli import main
from workbench.cli.write import IMPORT_NAMESPACE


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def write(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def stored(path: Path) -> list[tuple[int, str, str, int | None]]:
    with EventStore(str(path), readonly=True) as es:
        assert es.verify().ok
        return [(e.position, e.event_id, e.type, e.version) for e in es.read()]


LINES: list[dict[str, object]] = [
    {"type": "Incremented", "aggregate_id": "c-1", "aggregate_type": "Counter"},
    {"type": "Incremented", "aggregate_id": "c-1", "aggregate_type": "Counter"},
    {"type": "Reset", "aggregate_id": "c-1", "data": {"to": 0}},
    {"type": "Ping"},
    {"type": "Ping"},
]


def test_rerunning_a_file_without_event_ids_is_a_no_op(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store, source = tmp_path / "s.db", write(tmp_path / "in.jsonl", LINES)
    code, out, _ = run(capsys, "import", store, source)
    assert code == 0 and "imported 5 events" in out
    first = stored(store)
    # Identical lines are distinct events: each counts its occurrence in the file.
    assert len({event_id for _, event_id, _, _ in first}) == 5
    for _ in range(2):
        code, out, _ = run(capsys, "import", store, source)
        assert code == 0 and "imported 0 events" in out and "5 already stored" in out
    assert stored(store) == first


def test_the_derived_id_is_the_documented_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    run(capsys, "import", store, write(tmp_path / "in.jsonl", LINES))
    fields = {"type": "Ping"}
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    expected = [str(uuid.uuid5(IMPORT_NAMESPACE, f"{n}:{digest}")) for n in (0, 1)]
    assert [event_id for _, event_id, kind, _ in stored(store) if kind == "Ping"] == expected


def test_lines_added_to_a_file_are_all_that_a_rerun_appends(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store, source = tmp_path / "s.db", write(tmp_path / "in.jsonl", LINES)
    run(capsys, "import", store, source)
    more = [*LINES, {"type": "Incremented", "aggregate_id": "c-1"}, {"type": "Ping"}]
    code, out, _ = run(capsys, "import", store, write(source, more))
    assert code == 0 and "imported 2 events" in out and "(positions 6-7)" in out
    assert [(p, t, v) for p, _, t, v in stored(store)][-2:] == [
        (6, "Incremented", 4),
        (7, "Ping", None),
    ]


def test_fresh_ids_import_again(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store, source = tmp_path / "s.db", write(tmp_path / "in.jsonl", LINES[3:4])
    run(capsys, "import", store, source, "--fresh-ids")
    code, out, _ = run(capsys, "import", store, source, "--fresh-ids")
    assert code == 0 and "imported 1 event into" in out and "(position 2)" in out
    assert len(stored(store)) == 2


def test_an_export_followed_by_new_lines_appends_the_new_ones(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    store = tmp_path / "s.db"
    with EventStore(str(store)) as es:
        es.append([NewEvent("Placed", {"n": n}) for n in range(3)], aggregate_id="o-1")
    exported = tmp_path / "export.jsonl"
    assert run(capsys, "export", store, "-o", exported)[0] == 0
    with exported.open("a") as handle:
        handle.write(json.dumps({"type": "Shipped", "aggregate_id": "o-1"}) + "\n")
        handle.write(json.dumps({"type": "Paid", "aggregate_id": "o-1"}) + "\n")
    code, out, err = run(capsys, "import", store, exported)
    assert code == 0, err
    assert "imported 2 events" in out and "3 already stored, skipped" in out
    assert [(t, v) for _, _, t, v in stored(store)] == [
        ("Placed", 1), ("Placed", 2), ("Placed", 3), ("Shipped", 4), ("Paid", 5),
    ]  # fmt: skip
    code, out, _ = run(capsys, "import", store, exported)
    assert code == 0 and "imported 0 events" in out and "5 already stored" in out


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ({"type": "A", "aggregate_id": "a-1", "data": {"n": 2**70}}, "64 bits"),
        ({"type": "A", "aggregate_id": "a-1", "aggregate_type": "Other"}, "aggregate type"),
    ],
)
def test_a_refused_line_in_a_run_is_named_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bad: dict[str, object], fragment: str
) -> None:
    store = tmp_path / "s.db"
    good = {"type": "A", "aggregate_id": "a-1", "aggregate_type": "Kind"}
    lines = [good, {**good, "data": {"n": 1}}, bad, {**good, "data": {"n": 3}}]
    code, _, err = run(capsys, "import", store, write(tmp_path / "in.jsonl", lines))
    assert code == 1 and err.count("\n") == 1, err
    assert err.startswith("sss: error: line 3: ") and fragment in err, err
    assert "lines " not in err and "event 0" not in err
    assert err.rstrip().endswith("nothing was imported")
    assert not store.exists()


def test_a_huge_integer_names_its_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = tmp_path / "s.db"
    with EventStore(str(store)) as es:
        es.append([NewEvent("Kept")])
    source = tmp_path / "in.jsonl"
    source.write_text('{"type": "A"}\n{"type": "A", "data": {"n": ' + "7" * 5000 + "}}\n")
    code, _, err = run(capsys, "import", store, source)
    assert code == 1 and err.count("\n") == 1
    assert "line 2" in err and "4300 digits" in err and "nothing was imported" in err
    assert [t for _, _, t, _ in stored(store)] == ["Kept"]

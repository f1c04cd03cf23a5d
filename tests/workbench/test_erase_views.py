"""Erased payloads as people see them: ``sss erase`` and ``sss verify``,
frames, reports and the TUI all show the erased fields as ``⟨erased⟩``,
never as absent (the TUI: tui/test_tui_erase.py); ``sss migrate`` copies a
store of format 1."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from store import ERASED, EventStore, NewEvent
from workbench import frames
from workbench.cli import main
from workbench.reports import write_report

MARKER = "MARKER-95d2-carol@example.com"


@pytest.fixture
def erased_store(tmp_path: Path) -> Path:
    path = tmp_path / "people.db"
    with EventStore(str(path)) as es:
        es.append(
            [NewEvent("Registered", {"email": MARKER, "plan": "basic"})],
            aggregate_id="person-1",
            aggregate_type="Person",
        )
        es.append([NewEvent("Upgraded", {"plan": "pro"})], aggregate_id="person-1")
        es.append([NewEvent("Registered", {"email": "dan@example.com"})], aggregate_id="person-2")
    return path


def test_sss_erase_then_verify(erased_store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = str(erased_store)
    assert main(["erase", path, "--aggregate", "person-1", "--reason", "request 7",
                 "--actor", "dpo"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert out == "erased 2 payloads (positions 1-2): sss.Erased at position 4\n"
    assert main(["erase", path, "--position", "1", "--reason", "again"]) == 0
    assert capsys.readouterr().out.startswith("nothing left to erase: erased already by")
    assert main(["verify", path]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("; 2 erased payloads (digests kept)")
    assert main(["verify", path, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["erased"] == 2 and report["checked"] == 4
    with EventStore(path, readonly=True) as es:
        receipt = es.get(4)
    assert receipt.type == "sss.Erased" and receipt.metadata["actor"] == "dpo"
    assert receipt.metadata["reason"] == "request 7"
    assert not any(MARKER.encode() in f.read_bytes() for f in erased_store.parent.iterdir())


@pytest.mark.parametrize(
    "args, words",
    [
        (["--position", "9", "--reason", "x"], "no event at position 9"),
        (["--aggregate", "nobody", "--reason", "x"], "no aggregate 'nobody'"),
        (["--position", "1", "--reason", " "], "a reason is required"),
        (["--position", "one", "--reason", "x"], "--position"),
        (["--reason", "x"], "one of the arguments --aggregate --position is required"),
        (["--position", "1", "--aggregate", "person-1", "--reason", "x"], "not allowed with"),
    ],
)
def test_sss_erase_bad_input_is_one_line_and_changes_nothing(
    erased_store: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    before = erased_store.read_bytes()
    code = main(["erase", str(erased_store), *args])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and err.startswith("sss: error:")
    assert words in err and "Traceback" not in err
    with EventStore(str(erased_store), readonly=True) as es:
        assert es.head() == 3 and es.verify().erased == 0
    assert MARKER.encode() in before


def test_frames_and_reports_show_erased_fields(erased_store: Path, tmp_path: Path) -> None:
    with EventStore(str(erased_store)) as es:
        es.erase(positions=[1], reason="asked")
    flat = frames.events(str(erased_store), flatten=True)
    assert flat["data.email"][0] == ERASED and flat["data.email"][2] == "dan@example.com"
    assert list(flat["data.plan"])[:2] == [ERASED, "pro"]
    states = frames.states(str(erased_store), "person-1")
    assert list(states["state.email"]) == [ERASED, ERASED]
    changes = frames.changes(str(erased_store), "person-1")
    assert (changes["path"] == "/email").any()
    assert list(changes.loc[changes["path"] == "/email", "new"]) == [ERASED]
    for fmt in ("md", "html", "csv", "jsonl"):
        target = tmp_path / f"report.{fmt}"
        write_report(str(erased_store), target, aggregate_id="person-1")
        text = target.read_text()
        assert ERASED in text or json.dumps(ERASED)[1:-1] in text, fmt
        assert MARKER not in text
    report = json.loads((tmp_path / "report.jsonl").read_text().splitlines()[0])
    assert report["integrity"]["erased"] == 1
    assert "1 payload in the chain is erased" in report["integrity"]["statement"]


def test_sss_migrate_copies_a_format_1_store(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("Registered", {"email": MARKER})], aggregate_id="p")
        es.append([NewEvent("Moved", {"city": "Oslo"})], aggregate_id="p")
    conn = sqlite3.connect(path, isolation_level=None)
    for statement in (
        "DROP TRIGGER events_guard_update",
        "ALTER TABLE events DROP COLUMN erased_by",
        "CREATE TRIGGER events_refuse_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'events are append-only: UPDATE is refused'); END",
        "UPDATE sss_meta SET value = '1' WHERE key = 'format_version'",
    ):
        conn.execute(statement)
    conn.close()
    target = tmp_path / "new.db"
    assert main(["migrate", str(path), str(target)]) == 0
    conn = sqlite3.connect(path)
    assert "erased_by" not in [row[1] for row in conn.execute("PRAGMA table_info(events)")]
    conn.close()  # the source was only read
    with EventStore(str(target)) as es:
        assert es.head() == 2 and es.verify().ok
        es.erase(aggregate_id="p", reason="asked")
        assert es.verify().erased == 2


def test_an_exported_erased_event_is_not_imported(
    erased_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with EventStore(str(erased_store)) as es:
        es.erase(positions=[1], reason="asked")
    exported = tmp_path / "out.jsonl"
    assert main(["export", str(erased_store), "-o", str(exported)]) == 0
    lines = exported.read_text().splitlines()
    assert json.loads(lines[0])["erased_by"] == 4 and "erased_by" not in json.loads(lines[1])
    capsys.readouterr()
    target = tmp_path / "other.db"
    assert main(["import", str(target), str(exported)]) != 0
    err = capsys.readouterr().err
    assert err.startswith("sss: error: line 1: the event's payload was erased")
    assert err.count("\n") == 1

"""Hostile event content on the command line: shown escaped to people, exact as data.

Every human-readable command is driven against a store whose every text field
holds terminal escapes, bidi overrides, formula prefixes and NULs; nothing
below 0x20 but a newline (and no C1 or bidi character) may reach stdout or
stderr. The machine outputs carry the exact text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from store import EventStore, RecordedEvent
from tests.workbench.hostile import (
    AGGREGATE,
    CLEAR,
    FORMULAS,
    OSC_TITLE,
    assert_safe_bytes,
    build_hostile_store,
)
from tests.workbench.test_cli_process import sss_script
from workbench.cli import main
from workbench.safetext import FORMULA_PREFIXES


@pytest.fixture
def hostile_store(tmp_path: Path) -> tuple[Path, list[RecordedEvent]]:
    path = tmp_path / "hostile.db"
    return path, build_hostile_store(path)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


HUMAN = [
    ["events", "{db}"],
    ["events", "{db}", "--aggregate", AGGREGATE],
    ["events", "{db}", "--backwards", "--limit", "3"],
    ["replay", "{db}", AGGREGATE, "--history"],
    ["replay", "{db}", AGGREGATE, "--history", "--version", "3"],
    ["stats", "{db}"],
    ["verify", "{db}"],
    ["export", "{db}", "-o", "{tmp}/out\x1b[2J.jsonl"],
    ["report", "{db}", "-o", "{tmp}/r.md"],
    ["report", "{db}", "--aggregate", AGGREGATE, "-o", "{tmp}/r.html"],
    ["report", "{db}", "--aggregate", AGGREGATE, "-o", "{tmp}/r.csv"],
    ["report", "{db}", "--aggregate", AGGREGATE, "-o", "{tmp}/r\x1b]0;x\x07.xlsx"],
]


@pytest.mark.parametrize("argv", HUMAN, ids=lambda argv: " ".join(argv[:1] + argv[2:3]))
def test_human_output_holds_no_raw_control_character(
    hostile_store: tuple[Path, list[RecordedEvent]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    db, _ = hostile_store
    args = [a.format(db=db, tmp=tmp_path) if "{" in a else a for a in argv]
    code, out, err = run(args, capsys)
    assert code == 0, err
    assert out
    assert_safe_bytes(out.encode())
    assert_safe_bytes(err.encode())


def test_the_table_and_history_show_the_escapes(
    hostile_store: tuple[Path, list[RecordedEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = hostile_store
    _, out, _ = run(["events", str(db)], capsys)
    assert "a\\x1b[2Jb" in out  # the aggregate id, cut to the column but visible
    assert "T\\x1b]0;PWNED\\x07x" in out
    _, out, _ = run(["replay", str(db), AGGREGATE, "--history"], capsys)
    assert "\\u202e" in out and "\\x1b]0;PWNED\\x07" in out
    _, out, _ = run(["stats", str(db)], capsys)
    assert "=Order\\x1b]0;PWNED\\x07" in out


ERRORS = [
    # a name quoted by the store's error
    ["replay", "{db}", "missing" + CLEAR + OSC_TITLE + "\u202e"],
    ["events", "{tmp}/no\x1b[2J\u202esuch.db"],
    # values quoted by argument parsing
    ["events", "{db}", "--limit", CLEAR],
    ["events", "{db}", "--since", OSC_TITLE + "\n\r"],
    ["report", "{db}", "-o", "{tmp}/r.\x1b[2Jodd"],
    ["export", "{db}", "--format", "jsonl", "--spreadsheet-safe"],
    ["replay", "{db}", AGGREGATE, "--at", "\x9b2J\u2066"],
]


@pytest.mark.parametrize("argv", ERRORS, ids=lambda argv: " ".join(argv[:1] + argv[2:3])[:20])
def test_errors_quote_names_escaped_on_one_line(
    hostile_store: tuple[Path, list[RecordedEvent]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    db, _ = hostile_store
    args = [a.format(db=db, tmp=tmp_path) if "{" in a else a for a in argv]
    code, out, err = run(args, capsys)
    assert code != 0
    assert out == ""
    assert err.startswith("sss: error: ") and err.count("\n") == 1, err
    assert_safe_bytes(err.encode())


def test_a_missing_aggregate_is_named_with_visible_escapes(
    hostile_store: tuple[Path, list[RecordedEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = hostile_store
    _, _, err = run(["replay", str(db), "missing\x1b[2J\u202e"], capsys)
    assert "missing\\x1b[2J\\u202e" in err


def test_real_processes_write_no_control_bytes(
    hostile_store: tuple[Path, list[RecordedEvent]],
) -> None:
    """The bytes a terminal would receive, not just the text Python wrote."""
    db, _ = hostile_store
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    for argv in (["events", str(db)], ["replay", str(db), AGGREGATE, "--history"]):
        done = subprocess.run(
            [sss_script(), *argv], capture_output=True, env=env, check=False, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert b"\x1b" not in done.stdout and b"\x07" not in done.stdout
        assert_safe_bytes(done.stdout)
        assert_safe_bytes(done.stderr)


# -- data: exact ---------------------------------------------------------------


def _fields(event: RecordedEvent) -> tuple[object, ...]:
    return (
        event.type,
        event.aggregate_id,
        event.aggregate_type,
        event.data,
        event.metadata,
        event.actor,
        event.event_id,
        event.correlation_id,
        event.causation_id,
    )


def test_events_json_and_export_jsonl_carry_the_exact_text(
    hostile_store: tuple[Path, list[RecordedEvent]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db, recorded = hostile_store
    _, out, _ = run(["events", str(db), "--json"], capsys)
    assert [json.loads(line) for line in out.splitlines()] == [e.to_dict() for e in recorded]
    exported = tmp_path / "all.jsonl"
    assert main(["export", str(db), "-o", str(exported)]) == 0
    copy = tmp_path / "copy.db"
    assert main(["import", str(copy), str(exported)]) == 0
    with EventStore(str(copy), readonly=True) as es:
        assert [_fields(e) for e in es.read()] == [_fields(e) for e in recorded]


def test_replay_json_is_data(
    hostile_store: tuple[Path, list[RecordedEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, _ = hostile_store
    _, out, _ = run(["replay", str(db), AGGREGATE], capsys)
    with EventStore(str(db), readonly=True) as es:
        assert json.loads(out)["state"] == es.state_at(AGGREGATE).state


def _csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_export_csv_is_exact_by_default_and_neutralised_on_request(
    hostile_store: tuple[Path, list[RecordedEvent]], capsys: pytest.CaptureFixture[str]
) -> None:
    db, recorded = hostile_store
    _, exact, _ = run(["export", str(db), "--format", "csv"], capsys)
    rows = _csv_rows(exact)
    assert [row["type"] for row in rows] == [e.type for e in recorded]
    assert [row["aggregate_id"] for row in rows] == [e.aggregate_id or "" for e in recorded]
    assert [json.loads(row["data"]) for row in rows] == [e.data for e in recorded]
    assert [json.loads(row["metadata"]) for row in rows] == [e.metadata for e in recorded]
    _, safe, _ = run(["export", str(db), "--format", "csv", "--spreadsheet-safe"], capsys)
    neutral = _csv_rows(safe)
    for plain, row in zip(rows, neutral, strict=True):
        for name, value in row.items():
            assert not value.startswith(FORMULA_PREFIXES), (name, value)
            original = plain[name]
            expected = "'" + original if original.startswith(FORMULA_PREFIXES) else original
            assert value == expected
    assert {row["type"][:2] for row in neutral[: len(FORMULAS)]} == {"'" + p[0] for p in FORMULAS}
    assert neutral[0]["aggregate_type"].startswith("'=Order")


def test_export_help_documents_both_csv_modes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--spreadsheet-safe" in text and "OWASP" in text and "exact" in text
    assert main(["report", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "xlsx" in text and "OWASP" in text and "jsonl and parquet hold the exact text" in text

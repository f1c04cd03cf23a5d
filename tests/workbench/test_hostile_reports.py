"""Hostile event content in every report format.

Markdown, HTML and xlsx are for people: control characters and bidi overrides
appear as visible escapes. The CSV report neutralises formula cells and says
so. JSON Lines and Parquet are data: the exact text.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook

from store import RecordedEvent
from tests.workbench.hostile import (
    AGGREGATE,
    FORMULAS,
    LONG,
    assert_safe,
    build_hostile_store,
)
from workbench.reports import write_report
from workbench.reports.model import json_text
from workbench.reports.xlsx import MAX_CELL_CHARS
from workbench.safetext import FORMULA_PREFIXES, shown


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RecordedEvent]]:
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    return path, build_hostile_store(path)


@pytest.mark.parametrize("fmt", ["md", "html"])
@pytest.mark.parametrize("aggregate", [None, AGGREGATE])
def test_markdown_and_html_show_escapes(
    hostile: tuple[Path, list[RecordedEvent]], tmp_path: Path, fmt: str, aggregate: str | None
) -> None:
    db, _ = hostile
    out = tmp_path / f"r.{fmt}"
    write_report(db, out, aggregate_id=aggregate, title="T\x1b]0;PWNED\x07\u202e")
    text = out.read_text(encoding="utf-8")
    assert_safe(text)
    escaped = "\\\\x1b\\]0;PWNED\\\\x07" if fmt == "md" else "\\x1b]0;PWNED\\x07"
    assert escaped in text  # the title and the event type, visible
    assert ("\\\\u202e" if fmt == "md" else "\\u202e") in text


@pytest.mark.parametrize("aggregate", [None, AGGREGATE])
def test_csv_report_neutralises_formulas_and_says_so(
    hostile: tuple[Path, list[RecordedEvent]], tmp_path: Path, aggregate: str | None
) -> None:
    db, recorded = hostile
    out = tmp_path / "r.csv"
    write_report(db, out, aggregate_id=aggregate)
    with open(out, encoding="utf-8", newline="") as handle:
        text = handle.read()
    head, _, body = text.partition('\n"position"')
    comments = head.split("\n")
    assert all(line.startswith("# ") for line in comments)
    assert any(line.startswith("# scope.cells: ") and "OWASP" in line for line in comments)
    for line in comments:
        assert_safe(line, newline_ok=False)
    rows = list(csv.reader(io.StringIO('"position"' + body, newline="")))
    header, cells = rows[0], rows[1:]
    expected = recorded if aggregate is None else recorded[: len(FORMULAS)]
    assert len(cells) == len(expected)
    for row in cells:
        for value in row:
            assert not value.startswith(FORMULA_PREFIXES), value
    types = [row[header.index("type")] for row in cells]
    assert types == [
        "'" + e.type if e.type.startswith(FORMULA_PREFIXES) else e.type for e in expected
    ]
    actors = [row[header.index("actor")] for row in cells]
    assert actors == ["'" + (e.actor or "") for e in expected]  # every actor here is a formula
    # Neutralised, not altered: a cell holds the text after its "'".
    assert [json.loads(row[header.index("data")]) for row in cells] == [e.data for e in expected]


def test_xlsx_report_is_typed_frozen_filtered_and_safe(
    hostile: tuple[Path, list[RecordedEvent]], tmp_path: Path
) -> None:
    db, recorded = hostile
    out = tmp_path / "r.xlsx"
    write_report(db, out, aggregate_id=AGGREGATE)
    book = load_workbook(out)
    assert book.sheetnames == ["Scope", "Timeline", "Changes"]
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
        last = sheet.cell(sheet.max_row, sheet.max_column).coordinate
        assert sheet.auto_filter.ref == f"A1:{last}"
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert_safe(cell.value, newline_ok=False)
                    assert len(cell.value) <= MAX_CELL_CHARS
        assert all(cell.font.bold for cell in sheet[1])
    timeline = book["Timeline"]
    headings = [cell.value for cell in timeline[1]]
    assert "Recorded at (UTC)" in headings and "Occurred at (UTC)" in headings
    events = recorded[: len(FORMULAS)]
    column = {name: headings.index(name) for name in headings}
    values = list(timeline.iter_rows(min_row=2, values_only=True))
    assert [row[column["Position"]] for row in values] == [e.position for e in events]
    assert [row[column["Event"]] for row in values] == [shown(e.type) for e in events]
    assert [row[column["Actor"]] for row in values] == [shown(e.actor) for e in events]
    for row, e in zip(values, events, strict=True):
        when = row[column["Recorded at (UTC)"]]
        assert isinstance(when, datetime) and when.tzinfo is None
        exact = e.recorded_at.astimezone(UTC).replace(tzinfo=None)
        assert abs((when - exact).total_seconds()) < 0.001
    data = values[0][column["Data (JSON)"]]
    assert MAX_CELL_CHARS - 10 <= len(data) <= MAX_CELL_CHARS and "more characters" in data
    whole = shown(json_text(recorded[0].data, spaced=True))
    assert LONG[:30_000] in whole and data.startswith(whole[: len(data) - 80])
    changes = list(book["Changes"].iter_rows(min_row=2, values_only=True))
    assert len(changes) > len(events)
    assert all(isinstance(row[2], datetime) for row in changes)
    scope = {(row[0], row[1]): row[2] for row in book["Scope"].iter_rows(values_only=True)}
    assert scope[("Scope", "Aggregate")] == shown(AGGREGATE)
    assert scope[("Integrity", "Verdict")] == "OK"
    assert "UTC" in scope[("Scope", "Times")]


def test_xlsx_report_of_many_aggregates_says_where_changes_are(
    hostile: tuple[Path, list[RecordedEvent]], tmp_path: Path
) -> None:
    db, recorded = hostile
    out = tmp_path / "all.xlsx"
    write_report(db, out)
    book = load_workbook(out)
    assert book["Timeline"].max_row == len(recorded) + 1
    assert book["Changes"].max_row == 1
    notes = {row[1]: row[2] for row in book["Scope"].iter_rows(values_only=True)}
    assert "one aggregate" in notes["Changes"]


def test_jsonl_and_parquet_reports_hold_the_exact_text(
    hostile: tuple[Path, list[RecordedEvent]], tmp_path: Path
) -> None:
    db, recorded = hostile
    jsonl = tmp_path / "r.jsonl"
    write_report(db, jsonl)
    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [{k: v for k, v in line.items() if k != "kind"} for line in lines[1:]] == [
        e.to_dict() for e in recorded
    ]
    parquet = tmp_path / "r.parquet"
    write_report(db, parquet)
    table = pq.read_table(parquet).to_pylist()
    for row, e in zip(table, recorded, strict=True):
        assert (row["type"], row["aggregate_id"], row["aggregate_type"], row["actor"]) == (
            e.type,
            e.aggregate_id,
            e.aggregate_type,
            e.actor,
        )
        assert (row["correlation_id"], row["causation_id"]) == (e.correlation_id, e.causation_id)
        assert json.loads(row["data"]) == e.data and json.loads(row["metadata"]) == e.metadata


def test_an_xlsx_report_beyond_a_sheet_is_refused_whole(
    hostile: tuple[Path, list[RecordedEvent]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from workbench.cli import main
    from workbench.reports import xlsx

    db, _ = hostile
    monkeypatch.setattr(xlsx, "MAX_ROWS", 4)  # the header and three events
    out = tmp_path / "big.xlsx"
    assert main(["report", str(db), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sss: error: the Scope sheet would need more than 4 rows")
    assert "csv or parquet" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # no partial workbook left behind

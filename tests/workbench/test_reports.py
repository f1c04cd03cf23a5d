"""Audit reports: golden files per format, escaping, streaming, attestation.

Goldens live in tests/workbench/golden/. The real-clock parts of a report
(recorded_at and the hashes that cover it, the store's temporary path, the
package version) are replaced by placeholders before comparing; the generation
time is fixed through ``generated_at``. Regenerate with SSS_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import store
from store import EventStore, NewEvent, RecordedEvent
from workbench.reports import FORMATS, Entry, build_report, format_for, write_report
from workbench.reports.html import write_html
from workbench.reports.markdown import md_escape
from workbench.reports.tabular import write_csv, write_jsonl

GOLDEN = Path(__file__).parent / "golden"
GENERATED = datetime(2024, 11, 1, 8, 30, tzinfo=UTC)
T0 = datetime(2024, 10, 1, 9, 0, tzinfo=UTC)
EVIL = "<script>alert('pwned')</script><img src=x onerror=alert(1)> & | *x* [l](u) `c`"


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _fill(es: EventStore) -> None:
    def at(minutes: int) -> datetime:
        return T0 + timedelta(minutes=minutes)

    es.append(
        [
            NewEvent(
                "OrderPlaced",
                {"total": 30, "lines": ["sku-1"], "address": {"zip": "1000", "city": "Gent"}},
                metadata={"actor": "alice", "correlation_id": "corr-1"},
                event_id=_id(1),
                occurred_at=at(0),
            )
        ],
        aggregate_id="order-1",
        aggregate_type="Order",
    )
    es.append(
        [
            NewEvent(
                "OrderPlaced",
                {"total": 12.5, "note": EVIL},
                metadata={"actor": "<b>mallory</b>", "correlation_id": "corr-2"},
                event_id=_id(2),
                occurred_at=at(5),
            )
        ],
        aggregate_id="order-2",
        aggregate_type="Order",
    )
    es.append(
        [
            NewEvent(
                "ServiceDeployed",
                {"service": "api", "version": "1.2"},
                event_id=_id(3),
                metadata={"actor": "svc:ci"},
                occurred_at=at(7),
            )
        ]
    )
    es.append(
        [
            NewEvent(
                "OrderPaid",
                {"paid": True, "comment": "#1 priority\nsecond line"},
                metadata={"actor": "bob", "correlation_id": "corr-1", "causation_id": _id(1)},
                event_id=_id(4),
                occurred_at=at(9),
            ),
            NewEvent(
                "AddressChanged",
                {"address": {"zip": "2000"}, "total": None},
                metadata={"actor": "alice", "correlation_id": "corr-1"},
                event_id=_id(5),
                occurred_at=at(12),
            ),
        ],
        aggregate_id="order-1",
    )


def _clock() -> Callable[[], datetime]:
    """Recorded a quarter of an hour after T0, a second per append: nothing is late."""
    ticks = iter(range(10_000))
    return lambda: T0 + timedelta(minutes=15, seconds=next(ticks), microseconds=1)


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    path = tmp_path / "shop.db"
    with EventStore(path, clock=_clock()) as es:
        _fill(es)
    return path


def _normalise(text: str, path: Path) -> str:
    with EventStore(path, readonly=True) as es:
        events = list(es.read())
    for e in events:
        utc = e.recorded_at.astimezone(UTC)
        label = f"<recorded_at {e.position}>"
        text = text.replace(utc.isoformat(timespec="microseconds"), label)
        text = text.replace(f"{utc:%Y-%m-%d}<br>{utc:%H:%M:%S.%f}", label)
        text = text.replace(e.hash, f"<hash {e.position}>")
    # The delay between the fixed business times and the real clock's.
    text = re.sub(r"back-dated \d+ (d \d+ h|h \d+ min)", "back-dated <delay>", text)
    text = text.replace(str(path), "<store>").replace(md_escape(str(path)), "<store>")
    return text.replace(f"system-state-store {store.__version__}", "system-state-store <version>")


def _parquet_text(target: Path) -> str:
    table = pq.read_table(target)
    header = json.loads(table.schema.metadata[b"sss.report"])
    rows = [
        {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
        for row in table.to_pylist()
    ]
    schema = table.schema.remove_metadata()
    return json.dumps(
        {"schema": str(schema), "report": header, "rows": rows}, indent=1, ensure_ascii=False
    )


def _xlsx_text(target: Path, path: Path) -> str:
    """Every sheet's cells (typed: a time as a recorded_at label or ISO text),
    its frozen panes, autofilter and print titles, as JSON."""
    from openpyxl import load_workbook

    with EventStore(path, readonly=True) as es:
        recorded = {
            e.position: e.recorded_at.astimezone(UTC).replace(tzinfo=None) for e in es.read()
        }

    def cell(value: Any, row: tuple[Any, ...]) -> Any:
        # A time's row starts with its event's position (Timeline and Changes).
        if isinstance(value, datetime):
            at = recorded.get(row[0])
            if at is not None and abs(value - at) < timedelta(milliseconds=1):
                return f"<recorded_at {row[0]}>"
            return value.isoformat(timespec="milliseconds")
        return value

    book = load_workbook(target)
    sheets = {
        sheet.title: {
            "freeze_panes": sheet.freeze_panes,
            "auto_filter": sheet.auto_filter.ref,
            "print_title_rows": sheet.print_title_rows,
            "types": sorted({c.data_type for row in sheet.iter_rows() for c in row}),
            "rows": [[cell(v, row) for v in row] for row in sheet.iter_rows(values_only=True)],
        }
        for sheet in book.worksheets
    }
    return json.dumps(sheets, indent=1, ensure_ascii=False)


def _check_golden(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if os.environ.get("SSS_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
    assert golden.exists(), f"missing golden {golden}; run with SSS_UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8"), f"{name} differs from its golden"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["store", "aggregate"])
def test_report_matches_golden(shop: Path, tmp_path: Path, fmt: str, kind: str) -> None:
    target = tmp_path / f"report.{fmt}"
    options: dict[str, Any] = {"aggregate_id": "order-1"} if kind == "aggregate" else {}
    report = write_report(shop, target, generated_at=GENERATED, **options)
    assert report.integrity.ok and report.integrity.verified
    if fmt == "parquet":
        actual = _parquet_text(target)
        name = f"report_{kind}.parquet.json"
    elif fmt == "xlsx":
        actual = _xlsx_text(target, shop)
        name = f"report_{kind}.xlsx.json"
    else:
        actual = target.read_text(encoding="utf-8")
        name = f"report_{kind}.{fmt}"
    _check_golden(name, _normalise(actual, shop))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes.update(name for name, _ in attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


@pytest.mark.parametrize("aggregate_id", [None, "order-2"])
def test_html_shows_payload_markup_as_text(shop: Path, tmp_path: Path, aggregate_id: str) -> None:
    target = tmp_path / "r.html"
    write_report(shop, target, aggregate_id=aggregate_id)
    html = target.read_text(encoding="utf-8")
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "img" not in parser.tags and "b" not in parser.tags
    assert not any(name.startswith("on") for name in parser.attributes)
    assert parser.tags <= {
        "html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "div",
        "strong", "section", "table", "thead", "tbody", "tr", "th", "td", "pre", "code",
        "span", "br", "footer",
    }  # fmt: skip
    text = "".join(parser.text)
    assert "<script>alert('pwned')</script>" in text  # shown, as text
    assert "<b>mallory</b>" in text
    assert "&lt;script&gt;" in html and "<script" not in html.lower()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_markdown_escapes_markup(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.md"
    write_report(shop, target, aggregate_id="order-2")
    text = target.read_text(encoding="utf-8")
    timeline = text[text.index("## Timeline") :]
    # The only raw tag is the line break between changes.
    assert set(re.findall(r"(?<!\\)<(/?\w+)", timeline)) == {"br"}
    assert r"\<script\>" in timeline
    assert r"\|" in timeline  # a pipe in a payload cannot end the cell
    for line in timeline.splitlines()[2:]:
        if line.startswith("|"):
            cells = line.replace(r"\|", "").count("|")
            assert cells == 9, line  # 8 columns: 9 unescaped bars


def test_csv_reads_back_with_pandas(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    write_report(shop, target)
    df = pd.read_csv(target, comment="#", keep_default_na=False)
    assert df["position"].tolist() == [1, 2, 3, 4, 5]
    assert json.loads(df.loc[3, "data"])["comment"] == "#1 priority\nsecond line"
    assert json.loads(df.loc[1, "data"])["note"] == EVIL
    assert df.loc[2, "aggregate_id"] == ""
    head = [line for line in target.read_text().splitlines() if line.startswith("#")]
    assert "# integrity.ok: true" in head
    assert any(line.startswith("# summary.events: 5") for line in head)


def test_jsonl_has_a_header_then_the_export_format(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.jsonl"
    write_report(shop, target, aggregate_id="order-1")
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert lines[0]["kind"] == "report"
    assert lines[0]["integrity"]["covered"] == {
        "first_position": 1,
        "last_position": 5,
        "events": 3,
    }
    assert lines[0]["summary"]["final_state"] == {
        "lines": ["sku-1"],
        "address": {"zip": "2000", "city": "Gent"},
        "paid": True,
        "comment": "#1 priority\nsecond line",
    }
    with EventStore(shop, readonly=True) as es:
        expected = [e.to_dict() for e in es.stream("order-1")]
    events = lines[1:]
    assert [
        {k: v for k, v in e.items() if k not in ("kind", "changes")} for e in events
    ] == expected
    assert events[2]["changes"] == [
        {"path": "/address/zip", "old": "1000", "new": "2000"},
        {"path": "/total", "old": 30, "new": None},
    ]


def test_parquet_has_proper_types(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.parquet"
    write_report(shop, target, aggregate_id="order-1")
    table = pq.read_table(target)
    assert table.schema.field("position").type == pa.int64()
    assert table.schema.field("version").type == pa.int64()
    assert table.schema.field("recorded_at").type == pa.timestamp("us", tz="UTC")
    assert table.column("occurred_at").to_pylist()[0] == T0
    header = json.loads(table.schema.metadata[b"sss.report"])
    assert header["integrity"]["ok"] is True
    df = pd.read_parquet(target)
    assert str(df["recorded_at"].dtype).startswith("datetime64") and df["version"].tolist() == [
        1,
        2,
        3,
    ]


def test_filters_scope_and_window(shop: Path, tmp_path: Path) -> None:
    with EventStore(shop, readonly=True) as es:
        recorded = [e.recorded_at for e in es.read()]
    target = tmp_path / "r.jsonl"
    report = write_report(
        shop, target, types=["OrderPlaced", "OrderPaid"], since=recorded[1], until=recorded[4]
    )
    assert [json.loads(line)["position"] for line in target.read_text().splitlines()[1:]] == [2, 4]
    header = json.loads(target.read_text().splitlines()[0])
    assert header["scope"]["filters"]["types"] == ["OrderPlaced", "OrderPaid"]
    assert header["scope"]["filters"]["since"] == recorded[1].isoformat(timespec="microseconds")
    assert report.summary.events == 2 and report.summary.per_type == {
        "OrderPaid": 1,
        "OrderPlaced": 1,
    }
    assert report.integrity.covered_first == 2 and report.integrity.covered_last == 4
    # An aggregate report narrowed by filters, newest first, limited.
    report = write_report(
        shop, tmp_path / "a.jsonl", aggregate_id="order-1", backwards=True, limit=2
    )
    lines = (tmp_path / "a.jsonl").read_text().splitlines()[1:]
    assert [json.loads(line)["version"] for line in lines] == [3, 2]
    assert report.summary.final_state is not None
    assert report.summary.final_state["address"]["zip"] == "2000"


def _tamper(path: Path) -> None:
    conn = sqlite3.connect(path)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("""UPDATE events SET metadata = '{"actor":"eve"}' WHERE position = 2""")
    conn.commit()
    conn.close()


def test_a_broken_chain_is_attested_as_failed(shop: Path, tmp_path: Path) -> None:
    _tamper(shop)
    report = write_report(shop, tmp_path / "r.html")
    assert report.integrity.verified and not report.integrity.ok
    assert report.integrity.first_bad_position == 2
    assert report.summary.events == 5  # the events are still shown
    html = (tmp_path / "r.html").read_text()
    assert "Integrity check FAILED" in html and "Verification FAILED at position 2" in html
    unverified = write_report(shop, tmp_path / "u.md", verify=False)
    assert unverified.integrity.verdict == "NOT VERIFIED"
    assert "**Integrity: NOT VERIFIED.**" in (tmp_path / "u.md").read_text()


class _Probe(io.StringIO):
    """Notes how many timeline entries had been produced at each write."""

    def __init__(self, produced: list[int]) -> None:
        super().__init__()
        self.produced = produced
        self.seen: list[int] = []

    def write(self, text: str) -> int:
        self.seen.append(self.produced[0])
        return super().write(text)


@pytest.mark.parametrize("writer", [write_csv, write_jsonl, write_html])
def test_large_reports_are_streamed(shop: Path, writer: Any) -> None:
    with EventStore(shop, readonly=True) as es:
        report = build_report(es)
        event: RecordedEvent = next(es.read())
    produced = [0]
    total = 5000

    def entries() -> Any:
        for _ in range(total):
            produced[0] += 1
            yield Entry(event)

    report._entries = entries
    out = _Probe(produced)
    assert writer(report, out) == total
    # Rows went out while the timeline was still being read, not all at the end.
    assert min(n for n in out.seen if n > 0) < 1000


def test_format_from_file_name() -> None:
    assert format_for("x.HTML") == "html" and format_for("a/b.md") == "md"
    assert format_for("x.ndjson") == "jsonl" and format_for("x.parquet") == "parquet"
    with pytest.raises(ValueError, match="cannot tell the report format"):
        format_for("x.txt")


def test_a_failed_write_leaves_no_file(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.html"
    with pytest.raises(Exception, match="no aggregate"):
        write_report(shop, target, aggregate_id="nope")
    assert list(tmp_path.iterdir()) == [shop] or not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sss-report-")]


def test_csv_quotes_text_so_hash_signs_survive(shop: Path, tmp_path: Path) -> None:
    target = tmp_path / "r.csv"
    write_report(shop, target)
    with target.open(newline="") as handle:
        rows = list(csv.reader(line for line in handle if not line.startswith("#")))
    assert rows[0][0] == "position" and len(rows) == 6

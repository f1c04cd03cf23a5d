"""Reports show both clocks, mark back-dated events, and list restatements."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.workbench.test_cli_read import assert_one_line_error, run
from tests.workbench.test_frames_twoclocks import CUT, Q1_END, shop
from workbench.reports import write_report

__all__ = ["shop"]


def test_markdown_and_html_show_restatements_and_back_dated_events(
    shop: str, tmp_path: Path
) -> None:
    md = tmp_path / "r.md"
    report = write_report(shop, md, aggregate_type="Order", occurred=Q1_END, known_at=CUT)
    assert report.restatements is not None
    text = md.read_text(encoding="utf-8")
    section = text[text.index("## Restatements") : text.index("## Timeline")]
    assert "2 aggregate(s), 3 field(s) restated" in section
    assert "| o-1 | /total | 100 | 90 | #4 |" in section
    assert "| grace |" in section
    correction = next(line for line in text.splitlines() if line.startswith("| 4 |"))
    assert "↶ back-dated 35 d 0 h" in correction  # occurred 5 March, recorded 10 April
    placed = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    assert "back-dated" not in placed
    html = tmp_path / "r.html"
    write_report(shop, html, aggregate_id="o-1", occurred=Q1_END, known_at=CUT)
    page = html.read_text(encoding="utf-8")
    assert "<h2>Restatements</h2>" in page and "<td>/total</td>" in page
    assert "<td>o-3</td>" not in page  # an aggregate report keeps to its aggregate
    assert '<span class="late">↶ back-dated 35 d 0 h</span>' in page
    jsonl = tmp_path / "r.jsonl"
    write_report(shop, jsonl, occurred=Q1_END, known_at=CUT)
    header = json.loads(jsonl.read_text().splitlines()[0])
    rows = header["restatements"]["rows"]
    assert {(r["aggregate_id"], r["path"]) for r in rows} == {
        ("o-1", "/total"), ("o-1", "/reason"), ("o-3", "/total")
    }  # fmt: skip
    with pytest.raises(ValueError, match="both"):
        write_report(shop, tmp_path / "x.md", occurred=Q1_END)


def test_report_command_takes_the_two_clocks(
    capsys: pytest.CaptureFixture[str], shop: str, tmp_path: Path
) -> None:
    target = tmp_path / "q1.md"
    code, out, _ = run(
        capsys, "report", shop, "-o", target, "--occurred", "2024-03-31T23:59:59Z",
        "--known-at", "2024-04-01Z",
    )  # fmt: skip
    assert code == 0, out
    assert "| o-3 | /total | (absent) | 7 | #6 |" in target.read_text(encoding="utf-8")
    code, _, err = run(capsys, "report", shop, "-o", target, "--occurred", "-1d")
    assert_one_line_error(code, err, "--occurred and --known-at go together")

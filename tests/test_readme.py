"""The README is a test too: its set-up commands and its code run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_first_two_commands_are_run_and_test() -> None:
    run, test = (block.strip() for block in blocks("sh")[:2])
    assert run.endswith("sss demo")
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test in ci, "the .ci/run script must run the README's test command"


def test_python_examples_run(tmp_path: Path) -> None:
    from workbench.demo import generate

    generate(tmp_path / "demo.db", events=3000, seed=7)  # what `sss demo` leaves behind
    for code in blocks("python"):
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        if "reload and retry" in code:
            assert "expected version 1 of order-7 but it is at 2; reload and retry" in result.stdout
            assert "{'total': 30, 'status': 'new'}" in result.stdout


def _canonical(value: object) -> bytes:
    import json

    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def test_the_documented_hash_recipe_matches_the_store(tmp_path: Path) -> None:
    """An auditor's own verifier, written from the README's words alone."""
    import hashlib
    import json
    import sqlite3

    from store import EventStore, NewEvent

    payload = {"x": 1.5, "name": "é", "n": [1, {"b": 2, "a": None}]}
    with EventStore(tmp_path / "a.db") as es:
        es.append([NewEvent("A", payload, {"actor": "alice"})], aggregate_id="a-1")
        es.append([NewEvent("Tick", {})])
    conn = sqlite3.connect(tmp_path / "a.db")
    prev = "0" * 64
    rows = conn.execute(
        "SELECT position, event_id, aggregate_id, aggregate_type, version, type, schema_version, "
        "data, metadata, occurred_at, recorded_at, data_hash, hash FROM events ORDER BY position"
    )
    for row in rows:
        data, metadata = json.loads(row[7]), json.loads(row[8])
        data_hash = hashlib.sha256(_canonical(data)).hexdigest()
        assert data_hash == row[11]
        body = _canonical([*row[:7], data_hash, metadata, row[9], row[10]])
        assert hashlib.sha256(prev.encode() + b"\n" + body).hexdigest() == row[12]
        prev = row[12]
    conn.close()

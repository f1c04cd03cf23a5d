"""The installed `sss` console script, run as a real process."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from store import EventStore


def sss_script() -> str:
    beside = Path(sys.executable).with_name("sss")
    if beside.exists():
        return str(beside)
    found = shutil.which("sss")
    assert found, "the sss console script is not installed (pip install -e .)"
    return found


def sss(*args: object, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    return subprocess.run(
        [sss_script(), *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("process") / "demo.db"
    done = sss("demo", path, "--events", 3000, "--seed", 5, "--no-open")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "3000 events (seed 5)" in done.stdout
    return path


def test_script_runs_commands_end_to_end(demo_store: Path) -> None:
    verified = sss("verify", demo_store)
    assert verified.returncode == 0 and verified.stdout.startswith("ok: 3000 events checked")
    listed = sss("events", demo_store, "--aggregate-type", "Order", "--since", "2024-01-10Z",
                 "--limit", 3, "--json")  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    records = [json.loads(line) for line in listed.stdout.splitlines()]
    assert len(records) == 3 and {r["aggregate_type"] for r in records} == {"Order"}
    # The demo records in simulated business time.
    assert all("2024-01-10" <= r["recorded_at"] < "2024-08" for r in records)
    replayed = sss("replay", demo_store, records[0]["aggregate_id"])
    assert replayed.returncode == 0 and json.loads(replayed.stdout)["state"]["status"]


def test_script_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    done = sss("events", tmp_path / "missing.db")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("sss: error: ") and done.stderr.count("\n") == 1
    done = sss("import", tmp_path / "new.db", "-", stdin='{"type": "A"}\n{"type": 5}\n')
    assert done.returncode == 1
    assert done.stderr.startswith("sss: error: line 2: ") and done.stderr.count("\n") == 1
    assert not (tmp_path / "new.db").exists()


def test_script_imports_from_stdin(tmp_path: Path) -> None:
    path = tmp_path / "piped.db"
    lines = "".join(
        json.dumps({"type": "Counted", "data": {"n": n}, "aggregate_id": f"c-{n % 3}"}) + "\n"
        for n in range(30)
    )
    done = sss("import", path, "-", stdin=lines)
    assert done.returncode == 0, done.stderr
    with EventStore(str(path), readonly=True) as es:
        assert es.head() == 30 and es.aggregate("c-0").version == 10


def test_a_closed_pipe_is_not_an_error(demo_store: Path) -> None:
    # `sss events big.db | head -1`: the reader leaves early; no traceback, no noise.
    process = subprocess.Popen(
        [sss_script(), "events", str(demo_store)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read().decode()
    process.stderr.close()
    code = process.wait(timeout=60)
    assert first.startswith(b"POSITION")
    assert err == ""
    assert code in (0, 141)


def test_the_command_line_starts_without_ui_or_dataframe_libraries() -> None:
    # `sss verify` on a server must not pay for (or need) Textual or pandas.
    code = (
        "import sys, workbench.cli, workbench.demo; "
        "heavy = [m for m in ('textual', 'pandas', 'pyarrow') if m in sys.modules]; "
        "print(heavy)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

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

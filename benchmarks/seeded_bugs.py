"""Eight bugs that once survived the whole suite, put back one at a time into
a copy of the project: each must now fail at least one test.

Run by hand, like the benchmarks, never in CI::

    nice .venv/bin/python benchmarks/seeded_bugs.py          # stop at each bug's first failure
    nice .venv/bin/python benchmarks/seeded_bugs.py --all    # run every chosen test: how many fail

Each bug is one textual replacement in one source file; the script fails
(exit 1) when a replacement no longer matches the source (the code moved:
update the bug) or when a bug is not caught.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from mutation import copy_project  # this directory is the script's sys.path[0]

COPIED = ["store", "workbench", "tests", "notebooks", "pyproject.toml", "README.md"]

# (what the bug does, file, original text, the bug, tests that must catch it)
BUGS = [
    (
        "CLI funnel keeps a multi-line message",
        "workbench/safetext.py",
        'return " ".join(shown(text, multiline=True).split())',
        "return shown(text, multiline=True)",
        ["tests/workbench/test_cli_app.py", "tests/workbench/test_cli_read.py"],
    ),
    (
        "verify: recorded_at going back not checked",
        "store/integrity.py",
        "if recorded_at < self.last_recorded_at:",
        "if False:",
        ["tests/store"],
    ),
    (
        "verify: version gaps not checked",
        "store/integrity.py",
        "if version != expected_version:",
        "if False:",
        ["tests/store"],
    ),
    (
        "idempotency ignores aggregate_type",
        "store/checks.py",
        "and (aggregate_type is None or stored.aggregate_type == aggregate_type)",
        "",
        ["tests/store"],
    ),
    (
        "detail pane: occurred_at on the recorded line",
        "workbench/tui/panes.py",
        "text = Text(time_text(event.recorded_at))",
        "text = Text(time_text(event.occurred_at))",
        ["tests/workbench/tui"],
    ),
    (
        "timeline: time column always occurred_at",
        "workbench/tui/timeline.py",
        'when = event.recorded_at if self.time_column == "recorded" else event.occurred_at',
        "when = event.occurred_at",
        ["tests/workbench/tui"],
    ),
    (
        "replay: wrong closest-earlier note",
        "workbench/tui/replay.py",
        'kind == "time" and state.recorded_at == value',
        'kind == "time" and state.recorded_at != value',
        ["tests/workbench/tui"],
    ),
    (
        "sss open never finds the TUI",
        "workbench/cli/app.py",
        'run: Callable[..., int] | None = getattr(tui, "run", None)',
        "run = None",
        ["tests/workbench/test_cli_app.py"],
    ),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all", action="store_true", help="run every chosen test, not -x")
    args = parser.parse_args()
    missed = 0
    for name, module, old, new, tests in BUGS:
        work = copy_project("sss-bug-", COPIED)
        try:
            text = (work / module).read_text()
            if text.count(old) != 1:
                print(f"STALE    {name}: {module} no longer holds the original text once")
                missed += 1
                continue
            (work / module).write_text(text.replace(old, new))
            env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
            env.pop("SSS_TEST_POSTGRES_URL", None)
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
            cmd += ["-m", "not slow and not postgres", *([] if args.all else ["-x"]), *tests]
            result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
            failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED ")]
            if result.returncode == 1 and failed:
                first = failed[0].removeprefix("FAILED ").split(" - ")[0]
                print(f"caught   {name}: {len(failed)} failed, first {first}", flush=True)
            else:
                print(f"MISSED   {name} (pytest exit {result.returncode})", flush=True)
                missed += 1
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

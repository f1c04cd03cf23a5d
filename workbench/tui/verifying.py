"""Verify the hash chain in a child process, so the walk never holds the GIL
the screen needs (verify is pure-Python hashing over every event).

    python -m workbench.tui.verifying PATH   # prints the VerifyReport as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from store import EventStore, StoreError, VerifyReport

__all__ = ["verify_elsewhere"]


def verify_elsewhere(es: EventStore) -> VerifyReport:
    """``es.verify()``, run by a child process when the store is a file."""
    path = Path(es.path)
    if not path.is_file():
        return es.verify()
    done = subprocess.run(
        [sys.executable, "-m", "workbench.tui.verifying", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise StoreError(lines[-1] if lines else f"verify exited with {done.returncode}")
    return VerifyReport(**json.loads(done.stdout))


def _main(argv: list[str]) -> int:
    try:
        with EventStore(argv[0], readonly=True) as es:
            report = es.verify()
    except StoreError as error:
        print(f"cannot verify {argv[0]}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

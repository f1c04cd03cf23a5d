"""Verify the hash chain in a child process, so the walk never holds the GIL
the screen needs (verify is pure-Python hashing over every event).

    python -m workbench.tui.verifying PATH   # prints the VerifyReport as JSON (with the
                                             # Merkle root, which the verify action shows)
    SSS_VERIFY_LOCATION=URL python -m workbench.tui.verifying
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from store import EventStore, StoreError, VerifyReport
from workbench.locations import is_url

__all__ = ["verify_elsewhere"]


def verify_elsewhere(es: EventStore) -> VerifyReport:
    """``es.verify()``, run by a child process when the store is a file or a
    server (a URL travels in the environment, never on a command line that
    other users can list), so the store stays free for the screen."""
    location = es.path
    if is_url(location):
        args, env = [], {**os.environ, _ENV: location}
    elif Path(location).is_file():
        args, env = [location], None
    else:
        return es.verify(merkle=True)
    done = subprocess.run(
        [sys.executable, "-m", "workbench.tui.verifying", *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise StoreError(lines[-1] if lines else f"verify exited with {done.returncode}")
    return VerifyReport(**json.loads(done.stdout))


_ENV = "SSS_VERIFY_LOCATION"


def _main(argv: list[str]) -> int:
    if hasattr(os, "nice"):
        os.nice(10)  # background work: the screen's process comes first for the CPU
    location = argv[0] if argv else os.environ.get(_ENV, "")
    try:
        with EventStore(location, readonly=True) as es:
            report = es.verify(merkle=True)
    except StoreError as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))

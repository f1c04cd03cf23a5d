"""Read-only media for tests: a directory whose writes really fail.

As root a permission bit stops nothing, so a small tmpfs is mounted under the
test's temporary directory and remounted read-only (then unmounted); as another
user the directory loses its write bit. Either way the test never skips.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(target: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``16m``) mounted on ``target`` (as root), then unmounted."""
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


@contextlib.contextmanager
def read_only_directory(where: Path) -> Iterator[Path]:
    """A directory to fill, then :func:`seal`; cleaned up afterwards."""
    target = where / "media"
    target.mkdir()
    if os.geteuid() == 0:
        with tmpfs(target, "16m"):
            yield target
    else:
        try:
            yield target
        finally:
            target.chmod(0o755)


def seal(target: Path) -> None:
    """Make the directory read-only, and prove that it is."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
    else:
        target.chmod(0o555)
    with pytest.raises(OSError):
        (target / "probe").write_text("x")


def swap_index_roots(path: Path) -> None:
    """Damage a store's indexes the way a bad sector could: the type index and
    the aggregate-type index trade b-trees. Every page stays well formed (so
    ``quick_check`` passes) but filtered reads return wrong rows."""
    import sqlite3

    conn = sqlite3.connect(path)
    roots = dict(
        conn.execute(
            "SELECT name, rootpage FROM sqlite_master "
            "WHERE name IN ('events_by_type', 'events_by_aggregate_type')"
        )
    )
    conn.execute("PRAGMA writable_schema=ON")
    for name, other in (
        ("events_by_type", "events_by_aggregate_type"),
        ("events_by_aggregate_type", "events_by_type"),
    ):
        conn.execute("UPDATE sqlite_master SET rootpage = ? WHERE name = ?", (roots[other], name))
    conn.commit()
    conn.close()

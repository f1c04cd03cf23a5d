"""The read-only commands on write-protected media, and `sss verify` on a
damaged index: what an auditor handed a store on a read-only disk runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from tests.store.media import read_only_directory, seal, swap_index_roots
from workbench import frames
from workbench.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def _store(path: Path) -> Path:
    with EventStore(str(path)) as es:
        for i in range(12):
            es.append(
                [NewEvent("Changed" if i % 3 else "Opened", {"n": i}, metadata={"actor": "a"})],
                aggregate_id=f"item-{i % 3}",
                aggregate_type="Item",
            )
    return path


def test_read_commands_work_on_read_only_media(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _store(tmp_path / "source.db")
    with read_only_directory(tmp_path) as media:
        shutil.copyfile(source, media / "evidence.db")
        seal(media)
        path = media / "evidence.db"
        code, out, err = _run(capsys, "verify", path, "--json")
        assert (code, err) == (0, "") and json.loads(out)["checked"] == 12
        code, out, err = _run(capsys, "events", path, "--json")
        assert code == 0 and len(out.splitlines()) == 12, err
        code, out, err = _run(capsys, "replay", path, "item-1")
        assert code == 0, err
        assert json.loads(out)["state"] == {"n": 10} and json.loads(out)["version"] == 4
        code, out, err = _run(capsys, "stats", path, "--json")
        assert code == 0, err
        report = tmp_path / "report.md"
        code, out, err = _run(capsys, "report", path, "--format", "md", "-o", report)
        assert code == 0 and report.read_text().strip(), err
        assert len(frames.events(str(path))) == 12
        assert sorted(p.name for p in media.iterdir()) == ["evidence.db"]


def test_verify_fails_on_a_damaged_index_and_quick_does_not_look(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _store(tmp_path / "events.db")
    swap_index_roots(path)
    code, out, err = _run(capsys, "verify", path)
    assert code == 1 and out == ""
    assert err.startswith("sss: error: ") and err.count("\n") == 1, err
    assert "integrity_check" in err and "missing from index" in err, err
    code, out, err = _run(capsys, "verify", path, "--storage", "quick")
    assert code == 0 and out.startswith("ok: 12 events checked"), err

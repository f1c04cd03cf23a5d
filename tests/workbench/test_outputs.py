"""Named outputs (``-o``): never a store, a device, a directory or a FIFO;
written beside the target and renamed; errors name the path as typed."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from workbench.cli import main
from workbench.outputs import OutputError, check_output, is_event_store, open_output
from workbench.reports import write_report


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert err.startswith("sss: error: ") and err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "s.db"
    with EventStore(str(path)) as es:
        for n in range(5):
            es.append([NewEvent("Placed", {"n": n})], aggregate_id=f"o-{n}", aggregate_type="O")
    return path


def events_of(path: Path) -> list[tuple[int, str]]:
    with EventStore(str(path), readonly=True) as es:
        return [(e.position, e.hash) for e in es.read()]


COMMANDS = [
    ["export"],
    ["export", "--format", "csv"],
    ["report", "--format", "html"],
    ["report", "--format", "md"],
    ["report", "--format", "parquet"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("suffix", ["", "-wal", "-shm", "-journal"])
def test_the_store_being_read_is_never_an_output(
    capsys: pytest.CaptureFixture[str], store: Path, command: list[str], suffix: str
) -> None:
    before = events_of(store)
    target = f"{store}{suffix}"
    code, _, err = run(capsys, command[0], store, *command[1:], "-o", target)
    assert_one_line_error(code, err, target, "store being read")
    assert events_of(store) == before


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_another_event_store_is_never_an_output(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path, command: list[str]
) -> None:
    other = tmp_path / "other.db"
    with EventStore(str(other)) as es:
        es.append([NewEvent("Kept")])
    before = file_digest(other)
    # Reached through a symbolic link, and through a relative name, it is the same store.
    link = tmp_path / "link.out"
    link.symlink_to(other)
    for target in (str(other), str(link)):
        code, _, err = run(capsys, command[0], store, *command[1:], "-o", target)
        assert_one_line_error(code, err, target, "event store")
    assert file_digest(other) == before
    # The side file of another store is refused too, even before it exists.
    code, _, err = run(capsys, command[0], store, *command[1:], "-o", f"{other}-wal")
    assert_one_line_error(code, err, "belongs to the event store")


def test_the_store_is_protected_through_a_hard_link(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    alias = tmp_path / "alias.jsonl"
    os.link(store, alias)
    code, _, err = run(capsys, "export", store, "-o", alias)
    assert_one_line_error(code, err, str(alias))
    assert is_event_store(str(store))


def test_a_postgresql_url_is_never_an_output(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    code, _, err = run(capsys, "export", store, "-o", "postgresql://u@localhost/db")
    assert_one_line_error(code, err, "database URL")


def test_directories_fifos_and_devices_are_refused(
    capsys: pytest.CaptureFixture[str], store: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    device = tmp_path / "null"
    made = subprocess.run(["mknod", str(device), "c", "1", "3"], capture_output=True)
    targets = {str(tmp_path): "is a directory", str(fifo): "is a FIFO"}
    if made.returncode == 0:
        targets[str(device)] = "is a device"
    for target, fragment in targets.items():
        for command in COMMANDS:
            code, _, err = run(capsys, command[0], store, *command[1:], "-o", target)
            assert_one_line_error(code, err, target, fragment)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    if made.returncode == 0:
        assert stat.S_ISCHR(os.stat(device).st_mode)


def test_dash_streams_to_stdout(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    code, out, err = run(capsys, "export", store, "-o", "-")
    assert code == 0 and err == "" and len(out.splitlines()) == 5
    code, out, err = run(capsys, "report", store, "--format", "md", "-o", "-")
    assert code == 0 and err == "" and "integrity" in out.lower()
    code, _, err = run(capsys, "report", store, "-o", "-")
    assert_one_line_error(code, err, "--format")


def test_a_missing_directory_names_the_typed_path(
    capsys: pytest.CaptureFixture[str], store: Path
) -> None:
    for command in COMMANDS:
        code, _, err = run(capsys, command[0], store, *command[1:], "-o", "/nonexistent/x.out")
        assert_one_line_error(code, err, "/nonexistent/x.out")
        assert ".partial" not in err and ".sss-" not in err


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    with pytest.raises(RuntimeError), open_output(str(target)) as out:
        out.write("half of the new")
        raise RuntimeError("the export failed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
    with open_output(str(target)) as out:
        out.write("new\n")
    assert target.read_text() == "new\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640  # a replaced file keeps its mode


def test_a_symbolic_link_is_followed_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with open_output(str(link)) as out:
        out.write("new")
    assert link.is_symlink() and real.read_text() == "new"


def test_an_unwritable_directory_names_the_typed_path(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        folder = tmp_path / "ro"
        folder.mkdir()
        # root writes anywhere; a missing directory stands in for a refusal here.
        with pytest.raises(OutputError, match="ro/missing/x"):
            check_output(str(folder / "missing" / "x"))
        return
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        with (
            pytest.raises(OutputError, match=f"{folder}/x.txt"),
            open_output(str(folder / "x.txt")),
        ):
            pass
    finally:
        os.chmod(folder, 0o700)


def test_the_library_call_refuses_too(store: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="store being read"):
        write_report(str(store), str(store), format="html")
    with EventStore(str(store), readonly=True) as es, pytest.raises(OutputError):
        write_report(es, str(store) + "-wal", format="md")
    assert len(events_of(store)) == 5
    written = tmp_path / "r.md"
    write_report(str(store), str(written))
    assert "Placed" in written.read_text()


@pytest.mark.parametrize("name", ["", "   ", "a\0b"])
def test_empty_and_impossible_names(name: str) -> None:
    with pytest.raises(OutputError):
        check_output(name)


def test_stream_is_refused_where_there_is_no_stdout() -> None:
    with pytest.raises(OutputError, match="standard output"):
        check_output("-", stream=False)

"""Seeded fuzzing of the ``sss`` entry point and of ``sss import``.

Each case calls :func:`workbench.cli.main` in-process with a hostile argument
list or a hostile JSON Lines file and checks what every user-reachable error
promises: the call returns an exit status (nothing escapes, no traceback),
a failure is exactly one ``sss: error: ...`` line on stderr and a non-zero
status, and a failing command leaves the events exactly as they were. Every
case runs on a fresh copy of a small store, so the cases are independent and
a failure names its seed and case number for replay.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import io
import json
import os
import random
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from store import EventStore, NewEvent
from workbench import cli
from workbench.cli import build_parser, main
from workbench.outputs import is_event_store

CLI_CASES = int(os.environ.get("SSS_FUZZ_CLI", "350"))  # per seed
IMPORT_CASES = int(os.environ.get("SSS_FUZZ_IMPORT", "125"))  # per seed
SEEDS = range(4)

# The TUI commands would start an application, and demo builds 20,000 events:
# neither belongs in a fast loop; their argument handling is tested elsewhere.
SKIPPED_COMMANDS = {"open", "demo"}


@dataclass
class Result:
    code: int
    out: str
    err: str


class _Stdout(io.TextIOWrapper):
    """A text stdout with a binary buffer underneath, as a real one has."""

    def __init__(self) -> None:
        super().__init__(io.BytesIO(), encoding="utf-8", errors="surrogateescape")

    def text(self) -> str:
        self.flush()
        raw: io.BytesIO = self.buffer  # type: ignore[assignment]
        return raw.getvalue().decode("utf-8", "replace")


def call(argv: list[str], stdin: bytes = b"") -> Result:
    out, err = _Stdout(), io.StringIO()
    fake_in = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _patched_stdin(fake_in),
    ):
        code = main(argv)
    return Result(code, out.text(), err.getvalue())


@contextlib.contextmanager
def _patched_stdin(stream: io.TextIOWrapper) -> Iterator[None]:
    import sys

    saved = sys.stdin
    sys.stdin = stream
    try:
        yield
    finally:
        sys.stdin = saved


def digest(path: Path) -> str:
    """The stored events, every column, as one hash (raw SQLite, no store code)."""
    if not path.exists():
        return "absent"
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        rows = db.execute("SELECT * FROM events ORDER BY position").fetchall()
        aggregates = db.execute("SELECT * FROM aggregates ORDER BY aggregate_id").fetchall()
    return hashlib.sha256(repr((rows, aggregates)).encode()).hexdigest()


def check(result: Result, before: str, store: Path, case: str) -> None:
    assert isinstance(result.code, int), case
    assert "Traceback" not in result.err and "Traceback" not in result.out, case
    if result.code != 0:
        assert result.err.startswith("sss: error: "), (case, result.err)
        assert result.err.count("\n") == 1 and result.err.endswith("\n"), (case, result.err)
        assert digest(store) == before, case
    assert is_event_store(str(store)), case  # whatever happened, the store is still one


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pristine") / "s.db"
    with EventStore(str(path)) as es:
        for n in range(12):
            es.append(
                [NewEvent("Placed", {"n": n, "note": "é"}, metadata={"actor": "ann"})],
                aggregate_id=f"o-{n % 4}",
                aggregate_type="Order",
            )
        es.append([NewEvent("Tick")])
    return path


@pytest.fixture
def workdir(tmp_path: Path, pristine: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh store per case, plus the things a hostile -o may name. Cases run
    in it, so a store a case creates under a relative name lands there too."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "fifo")
    subprocess.run(["mknod", str(tmp_path / "dev"), "c", "1", "3"], capture_output=True)
    (tmp_path / "dir").mkdir()
    shutil.copy(pristine, tmp_path / "other.db")
    yield tmp_path


def fresh(workdir: Path, pristine: Path) -> Path:
    store = workdir / "s.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(f"{store}{suffix}")
    shutil.copy(pristine, store)
    return store


@functools.cache
def _parser() -> argparse.ArgumentParser:
    return build_parser()


@pytest.fixture(autouse=True)
def one_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    """Build the parser once: argparse takes 25 ms to build it, a case 5 ms to run."""
    monkeypatch.setattr(cli, "build_parser", _parser)


@functools.cache
def _options() -> dict[str, list[str]]:
    parser = _parser()
    commands: dict[str, list[str]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands[name] = [o for o in sub._option_string_actions if o.startswith("--")]
    return commands


def _values(rng: random.Random, workdir: Path, store: Path) -> list[str]:
    deep = "[" * rng.choice([50, 101, 5_000, 60_000])
    return [
        str(store), f"{store}-wal", f"{store}-shm", str(workdir / "other.db"),
        str(workdir / "fifo"), str(workdir / "dev"), str(workdir / "dir"),
        str(workdir / "out.jsonl"), str(workdir / "r.html"), "/nonexistent/x.html", "-",
        "postgresql://nobody@127.0.0.1:1/x", "", " ", "o-1", "o-2", "Order", "Placed",
        "0", "1", "3", "-1", "99999", "9" * 30, "9" * 5000, "1e999", "nan",
        "-2h", "-99999999999d", "-1.5w", "now", "2024-05-01", "2024-05-01T12:00",
        "2024-05-01T12:00Z", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+01:00",
        "{}", '{"a": 1}', "[]", "null", deep, '{"a": ' + "1" * 5000 + "}", '{"a": NaN}',
        "\udcff", "x\udcffy", "é" * 3, "a" * 10_000, "mod:attr", "json:loads", "os:sep",
        "any", "no-stream", "00000000-0000-0000-0000-000000000000", "not-a-uuid",
        "@/nonexistent", "@" + str(store), "--", "-x", "--json", "--help",
    ]  # fmt: skip


def random_argv(rng: random.Random, workdir: Path, store: Path) -> list[str]:
    commands = _options()
    names = [n for n in commands if n not in SKIPPED_COMMANDS]
    values = _values(rng, workdir, store)
    if rng.random() < 0.05:  # sometimes no command, or a misspelt one
        return rng.sample(["verfy", "--version", "expot", str(store), "-o"], rng.randint(0, 2))
    command = rng.choice(names)
    argv = [command]
    if command == "migrate":
        argv += [str(store), rng.choice([str(workdir / "copy.db"), str(store), "-"])]
    elif rng.random() < 0.95:
        argv.append(rng.choice([str(store)] * 6 + values))
    if command in ("replay",) and rng.random() < 0.8:
        argv.append(rng.choice(["o-1", "o-9", "", "\udcff"]))
    if command == "import" and rng.random() < 0.8:
        argv.append(rng.choice(["-", str(workdir / "in.jsonl"), str(store), str(workdir / "dir")]))
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.75 and commands[command]:
            argv.append(rng.choice(commands[command]))
        argv.append(rng.choice(values))
    if command == "replicate":
        # --follow runs until it is stopped, by design; its loop has tests of its own.
        argv = [word for word in argv if word != "--follow"]
    return argv


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_the_command_line(seed: int, workdir: Path, pristine: Path) -> None:
    rng = random.Random(seed)
    (workdir / "in.jsonl").write_text('{"type": "A", "aggregate_id": "o-1"}\n')
    before = digest(pristine)
    for case in range(CLI_CASES):
        store = fresh(workdir, pristine)
        argv = random_argv(rng, workdir, store)
        stdin = rng.choice([b"", b'{"type": "B"}\n', b"[" * 5000, b"\xff\xfe"])
        result = call(argv, stdin)
        check(result, before, store, f"seed {seed} case {case}: {argv!r}")


# ---------------------------------------------------------------------------
# import


def _line(rng: random.Random, stored_ids: list[str]) -> bytes:
    aggregate = rng.choice(["o-1", "o-2", "n-1", None])
    record: dict[str, object] = {"type": rng.choice(["Placed", "Shipped", "X"])}
    if aggregate is not None:
        record["aggregate_id"] = aggregate
        if rng.random() < 0.3:
            record["aggregate_type"] = rng.choice(["Order", "Other"])
    if rng.random() < 0.6:
        record["data"] = {"n": rng.randint(-5, 5)}
    roll = rng.random()
    hostile: list[object] = [
        ("data", "[" * rng.choice([99, 101, 20_000])),
        ("data", {"n": 2**64}),
        ("data", [1]),
        ("data", {"s": "\udcff"}),
        ("data", {"s": "\x00"}),
        ("metadata", "x"),
        ("type", ""),
        ("type", 5),
        ("event_id", "nope"),
        ("event_id", rng.choice(stored_ids)),
        ("occurred_at", rng.choice(["2024-05-01T12:00", "-99999999999d", "2024-05-01Z", 3])),
        ("expected_version", rng.choice([0, 1, 7, -1, "any", "no-stream", "soon", 2**70])),
        ("schema_version", rng.choice([0, 1, 2, True, 2**70])),
        ("position", 1),
        ("surprise", 1),
    ]
    if roll < 0.35:
        key, value = rng.choice(hostile)  # type: ignore[misc]
        record[key] = value
    text = json.dumps(record)
    if isinstance(record.get("data"), str) and record["data"].startswith("["):  # type: ignore[union-attr]
        text = text.replace(json.dumps(record["data"]), str(record["data"]))
    raw = text.encode("utf-8", "surrogatepass")
    special = rng.random()
    if special < 0.03:
        raw = b"\xff\xfe not utf-8"
    elif special < 0.06:
        raw = b'{"type": "A", "data": {"n": ' + b"9" * 5000 + b"}}"
    elif special < 0.09:
        raw = b'{"type": "A", "data": {"n": NaN}}'
    elif special < 0.12:
        raw = b"   "
    elif special < 0.14:
        raw = b"[1, 2]"
    elif special < 0.16:
        raw = b'{"type": "A"'
    return raw + rng.choice([b"\n", b"\r\n"])


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_import(seed: int, workdir: Path, pristine: Path) -> None:
    rng = random.Random(1000 + seed)
    with EventStore(str(pristine), readonly=True) as es:
        stored_ids = [event.event_id for event in es.read()]
        head = es.head()
        exported = b"".join(json.dumps(e.to_dict()).encode() + b"\n" for e in es.read())
    before = digest(pristine)
    source = workdir / "in.jsonl"
    outcomes = {"ok": 0, "refused": 0}
    for case in range(IMPORT_CASES):
        store = fresh(workdir, pristine)
        lines = [_line(rng, stored_ids) for _ in range(rng.randint(1, 8))]
        if rng.random() < 0.2:  # an export of the store, then new lines
            lines.insert(0, exported)
        data = (b"\xef\xbb\xbf" if rng.random() < 0.1 else b"") + b"".join(lines)
        source.write_bytes(data)
        result = call(["import", str(store), str(source)])
        case_name = f"seed {seed} case {case}: {data[:300]!r}"
        check(result, before, store, case_name)
        if result.code == 0:
            outcomes["ok"] += 1
            with EventStore(str(store), readonly=True) as es:
                assert es.verify().ok, case_name
                positions = [event.position for event in es.read()]
            assert positions == list(range(1, len(positions) + 1)), case_name
            assert len(positions) - head <= data.count(b"\n"), case_name
            # Running the same file again imports nothing.
            again = digest(store)
            rerun = call(["import", str(store), str(source)])
            assert rerun.code == 0, (case_name, rerun)
            assert "imported 0 events" in rerun.out or "nothing to import" in rerun.out, case_name
            assert digest(store) == again, case_name
        else:
            outcomes["refused"] += 1
            assert "nothing was imported" in result.err, (case_name, result.err)
            assert "line " in result.err, (case_name, result.err)
    # The generator reaches both outcomes, so neither path goes untested.
    assert outcomes["ok"] > IMPORT_CASES // 10 and outcomes["refused"] > IMPORT_CASES // 10

"""`sss demo`, `sss open` and what every command shares: help, usage errors, interrupts."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import workbench.cli.app as app
from store import EventStore, NotFoundError, StoreError
from workbench.cli import build_parser, main
from workbench.cli.common import CliError


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert err.startswith("sss: error: "), err
    assert err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


class FakeTui:
    """Stands in for workbench.tui.run and records how it was called."""

    def __init__(self, code: int = 0) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.code = code

    def __call__(self, path: str, **kwargs: Any) -> int:
        self.calls.append((path, kwargs))
        return self.code


@pytest.fixture
def tui(monkeypatch: pytest.MonkeyPatch) -> FakeTui:
    fake = FakeTui()
    monkeypatch.setattr(app, "_tui_run", lambda: fake)
    return fake


COMMANDS: list[str] = build_parser().get_default("commands")
"""Every command the CLI registers, from its own registry."""


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(capsys, command: str) -> None:
    code, out, err = run(capsys, command, "--help")
    assert (code, err) == (0, "")
    assert out.startswith(f"usage: sss {command}")


def test_top_level_help_lists_every_command(capsys) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ([], "choose a command"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["events"], "the following arguments are required: PATH"),
        (["events", "x.db", "--colour"], "unrecognized arguments: --colour"),
        (["append", "x.db"], "the following arguments are required: --type"),
        (["demo", "--events", "many"], "invalid int value: 'many'"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(capsys, args: list[str], fragment: str) -> None:
    code, out, err = run(capsys, *args)
    assert code == 2 and out == ""
    assert_one_line_error(code, err, fragment)


def test_main_reads_sys_argv_when_called_without_arguments(
    capsys, monkeypatch, tmp_path: Path
) -> None:
    path = tmp_path / "argv.db"
    monkeypatch.setattr(sys, "argv", ["sss", "append", str(path), "--type", "Pinged"])
    assert main() == 0
    assert json.loads(capsys.readouterr().out)["type"] == "Pinged"


def test_keyboard_interrupt_exits_130(capsys, monkeypatch, tmp_path: Path) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("workbench.cli.audit.collect_stats", interrupted)
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    code, _, err = run(capsys, "stats", path)
    assert code == 130
    assert_one_line_error(code, err, "interrupted")


def test_build_parser_registers_every_command_the_readme_lists() -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^sss ([a-z][a-z-]*)", readme, flags=re.M))
    parser = build_parser()
    assert documented == set(COMMANDS) == set(parser.parse_args(["stats", "x"]).commands)
    assert {"report", "migrate"} <= documented and len(COMMANDS) == len(set(COMMANDS))


def test_a_multi_line_error_is_printed_on_one_line(capsys, tmp_path: Path) -> None:
    """A message holding line breaks (here from a file name) is joined into one line."""
    code, out, err = run(capsys, "events", tmp_path / "no\nsuch.db")
    assert out == ""
    assert_one_line_error(code, err, "no such.db", "does not exist")
    code, _, err = run(capsys, "verify", tmp_path / "two\r\nlines\n.db")
    # The CR is shown escaped (it could overwrite the line); the LFs become spaces.
    assert_one_line_error(code, err, "two\\r lines .db")


# ---------------------------------------------------------------------------
# demo


def test_demo_builds_a_store_and_opens_it_read_only(capsys, tui: FakeTui, tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    code, out, err = run(capsys, "demo", path, "--events", 400, "--seed", 3)
    assert (code, err) == (0, "")
    assert f"demo store {path}: 400 events (seed 3)" in out
    assert "\\n" not in out and len(out.splitlines()) == 3  # its summary lines, each on its own
    assert tui.calls == [(str(path), {"readonly": True})]
    with EventStore(str(path), readonly=True) as es:
        assert es.head() == 400 and es.verify().ok


def test_demo_no_open_and_force(capsys, tui: FakeTui, tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    assert run(capsys, "demo", path, "--events", 300, "--no-open")[0] == 0
    assert tui.calls == []
    before = path.stat().st_size
    code, out, err = run(capsys, "demo", path, "--events", 200, "--no-open")
    assert (code, err) == (0, "") and "exists (300 events): left as it is" in out
    assert path.stat().st_size == before
    assert run(capsys, "demo", path)[0] == 0  # run again: the TUI opens the same store
    assert tui.calls == [(str(path), {"readonly": True})]
    (tmp_path / "notes.db").write_text("not a store")
    code, _, err = run(capsys, "demo", tmp_path / "notes.db", "--no-open")
    assert_one_line_error(code, err, "cannot be opened")
    assert (tmp_path / "notes.db").read_text() == "not a store"
    assert run(capsys, "demo", path, "--events", 200, "--no-open", "--force")[0] == 0
    with EventStore(str(path), readonly=True) as es:
        assert es.head() == 200


def test_demo_defaults_to_demo_db(capsys, tui: FakeTui, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert run(capsys, "demo", "--events", 150, "--no-open")[0] == 0
    assert (tmp_path / "demo.db").exists()


def test_demo_without_a_tui_prints_the_summary(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(app, "_tui_run", lambda: None)
    code, out, _ = run(capsys, "demo", tmp_path / "d.db", "--events", 150)
    assert code == 0
    assert "150 events" in out and "the TUI is not available" in out


def test_demo_rejects_nonsense(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, "demo", tmp_path / "d.db", "--events", 0)
    assert_one_line_error(code, err, "--events must be at least 1")
    code, _, err = run(capsys, "demo", tmp_path, "--force", "--no-open")
    assert_one_line_error(code, err, "is a directory")


def test_tui_lookup_finds_the_real_entry_point() -> None:
    import workbench.tui

    assert app._tui_run() is workbench.tui.run


def test_open_starts_the_installed_tui(capsys, monkeypatch, tmp_path: Path) -> None:
    """The real lookup: only the TUI's entry point itself is replaced."""
    import workbench.tui

    fake = FakeTui(code=0)
    monkeypatch.setattr(workbench.tui, "run", fake)
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    assert run(capsys, "open", path) == (0, "", "")
    assert fake.calls == [(str(path), {"readonly": True})]


# ---------------------------------------------------------------------------
# open


def test_open_is_read_only_unless_write(capsys, tui: FakeTui, tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    assert run(capsys, "open", path)[0] == 0
    assert run(capsys, "open", path, "--write")[0] == 0
    assert tui.calls == [(str(path), {"readonly": True}), (str(path), {"readonly": False})]


def test_open_passes_the_exit_code_on(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(app, "_tui_run", lambda: FakeTui(code=3))
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    assert run(capsys, "open", path)[0] == 3


def test_open_loads_reducers_and_upcasters(
    capsys, tui: FakeTui, monkeypatch, tmp_path: Path
) -> None:
    (tmp_path / "domain_rules.py").write_text(
        textwrap.dedent(
            """
            from store import Reducers, Upcasters
            reducers = Reducers()
            upcasters = Upcasters()
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    code, _, err = run(capsys, "open", path, "--reducers", "domain_rules:reducers",
                       "--upcasters", "domain_rules:upcasters")  # fmt: skip
    assert (code, err) == (0, "")
    [(_, kwargs)] = tui.calls
    assert type(kwargs["reducers"]).__name__ == "Reducers"
    assert type(kwargs["upcasters"]).__name__ == "Upcasters"
    assert kwargs["readonly"] is True


def test_open_errors(capsys, tui: FakeTui, monkeypatch, tmp_path: Path) -> None:
    code, _, err = run(capsys, "open", tmp_path / "missing.db")
    assert_one_line_error(code, err, "missing.db", "does not exist")
    code, _, err = run(capsys, "open", tmp_path / "x.db", "--reducers", "nope_nope_nope:r")
    assert_one_line_error(code, err, "--reducers", "nope_nope_nope")
    assert tui.calls == []
    monkeypatch.setattr(app, "_tui_run", lambda: None)
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    code, _, err = run(capsys, "open", path)
    assert_one_line_error(code, err, "TUI is not available")


def test_short_names_for_titles_and_file_names() -> None:
    from workbench.locations import is_url, short_name

    url = "postgresql://me:pw@db.example:5432/shop?options=-csearch_path%3Dsales"
    assert is_url(url) and is_url("postgres://h/db") and not is_url("shop.db")
    assert short_name(url) == "shop.sales"
    assert short_name("postgresql://me@db.example/shop") == "shop"
    assert short_name("/data/shop.db") == "shop"
    assert "pw" not in short_name(url)


# ---------------------------------------------------------------------------
# the error funnel


@pytest.mark.parametrize(
    ("raised", "code", "line"),
    [
        (lambda: CliError("bad\nthing", code=3), 3, "sss: error: bad thing\n"),
        (lambda: CliError("plain"), 1, "sss: error: plain\n"),
        (lambda: NotFoundError("gone"), 1, "sss: error: gone\n"),
        (lambda: StoreError(""), 1, "sss: error: StoreError\n"),
        (
            lambda: FileNotFoundError(2, "No such file or directory", "/x/y"),
            1,
            "sss: error: /x/y: No such file or directory\n",
        ),
        (lambda: OSError("disk on fire"), 1, "sss: error: disk on fire\n"),
        (
            lambda: OSError(28, "No space left on device"),
            1,
            "sss: error: [Errno 28] No space left on device\n",
        ),
        (lambda: OSError(), 1, "sss: error: OSError\n"),
        (lambda: ValueError("odd value"), 1, "sss: error: odd value\n"),
        (lambda: KeyboardInterrupt(), 130, "sss: error: interrupted\n"),
    ],
)
def test_every_error_leaves_main_as_one_line_and_its_status(
    capsys, monkeypatch, tmp_path: Path, raised: Any, code: int, line: str
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise raised()

    monkeypatch.setattr("workbench.cli.audit.collect_stats", fail)
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    assert run(capsys, "stats", path) == (code, "", line)


def test_a_closed_pipe_ends_quietly_with_141(capsys, monkeypatch, tmp_path: Path) -> None:
    def closed(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError

    monkeypatch.setattr("workbench.cli.audit.collect_stats", closed)
    monkeypatch.setattr("workbench.cli._silence_stdout", lambda: None)
    path = tmp_path / "s.db"
    EventStore(str(path)).close()
    assert run(capsys, "stats", path) == (141, "", "")

"""The project's shape: no import cycle between the modules of ``store`` or of
``workbench`` (imports under TYPE_CHECKING count), no module over the size a
reader takes in at once, and the one-way boundary (store imports nothing of
workbench or UI libraries)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STORE = ROOT / "store"
PACKAGES = ("store", "workbench")
MAX_LINES = 600


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every project module this file imports, wherever the import statement is
    (module level, inside TYPE_CHECKING, inside a function)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] in PACKAGES)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] not in PACKAGES:
                continue
            modules = {f"{target}.{alias.name}" for alias in node.names}
            modules = {m for m in modules if _exists(m)}  # "from . import paging"
            found.update(modules or {target})
    # A module's own packages are imported before it in any case: not an edge.
    return {m for m in found if m != name and not name.startswith(m + ".")}


def _exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _graph(package: str = "store") -> dict[str, set[str]]:
    files = sorted((ROOT / package).rglob("*.py"))
    modules = {_module(f) for f in files}
    graph = {}
    for f in files:
        # A package's __init__ runs when a submodule is imported; an import of
        # a package means its __init__.
        graph[_module(f)] = {m for m in _imports(f) if m in modules}
    return graph


@pytest.mark.parametrize(
    ("package", "known"),
    [("store", ("store.appending", "store.postgres.backend")),
     ("workbench", ("workbench.demo.world", "workbench.tui.main"))],
)  # fmt: skip
def test_modules_import_no_cycle(package: str, known: tuple[str, ...]) -> None:
    graph = _graph(package)
    assert all(name in graph for name in known)
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_the_cycle_check_sees_type_checking_imports(tmp_path: Path) -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .eventstore import X\n"
    probe = STORE / "_layout_probe.py"
    probe.write_text(source)
    try:
        assert "store.eventstore" in _imports(probe)
    finally:
        probe.unlink()


@pytest.mark.parametrize("package", PACKAGES)
def test_no_module_is_over_600_lines(package: str) -> None:
    files = (ROOT / package).rglob("*.py")
    sizes = {_module(f): len(f.read_text().splitlines()) for f in files}
    assert len(sizes) > 15
    assert {m: n for m, n in sizes.items() if n > MAX_LINES} == {}


def test_the_store_imports_no_ui_dataframe_or_workbench_library() -> None:
    code = (
        "import sys, store, store.eventstore, store.copying, store.sqlite, store.postgres\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('workbench', 'textual', 'rich', 'pandas', 'pyarrow'))\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]"

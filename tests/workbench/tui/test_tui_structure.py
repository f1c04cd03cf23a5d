"""The TUI's shape: imports run one way, widgets never reach for the App, modules stay small.

Every import counts, also those under ``TYPE_CHECKING`` and inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import workbench.tui

PACKAGE = "workbench.tui"
ROOT = Path(workbench.tui.__file__).parent
MODULES = {
    (PACKAGE if path.stem == "__init__" else f"{PACKAGE}.{path.stem}"): path
    for path in sorted(ROOT.glob("*.py"))
}


def imports_of(name: str, path: Path) -> set[str]:
    """The TUI modules ``name`` imports, anywhere in its source."""
    package = PACKAGE
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package if node.level == 1 else package.rsplit(".", node.level - 1)[0]
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            targets = [module]
            if module == package:  # from . import columns
                targets = [f"{package}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target in MODULES and target != name)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_the_graph_reads_relative_and_lazy_imports() -> None:
    assert f"{PACKAGE}.app" in GRAPH[PACKAGE]  # imported inside run()
    assert f"{PACKAGE}.columns" in GRAPH[f"{PACKAGE}.timeline"]  # from . import columns
    assert f"{PACKAGE}.main" in GRAPH[f"{PACKAGE}.app"]


def test_no_import_cycle_among_tui_modules() -> None:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for target in sorted(GRAPH[name]):
            assert state.get(target) != "open", " -> ".join([*path, name, target])
            if target not in state:
                visit(target, [*path, name])
        state[name] = "done"

    for name in GRAPH:
        if name not in state:
            visit(name, [])


def test_only_the_entry_point_imports_the_app() -> None:
    importers = {name for name, targets in GRAPH.items() if f"{PACKAGE}.app" in targets}
    assert importers == {PACKAGE}


def test_widgets_are_given_their_store_rather_than_reaching_into_the_app() -> None:
    for name, path in MODULES.items():
        source = path.read_text()
        for reach in ("self.app.store", "self.app.handles", "app.side_store", "WorkbenchApp"):
            if name not in (PACKAGE, f"{PACKAGE}.app"):
                assert reach not in source, f"{name} uses {reach}"


def test_modules_stay_under_six_hundred_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert max(sizes.values()) <= 600, sizes

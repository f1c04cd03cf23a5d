"""Mutation testing: put one small bug at a time into a module and check that
some test fails.

Run by hand, like the benchmarks, never in CI::

    nice -n 19 .venv/bin/python benchmarks/mutation.py store/integrity.py store/checks.py
    nice -n 19 .venv/bin/python benchmarks/mutation.py --tests tests/workbench/test_cli_app.py \
        workbench/cli/__init__.py
    # a random sample of all of store/, in three shards, an hour each, with PostgreSQL in one:
    nice .venv/bin/python benchmarks/mutation.py store --seed 2026 --shard 1/3 --budget 3600 \
        --json s1.jsonl
    SSS_TEST_POSTGRES_URL=postgresql://... nice .venv/bin/python benchmarks/mutation.py store \
        --postgres --seed 2026 --shard 3/3 --budget 3600 --json s3.jsonl

How it works:

1. The project (``store/``, ``workbench/``, ``tests/``, ``pyproject.toml``,
   ``README.md``) is copied to a temporary directory (in ``/dev/shm`` when
   there is one, so that the tests' fsyncs cost nothing; the tests' own
   temporary files go there too); every mutant is written there, so the
   checkout is never touched, even when the run is interrupted.
2. The chosen tests (default: ``tests/store`` without the ``slow`` and
   ``postgres`` markers) run once under ``coverage``, each test in its own
   coverage context, which tells for every source line which tests run it.
   pytest exit 1 (a test failed) or 2 (the mutant breaks collection) kills it;
   any other exit is reported as an error of the run, not counted.
3. Each mutant is one change to the syntax tree of one module: a comparison
   flipped (``<`` to ``<=``, ``==`` to ``!=``, ``in`` to ``not in`` ...),
   ``and``/``or`` swapped, a ``not`` dropped, ``+``/``-`` swapped, an integer
   constant moved by one, ``True``/``False`` swapped, a returned value
   replaced by ``None``, a condition replaced by ``True`` or ``False``, an
   augmented assignment inverted. Strings are not mutated (messages are
   checked by fragments, and every message mutant would survive or be
   killed for nothing). Docstrings and ``assert`` statements are left alone.
4. For each mutant only the tests that run its line are run, with ``-x``,
   the fastest first (the times come from the coverage run), so that a
   killed mutant is usually known after its quickest test; each run is a
   ``fork`` of the script with pytest and hypothesis already imported; a line run only
   at import (a module constant, a ``def``) gets every chosen test, fastest
   first. A failing run kills it; so does a run over 15 s plus five times
   what its tests took in the coverage run (at most ``--timeout``): the
   mutant hangs. A mutant that no test reaches survives.

5. A whole package is too many mutants for one sitting (``store/`` has about
   4,800). ``--seed S`` shuffles every mutant of every named module into one
   order and ``--shard k/n`` takes every n-th of it from the k-th, so several
   shards run side by side; ``--budget`` ends each after so many seconds,
   and whatever each has finished is a prefix of a random order: together
   a uniform random sample of the package's mutants, whose score estimates
   the package's (a sample of n has a 95% margin of about
   ``2 * sqrt(p * (1 - p) / n)``). ``--skip`` resumes a sample without
   repeating what earlier JSON lines hold; ``--only`` re-runs named mutants,
   for instance to check that a new test kills them.
   A mutant killed for a timeout is killed with its whole process group,
   so with ``--postgres`` its test's schema (``t_...``) is not dropped: drop
   those schemas after such a run.

The score per module is killed / (killed + survived). Surviving mutants are
printed with their line; ``benchmarks/README.md`` lists each one of the last
full run with the test that now kills it or why it is equivalent.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import functools
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ["store", "workbench", "tests", "pyproject.toml", "README.md"]

PLUGIN = '''
"""Coverage per test: each test runs in a context named by its node id; the
time each test takes is written beside the coverage data."""
import json
import random
import os
import coverage
import pytest

_durations = {}

_cov = coverage.Coverage(
    data_file=os.environ["MUTATION_COVERAGE_FILE"],
    source=[os.environ["MUTATION_SOURCE"]],
)
_cov.start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _cov.switch_context(item.nodeid)
    yield
    _cov.switch_context("")


def pytest_runtest_logreport(report):
    _durations[report.nodeid] = _durations.get(report.nodeid, 0.0) + report.duration


def pytest_unconfigure(config):
    _cov.stop()
    _cov.save()
    with open(os.environ["MUTATION_COVERAGE_FILE"] + ".durations", "w") as f:
        json.dump(_durations, f)
'''

COMPARE_SWAPS: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
BINOP_SWAPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.FloorDiv,
    ast.FloorDiv: ast.Mult,
    ast.Mod: ast.Mult,
    ast.BitOr: ast.BitAnd,
    ast.BitAnd: ast.BitOr,
}


@dataclass
class Mutant:
    index: int
    line: int
    description: str
    build: Callable[[], ast.Module]  # the mutated tree, made only when it is run
    last_line: int = 0  # the changed code may span lines; coverage may see only some


def _span(node: ast.AST) -> tuple[int, int]:
    """The lines of the code a mutant changes. Python reports the line of a
    multi-line condition where its first operand is evaluated, not the line of
    its ``if``: for a forced condition, the lines of the condition count."""
    if isinstance(node, (ast.If, ast.While)):
        node = node.test
    first = getattr(node, "lineno", 0)
    return first, getattr(node, "end_lineno", None) or first


def _skip_ids(tree: ast.Module) -> set[int]:
    """Nodes never mutated: docstrings, asserts, type annotations."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(body, list)
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            skipped.update(id(n) for n in ast.walk(body[0]))
        if isinstance(node, ast.Assert):
            skipped.update(id(n) for n in ast.walk(node))
        for annotation in _annotations(node):
            skipped.update(id(n) for n in ast.walk(annotation))
    return skipped


def _annotations(node: ast.AST) -> Iterator[ast.AST]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        if node.returns is not None:
            yield node.returns
        args = node.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None and arg.annotation is not None:
                yield arg.annotation
    if isinstance(node, ast.AnnAssign):
        yield node.annotation


def _changes(node: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """The mutations of one node: (description, the node to put in its place)."""
    if isinstance(node, ast.Compare):
        for k, op in enumerate(node.ops):
            cmp_swap = COMPARE_SWAPS.get(type(op))
            if cmp_swap is not None:
                compare = copy.deepcopy(node)
                compare.ops[k] = cmp_swap()
                yield f"{type(op).__name__} -> {cmp_swap.__name__}", compare
    elif isinstance(node, ast.BoolOp):
        boolop = copy.deepcopy(node)
        boolop.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        yield f"{type(node.op).__name__} -> {type(boolop.op).__name__}", boolop
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "not dropped", copy.deepcopy(node.operand)
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        swap = BINOP_SWAPS.get(type(node.op))
        if swap is not None:
            changed = copy.deepcopy(node)
            changed.op = swap()
            sign = "=" if isinstance(node, ast.AugAssign) else ""
            yield f"{type(node.op).__name__}{sign} -> {swap.__name__}{sign}", changed
    elif isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool):
            yield f"{value} -> {not value}", ast.Constant(not value)
        elif isinstance(value, int):
            yield f"{value} -> {value + 1}", ast.Constant(value + 1)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return None", ast.Return(value=None)
    elif isinstance(node, (ast.If, ast.While)):
        for flag in (True, False):
            if isinstance(node, ast.While) and flag:
                continue  # an endless loop: only the timeout would see it
            branch = copy.deepcopy(node)
            branch.test = ast.Constant(flag)
            yield f"condition -> {flag}", branch


class _Replace(ast.NodeTransformer):
    def __init__(self, target: int, replacement: ast.AST) -> None:
        self.target = target
        self.replacement = replacement

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if id(node) == self.target:
            return self.replacement
        return super().generic_visit(node)


def mutants(source: str) -> Iterator[Mutant]:
    tree = ast.parse(source)
    skipped = _skip_ids(tree)
    nodes = list(ast.walk(tree))
    index = 0
    for position, node in enumerate(nodes):
        if id(node) in skipped:
            continue
        for description, replacement in _changes(node):
            index += 1
            first, last = _span(node)
            yield Mutant(
                index,
                getattr(node, "lineno", 0),
                description,
                functools.partial(_build, tree, position, replacement),
                max(first, last),
            )


def _build(tree: ast.Module, position: int, replacement: ast.AST) -> ast.Module:
    copied = copy.deepcopy(tree)
    # deepcopy keeps the walk order, so the n-th node of the copy is ours.
    target = next(n for k, n in enumerate(ast.walk(copied)) if k == position)
    new_tree = _Replace(id(target), replacement).visit(copied)
    ast.fix_missing_locations(new_tree)
    return new_tree


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float) -> int | None:
    """pytest's exit status; None for a timeout. A mutant that breaks the
    import of a conftest or of a named test module makes pytest exit 4 (usage
    error): that counts as exit 2."""
    if hasattr(os, "fork"):
        code, output = _forked(cmd[3:], cwd, env, timeout)
    else:
        try:
            result = subprocess.run(
                cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            return None
        code, output = result.returncode, result.stdout + result.stderr
    if code == 4 and ("while loading conftest" in output or "ERROR collecting" in output):
        return 2  # the mutant breaks an import: named tests are then "not found"
    return code


def _preload() -> None:
    """Import the third-party test stack once, in this process, so that every
    forked pytest starts with it loaded (a fresh interpreter spends a second or
    more importing hypothesis alone). Nothing of the project is imported here:
    each child imports the mutated module afresh."""
    import importlib

    for name in ("pytest", "hypothesis", "hypothesis.strategies", "orjson", "sqlite3"):
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def _forked(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int | None, str]:
    """Run ``pytest.main(args)`` in a forked child of this process."""
    out = cwd / ".mutation-output"
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            os.setpgrp()  # a timeout kills the child and whatever it started
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(env)
            sys.path.insert(0, str(cwd))
            sys.dont_write_bytecode = True
            tempfile.tempdir = None
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            # hypothesis is imported already, so pytest cannot rewrite its plugin's asserts.
            quiet = ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
            code = int(pytest.main([*quiet, *args]))
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # the child must end here, whatever happens
            import traceback

            traceback.print_exc()
        os._exit(code)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, ""
        time.sleep(0.02)
    output = out.read_text(errors="replace") if out.exists() else ""
    return os.waitstatus_to_exitcode(status), output


def copy_project(prefix: str, names: list[str] = COPIED) -> Path:
    """A copy of the project's ``names`` in a new temporary directory, in
    ``/dev/shm`` when there is one (the tests' fsyncs then cost nothing)."""
    shm = Path("/dev/shm")
    scratch = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=scratch))
    try:
        for name in names:
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, work / name)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return work


def coverage_map(work: Path, env: dict[str, str], tests: list[str], marker: str) -> Path:
    data = work / ".mutation-coverage"
    env = {**env, "MUTATION_COVERAGE_FILE": str(data), "MUTATION_SOURCE": str(work)}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    cmd += ["-p", "_mutation_plugin", "-m", marker, *tests]
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"the tests fail before any mutation:\n{result.stdout[-3000:]}")
    return data


def _modules(names: list[str]) -> list[str]:
    """Source files named, a directory standing for every ``.py`` under it."""
    found: list[str] = []
    for name in names:
        path = ROOT / name
        if path.is_dir():
            found += sorted(str(p.relative_to(ROOT)) for p in path.rglob("*.py"))
        else:
            found.append(name)
    return found


def _key(label: str) -> tuple[str, ...]:
    """``module#index`` (this source's numbering) or ``module:line:mutation``
    (which outlives edits elsewhere in the module)."""
    if "#" in label:
        return tuple(label.rsplit("#", 1))
    module, line, description = label.split(":", 2)
    return module, line, description.strip()


def _plan(args: argparse.Namespace) -> list[tuple[str, Mutant]]:
    """The mutants this run tries, in the order it tries them.

    With ``--seed`` every mutant of every module is shuffled into one order
    (the same for every shard of the same seed), and ``--shard k/n`` takes
    every n-th of it from the k-th: whatever prefix a ``--budget`` lets each
    shard finish, the union is a uniform random sample of all the mutants.
    """
    low, high = (int(x) for x in args.lines.split("-")) if args.lines else (0, 10**9)
    only = {_key(x) for x in args.only or []}
    planned = [
        (module, mutant)
        for module in _modules(args.modules)
        for mutant in mutants((ROOT / module).read_text())
        if low <= mutant.line <= high
        and (
            not only
            or (module, str(mutant.index)) in only
            or (module, str(mutant.line), mutant.description) in only
        )
    ]
    if args.seed is not None:
        random.Random(args.seed).shuffle(planned)
    k, n = (int(x) for x in args.shard.split("/"))
    done = set()
    for name in args.skip or []:
        with open(name) as f:
            done |= {(r["module"], r["index"]) for r in map(json.loads, f)}
    return [(m, mutant) for m, mutant in planned[k - 1 :: n] if (m, mutant.index) not in done]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "modules", nargs="+", help="source files or directories, e.g. store/integrity.py or store"
    )
    parser.add_argument("--tests", nargs="+", default=["tests/store"])
    parser.add_argument("--marker", default=None, help="default: not slow and not postgres")
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="keep SSS_TEST_POSTGRES_URL and run the postgres tests too (marker: not slow)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds per mutant at most; a run over 15 s + 5 times what its tests "
        "took in the coverage run counts as a hang too",
    )
    parser.add_argument("--lines", help="only mutants on these lines, e.g. 40-80")
    parser.add_argument(
        "--only",
        nargs="+",
        help="only these mutants: store/tree.py#12 or 'store/tree.py:85:Lt -> LtE'",
    )
    parser.add_argument("--seed", type=int, help="shuffle all the mutants with this seed")
    parser.add_argument("--shard", default="1/1", help="k/n: every n-th mutant from the k-th")
    parser.add_argument(
        "--skip", nargs="+", help="JSON-lines files of earlier runs: leave out their mutants"
    )
    parser.add_argument("--budget", type=float, help="start no mutant after this many seconds")
    parser.add_argument(
        "--json", help="write one JSON line per mutant to this file, as each one ends"
    )
    args = parser.parse_args()
    marker = args.marker or ("not slow" if args.postgres else "not slow and not postgres")

    import coverage

    # A plain kill must still restore nothing and remove the copy: finally runs.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = copy_project("sss-mutation-")
    results: dict[str, dict[str, int]] = {}
    out = open(args.json, "a") if args.json else None  # noqa: SIM115
    try:
        (work / "_mutation_plugin.py").write_text(PLUGIN)
        (work / "tmp").mkdir()
        env = {**os.environ, "PYTHONPATH": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
        env["TMPDIR"] = str(work / "tmp")
        if not args.postgres:
            env.pop("SSS_TEST_POSTGRES_URL", None)
        elif not env.get("SSS_TEST_POSTGRES_URL"):
            sys.exit("--postgres needs SSS_TEST_POSTGRES_URL")
        _preload()
        planned = _plan(args)
        started = time.monotonic()
        data_file = coverage_map(work, env, args.tests, marker)
        data = coverage.CoverageData(basename=str(data_file))
        data.read()
        durations = json.loads(Path(f"{data_file}.durations").read_text())
        print(f"coverage map of {args.tests} in {time.monotonic() - started:.0f} s; "
              f"{len(planned)} mutants planned", flush=True)  # fmt: skip
        contexts: dict[str, dict[int, list[str]]] = {}
        for module, mutant in planned:
            if args.budget is not None and time.monotonic() - started > args.budget:
                print(f"budget of {args.budget:.0f} s spent", flush=True)
                break
            if module not in contexts:
                contexts[module] = data.contexts_by_lineno(str(work / module))
            record = run_one(work, env, contexts[module], durations, module, mutant, args)
            tally = results.setdefault(module, {"killed": 0, "survived": 0, "errors": 0})
            tally[record["outcome"]] += 1
            if out is not None:
                out.write(json.dumps(record) + "\n")
                out.flush()
    finally:
        if out is not None:
            out.close()
        shutil.rmtree(work, ignore_errors=True)
    print("\nmodule                          killed  survived  score")
    for module, tally in sorted(results.items()):
        killed, survived = tally["killed"], tally["survived"]
        total = killed + survived
        score = 100.0 * killed / total if total else 100.0
        print(f"{module:<30} {killed:>7} {survived:>9} {score:>5.1f}%")
    killed = sum(t["killed"] for t in results.values())
    survived = sum(t["survived"] for t in results.values())
    if killed + survived:
        print(
            f"{'all':<30} {killed:>7} {survived:>9} {100.0 * killed / (killed + survived):>5.1f}%"
        )


def run_one(
    work: Path,
    env: dict[str, str],
    contexts: dict[int, list[str]],
    durations: dict[str, float],
    module: str,
    mutant: Mutant,
    args: argparse.Namespace,
) -> dict[str, object]:
    """Put one mutant in, run the tests that reach it, put the module back."""
    target = work / module
    original = target.read_text()
    # The snapshot plugin imports textual at start-up: seconds per mutant.
    quiet = [] if any("tui" in t for t in args.tests) else ["-p", "no:textual-snapshot"]
    ran = {
        c
        for line in range(mutant.line, max(mutant.line, mutant.last_line) + 1)
        for c in contexts.get(line, [])
    }
    if ran == {""}:  # run only at import (a constant, a def): every test may care
        ran = set(durations)
    tests = sorted((c for c in ran if c), key=lambda c: (durations.get(c, 0.0), c))
    lines = original.splitlines()
    code_line = lines[mutant.line - 1].strip() if 0 < mutant.line <= len(lines) else ""
    label = f"{module}#{mutant.index}:{mutant.line} {mutant.description}"
    record: dict[str, object] = {
        "module": module,
        "index": mutant.index,
        "line": mutant.line,
        "mutation": mutant.description,
        "code": code_line,
        "tests": len(tests),
    }
    started = time.monotonic()
    if not tests:
        record.update(outcome="survived", why="no test runs this line")
        print(f"SURVIVED {label} (no test runs this line)", flush=True)
        return record
    try:
        target.write_text(ast.unparse(mutant.build()))
        cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
        cmd += ["-p", "no:xdist", "-p", "no:randomly", *quiet, *tests]
        # A hang is known long before --timeout: these tests took `expected`
        # seconds under coverage, which is slower than a plain run.
        expected = sum(durations.get(t, 1.0) for t in tests)
        code = run(cmd, work, env, min(args.timeout, 15.0 + 5 * expected))
    finally:
        target.write_text(original)
    record["seconds"] = round(time.monotonic() - started, 2)
    if code not in (None, 0, 1, 2):  # internal error, usage error, nothing collected
        record.update(outcome="errors", why=f"pytest exit {code}")
        if os.environ.get("MUTATION_DEBUG"):
            print((work / ".mutation-output").read_text(errors="replace")[-3000:])
        print(f"ERROR    {label} (pytest exit {code})", flush=True)
    elif code == 0:
        record.update(outcome="survived", why="")
        count = "all" if ran == {""} else len(tests)
        print(f"SURVIVED {label} ({count} tests)", flush=True)
    else:
        record.update(outcome="killed", why="timeout" if code is None else f"exit {code}")
        if code == 1:
            record["killer"] = _first_failure(work)
        print(f"killed   {label} ({record['why']})", flush=True)
    return record


def _first_failure(work: Path) -> str:
    """The node id of the test that failed, from pytest's short summary."""
    output = (work / ".mutation-output").read_text(errors="replace")
    for line in output.splitlines():
        if line.startswith("FAILED "):
            return line[len("FAILED ") :].split(" - ")[0]
    return ""


if __name__ == "__main__":
    main()

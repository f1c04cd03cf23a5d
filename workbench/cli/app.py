"""``sss demo`` and ``sss open``: the commands that lead to the TUI."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from typing import Any

from workbench.locations import is_url, label, stored_events
from workbench.safetext import shown

from .common import CliError, add_reducer_arguments, user_code


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="build a realistic demo store and open the TUI",
        description=(
            "Generate a deterministic, realistic store (orders, customers, inventory, "
            "payments, shipments, support tickets; months of business time) and open it "
            "read-only in the TUI. The same --seed gives the same events."
        ),
    )
    demo.add_argument("path", nargs="?", default="demo.db", metavar="PATH", help="default demo.db")
    demo.add_argument(
        "--events", type=int, default=20_000, metavar="N", help="how many events (default 20000)"
    )
    demo.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    demo.add_argument("--no-open", action="store_true", help="do not open the TUI afterwards")
    demo.add_argument("--force", action="store_true", help="replace PATH if it exists")
    demo.set_defaults(func=run_demo)

    open_ = subparsers.add_parser(
        "open",
        help="browse a store in the TUI (read-only unless --write)",
        description="Open a store in the TUI, read-only unless --write.",
    )
    open_.add_argument("path", metavar="PATH", help="the store")
    add_reducer_arguments(open_)
    open_.add_argument("--write", action="store_true", help="allow writes (read-only by default)")
    open_.set_defaults(func=run_open)


def _tui_run() -> Callable[..., int] | None:
    """``workbench.tui.run``, or None when the TUI is not part of this install."""
    try:
        from workbench import tui
    except ModuleNotFoundError as e:
        if e.name in ("workbench.tui", "textual") or (e.name or "").startswith("textual."):
            return None
        raise
    run: Callable[..., int] | None = getattr(tui, "run", None)
    return run


def _remove_store(path: str) -> None:
    if os.path.isdir(path):
        raise CliError(f"{path} is a directory; give a file name for the demo store")
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def run_demo(args: argparse.Namespace) -> int:
    from workbench.demo import generate

    if args.events < 1:
        raise CliError("--events must be at least 1")
    if is_url(args.path):
        events = stored_events(args.path)
        if events:
            if args.force:
                raise CliError(
                    f"{label(args.path)} holds events, and --force does not delete a "
                    "server store; drop its schema or give the demo another one"
                )
            return _reopen_demo(args, events)
    elif args.path != ":memory:" and os.path.exists(args.path):
        if not args.force:
            # Running the demo again shows the store it built before.
            return _reopen_demo(args)
        _remove_store(args.path)
    summary = generate(args.path, events=args.events, seed=args.seed)
    sys.stdout.write(shown(summary.describe(), multiline=True) + "\n")
    if args.no_open or args.path == ":memory:":
        return 0
    return _open_read_only(args.path)


def _reopen_demo(args: argparse.Namespace, events: int | None = None) -> int:
    """Show the demo store built before; ``events`` when the caller has counted them."""
    from store import EventStore, StoreError

    if events is None:
        try:
            with EventStore(args.path, readonly=True) as es:
                events = es.head()
        except StoreError as e:
            raise CliError(
                f"{args.path} exists and cannot be opened ({e}); use --force to replace it"
            ) from e
    if not events:
        raise CliError(f"{args.path} exists but holds no events; use --force to replace it")
    again = "" if is_url(args.path) else "; --force builds it anew"
    action = "left as it is" if args.no_open else "opening it"
    sys.stdout.write(f"{shown(label(args.path))} exists ({events} events): {action}{again}\n")
    if args.no_open:
        return 0
    return _open_read_only(args.path)


def _open_read_only(path: str) -> int:
    """The demo store in the TUI, or where to look when the TUI is not installed."""
    run = _tui_run()
    if run is None:
        sys.stdout.write(
            f"the TUI is not available; browse it with: sss events {shown(label(path))}\n"
        )
        return 0
    sys.stdout.flush()
    return int(run(path, readonly=True) or 0)


def run_open(args: argparse.Namespace) -> int:
    reducers, upcasters = user_code(args)
    if not args.write and not is_url(args.path) and not os.path.exists(args.path):
        raise CliError(f"no event store at {args.path}: the file does not exist")
    run = _tui_run()
    if run is None:
        raise CliError("the TUI is not available in this install")
    kwargs: dict[str, Any] = {"readonly": not args.write}
    if reducers is not None:
        kwargs["reducers"] = reducers
    if upcasters is not None:
        kwargs["upcasters"] = upcasters
    return int(run(args.path, **kwargs) or 0)

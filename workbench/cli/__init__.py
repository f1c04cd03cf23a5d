"""The ``sss`` command line.

Every command module has ``register(subparsers)``; :func:`main` builds the parser,
runs the chosen command and turns every failure into one ``sss: error: ...`` line
on stderr with a non-zero exit status (2 for bad arguments, 1 for errors, 130 when
interrupted), never a traceback.

    $ sss demo --no-open
    $ sss events demo.db --aggregate-type Order --since -3d --limit 20
    $ sss replay demo.db ord-000042 --history
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from store import StoreError

from ..safetext import one_line
from . import (
    app,
    audit,
    correcting,
    migrate,
    proofs,
    read,
    recovery,
    replay,
    report,
    subscriptions,
    twoclocks,
    write,
)
from .common import CliError, join_relative_times

__all__ = ["build_parser", "main"]

_COMMAND_MODULES = [
    app,
    write,
    read,
    replay,
    twoclocks,
    audit,
    proofs,
    report,
    migrate,
    recovery,
    correcting,
    subscriptions,
]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error, and
    which suggests the closest option or command for a mistyped one."""

    argv: Sequence[str] = ()

    def _options(self) -> list[str]:
        """The option strings of the command named in ``argv`` (or of ``sss``)."""
        options = list(self._option_string_actions)
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for word in self.argv:
                    if word in action.choices:
                        return options + list(action.choices[word]._option_string_actions)
        return options

    def _suggestion(self, message: str) -> str:
        unknown = re.match(r"unrecognized arguments: (\S+)", message)
        if unknown:
            word, candidates = unknown.group(1).split("=")[0], self._options()
        else:
            choice = re.match(r"argument [^:]+: invalid choice: '([^']*)'", message)
            if not choice:
                return ""
            word = choice.group(1)
            candidates = [
                name
                for action in self._actions
                if isinstance(action, argparse._SubParsersAction)
                for name in action.choices
            ]
        close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
        return f"; did you mean {close[0]}?" if close else ""

    def error(self, message: str) -> NoReturn:
        line = one_line(message)
        hint = self._suggestion(line)
        sys.stderr.write(f"sss: error: {line}{hint} (see '{self.prog} --help')\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sss",
        description="System State Store: an append-only event log, and tools to audit it.",
        epilog="Run 'sss COMMAND --help' for a command's options.",
    )
    from store import __version__

    parser.add_argument("--version", action="version", version=f"sss {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in _COMMAND_MODULES:
        module.register(subparsers)
    parser.set_defaults(commands=list(subparsers.choices))
    return parser


def _error(message: str) -> None:
    # Messages quote names from the store and from the command line: shown escaped.
    sys.stderr.write(f"sss: error: {one_line(message)}\n")


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the exit flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass  # stdout is not a real file (embedded use); nothing will flush it at exit


def _os_error(e: OSError) -> str:
    if e.strerror and e.filename:
        return f"{e.filename}: {e.strerror}"
    return str(e) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``sss`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    arguments = join_relative_times(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    _Parser.argv = arguments
    try:
        args = parser.parse_args(arguments)
    except SystemExit as e:  # --help, --version, or a usage error already printed
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    func = getattr(args, "func", None)
    if func is None:
        _error(f"choose a command: {', '.join(args.commands)} (see 'sss --help')")
        return 2
    try:
        code = int(func(args) or 0)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # The reader went away (`sss events x.db | head`): not an error worth a word.
        _silence_stdout()
        return 141
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except CliError as e:
        _error(str(e))
        return e.code
    except StoreError as e:
        _error(str(e) or type(e).__name__)
        return 1
    except OSError as e:
        _error(_os_error(e))
        return 1
    except ValueError as e:
        _error(str(e) or type(e).__name__)
        return 1

"""``sss export --format sqlite``: the analysis database (see :mod:`workbench.analysis`)."""

from __future__ import annotations

import argparse
import sys

from workbench.inputs import load_user_object, open_store

from .common import CliError, read_filters

EPILOG = (
    "Example: sss export shop.db --format sqlite -o analysis.db, then "
    "datasette analysis.db --metadata analysis.metadata.json (pip install "
    "'system-state-store[datasette]'). Nested payload fields become columns "
    "named with '.' (address.zip); lists stay JSON text. --reducers and --upcasters "
    "apply to the states and changes of --format sqlite."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("--format sqlite")
    group.add_argument(
        "--reducers",
        metavar="MODULE:ATTR",
        help="a store.Reducers object to rebuild states and changes with "
        "(default: JSON merge patch)",
    )
    group.add_argument(
        "--upcasters", metavar="MODULE:ATTR", help="a store.Upcasters object for old events"
    )


class _Progress:
    """``exporting 12,000 / 50,000 events`` on stderr, redrawn in place; only on a terminal."""

    def __init__(self) -> None:
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        sys.stderr.write(f"\rexporting {done:,} / {total:,} events")
        sys.stderr.flush()
        self.shown = True

    def end(self) -> None:
        if self.shown:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from workbench.analysis import export

    if args.output is None or args.output == "-":
        raise CliError("--format sqlite needs -o ANALYSIS.db (a database is not written to stdout)")
    if getattr(args, "backwards", False):
        raise CliError("--format sqlite keeps log order; drop --backwards")
    filters = read_filters(args)
    filters.pop("backwards", None)
    reducers = load_user_object(args.reducers, "--reducers")
    upcasters = load_user_object(args.upcasters, "--upcasters")
    progress = _Progress() if sys.stderr.isatty() else None
    with open_store(args.path, reducers=reducers, upcasters=upcasters) as es:
        try:
            summary = export(es, args.output, filters=filters, progress=progress)
        finally:
            if progress is not None:
                progress.end()
    verdict = "source verified" if summary.verify_ok else "source FAILED verify"
    if not summary.verify_ok:
        sys.stderr.write(
            f"sss: warning: {args.path} failed verify ({summary.verify_reason}); "
            "the analysis database records it\n"
        )
    action = "created" if summary.created else "updated"
    sys.stdout.write(
        f"{action} {args.output}: {summary.added} events added, {summary.total} in all, "
        f"through position {summary.through_position} ({verdict})\n"
        f"metadata: {summary.metadata_path}\n"
    )
    return 0

"""``sss report``: an audit report of a store or of one aggregate."""

from __future__ import annotations

import argparse
import sys

from workbench.cli.proofs import load_checkpoint, load_public_key
from workbench.inputs import open_store, parse_time
from workbench.safetext import shown

from .common import (
    CliError,
    add_filter_arguments,
    add_reducer_arguments,
    plural,
    read_filters,
    user_code,
)

_FORMATS = ("html", "md", "csv", "xlsx", "jsonl", "parquet")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = subparsers.add_parser(
        "report",
        help="write an audit report (html, md, csv, xlsx, jsonl, parquet)",
        description=(
            "Write an audit report: scope, summary, integrity attestation (verify result,\n"
            "chain head hash, positions covered) and the timeline of who did what, when.\n"
            "With --aggregate it is that aggregate's history, with each field's value\n"
            "before and after every event. The exit status is 1 when the chain fails to\n"
            "verify (the report is written all the same and says so).\n"
            "\n"
            "For people: html, md and xlsx show control characters and bidi overrides\n"
            "from the store as escapes (\\x1b, \\u202e); xlsx cells are typed, so no text is\n"
            "ever a formula. csv is for spreadsheets too: a text cell beginning with\n"
            "= + - @, tab or CR gets a leading ' so it is not evaluated (OWASP CSV\n"
            "injection), and its scope lines say so. Data: jsonl and parquet hold the\n"
            "exact text."
        ),
        epilog=(
            "examples:\n"
            "  sss report shop.db --aggregate order-7 -o order-7.html\n"
            "  sss report shop.db --aggregate-type Order --since -30d --format csv -o orders.csv"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("path", metavar="PATH", help="the store")
    report.add_argument(
        "--format",
        choices=_FORMATS,
        help="report format (default: from the file name of -o)",
    )
    report.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        required=True,
        help=(
            "write the report here (replaced only once complete; never a store, a device "
            "or a directory); - writes it to standard output (then give --format)"
        ),
    )
    report.add_argument("--title", help="the report's title")
    report.add_argument(
        "--no-verify",
        action="store_true",
        help="skip walking the hash chain (the report then says it was not verified)",
    )
    report.add_argument(
        "--occurred",
        metavar="TIME",
        help="with --known-at: add the restatements of the state as of this business time",
    )
    report.add_argument(
        "--known-at",
        metavar="TIME",
        help="the cut-off: what events recorded after it changed about --occurred",
    )
    report.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="verify against this checkpoint (sss checkpoint); the attestation states it",
    )
    report.add_argument(
        "--key", metavar="KEY.pub", help="the public key the checkpoint must be signed with"
    )
    add_reducer_arguments(report)
    add_filter_arguments(report)
    report.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from workbench.reports import format_for, write_report

    fmt = args.format
    if fmt is None:
        try:
            fmt = format_for(args.output)
        except ValueError:
            raise CliError(
                f"cannot tell the format from {args.output!r}; add --format "
                f"({', '.join(_FORMATS)})",
                code=2,
            ) from None
    if (args.occurred is None) != (args.known_at is None):
        raise CliError("--occurred and --known-at go together (restatements need both)")
    occurred = None if args.occurred is None else parse_time(args.occurred, "--occurred")
    known_at = None if args.known_at is None else parse_time(args.known_at, "--known-at")
    if args.key is not None and args.checkpoint is None:
        raise CliError("--key checks a checkpoint's signature: give --checkpoint FILE too")
    if args.checkpoint is not None and args.no_verify:
        raise CliError("--checkpoint is checked by verifying: it does not go with --no-verify")
    against = None if args.checkpoint is None else load_checkpoint(args.checkpoint)
    key = None if args.key is None else load_public_key(args.key).text
    filters = read_filters(args)
    aggregate_id = filters.pop("aggregate_id")
    reducers, upcasters = user_code(args)
    with open_store(args.path, reducers=reducers, upcasters=upcasters) as es:
        report = write_report(
            es,
            args.output,
            format=fmt,
            aggregate_id=aggregate_id,
            verify=not args.no_verify,
            title=args.title,
            occurred=occurred,
            known_at=known_at,
            checkpoint=against,
            key=key,
            **filters,
        )
    integrity = report.integrity
    if args.output != "-":
        events = report.summary.events
        sys.stdout.write(
            f"wrote {fmt} report of {events} {plural(events, 'event')} to {shown(args.output)} "
            f"(integrity: {integrity.verdict})\n"
        )
    return 0 if integrity.ok or not integrity.verified else 1

"""``sss append`` and ``sss import``: the commands that write events."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from store import (
    ANY,
    NO_STREAM,
    EventStore,
    ExpectedVersion,
    NewEvent,
    RecordedEvent,
    StoreError,
)
from workbench.inputs import open_store, parse_json, parse_time
from workbench.locations import is_url
from workbench.safetext import shown

from .common import CliError, dumps, plural

Expected = int | ExpectedVersion  # what `expected_version` takes: an int, ANY or NO_STREAM

_IMPORT_KEYS = frozenset(
    {
        "type",
        "data",
        "metadata",
        "aggregate_id",
        "aggregate_type",
        "event_id",
        "occurred_at",
        "schema_version",
        "expected_version",
    }
)
# Assigned by the store; present in `sss export` output, so they are accepted and ignored,
# which lets an export be imported into another store.
_STORE_KEYS = frozenset({"position", "version", "recorded_at", "hash"})

_GROUP_SIZE = 1000

IMPORT_EPILOG = """\
Each line is one JSON object with "type" and optionally "data", "metadata",
"aggregate_id", "aggregate_type", "event_id", "occurred_at" (ISO-8601 with a zone),
"schema_version" and "expected_version" (an int, "any" or "no-stream", checked
before that line is appended). Fields the store assigns ("position", "version",
"recorded_at", "hash") are ignored, so the output of `sss export` imports as is.
Blank lines are skipped. The import is one transaction: a bad line is reported by
its number and nothing is stored.

Re-running an import is safe: events already stored with the same content are
skipped and the rest appended (an export followed by new lines appends just the
new ones). A line without "event_id" gets one derived from its content: a
UUIDv5 of the line's fields (the store-assigned ones left out) and of how many
identical lines precede it in the file, so the same file, or the same file with
lines added at its end, imports every line once. Two files holding an
identical line therefore import it once; give such lines an "event_id", or
use --fresh-ids for random ids (then re-running imports them again).
"""

IMPORT_NAMESPACE = uuid.UUID("5d1f6c1e-3a55-5b2b-9c0c-7e1f1d4b2a11")
"""The UUIDv5 namespace of event ids derived for import lines without one."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    append = subparsers.add_parser(
        "append",
        help="append one event",
        description="Append one event and print it as recorded (one JSON line).",
    )
    append.add_argument("path", metavar="PATH", help="the store (created if missing)")
    append.add_argument("--type", required=True, metavar="T", help="event type, e.g. OrderPlaced")
    append.add_argument(
        "--data",
        default="{}",
        metavar="JSON",
        help="payload: a JSON object, @FILE to read it from a file, or - for stdin (default {})",
    )
    append.add_argument("--metadata", metavar="JSON", help="a JSON object (actor, correlation_id…)")
    append.add_argument(
        "--aggregate", metavar="ID", help="the aggregate (stream); none = system event"
    )
    append.add_argument("--aggregate-type", metavar="T", help="e.g. Order")
    append.add_argument(
        "--expected-version",
        metavar="N|any|no-stream",
        help="fail unless the aggregate is at this version (default: any)",
    )
    append.add_argument("--event-id", metavar="UUID", help="idempotency key (default: generated)")
    append.add_argument("--occurred-at", metavar="TIME", help="business time (default: now)")
    append.add_argument("--schema-version", type=int, default=1, metavar="N", help="default 1")
    append.set_defaults(func=run_append)

    imp = subparsers.add_parser(
        "import",
        help="import events from JSON Lines (all or nothing)",
        description="Import events from a JSON Lines file, all or nothing.",
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imp.add_argument("path", metavar="PATH", help="the store (created if missing)")
    imp.add_argument("file", metavar="FILE", help="a .jsonl file, or - for stdin")
    imp.add_argument(
        "--fresh-ids",
        action="store_true",
        help="give lines without event_id a random id (re-running then imports them again)",
    )
    imp.set_defaults(func=run_import)


# ---------------------------------------------------------------------------
# Parsing helpers


def parse_expected_version(value: object, where: str) -> Expected:
    """``3``, ``"3"``, ``"any"`` or ``"no-stream"`` to what ``EventStore.append`` takes."""
    if isinstance(value, bool):
        raise CliError(f"{where} must be a version number, 'any' or 'no-stream'")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str):
        word = value.strip().lower().replace("_", "-").replace(" ", "-")
        if word == "any":
            return ANY
        if word in ("no-stream", "nostream"):
            return NO_STREAM
        try:
            number = int(word)
        except ValueError:
            raise CliError(
                f"{where} {value!r} is not a version number, 'any' or 'no-stream'"
            ) from None
    else:
        raise CliError(f"{where} must be a version number, 'any' or 'no-stream'")
    if number < 0:
        raise CliError(f"{where} {value!r} must not be negative")
    return number


def _json_object(text: str, option: str) -> dict[str, Any]:
    value = parse_json(text, option)
    if not isinstance(value, dict):
        raise CliError(f"{option} must be a JSON object ({{...}}), not {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "a string",
        list: "an array",
        dict: "an object",
    }.get(type(value), type(value).__name__)


def _read_argument(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8-sig") as handle:
            return handle.read()
    return text


def _check_uuid(value: str, where: str) -> None:
    try:
        uuid.UUID(value)
    except ValueError:
        raise CliError(f"{where} {value!r} is not a UUID") from None


# ---------------------------------------------------------------------------
# append


def run_append(args: argparse.Namespace) -> int:
    data = _json_object(_read_argument(args.data), "--data")
    metadata = _json_object(args.metadata, "--metadata") if args.metadata is not None else {}
    if args.aggregate_type is not None and args.aggregate is None:
        raise CliError("--aggregate-type needs --aggregate")
    expected: Expected = ANY
    if args.expected_version is not None:
        if args.aggregate is None:
            raise CliError("--expected-version needs --aggregate")
        expected = parse_expected_version(args.expected_version, "--expected-version")
    if args.schema_version < 1:
        raise CliError("--schema-version must be 1 or more")
    kwargs: dict[str, Any] = {"metadata": metadata, "schema_version": args.schema_version}
    if args.event_id is not None:
        _check_uuid(args.event_id, "--event-id")
        kwargs["event_id"] = args.event_id
    if args.occurred_at is not None:
        kwargs["occurred_at"] = parse_time(args.occurred_at, "--occurred-at")
    event = NewEvent(args.type, data, **kwargs)
    with open_store(args.path, write=True) as es:
        recorded = es.append(
            [event],
            aggregate_id=args.aggregate,
            aggregate_type=args.aggregate_type,
            expected_version=expected,
        )
    for item in recorded:
        sys.stdout.write(dumps(item.to_dict()) + "\n")
    return 0


# ---------------------------------------------------------------------------
# import


@dataclass(slots=True)
class ImportLine:
    """One parsed line of an import file."""

    number: int
    event: NewEvent
    aggregate_id: str | None
    aggregate_type: str | None
    expected_version: Expected | None


def derived_event_id(record: dict[str, Any], occurrences: dict[bytes, int]) -> str:
    """The event id of an import line without one.

    ``uuid5(IMPORT_NAMESPACE, f"{n}:{sha256(canonical).hexdigest()}")``, where
    ``canonical`` is the line's JSON object without the store-assigned fields,
    keys sorted, no whitespace, non-ASCII kept (``json.dumps(..., sort_keys=True,
    ensure_ascii=False, separators=(",", ":"))``), and ``n`` counts the identical
    lines before it in the file (0 for the first; ``occurrences`` keeps the count).
    """
    fields = {key: value for key, value in record.items() if key not in _STORE_KEYS}
    canonical = json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    key = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
    occurrence = occurrences.get(key, 0)
    occurrences[key] = occurrence + 1
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"{occurrence}:{key.hex()}"))


def parse_import_line(
    number: int, text: str, occurrences: dict[bytes, int] | None = None
) -> ImportLine:
    """Validate one JSON Lines record; errors name the line.

    With ``occurrences`` (the file's count of each line content seen so far), a
    line without ``event_id`` gets :func:`derived_event_id`; without it, a random one.
    """
    where = f"line {number}"
    # rstrip: an error past the end is on this line, not the next.
    record = parse_json(text.rstrip("\r\n"), where)
    if not isinstance(record, dict):
        raise CliError(f"{where}: expected a JSON object, got {_kind(record)}")
    if record.get("erased_by") is not None:
        raise CliError(
            f"{where}: the event's payload was erased (erased_by {record['erased_by']!r}), so "
            "its content is gone and it cannot be imported; copy the store with sss migrate, "
            "backup or replicate instead"
        )
    unknown = sorted(set(record) - _IMPORT_KEYS - _STORE_KEYS)
    if unknown:
        raise CliError(
            f"{where}: unknown field {unknown[0]!r} (known: {', '.join(sorted(_IMPORT_KEYS))})"
        )
    event_type = record.get("type")
    if event_type is None:
        raise CliError(f'{where}: missing "type"')
    if not isinstance(event_type, str) or not event_type.strip():
        raise CliError(f'{where}: "type" must be a non-empty string')
    data = record.get("data", {})
    if not isinstance(data, dict):
        raise CliError(f'{where}: "data" must be a JSON object, not {_kind(data)}')
    metadata = record.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise CliError(f'{where}: "metadata" must be a JSON object, not {_kind(metadata)}')
    aggregate_id = record.get("aggregate_id")
    if aggregate_id is not None and (not isinstance(aggregate_id, str) or not aggregate_id):
        raise CliError(f'{where}: "aggregate_id" must be a non-empty string or null')
    aggregate_type = record.get("aggregate_type")
    if aggregate_type is not None:
        if not isinstance(aggregate_type, str) or not aggregate_type:
            raise CliError(f'{where}: "aggregate_type" must be a non-empty string or null')
        if aggregate_id is None:
            raise CliError(f'{where}: "aggregate_type" given without "aggregate_id"')
    kwargs: dict[str, Any] = {"metadata": metadata}
    event_id = record.get("event_id")
    if event_id is not None:
        if not isinstance(event_id, str):
            raise CliError(f'{where}: "event_id" must be a UUID string')
        _check_uuid(event_id, f'{where}: "event_id"')
        kwargs["event_id"] = event_id
    elif occurrences is not None:
        kwargs["event_id"] = derived_event_id(record, occurrences)
    occurred = record.get("occurred_at")
    if occurred is not None:
        if not isinstance(occurred, str):
            raise CliError(f'{where}: "occurred_at" must be an ISO-8601 string')
        kwargs["occurred_at"] = parse_time(occurred, f'{where}: "occurred_at"')
    schema_version = record.get("schema_version", 1)
    if schema_version is None:
        schema_version = 1
    if (
        isinstance(schema_version, bool)
        or not isinstance(schema_version, int)
        or schema_version < 1
    ):
        raise CliError(f'{where}: "schema_version" must be a whole number of 1 or more')
    kwargs["schema_version"] = schema_version
    expected = record.get("expected_version")
    if expected is not None:
        if aggregate_id is None:
            raise CliError(f'{where}: "expected_version" given without "aggregate_id"')
        expected = parse_expected_version(expected, f'{where}: "expected_version"')
    return ImportLine(
        number=number,
        event=NewEvent(event_type, data, **kwargs),
        aggregate_id=aggregate_id,
        aggregate_type=aggregate_type,
        expected_version=expected,
    )


def _decoded(lines: Iterable[str | bytes]) -> Iterator[tuple[int, str]]:
    """Number and decode lines one by one, so a bad byte is reported on its own line."""
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CliError(f"line {number}: not UTF-8 text ({e.reason})") from None
        else:
            text = raw
        if number == 1:
            text = text.removeprefix("\ufeff")  # a byte-order mark some editors write
        yield number, text


def iter_import_lines(
    lines: Iterable[str | bytes], *, derive_ids: bool = True
) -> Iterator[ImportLine]:
    """Parse JSON Lines lazily, skipping blank lines and rejecting repeated event ids.

    ``derive_ids``: lines without ``event_id`` get :func:`derived_event_id`
    (else a random id).
    """
    seen: dict[str, int] = {}
    occurrences: dict[bytes, int] | None = {} if derive_ids else None
    for number, text in _decoded(lines):
        if not text.strip():
            continue
        line = parse_import_line(number, text, occurrences)
        event_id = line.event.event_id
        if event_id in seen:
            raise CliError(
                f"line {number}: event_id {event_id} is already on line {seen[event_id]}"
            )
        seen[event_id] = number
        yield line


@dataclass(slots=True)
class _Group:
    """Consecutive lines for one aggregate, appended in one call."""

    lines: list[ImportLine] = field(default_factory=list)

    @property
    def key(self) -> tuple[str | None, str | None]:
        first = self.lines[0]
        return first.aggregate_id, first.aggregate_type

    def accepts(self, line: ImportLine) -> bool:
        if not self.lines:
            return True
        return (
            len(self.lines) < _GROUP_SIZE
            and line.expected_version is None
            and (line.aggregate_id, line.aggregate_type) == self.key
        )


@dataclass(slots=True)
class ImportResult:
    total: int = 0
    new: int = 0
    first_position: int | None = None
    last_position: int | None = None

    def describe(self, label: str) -> str:
        """One line for people: "imported 1 event into shop.db (position 7)"."""
        message = f"imported {self.new} {plural(self.new, 'event')} into {shown(label)}"
        if self.new == 1:
            message += f" (position {self.first_position})"
        elif self.new:
            message += f" (positions {self.first_position}-{self.last_position})"
        skipped = self.total - self.new
        if skipped:
            message += f"; {skipped} already stored, skipped"
        return message


def _append_line(es: EventStore, line: ImportLine, expected: Expected) -> list[RecordedEvent]:
    try:
        with es.transaction():  # a savepoint: a refused line leaves nothing behind
            return es.append(
                [line.event],
                aggregate_id=line.aggregate_id,
                aggregate_type=line.aggregate_type,
                expected_version=expected,
            )
    except StoreError as e:
        # The store numbers events within the batch; a batch of one needs no number.
        reason = re.sub(r"^event 0(?: \([^)]*\))?: ", "", str(e))
        raise CliError(f"line {line.number}: {reason}") from None


def import_events(
    es: EventStore, lines: Iterable[str | bytes], *, derive_ids: bool = True
) -> ImportResult:
    """Append every line in one transaction; raise ``CliError`` naming the bad line.

    Consecutive lines for the same aggregate are appended together (one call per
    aggregate run) for speed; a line carrying ``expected_version`` starts a new run
    so its check applies exactly where it stands in the file. When the store
    refuses a run, or the run mixes stored and new events (an export followed by
    new lines), its lines are appended one by one: stored ones are skipped, new
    ones appended, and a refusal names its one line.
    """
    result = ImportResult()
    head_before = es.head()

    def flush(group: _Group) -> None:
        if not group.lines:
            return
        first = group.lines[0]
        expected = first.expected_version if first.expected_version is not None else ANY
        try:
            with es.transaction():  # a savepoint: a refused run leaves nothing behind
                recorded = es.append(
                    [line.event for line in group.lines],
                    aggregate_id=first.aggregate_id,
                    aggregate_type=first.aggregate_type,
                    expected_version=expected,
                )
        except StoreError:
            recorded = []
            for index, line in enumerate(group.lines):
                recorded.extend(_append_line(es, line, expected if index == 0 else ANY))
        for event in recorded:
            result.total += 1
            if event.position > head_before:
                result.new += 1
                if result.first_position is None:
                    result.first_position = event.position
                result.last_position = event.position

    group = _Group()
    with es.transaction():
        for line in iter_import_lines(lines, derive_ids=derive_ids):
            if not group.accepts(line):
                flush(group)
                group = _Group()
            group.lines.append(line)
        flush(group)
    return result


def _open_input(name: str) -> IO[bytes] | IO[str]:
    """The import source, binary where possible so each line is decoded on its own."""
    if name == "-":
        return getattr(sys.stdin, "buffer", sys.stdin)
    return open(name, "rb")


def _remove_store_files(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path + suffix)


def run_import(args: argparse.Namespace) -> int:
    source = _open_input(args.file)
    created = args.path != ":memory:" and not is_url(args.path) and not os.path.exists(args.path)
    try:
        try:
            with open_store(args.path, write=True) as es:
                label = es.label
                result = import_events(es, source, derive_ids=not args.fresh_ids)
        except BaseException:
            # A failed import into a store it created leaves no empty store behind.
            if created:
                _remove_store_files(args.path)
            raise
    except (CliError, StoreError) as e:
        raise CliError(f"{e}; nothing was imported") from None
    finally:
        if args.file != "-":
            source.close()
    if result.total == 0:
        sys.stdout.write(f"nothing to import: {shown(args.file)} has no events\n")
        return 0
    sys.stdout.write(result.describe(label) + "\n")
    return 0

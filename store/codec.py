"""How events become rows and hashes: validation, canonical JSON, times.

Canonical JSON (sorted keys, no spaces, UTF-8, no NaN, integers within 64
bits, floats in their shortest round-trip form) is what hashes and idempotency
comparisons see; the stored text keeps the caller's key order. Both are made by
orjson, which is several times faster than the standard library here.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

import orjson

from .errors import ValidationError, describe

MAX_INT = 2**63 - 1
"""The largest integer SQLite stores; larger positions and versions cannot exist."""

MAX_NESTING = 200
"""How deeply ``data`` and ``metadata`` may nest: the object itself is level 1,
each object or array inside it one more. Deeper values are refused with a
ValidationError; front ends parsing JSON for the store use the same limit."""

_ORJSON_NESTING = 254  # orjson refuses to write anything deeper
_PAD = _ORJSON_NESTING - MAX_NESTING  # wrapping arrays that make orjson enforce MAX_NESTING

GENESIS_HASH = "0" * 64
"""The "previous hash" of the first event in a store."""

_orjson_dumps = orjson.dumps
_sha256 = hashlib.sha256
_SORT = orjson.OPT_SORT_KEYS
loads = json.loads
"""Strict decoding (trailing data refused), for text that may have been tampered with."""
loads_stored = orjson.loads
"""Decoding of text the store wrote itself."""


def _dumps(value: Any) -> str:
    return _orjson_dumps(value).decode()


def _canonical(value: Any) -> str:
    return _orjson_dumps(value, option=_SORT).decode()


def format_time(value: datetime) -> str:
    """ISO-8601 UTC text with microseconds, fixed width so text order is time order."""
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def require_aware(value: object, name: str) -> datetime:
    """Return ``value`` in UTC, rejecting naive datetimes rather than guessing a zone."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValidationError(
            f"{name} is a naive datetime ({value.isoformat()}); give a timezone, "
            "e.g. datetime.now(timezone.utc)"
        )
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValidationError(f"{name} {value.isoformat()} is out of range in UTC") from None


def _check_json(value: Any, where: str, depth: int = 0, root: str = "") -> None:
    # json.dumps alone would silently turn int keys into strings and tuples into
    # lists, so what came back would differ from what was given.
    if value is None or isinstance(value, (str, bool)):
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise ValidationError(
                f"{where} holds an integer beyond 64 bits, which JSON "
                "readers cannot keep exactly; store it as a string"
            )
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where} holds {value!r}, which JSON cannot represent")
        return
    if isinstance(value, (dict, list)):
        depth += 1
        if depth > MAX_NESTING:
            raise _too_deep(root or where)
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{where} has a non-string key {describe(key)}")
            _check_json(item, f"{where}/{_short(key)}", depth, root or where)
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}/{index}", depth, root or where)
        return
    raise ValidationError(
        f"{where} holds a {type(value).__name__}, which is not JSON "
        "(use objects, arrays, strings, finite numbers, booleans and null)"
    )


def _short(key: str) -> str:
    return key if len(key) <= 40 else key[:37] + "..."


def _too_deep(name: str) -> ValidationError:
    return ValidationError(
        f"{name} is nested more than {MAX_NESTING} levels deep; the store takes at most "
        f"{MAX_NESTING} levels of objects and arrays"
    )


def encode_object(value: Any, name: str) -> str:
    """Validate a JSON object (``data`` or ``metadata``) and return its stored text."""
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a JSON object (a dict), not {type(value).__name__}")
    try:
        _check_json(value, name)
    except RecursionError:  # pragma: no cover - MAX_NESTING stops the walk first
        raise _too_deep(name) from None
    try:
        return _dumps(value)
    except TypeError as e:
        if "surrogates" in str(e):
            raise ValidationError(
                f"{name} holds a lone surrogate (U+D800-U+DFFF), which is not valid Unicode text"
            ) from None
        raise ValidationError(f"{name} is not JSON: {e}") from e


def check_unicode(text: str, what: str) -> None:
    """Reject text holding lone surrogates: it has no UTF-8 form, so SQLite and
    the hash could not take it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            f"{what} holds a lone surrogate (U+D800-U+DFFF), which is not valid Unicode text"
        ) from None


def encode_checked(value: Any, name: str) -> tuple[str, Any]:
    """Like :func:`encode_object`, returning the stored text and a decoded copy.

    The copy is what the RecordedEvent holds; comparing it with the input is
    what catches what JSON would silently change (int keys, tuples, NaN), so
    the recursive walk runs only to name the culprit. The value is written
    inside ``_PAD`` arrays, so orjson's own depth limit enforces MAX_NESTING
    without a walk of Python's own."""
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a JSON object (a dict), not {type(value).__name__}")
    padded: Any = value
    for _ in range(_PAD):
        padded = [padded]
    try:
        text = _dumps(padded)[_PAD:-_PAD]
        decoded = loads_stored(text)
    except (TypeError, ValueError, RecursionError):
        decoded = None
    if decoded is None or decoded != value:
        # Let the slow path say exactly what is wrong (or accept what it accepts).
        text = encode_object(value, name)
        decoded = loads_stored(text)
    return text, decoded


def canonical(value: Any) -> str:
    return _canonical(value)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a payload's canonical form: what the chain commits to."""
    return _sha256(_orjson_dumps(data, option=_SORT)).hexdigest()


def chain_middle(type: str, schema_version: int, data_hash: str, metadata: dict[str, Any]) -> str:
    """The part of an event's hash body that needs no head: the canonical JSON
    of ``[type, schema_version, data_hash, metadata]`` without its brackets,
    for a server that builds the chain itself (see :func:`chain_hash`)."""
    return _orjson_dumps([type, schema_version, data_hash, metadata], option=_SORT)[1:-1].decode()


def chain_hash(
    prev_hash: str,
    *,
    position: int,
    event_id: str,
    aggregate_id: str | None,
    aggregate_type: str | None,
    version: int | None,
    type: str,
    schema_version: int,
    data_hash: str,
    metadata: dict[str, Any],
    occurred_at: str,
    recorded_at: str,
) -> str:
    """The hash of one event: SHA-256 over the previous hash and the event's
    canonical form (:func:`event_body`), in which the payload stands only as
    its own digest."""
    body = event_body(
        position=position,
        event_id=event_id,
        aggregate_id=aggregate_id,
        aggregate_type=aggregate_type,
        version=version,
        type=type,
        schema_version=schema_version,
        data_hash=data_hash,
        metadata=metadata,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
    )
    return link(prev_hash, body)


def link(prev_hash: str, body: bytes) -> str:
    """The chain's hash of an event: SHA-256 over the previous hash, a newline
    and the event's canonical form (:func:`event_body`)."""
    sha = _sha256(prev_hash.encode())
    sha.update(b"\n")
    sha.update(body)
    return sha.hexdigest()


def event_body(
    *,
    position: int,
    event_id: str,
    aggregate_id: str | None,
    aggregate_type: str | None,
    version: int | None,
    type: str,
    schema_version: int,
    data_hash: str,
    metadata: dict[str, Any],
    occurred_at: str,
    recorded_at: str,
) -> bytes:
    """An event's canonical form, in which the payload stands only as its
    digest: the bytes :func:`chain_hash` hashes after the previous hash, and
    the leaf of the store's Merkle tree (:mod:`store.tree`). Erasing a payload
    keeps its digest, so it changes neither."""
    return _orjson_dumps(
        [
            position,
            event_id,
            aggregate_id,
            aggregate_type,
            version,
            type,
            schema_version,
            data_hash,
            metadata,
            occurred_at,
            recorded_at,
        ],
        option=_SORT,
    )

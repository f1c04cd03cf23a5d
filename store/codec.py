"""How events become rows and hashes: validation, canonical JSON, times.

Canonical JSON (sorted keys, no spaces, UTF-8, no NaN) is what hashes and
idempotency comparisons see; the stored text keeps the caller's key order.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from .errors import ValidationError

MAX_INT = 2**63 - 1
"""The largest integer SQLite stores; larger positions and versions cannot exist."""

GENESIS_HASH = "0" * 64
"""The "previous hash" of the first event in a store."""

_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=True
).encode
_canonical = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True
).encode
loads = json.loads
_scan_once = json.JSONDecoder().scan_once


def loads_stored(text: str) -> Any:
    """Decode JSON text the store wrote itself: the C scanner without
    ``json.loads``' whitespace and trailing-data checks (verify uses ``loads``)."""
    return _scan_once(text, 0)[0]


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


def _check_json(value: Any, where: str) -> None:
    # json.dumps alone would silently turn int keys into strings and tuples into
    # lists, so what came back would differ from what was given.
    if value is None or isinstance(value, (str, bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(f"{where} holds {value!r}, which JSON cannot represent")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(f"{where} has a non-string key {key!r}")
            _check_json(item, f"{where}/{key}")
        return
    if isinstance(value, list):
        for index, item in enumerate(value):
            _check_json(item, f"{where}/{index}")
        return
    raise ValidationError(
        f"{where} holds a {type(value).__name__}, which is not JSON "
        "(use objects, arrays, strings, finite numbers, booleans and null)"
    )


def encode_object(value: Any, name: str) -> str:
    """Validate a JSON object (``data`` or ``metadata``) and return its stored text."""
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a JSON object (a dict), not {type(value).__name__}")
    try:
        _check_json(value, name)
        text = _dumps(value)
    except ValidationError:
        raise
    except RecursionError:
        raise ValidationError(f"{name} is nested too deeply to store") from None
    except (TypeError, ValueError) as e:  # pragma: no cover - _check_json catches these
        raise ValidationError(f"{name} is not JSON: {e}") from e
    check_unicode(text, name)
    return text


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
    what catches what JSON would silently change (int keys, tuples), so the
    recursive walk runs only to name the culprit."""
    if not isinstance(value, dict):
        raise ValidationError(f"{name} must be a JSON object (a dict), not {type(value).__name__}")
    try:
        text = _dumps(value)
        decoded = loads_stored(text)
    except (TypeError, ValueError, RecursionError):
        decoded = None
    if decoded is None or decoded != value:
        # Let the slow path say exactly what is wrong (or accept what it accepts).
        text = encode_object(value, name)
        decoded = loads_stored(text)
    else:
        check_unicode(text, name)
    return text, decoded


def canonical(value: Any) -> str:
    return _canonical(value)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def data_digest(data: dict[str, Any]) -> str:
    """SHA-256 of a payload's canonical form: what the chain commits to."""
    return digest(_canonical(data))


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
    canonical form, in which the payload stands only as its own digest."""
    body = _canonical(
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
        ]
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()

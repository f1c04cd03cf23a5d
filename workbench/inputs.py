"""What a person types, read the same way by every front end.

The ``sss`` command line, the TUI and :mod:`workbench.frames` all take times,
``module:attribute`` specs, JSON and store locations from people. The rules
for reading them live here, once, so the three cannot drift apart:

* a time is ISO-8601 with a zone (``2024-05-01T12:00Z``, ``2024-05-01+02:00``,
  a day with a zone meaning its midnight there), ``now``, or relative to now
  (``-90s``, ``-15m``, ``-2h``, ``-3d``, ``-1w``); a time without a zone is
  refused, never guessed, as the store refuses naive datetimes;
* ``module:attribute`` names a :class:`store.Reducers` or
  :class:`store.Upcasters` object; the working directory is importable;
* JSON text is nested at most :data:`MAX_JSON_DEPTH` levels, and its numbers
  have at most :data:`MAX_INT_DIGITS` digits; ``NaN``, ``Infinity`` and
  floats beyond a double (``1e999``) are not JSON numbers and are refused;
* a store location is a file path or a ``postgresql://`` URL.

Every refusal is an :class:`InputError`: a :class:`store.ValidationError`
(so a :class:`store.StoreError` and a :class:`ValueError`) with a one-line
message naming what was typed and what would be understood.

    >>> parse_time("2024-05-01T12:00:00Z").isoformat()
    '2024-05-01T12:00:00+00:00'
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from store import EventStore, Reducers, Upcasters, ValidationError

__all__ = [
    "MAX_INT_DIGITS",
    "MAX_JSON_DEPTH",
    "RELATIVE_TIME",
    "TIME_HINT",
    "InputError",
    "load_user_object",
    "open_store",
    "parse_json",
    "parse_position",
    "parse_time",
    "read_text_file",
    "shown",
    "time_text",
]

MAX_JSON_DEPTH = 100
"""How deeply arrays and objects may nest in JSON a person gives (``--data``,
import lines). Real payloads stay far below; the limit keeps a hostile input
from exhausting the interpreter's stack."""

MAX_INT_DIGITS = sys.get_int_max_str_digits() or 4300
"""The most digits an integer in JSON input may have (Python's own limit on
turning text into an int)."""


class InputError(ValidationError):
    """Something a person typed cannot be used; the message says what and why."""


def shown(text: object, width: int = 60) -> str:
    """``text`` as an error message quotes it: ``repr`` (control characters
    escaped), cut to ``width`` characters so a huge input cannot flood the line."""
    quoted = repr(text) if isinstance(text, str) else repr(str(text))
    if len(quoted) <= width:
        return quoted
    return quoted[: width - 2] + "…" + quoted[0]


# ---------------------------------------------------------------------------
# Times

RELATIVE_TIME = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d|w)\s*$", re.IGNORECASE)
"""A time relative to now, such as ``-2h`` or ``- 15 min``."""

_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_DAY_WITH_ZONE = re.compile(r"^(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:?\d{2})$", re.IGNORECASE)

TIME_HINT = "ISO-8601 with a zone (2024-05-01T12:00Z) or relative to now (-2h, -3d, -30m)"
"""What a time may look like, for help texts and placeholders."""


def parse_time(text: str, what: str = "time", *, now: datetime | None = None) -> datetime:
    """Read a time a person typed as an aware UTC ``datetime``.

    ``what`` names the field in the error (``--since``, ``since``, ``seek``).
    Raises :class:`InputError` for text that is not a time, a time without a
    zone, and a time outside the calendar (``-99999999999d``).

    Example:
        >>> parse_time("-2h", now=datetime(2024, 1, 1, 12, tzinfo=UTC)).hour
        10
    """
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, not {type(text).__name__}")
    value = text.strip()
    current = now if now is not None else datetime.now(UTC)
    if value.lower() == "now":
        return current
    match = RELATIVE_TIME.match(value)
    if match:
        try:
            seconds = float(match.group(1)) * _SECONDS[match.group(2).lower()]
            return current - timedelta(seconds=seconds)
        except (OverflowError, ValueError):
            raise InputError(f"{what} {shown(text)} reaches out of the calendar") from None
    dated = _DAY_WITH_ZONE.match(value)
    if dated:
        # A day with a zone means its midnight there: 2024-05-01Z.
        value = f"{dated.group(1)}T00:00{dated.group(2)}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"{what} {shown(text)} is not a time; use ISO-8601 with a zone "
            "(2024-05-01T12:00:00Z) or a relative time (-2h, -3d)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InputError(
            f"{what} {shown(text)} has no timezone; add one "
            f"(e.g. {shown(value + 'Z')} or {shown(value + '+02:00')}) or use a relative time (-2h)"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InputError(f"{what} {shown(text)} is out of range in UTC") from None


def time_text(value: datetime | None, unit: str = "us") -> str:
    """A time as people read it everywhere in the workbench: UTC, ``-`` for none.

    ``unit`` is the precision: ``"us"`` (detail views), ``"ms"`` (tables of the
    command line) or ``"s"`` (table cells and chips).
    """
    if value is None:
        return "—"
    text = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if unit == "ms":
        return text[:-3]
    if unit == "s":
        return text[:-7]
    return text


MAX_POSITION = 2**63 - 1
"""No store holds a position, version or count beyond this (SQLite's integers)."""


def parse_position(text: str, what: str = "position") -> int:
    """A position or version typed as digits (``1234``, ``#1234``): a whole number
    of 0 or more that a store can hold."""
    digits = text.strip().lstrip("#")
    if not digits.isdigit() or not digits.isascii():
        raise InputError(f"{what} {shown(text)} is not a whole number")
    if len(digits) > 19 or int(digits) > MAX_POSITION:
        raise InputError(f"{what} {shown(text)} is beyond any position a store can hold")
    return int(digits)


def read_text_file(path: str, what: str, *, limit: int = 1 << 20) -> str:
    """The UTF-8 text of a small file a person names (a checkpoint, a key, a
    proof): refused in one line when missing, not a regular file (a FIFO
    would block, a device never end), larger than ``limit`` bytes, or not
    UTF-8 text."""
    import stat

    if not isinstance(path, str) or not path.strip() or "\0" in path:
        raise InputError(f"give the {what} as a file name")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} {shown(path)} does not exist") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {shown(path)}: {e.strerror or e}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{what} {shown(path)} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{what} {shown(path)} is not a regular file (a FIFO, device or socket)")
    if info.st_size > limit:
        raise InputError(f"{what} {shown(path)} is {info.st_size} bytes; that is not a {what}")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as e:
        raise InputError(f"cannot read {what} {shown(path)}: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} {shown(path)} is not UTF-8 text") from None


# ---------------------------------------------------------------------------
# JSON


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise ValueError(f"the number {text[:20]} is beyond what a float holds")
    return value


def _too_deep(value: Any) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def parse_json(text: str, what: str) -> Any:
    """The JSON value in ``text``; :class:`InputError` naming ``what`` otherwise.

    Refused besides invalid JSON: nesting deeper than :data:`MAX_JSON_DEPTH`,
    integers of more than :data:`MAX_INT_DIGITS` digits, ``NaN``,
    ``Infinity`` and floats too large for a double.
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} is not valid JSON: {e.msg} at column {e.colno}") from None
    except RecursionError:
        raise InputError(
            f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels of arrays/objects)"
        ) from None
    except ValueError as e:
        reason = str(e)
        if "digits" in reason:
            reason = f"a number has more than {MAX_INT_DIGITS} digits"
        raise InputError(f"{what} is not valid JSON: {reason}") from None
    # Counting brackets is C speed; the walk runs only when nesting is possible.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _too_deep(value):
        raise InputError(
            f"{what} is nested too deeply (more than {MAX_JSON_DEPTH} levels of arrays/objects)"
        )
    return value


# ---------------------------------------------------------------------------
# User code and stores


def load_user_object(spec: str | None, option: str, kind: type | None = None) -> Any:
    """Import ``module:attribute`` (``--reducers``, ``--upcasters``); ``None`` for none.

    With ``kind`` the object must be an instance of it. The working directory is
    importable, as people expect when naming a module of their own.
    """
    if spec is None:
        return None
    if not isinstance(spec, str):
        raise InputError(f"{option} must be 'module:attribute', not {type(spec).__name__}")
    module, sep, attribute = spec.partition(":")
    if not sep or not module.strip() or not attribute.strip():
        raise InputError(f"{option} {shown(spec)} must look like module:attribute")
    from store import load_object

    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        loaded = load_object(spec)
    except BaseException as e:  # whatever the user's module raises on import, even exit()
        if isinstance(e, KeyboardInterrupt):
            raise
        reason = " ".join(str(e).split()) or type(e).__name__
        raise InputError(f"{option} {shown(spec)}: {reason}") from None
    if kind is not None and not isinstance(loaded, kind):
        raise InputError(
            f"{option} must be a store.{kind.__name__}, "
            f"but {shown(spec)} is a {type(loaded).__name__}"
        )
    return loaded


def _user_object(value: Any, option: str, kind: type) -> Any:
    if value is None or isinstance(value, kind):
        return value
    if isinstance(value, str):
        return load_user_object(value, option, kind)
    raise InputError(f"{option} must be a {kind.__name__} or 'module:attribute'")


def open_store(
    location: str | os.PathLike[str],
    *,
    write: bool = False,
    create: bool = True,
    reducers: Reducers | str | None = None,
    upcasters: Upcasters | str | None = None,
    durable: bool = True,
) -> EventStore:
    """Open the store at ``location`` (a path or a ``postgresql://`` URL).

    Read-only unless ``write``. Writing creates a missing file unless
    ``create=False`` (the TUI opened for writing must not make an empty store
    of a mistyped name). ``reducers``/``upcasters`` may be objects or
    ``module:attribute`` specs. The store's own errors (missing file, not a
    store, locked) are one-line :class:`store.StoreError` messages.
    """
    from workbench.locations import is_url

    try:
        path = os.fspath(location)
    except TypeError:
        raise InputError(f"a store location must be a path or a URL, not {location!r}") from None
    if not isinstance(path, str):
        raise InputError(f"a store location must be text, not {type(path).__name__}")
    local = path != ":memory:" and not is_url(path)
    missing = local and not os.path.exists(path)
    if local and not missing and not os.path.isdir(path) and not os.path.isfile(path):
        # SQLite would wait forever on a FIFO and read a device as if it were a file.
        raise InputError(f"{path} is not a regular file (a FIFO, a device or a socket)")
    if write and not create and missing:
        raise InputError(f"no event store at {path}: the file does not exist")
    kwargs: dict[str, Any] = {
        "readonly": not write,
        "reducers": _user_object(reducers, "--reducers", Reducers),
        "upcasters": _user_object(upcasters, "--upcasters", Upcasters),
    }
    if not durable:
        kwargs["durable"] = False
    return EventStore(path, **kwargs)

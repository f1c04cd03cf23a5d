"""How state is rebuilt: reducers, upcasters and field-level diffs.

The store knows no domain, so the default reducer folds each event's ``data``
into the state as a JSON merge patch (RFC 7396). Users register their own per
aggregate type and event type::

    reducers = Reducers()

    @reducers.on("Order", "ItemAdded")
    def add_item(state: dict, event: RecordedEvent) -> dict:
        return {**state, "items": [*state.get("items", []), event.data["sku"]]}

A reducer receives a state it may change in place and returns the new state.

Upcasters turn an old payload into the current shape on read, before any
reducer sees it; stored rows never change::

    upcasters = Upcasters()

    @upcasters.on("OrderPlaced", 1)       # schema_version 1 -> 2
    def split_name(data: dict) -> dict: ...
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import types
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import ValidationError
from .models import Change

if TYPE_CHECKING:
    from .models import RecordedEvent

__all__ = [
    "RESERVED_PREFIX",
    "REVERTED",
    "VOIDED",
    "Reducer",
    "Reducers",
    "Upcaster",
    "Upcasters",
    "diff",
    "load_object",
    "merge_patch",
]

Reducer = Callable[[dict[str, Any], "RecordedEvent"], dict[str, Any]]
RESERVED_PREFIX = "sss."
"""Event types starting with this are the store's own receipts (a revert, a
void, an erasure); :meth:`EventStore.append` refuses them, and the store
appends them through :func:`store.appending.append_receipt`."""
REVERTED = "sss.Reverted"
"""The event type a revert appends; the store folds it itself."""
VOIDED = "sss.Voided"
"""The event type a void appends; it changes no state (replays skip the
event it names)."""
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
F = TypeVar("F", bound=Callable[..., Any])


def merge_patch(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Apply ``patch`` to ``target`` as an RFC 7396 JSON merge patch.

    Returns a new dict; ``target`` is not changed, and untouched sub-objects are
    shared with it. A ``null`` value deletes the key.
    """
    result = dict(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            current = result.get(key)
            result[key] = merge_patch(current if isinstance(current, dict) else {}, value)
        else:
            result[key] = value
    return result


def _merge_reducer(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
    return merge_patch(state, event.data)


def _revert_reducer(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
    """``sss.Reverted``: the state is replaced by the target's (a merge patch
    from the state it was made on, or the whole state)."""
    if event.metadata.get("revert_mode") == "replace":
        return copy.deepcopy(event.data)
    return merge_patch(state, event.data)


def _void_reducer(state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
    return state


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[Change]:
    """The field-level changes from ``before`` to ``after``, as JSON Pointer paths.

    Objects are compared key by key; any other value (arrays included) is one
    field. A missing field shows as ``None`` on its side.
    """
    changes: list[Change] = []
    for key in before.keys() | after.keys():
        path = f"{prefix}/{_escape(key)}"
        old, new = before.get(key), after.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            changes.extend(diff(old, new, path))
        elif old != new or type(old) is not type(new) or (key in before) != (key in after):
            changes.append(Change(path, old, new))
    changes.sort(key=lambda change: change.path)
    return changes


def _code_digest(code: types.CodeType, sha: Any) -> None:
    sha.update(code.co_code)
    sha.update(repr(code.co_names).encode())
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, sha)
        else:
            sha.update(repr(const).encode())


def _function_digest(fn: Callable[..., Any], sha: Any) -> None:
    sha.update(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}".encode())
    code = getattr(fn, "__code__", None)
    if isinstance(code, types.CodeType):
        _code_digest(code, sha)


class Reducers:
    """A registry of reducers, keyed by aggregate type and event type.

    Lookup order: (aggregate type, event type), (aggregate type, any),
    (any, event type), then the default (JSON merge patch of ``data``).

    Example:
        >>> reducers = Reducers()
        >>> @reducers.on("Order", "OrderCancelled")
        ... def cancel(state, event):
        ...     return {**state, "status": "cancelled"}
    """

    def __init__(self, default: Reducer = _merge_reducer, *, version: str = "") -> None:
        self._default = default
        self._version = version
        self._handlers: dict[tuple[str | None, str | None], Reducer] = {}
        self._cache: dict[tuple[str | None, str], Reducer] = {}
        self._fingerprint: str | None = None

    def on(self, aggregate_type: str | None, event_type: str | None) -> Callable[[F], F]:
        """Register the decorated function for this pair (``None`` matches any)."""

        def decorate(fn: F) -> F:
            self.register(aggregate_type, event_type, fn)
            return fn

        return decorate

    def register(self, aggregate_type: str | None, event_type: str | None, fn: Reducer) -> None:
        self._handlers[(aggregate_type, event_type)] = fn
        self._cache.clear()
        self._fingerprint = None

    def resolve(self, aggregate_type: str | None, event_type: str) -> Reducer:
        """The reducer for this pair. ``sss.Reverted`` and ``sss.Voided`` are
        the store's own: a revert replaces the state and a void changes none
        (the fold skips the event it names), whatever reducer is registered
        for them."""
        if event_type == REVERTED:
            return _revert_reducer
        if event_type == VOIDED:
            return _void_reducer
        key = (aggregate_type, event_type)
        fn = self._cache.get(key)
        if fn is None:
            handlers = self._handlers
            fn = (
                handlers.get(key)
                or handlers.get((aggregate_type, None))
                or handlers.get((None, event_type))
                or self._default
            )
            self._cache[key] = fn
        return fn

    def apply(self, state: dict[str, Any], event: RecordedEvent) -> dict[str, Any]:
        return self.resolve(event.aggregate_type, event.type)(state, event)

    def __len__(self) -> int:
        return len(self._handlers)

    def __iter__(self) -> Iterator[tuple[tuple[str | None, str | None], Reducer]]:
        return iter(sorted(self._handlers.items(), key=lambda kv: repr(kv[0])))

    @property
    def copy_free(self) -> bool:
        """True when folding never changes a state in place (only the default
        merge-patch reducer is in use), so history needs no defensive copies."""
        return self._default is _merge_reducer and not self._handlers

    @property
    def fingerprint(self) -> str:
        """A digest of ``version`` and of every registered function's name and
        code, so a snapshot built by other reducers is recognised and ignored.

        Only the reducers' own code is seen: when a reducer's behaviour changes
        through a helper it calls or a global it reads, change ``version``.
        """
        if self._fingerprint is None:
            sha = hashlib.sha256(b"reducers\n")
            sha.update(self._version.encode())
            _function_digest(self._default, sha)
            for key, fn in self:
                sha.update(repr(key).encode())
                _function_digest(fn, sha)
            self._fingerprint = sha.hexdigest()
        return self._fingerprint


class Upcasters:
    """A registry of functions that upgrade an event's payload by one schema version.

    Example:
        >>> upcasters = Upcasters()
        >>> @upcasters.on("OrderPlaced", 1)
        ... def v1_to_v2(data):
        ...     return {**data, "currency": data.get("currency", "EUR")}
    """

    def __init__(self, *, version: str = "") -> None:
        self._version = version
        self._handlers: dict[tuple[str, int], Upcaster] = {}
        self._fingerprint: str | None = None

    def on(self, event_type: str, schema_version: int) -> Callable[[F], F]:
        """Register the decorated function to turn ``schema_version`` into the next."""

        def decorate(fn: F) -> F:
            self.register(event_type, schema_version, fn)
            return fn

        return decorate

    def register(self, event_type: str, schema_version: int, fn: Upcaster) -> None:
        self._handlers[(event_type, schema_version)] = fn
        self._fingerprint = None

    def __bool__(self) -> bool:
        return bool(self._handlers)

    def upcast(
        self, event_type: str, schema_version: int, data: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Apply every upcaster in turn; return the final schema version and payload."""
        handlers = self._handlers
        while (fn := handlers.get((event_type, schema_version))) is not None:
            data = fn(data)
            schema_version += 1
        return schema_version, data

    @property
    def fingerprint(self) -> str:
        """Like :attr:`Reducers.fingerprint`, for upcasters."""
        if self._fingerprint is None:
            sha = hashlib.sha256(b"upcasters\n")
            sha.update(self._version.encode())
            for key, fn in sorted(self._handlers.items()):
                sha.update(repr(key).encode())
                _function_digest(fn, sha)
            self._fingerprint = sha.hexdigest()
        return self._fingerprint


def load_object(spec: str) -> Any:
    """Import ``module:attribute`` (e.g. ``myapp.domain:reducers``)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise ValidationError(f"{spec!r} is not of the form module:attribute")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise ValidationError(f"cannot import {module_name!r}: {e}") from e
    obj: Any = module
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValidationError(
                f"module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return obj

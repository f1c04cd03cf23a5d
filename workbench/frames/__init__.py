"""Event streams as pandas DataFrames, for notebooks and audits.

    >>> from workbench import frames
    >>> df = frames.events("shop.db", aggregate_type="Order", flatten=True)
    >>> df.sss.activity(freq="D")              # events per day and type
    >>> frames.as_of("shop.db", "Order", "2024-10-01T00:00Z")   # every order that day

``source`` is an open :class:`store.EventStore` or a path, which is opened
read-only for the call. Pass an ``EventStore`` to use your own reducers or
upcasters: everything here replays with the store's.

Dtypes: positions are ``int64``; ``version`` is nullable ``Int64`` (system
events have none); times are ``datetime64[us, UTC]`` (the store's own
resolution, and wide enough for any year it accepts); event types, aggregate
types and actors are categoricals; other text is pandas' ``str``. ``actor``,
``correlation_id`` and ``causation_id`` are columns of their own. The payloads
``data`` and ``metadata`` are their JSON text, exactly as stored: payload shapes
differ from one event type to the next, and a column per field seen anywhere
would cost memory for every row. ``df.sss.payloads()`` gives them as dicts, and
``flatten=True`` turns every field of ``data`` into a typed column
(``data.total``, nested ``data.address.zip``); select the event types first on
a store whose payloads have many shapes. Where one field holds two JSON types
that no Arrow column can (a number here, a string there), the flattened columns
are built by :func:`pandas.json_normalize` instead.

Rows are built a chunk at a time, column by column, through Arrow, never as
a Python object per row per column; :func:`iter_events` yields one DataFrame
per chunk for stores larger than memory (each chunk's categoricals have that
chunk's categories). An SQLite file is read straight into Arrow by ADBC's
SQLite driver, running the statement the store hands over
(:meth:`store.EventStore.read_statement`) on a read-only connection of its
own; PostgreSQL, ``:memory:``, stores with upcasters and reads inside an open
write transaction go through ``read_rows``, as does the rest of any read the
driver cannot finish (see ``_sqlite_arrow``). Both paths give the same frames.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeAlias

import pandas as pd
import pyarrow as pa

from store import VOIDED, EventStore, RecordedEvent, diff
from workbench.inputs import InputError, open_store, parse_time

from ._columns import (
    EVENT_COLUMNS,
    MixedTypes,
    bulk,
    chunk_table,
    event_rows,
    flat_arrays,
    frame_of,
    pandas_type,
    payload_array,
    to_frame,
)
from ._sqlite_arrow import arrow_chunks, rows_after
from .twoclocks import RESTATEMENT_COLUMNS, restatement_frame, restatement_rows, state_rows

_Page = tuple[list[tuple[Any, ...]], bool]
_CHUNK = 50_000  # rows converted at a time by events()
_BATCH = 32_768  # rows per driver batch in events()

__all__ = [
    "CHANGE_COLUMNS",
    "EVENT_COLUMNS",
    "RESTATEMENT_COLUMNS",
    "AuditAccessor",
    "Source",
    "TimeLike",
    "activity",
    "as_of",
    "changes",
    "events",
    "iter_events",
    "restatements",
    "states",
    "to_datetime",
]

Source: TypeAlias = EventStore | str | os.PathLike[str]
TimeLike: TypeAlias = datetime | str
"""A datetime (a pandas Timestamp is one) or text: ISO-8601 with a zone, or
relative to now such as ``"-30d"``."""

CHANGE_COLUMNS: tuple[str, ...] = (
    "position",
    "recorded_at",
    "actor",
    "aggregate_id",
    "aggregate_type",
    "version",
    "type",
    "path",
    "old",
    "new",
)

# -- sources and arguments ------------------------------------------------------


@contextmanager
def opened(source: Source) -> Iterator[EventStore]:
    """The store behind ``source``: itself, or a path opened read-only for the block."""
    if isinstance(source, EventStore):
        yield source
        return
    if isinstance(source, (str, os.PathLike)):
        with open_store(source) as es:
            yield es
        return
    raise TypeError(f"source must be an EventStore or a path, not {type(source).__name__}")


def to_datetime(value: TimeLike | None, name: str = "time") -> datetime | None:
    """A timezone-aware ``datetime`` from a datetime, Timestamp or text, read
    as the command line reads ``--since``: ISO-8601 with a zone, a day with a
    zone (``"2024-10-01Z"``), ``"now"`` or relative to now (``"-30d"``).

    Naive values are refused, never guessed: write ``"2024-10-01T00:00Z"``.
    Every refusal is a :class:`store.ValidationError` (:mod:`workbench.inputs`
    holds the rules, shared with the command line and the TUI).
    """
    if value is None:
        return None
    if isinstance(value, str):
        return parse_time(value, name)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime or ISO-8601 text, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InputError(
            f"{name} {value.isoformat()} has no timezone; give one, e.g. 2024-10-01T00:00Z"
        )
    return value


def _filters(
    from_position: int | None,
    aggregate_id: str | None,
    aggregate_type: str | None,
    types: Iterable[str] | str | None,
    since: TimeLike | None,
    until: TimeLike | None,
    limit: int | None,
    backwards: bool,
) -> dict[str, Any]:
    return {
        "from_position": from_position,
        "aggregate_id": aggregate_id,
        "aggregate_type": aggregate_type,
        "types": [types] if isinstance(types, str) else types,
        "since": to_datetime(since, "since"),
        "until": to_datetime(until, "until"),
        "limit": limit,
        "backwards": backwards,
    }


def _pages(es: EventStore, filters: Mapping[str, Any], size: int) -> Iterator[_Page]:
    """Chunks of rows in ROW_FIELDS order, with whether they are raw (stored text)."""
    read_rows = getattr(es, "read_rows", None)
    if callable(read_rows) and not es.upcasters:
        # The store's columnar path: pages of rows as stored, no object per event.
        for page in read_rows(**filters, page_size=size):
            if page:
                yield page, True
        return
    events = es.read(**filters)
    while True:
        with bulk():
            rows = event_rows(list(itertools.islice(events, size)))
        if not rows:
            return
        yield rows, False


def _chunks(
    es: EventStore,
    filters: Mapping[str, Any],
    size: int,
    flatten: bool,
    as_objects: bool = False,
    per_chunk: bool = False,
    batch: int | None = None,
) -> Iterator[tuple[pa.Table, list[dict[str, Any]] | None]]:
    """Chunks as Arrow tables: straight from SQLite where the store hands over
    its read as a statement, and through ``read_rows`` for the rest."""
    resume = yield from arrow_chunks(
        es, filters, batch or size, flatten=flatten, as_objects=as_objects, per_chunk=per_chunk
    )
    if resume is None:
        return
    rest = rows_after(filters, resume)
    if rest is None:
        return
    for rows, raw in _pages(es, rest, size):
        with bulk():
            try:
                chunk = chunk_table(rows, raw=raw, flatten=flatten, as_objects=as_objects)
            except MixedTypes:
                if not per_chunk:
                    raise
                chunk = chunk_table(rows, raw=raw, flatten=flatten, as_objects=True)
        del rows
        yield chunk


def _load(
    es: EventStore, filters: Mapping[str, Any], flatten: bool, as_objects: bool
) -> pd.DataFrame:
    tables: list[pa.Table] = []
    objects: list[dict[str, Any]] | None = [] if as_objects else None
    with bulk():
        for table, found in _chunks(es, filters, _CHUNK, flatten, as_objects, batch=_BATCH):
            tables.append(table)
            if objects is not None and found is not None:
                objects.extend(found)
        return frame_of(tables, objects, flatten)


# -- events -----------------------------------------------------------------------


def events(
    source: Source,
    *,
    from_position: int | None = None,
    aggregate_id: str | None = None,
    aggregate_type: str | None = None,
    types: Iterable[str] | str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    backwards: bool = False,
    flatten: bool = False,
) -> pd.DataFrame:
    """Events as a DataFrame, one row per event, in ``read`` order.

    The filters are those of :meth:`store.EventStore.read` (``since`` and
    ``until`` also take text, as :func:`to_datetime` reads it). ``flatten=True`` replaces
    ``data`` by one column per payload field (``data.total``, ``data.address.zip``).
    Columns: :data:`EVENT_COLUMNS`.

    Example:
        >>> df = events("shop.db", types=["OrderPlaced"], since="2024-10-01T00:00Z")
        >>> df.groupby("actor", observed=True).size()
    """
    filters = _filters(
        from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
    )
    with opened(source) as es:
        try:
            return _load(es, filters, flatten, as_objects=False)
        except MixedTypes:
            # A payload field with two JSON types: keep the payloads as dicts.
            return _load(es, filters, flatten, as_objects=True)


def iter_events(
    source: Source,
    chunksize: int = 100_000,
    *,
    from_position: int | None = None,
    aggregate_id: str | None = None,
    aggregate_type: str | None = None,
    types: Iterable[str] | str | None = None,
    since: TimeLike | None = None,
    until: TimeLike | None = None,
    limit: int | None = None,
    backwards: bool = False,
    flatten: bool = False,
) -> Iterator[pd.DataFrame]:
    """Like :func:`events`, as DataFrames of at most ``chunksize`` rows each, so a
    store larger than memory can be summarised a chunk at a time.

    Example:
        >>> per_type = sum(
        ...     (chunk["type"].value_counts() for chunk in iter_events("big.db")),
        ...     start=pd.Series(dtype="int64"),
        ... )
    """
    if isinstance(chunksize, bool) or not isinstance(chunksize, int) or chunksize < 1:
        raise ValueError(f"chunksize must be a positive int, not {chunksize!r}")
    filters = _filters(
        from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
    )
    with opened(source) as es:
        for table, objects in _chunks(es, filters, chunksize, flatten, per_chunk=True):
            with bulk():
                frame = to_frame(table, objects)
            del table, objects
            yield frame


# -- state --------------------------------------------------------------------------


def _state_columns(frame: pd.DataFrame, state: list[dict[str, Any]], flatten: bool) -> pd.DataFrame:
    frame["state"] = pd.Series(state, index=frame.index, dtype=object)
    if not flatten or not state:
        return frame
    try:
        array = pa.chunked_array([payload_array(state)])
        # pa.table takes ChunkedArray columns; pyarrow-stubs list only Array.
        flat = pa.table(dict(flat_arrays("state", array)))  # type: ignore[arg-type]
        columns = flat.to_pandas(types_mapper=pandas_type, coerce_temporal_nanoseconds=False)
    except MixedTypes:
        columns = pd.json_normalize(state, sep=".").rename(columns=lambda c: f"state.{c}")
    columns.index = frame.index
    return pd.concat([frame, columns], axis=1)


def _typed(frame: pd.DataFrame, categorical: Sequence[str] = ("type", "actor")) -> pd.DataFrame:
    for name in frame.columns:
        if name in ("recorded_at", "occurred_at", "updated_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
        elif name in categorical or name == "aggregate_type":
            frame[name] = frame[name].astype("category")
        elif name in ("position", "version"):
            frame[name] = frame[name].astype("int64")
        elif name in ("aggregate_id", "path"):
            frame[name] = frame[name].astype("str")
    return frame


def states(source: Source, aggregate_id: str, *, flatten: bool = True) -> pd.DataFrame:
    """One aggregate's state after each of its versions, one row per version.

    Columns: ``version``, ``position``, ``recorded_at``, ``type`` and ``actor``
    of the event that made the version, ``state`` (a dict), and with
    ``flatten`` one ``state.<field>`` column per field of the state.

    Example:
        >>> states("shop.db", "order-7")[["version", "type", "state.status"]]
    """
    rows: list[tuple[Any, ...]] = []
    after: list[dict[str, Any]] = []
    with opened(source) as es:
        for step in es.history(aggregate_id):
            e = step.event
            rows.append((e.version, e.position, e.recorded_at, e.type, e.actor))
            after.append(step.after)
    frame = pd.DataFrame(rows, columns=["version", "position", "recorded_at", "type", "actor"])
    return _state_columns(_typed(frame), after, flatten)


def changes(
    source: Source, aggregate_id: str | None = None, aggregate_type: str | None = None
) -> pd.DataFrame:
    """Field-level changes, one row per changed field: who changed what, when,
    from what to what.

    Give ``aggregate_id`` for one aggregate, ``aggregate_type`` for every
    aggregate of that type, or neither for every aggregate. All aggregates of a
    type are replayed in one pass over the log with the store's reducers.
    ``path`` is a JSON Pointer (``/address/zip``); ``old`` or ``new`` is
    ``None`` where the field was absent. Columns: :data:`CHANGE_COLUMNS`.

    Example:
        >>> changes("shop.db", aggregate_type="Order").query("path == '/status'")
    """
    rows: list[tuple[Any, ...]] = []
    with opened(source) as es:
        if aggregate_id is not None:
            steps: Iterable[tuple[RecordedEvent, list[Any]]] = (
                (step.event, step.changes) for step in es.history(aggregate_id)
            )
        else:
            steps = _replay_changes(es, aggregate_type)
        for e, found in steps:
            for change in found:
                rows.append(
                    (
                        e.position,
                        e.recorded_at,
                        e.actor,
                        e.aggregate_id,
                        e.aggregate_type,
                        e.version,
                        e.type,
                        change.path,
                        change.old,
                        change.new,
                    )
                )
    # Built column by column so old and new keep their JSON types (no float
    # upcast of ints, no NaN for an absent field).
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(CHANGE_COLUMNS)
    frame = pd.DataFrame(
        {
            name: pd.Series(values, dtype=object)
            for name, values in zip(CHANGE_COLUMNS, columns, strict=True)
        }
    )
    return _typed(frame)


def _replay(
    es: EventStore, events: Iterable[RecordedEvent]
) -> Iterator[tuple[RecordedEvent, dict[str, Any], dict[str, Any]]]:
    """Fold many aggregates at once: (event, state before, state after).

    A void's step is the store's replay at the void's version, which leaves
    out the voided event (as :meth:`EventStore.history` does): voids are rare,
    so refolding one aggregate for each costs little."""
    apply = es.reducers.apply
    # The default reducer never changes its input; a user's may, so give it a copy.
    protect = len(es.reducers) > 0
    current: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.aggregate_id is None:
            continue
        before = current.get(e.aggregate_id, {})
        if e.type == VOIDED:
            after = es.state_at(e.aggregate_id, version=e.version).state
        else:
            after = apply(copy.deepcopy(before) if protect else before, e)
        current[e.aggregate_id] = after
        yield e, before, after


def _replay_changes(
    es: EventStore, aggregate_type: str | None
) -> Iterator[tuple[RecordedEvent, list[Any]]]:
    for e, before, after in _replay(es, es.read(aggregate_type=aggregate_type)):
        yield e, diff(before, after)


def as_of(
    source: Source,
    aggregate_type: str | None,
    at: TimeLike | None = None,
    *,
    occurred: TimeLike | None = None,
    known_at: TimeLike | None = None,
    time: str = "recorded_at",
    flatten: bool = True,
) -> pd.DataFrame:
    """Every aggregate of a type as it stood at ``at``: one row each.

    With ``at`` (and ``time="recorded_at"``, the default) this is what the
    store knew at ``at``: the events recorded at or before it, a prefix of the
    log read in one pass, folded in log order; aggregates created later are
    absent. ``at=None`` and no other time means now.

    With the two clocks, ``occurred`` (business time) and ``known_at`` (system
    time), either or both, it is the state as of business time ``occurred``
    using only the events recorded by ``known_at`` (default: all known now),
    folded in (occurred_at, position) order: a late correction dated back
    before ``occurred`` counts once it is known, an event dated after it does
    not. ``time="occurred_at"`` reads ``at`` as ``occurred``. States are
    rebuilt with the store's reducers. Rows are in order of creation;
    ``aggregate_type=None`` takes every aggregate.

    Columns: ``aggregate_id``, ``aggregate_type``, ``version``, ``position``
    and ``updated_at`` (recorded_at) of its last event counted, ``state``, and
    with ``flatten`` one ``state.<field>`` column per field.

    Example:
        >>> as_of("shop.db", "Order", "2024-10-01T00:00Z")["state.status"].value_counts()
        >>> as_of("shop.db", "Order", occurred="2024-03-31T23:59Z", known_at="2024-04-01Z")
    """
    if time not in ("recorded_at", "occurred_at"):
        raise ValueError(f"time must be 'recorded_at' or 'occurred_at', not {time!r}")
    if at is not None and (occurred is not None or known_at is not None):
        raise ValueError("give either at or the two clocks (occurred, known_at), not both")
    columns = ["aggregate_id", "aggregate_type", "version", "position", "updated_at"]
    if time == "occurred_at" and at is not None:
        occurred, at = at, None
    if occurred is not None or known_at is not None:
        with opened(source) as es, bulk():
            rows, found = state_rows(
                es, aggregate_type, to_datetime(occurred, "occurred"),
                to_datetime(known_at, "known_at"),
            )  # fmt: skip
        return _state_columns(_typed(pd.DataFrame(rows, columns=columns)), found, flatten)
    moment = to_datetime(at, "at")
    latest: dict[str, tuple[Any, ...]] = {}
    states_now: dict[str, dict[str, Any]] = {}
    with opened(source) as es, bulk():
        selected = es.read(aggregate_type=aggregate_type, until=moment)
        for e, _, after in _replay(es, selected):
            aggregate = e.aggregate_id
            assert aggregate is not None
            latest[aggregate] = (aggregate, e.aggregate_type, e.version, e.position, e.recorded_at)
            states_now[aggregate] = after
    frame = pd.DataFrame(list(latest.values()), columns=columns)
    return _state_columns(_typed(frame), list(states_now.values()), flatten)


def restatements(
    source: Source,
    aggregate_type: str | None,
    occurred: TimeLike,
    known_at: TimeLike,
    compared_to: TimeLike | None = None,
) -> pd.DataFrame:
    """What changed about business time ``occurred`` after the cut-off
    ``known_at``: one row per changed field of each aggregate whose state as
    of ``occurred`` differs between what was known at ``known_at`` and what
    was known at ``compared_to`` (default: now).

    Columns (:data:`RESTATEMENT_COLUMNS`): ``aggregate_id``,
    ``aggregate_type``, ``path`` (a JSON Pointer), ``then`` and ``now`` (the
    values; ``None`` where the field was absent), ``positions`` (the late
    events that changed the field: recorded after ``known_at``, occurred by
    ``occurred``), and ``recorded_at``, ``occurred_at`` and ``actor`` of the
    latest of them. An event "changed" a field when its step in the fold as
    known at ``compared_to`` changed that path or one inside or around it;
    where a reducer's effect cannot be traced so, every late event of the
    aggregate is named.

    Example:
        >>> restatements("shop.db", "Order", "2024-03-31T23:59:59Z", "2024-04-05Z")
    """
    b = to_datetime(occurred, "occurred")
    k = to_datetime(known_at, "known_at")
    if b is None or k is None:
        raise ValueError("restatements needs both occurred and known_at")
    with opened(source) as es, bulk():
        rows = restatement_rows(es, aggregate_type, b, k, to_datetime(compared_to, "compared_to"))
    return restatement_frame(rows)


# The audit views register the ``df.sss`` accessor on import.
from .views import AuditAccessor, activity  # noqa: E402

"""Event streams as pandas DataFrames, for notebooks and audits.

    >>> from workbench import frames
    >>> df = frames.events("shop.db", aggregate_type="Order", flatten=True)
    >>> df.sss.activity(freq="D")              # events per day and type
    >>> frames.as_of("shop.db", "Order", "2024-10-01T00:00Z")   # every order that day

``source`` is an open :class:`store.EventStore` or a path, which is opened
read-only for the call. Pass an ``EventStore`` to use your own reducers or
upcasters: everything here replays with the store's.

Dtypes: positions are ``int64``; ``version`` is nullable ``Int64`` (system
events have none); times are ``datetime64[ns, UTC]``; event types, aggregate
types and actors are categoricals; other text is pandas' ``str``. Payloads
(``data``, ``metadata``) are Arrow struct columns, so a million events cost no
Python object per row: ``df.data.iloc[0]`` is a dict, ``df.data.struct.field("total")``
one field, and ``flatten=True`` turns every payload field into a column
(``data.total``, nested ``data.address.zip``). Because a struct has one set of
fields, ``df.data.iloc[0]`` shows every field seen in the frame, absent ones as
``None``. Where payloads give one field two JSON types that Arrow cannot hold in
one column (a number here, a string there), that column holds Python dicts
instead.

Rows are built a chunk at a time, column by column, through Arrow;
:func:`iter_events` yields one DataFrame per chunk for stores larger than
memory (each chunk's categoricals have that chunk's categories).
"""

from __future__ import annotations

import copy
import gc
import itertools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from store import EventStore, RecordedEvent, diff

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "EVENT_COLUMNS",
    "Source",
    "activity",
    "as_of",
    "changes",
    "events",
    "iter_events",
    "states",
]

Source = EventStore | str | os.PathLike[str]
TimeLike = datetime | pd.Timestamp | str

EVENT_COLUMNS: tuple[str, ...] = (
    "position",
    "event_id",
    "aggregate_id",
    "aggregate_type",
    "version",
    "type",
    "schema_version",
    "occurred_at",
    "recorded_at",
    "actor",
    "correlation_id",
    "causation_id",
    "data",
    "metadata",
    "hash",
)
"""The columns of :func:`events`, in order (``flatten`` replaces ``data``)."""

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

_TS = pa.timestamp("us", tz="UTC")
_CATEGORICAL = ("aggregate_type", "type", "actor")
_PAYLOADS = ("data", "metadata")
_SCHEMA = pa.schema(
    [
        ("position", pa.int64()),
        ("event_id", pa.string()),
        ("aggregate_id", pa.string()),
        ("aggregate_type", pa.string()),
        ("version", pa.int64()),
        ("type", pa.string()),
        ("schema_version", pa.int64()),
        ("occurred_at", _TS),
        ("recorded_at", _TS),
        ("actor", pa.string()),
        ("correlation_id", pa.string()),
        ("causation_id", pa.string()),
        ("hash", pa.string()),
    ]
)
_GETTERS: dict[str, Callable[[RecordedEvent], Any]] = {
    "position": lambda e: e.position,
    "event_id": lambda e: e.event_id,
    "aggregate_id": lambda e: e.aggregate_id,
    "aggregate_type": lambda e: e.aggregate_type,
    "version": lambda e: e.version,
    "type": lambda e: e.type,
    "schema_version": lambda e: e.schema_version,
    "occurred_at": lambda e: e.occurred_at,
    "recorded_at": lambda e: e.recorded_at,
    "actor": lambda e: e.actor,
    "correlation_id": lambda e: e.correlation_id,
    "causation_id": lambda e: e.causation_id,
    "hash": lambda e: e.hash,
}


# -- sources and arguments ------------------------------------------------------


@contextmanager
def opened(source: Source) -> Iterator[EventStore]:
    """The store behind ``source``: itself, or a path opened read-only for the block."""
    if isinstance(source, EventStore):
        yield source
        return
    if isinstance(source, (str, os.PathLike)):
        with EventStore(os.fspath(source), readonly=True) as es:
            yield es
        return
    raise TypeError(f"source must be an EventStore or a path, not {type(source).__name__}")


def to_datetime(value: TimeLike | None, name: str = "time") -> datetime | None:
    """A timezone-aware ``datetime`` from a datetime, Timestamp or ISO-8601 text.

    Naive values are refused, never guessed: write ``"2024-10-01T00:00Z"``.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = pd.Timestamp(value)
        except ValueError as e:
            raise ValueError(f"{name} {value!r} is not an ISO-8601 time") from e
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime or ISO-8601 text, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
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


@contextmanager
def _bulk() -> Iterator[None]:
    # Loading keeps a chunk of freshly made events alive; the cyclic collector
    # would walk them again and again for nothing (none holds a cycle).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# -- building columns -------------------------------------------------------------


class _MixedTypes(Exception):
    """A payload column cannot be one Arrow type; keep it as Python objects."""

    def __init__(self, column: str) -> None:
        super().__init__(column)
        self.column = column


def _payload_array(values: list[dict[str, Any]]) -> pa.Array:
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise _MixedTypes("") from None
    if not pa.types.is_struct(array.type):  # only for an empty chunk
        array = pa.array(values, type=pa.struct([]))
    return array


def _chunk_table(
    chunk: Sequence[RecordedEvent], as_objects: frozenset[str]
) -> tuple[pa.Table, dict[str, list[Any]]]:
    """One chunk of events as an Arrow table, column by column.

    Payload columns named in ``as_objects`` come back as Python lists instead.
    """
    arrays: list[pa.Array] = [
        pa.array([get(e) for e in chunk], type=field.type)
        for field, get in ((f, _GETTERS[f.name]) for f in _SCHEMA)
    ]
    table = pa.Table.from_arrays(arrays, schema=_SCHEMA)
    objects: dict[str, list[Any]] = {}
    for name in _PAYLOADS:
        values = [e.data for e in chunk] if name == "data" else [e.metadata for e in chunk]
        if name in as_objects:
            objects[name] = values
            continue
        try:
            table = table.append_column(name, _payload_array(values))
        except _MixedTypes:
            raise _MixedTypes(name) from None
    return table, objects


def _flat_arrays(name: str, array: pa.ChunkedArray) -> Iterator[tuple[str, pa.ChunkedArray]]:
    """A struct column's leaves as ``name.field`` columns, nested structs too."""
    if not pa.types.is_struct(array.type):
        yield name, array
        return
    for index in range(array.type.num_fields):
        child = pc.struct_field(array, [index])
        yield from _flat_arrays(f"{name}.{array.type.field(index).name}", child)


def _pandas_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_int64(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_nested(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def _to_frame(
    table: pa.Table,
    objects: Mapping[str, list[Any]],
    flatten: bool,
) -> pd.DataFrame:
    """The final DataFrame: categoricals, UTC nanosecond times, payloads placed."""
    for name in _CATEGORICAL:
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, pc.dictionary_encode(table.column(name)))
    flat: list[tuple[str, pa.ChunkedArray]] = []
    if flatten and "data" in table.column_names:
        flat = list(_flat_arrays("data", table.column("data")))
        table = table.drop_columns(["data"])
    if flat:
        for name, array in flat:
            table = table.append_column(name, array)
    frame = table.to_pandas(
        types_mapper=_pandas_type,
        coerce_temporal_nanoseconds=True,
        split_blocks=True,
        self_destruct=True,
    )
    for name in ("position", "schema_version"):
        if name in frame.columns:
            frame[name] = frame[name].astype("int64")
    for name, values in objects.items():
        if flatten and name == "data":
            normal = pd.json_normalize(values, sep=".") if values else pd.DataFrame()
            normal = normal.rename(columns=lambda c: f"data.{c}")
            normal.index = frame.index
            frame = pd.concat([frame, normal], axis=1)
        else:
            frame[name] = pd.Series(values, index=frame.index, dtype=object)
    order = [c for c in EVENT_COLUMNS if c in frame.columns and not (flatten and c == "data")]
    rest = [c for c in frame.columns if c not in order]
    return frame[order + rest]


def _chunks(es: EventStore, filters: Mapping[str, Any], size: int) -> Iterator[list[RecordedEvent]]:
    events = es.read(**filters)
    while chunk := list(itertools.islice(events, size)):
        yield chunk


def _load(
    es: EventStore, filters: Mapping[str, Any], flatten: bool, as_objects: frozenset[str]
) -> pd.DataFrame:
    tables: list[pa.Table] = []
    objects: dict[str, list[Any]] = {name: [] for name in as_objects}
    with _bulk():
        for chunk in _chunks(es, filters, 50_000):
            table, chunk_objects = _chunk_table(chunk, as_objects)
            tables.append(table)
            for name, values in chunk_objects.items():
                objects[name].extend(values)
            del chunk
    if not tables:
        tables.append(_chunk_table([], frozenset(_PAYLOADS))[0])
        for name in _PAYLOADS:
            if name not in as_objects:
                tables[0] = tables[0].append_column(name, pa.array([], type=pa.struct([])))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        # Two chunks gave one field different types: find which payload.
        for name in _PAYLOADS:
            if name in as_objects:
                continue
            try:
                pa.concat_tables([t.select([name]) for t in tables], promote_options="permissive")
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise _MixedTypes(name) from None
        raise  # pragma: no cover - only payload columns can differ
    del tables
    return _to_frame(table, objects, flatten)


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
    ``until`` also take ISO-8601 text with a zone). ``flatten=True`` replaces
    ``data`` by one column per payload field (``data.total``, ``data.address.zip``).
    Columns: :data:`EVENT_COLUMNS`.

    Example:
        >>> df = events("shop.db", types=["OrderPlaced"], since="2024-10-01T00:00Z")
        >>> df.groupby("actor", observed=True).size()
    """
    filters = _filters(
        from_position, aggregate_id, aggregate_type, types, since, until, limit, backwards
    )
    as_objects: frozenset[str] = frozenset()
    with opened(source) as es:
        while True:
            try:
                return _load(es, filters, flatten, as_objects)
            except _MixedTypes as mixed:
                as_objects |= {mixed.column}


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
        for chunk in _chunks(es, filters, chunksize):
            with _bulk():
                try:
                    table, objects = _chunk_table(chunk, frozenset())
                except _MixedTypes:
                    table, objects = _chunk_table(chunk, frozenset(_PAYLOADS))
            del chunk
            yield _to_frame(table, objects, flatten)


# -- state --------------------------------------------------------------------------


def _state_columns(frame: pd.DataFrame, state: list[dict[str, Any]], flatten: bool) -> pd.DataFrame:
    frame["state"] = pd.Series(state, index=frame.index, dtype=object)
    if not flatten or not state:
        return frame
    try:
        array = pa.chunked_array([_payload_array(state)])
        flat = pa.table(dict(_flat_arrays("state", array)))
        columns = flat.to_pandas(types_mapper=_pandas_type, coerce_temporal_nanoseconds=True)
    except _MixedTypes:
        columns = pd.json_normalize(state, sep=".").rename(columns=lambda c: f"state.{c}")
    columns.index = frame.index
    return pd.concat([frame, columns], axis=1)


def _typed(frame: pd.DataFrame, categorical: Sequence[str] = ("type", "actor")) -> pd.DataFrame:
    for name in frame.columns:
        if name in ("recorded_at", "occurred_at", "updated_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[ns, UTC]")
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
    """Fold many aggregates at once: (event, state before, state after)."""
    apply = es.reducers.apply
    # The default reducer never changes its input; a user's may, so give it a copy.
    protect = len(es.reducers) > 0
    current: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.aggregate_id is None:
            continue
        before = current.get(e.aggregate_id, {})
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
    at: TimeLike,
    *,
    time: str = "recorded_at",
    flatten: bool = True,
) -> pd.DataFrame:
    """Every aggregate of a type as it stood at ``at``: one row each.

    With ``time="recorded_at"`` (the default) this is what the store knew at
    ``at``: the events recorded at or before it, a prefix of the log read in one
    pass; aggregates created later are absent. With ``time="occurred_at"`` it
    is what had happened by ``at`` in business time as known now: late
    arrivals dated back before ``at`` count, events dated after it do not.
    States are rebuilt with the store's reducers, in log order. Rows are in
    order of creation; ``aggregate_type=None`` takes every aggregate.

    Columns: ``aggregate_id``, ``aggregate_type``, ``version``, ``position``
    and ``updated_at`` (recorded_at) of its last event counted, ``state``, and
    with ``flatten`` one ``state.<field>`` column per field.

    Example:
        >>> as_of("shop.db", "Order", "2024-10-01T00:00Z")["state.status"].value_counts()
    """
    moment = to_datetime(at, "at")
    assert moment is not None
    if time not in ("recorded_at", "occurred_at"):
        raise ValueError(f"time must be 'recorded_at' or 'occurred_at', not {time!r}")
    latest: dict[str, tuple[Any, ...]] = {}
    states_now: dict[str, dict[str, Any]] = {}
    with opened(source) as es, _bulk():
        if time == "recorded_at":
            selected: Iterable[RecordedEvent] = es.read(aggregate_type=aggregate_type, until=moment)
        else:
            every = es.read(aggregate_type=aggregate_type)
            selected = (e for e in every if e.occurred_at <= moment)
        for e, _, after in _replay(es, selected):
            aggregate = e.aggregate_id
            assert aggregate is not None
            latest[aggregate] = (aggregate, e.aggregate_type, e.version, e.position, e.recorded_at)
            states_now[aggregate] = after
    frame = pd.DataFrame(
        list(latest.values()),
        columns=["aggregate_id", "aggregate_type", "version", "position", "updated_at"],
    )
    return _state_columns(_typed(frame), list(states_now.values()), flatten)


# -- audit views ----------------------------------------------------------------------


def _activity(frame: pd.DataFrame, freq: str, by: str, time: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name=time), dtype="int64")
    labels = frame[by].astype(object).where(frame[by].notna(), "(none)").astype(str)
    counts = frame.groupby([pd.Grouper(key=time, freq=freq), labels]).size()
    table = counts.unstack(by, fill_value=0)
    table.columns = [str(c) for c in table.columns]
    return table.astype("int64")


def activity(
    source: Source | pd.DataFrame,
    freq: str = "D",
    by: str = "type",
    *,
    time: str = "recorded_at",
    chunksize: int = 200_000,
) -> pd.DataFrame:
    """Events per period (``freq``, a pandas offset such as ``"h"``, ``"D"``,
    ``"W"``) and per value of ``by`` (``type``, ``actor``, ``aggregate_type``),
    bucketed by ``time`` (``recorded_at`` or business time ``occurred_at``).

    Works a chunk at a time on a store, so it fits any size.
    """
    if isinstance(source, pd.DataFrame):
        return _activity(source, freq, by, time)
    total: pd.DataFrame | None = None
    for chunk in iter_events(source, chunksize):
        part = _activity(chunk[[time, by]], freq, by, time)
        total = part if total is None else total.add(part, fill_value=0)
    if total is None:
        return _activity(pd.DataFrame({time: [], by: []}), freq, by, time)
    return total.fillna(0).astype("int64").sort_index()


@pd.api.extensions.register_dataframe_accessor("sss")
class AuditAccessor:
    """Audit views of an :func:`events` frame, as ``df.sss.<view>()``.

    ``time`` picks the clock: ``recorded_at`` (when the store learnt of an
    event, the default) or ``occurred_at`` (business time).

    Example:
        >>> df = events("shop.db")
        >>> df.sss.activity("D")     # events per day and type
        >>> df.sss.actors()          # events per actor and type
        >>> df.sss.gaps()            # time since the aggregate's previous event
        >>> df.sss.plot_activity("W", time="occurred_at")
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = {"recorded_at", "type"} - set(frame.columns)
        if missing:
            raise AttributeError(
                f"df.sss needs a frame from frames.events (missing {', '.join(sorted(missing))})"
            )
        self._frame = frame

    def activity(
        self, freq: str = "D", by: str = "type", time: str = "recorded_at"
    ) -> pd.DataFrame:
        """Events per period and per value of ``by``."""
        return _activity(self._frame, freq, by, time)

    def actors(self) -> pd.DataFrame:
        """Events per actor (rows) and type (columns), busiest actor first."""
        frame = self._frame
        actor = frame["actor"].astype(object).fillna("(none)")
        table = pd.crosstab(actor, frame["type"].astype(object))
        table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
        table.index.name = "actor"
        table.columns.name = "type"
        return table

    def gaps(self, time: str = "recorded_at") -> pd.Series:
        """For each event, the time since the previous event of its aggregate
        (``NaT`` for an aggregate's first event and for system events)."""
        frame = self._frame
        ordered = frame.sort_values("position") if "position" in frame.columns else frame
        gap = ordered.groupby("aggregate_id", dropna=True, observed=True)[time].diff()
        return gap.reindex(frame.index).rename("gap")

    def plot_activity(
        self, freq: str = "D", by: str = "type", time: str = "recorded_at", ax: Axes | None = None
    ) -> Axes:
        """A stacked bar chart of :meth:`activity` (the ten busiest values of ``by``)."""
        table = self.activity(freq, by, time)
        if table.shape[1] > 10:
            top = table.sum().sort_values(ascending=False).index
            table = pd.concat([table[top[:9]], table[top[9:]].sum(axis=1).rename("other")], axis=1)
        fine = freq.lower().lstrip("0123456789") in ("h", "min", "s")
        table.index = table.index.strftime("%Y-%m-%d %H:%M" if fine else "%Y-%m-%d")
        ax = table.plot.bar(stacked=True, ax=ax, width=0.9, title=f"Events per {freq} by {by}")
        ax.set_xlabel(time)
        ax.set_ylabel("events")
        return ax

    def plot_actors(self, top: int = 15, ax: Axes | None = None) -> Axes:
        """A stacked horizontal bar chart of the ``top`` busiest actors."""
        table = self.actors().head(top)
        table = table.loc[:, table.sum() > 0]
        ax = table.iloc[::-1].plot.barh(stacked=True, ax=ax, title="Events per actor", legend=False)
        ax.set_xlabel("events")
        return ax

    def plot_gaps(self, time: str = "recorded_at", bins: int = 40, ax: Axes | None = None) -> Axes:
        """A histogram of :meth:`gaps`, in hours."""
        hours = self.gaps(time).dropna().dt.total_seconds() / 3600
        ax = hours.plot.hist(bins=bins, ax=ax, title="Time between events of an aggregate")
        ax.set_xlabel("hours")
        return ax

"""Events to Arrow columns to a DataFrame, a chunk at a time.

A chunk arrives as rows in :data:`ROW_FIELDS` order, either built from
:class:`store.RecordedEvent` objects (payloads as dicts, times as datetimes)
or, where the store offers ``read_rows``, as stored (payloads as JSON text,
times as ISO-8601 text). Each column becomes one Arrow array; nothing keeps a
Python object per row once the chunk is converted.
"""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from store import EVENT_FIELDS, RecordedEvent

__all__ = [
    "CATEGORICAL",
    "EVENT_COLUMNS",
    "ROW_FIELDS",
    "MixedTypes",
    "bulk",
    "chunk_table",
    "concat",
    "event_rows",
    "flat_arrays",
    "frame_of",
    "pandas_type",
    "payload_array",
    "to_frame",
]

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

ROW_FIELDS: tuple[str, ...] = EVENT_FIELDS
"""The order of a row: the schema's field order, as ``read_rows`` gives it."""

TS = pa.timestamp("us", tz="UTC")
CATEGORICAL = ("aggregate_type", "type", "actor")
_META_FIELDS = ("actor", "correlation_id", "causation_id")
_META_SCHEMA = pa.schema([(name, pa.string()) for name in _META_FIELDS])
_STRINGS = ("event_id", "aggregate_id", "aggregate_type", "type", "hash")
_dumps = orjson.dumps


def _encode(value: Any) -> str:
    # The store writes payloads with orjson too, so this is the stored text.
    return _dumps(value).decode()


class MixedTypes(Exception):
    """Payload fields whose JSON types Arrow cannot hold in one column."""


@contextmanager
def bulk() -> Iterator[None]:
    # Loading keeps a chunk of freshly made events alive; the cyclic collector
    # would walk them again and again for nothing (none holds a cycle).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def event_rows(chunk: Sequence[RecordedEvent]) -> list[tuple[Any, ...]]:
    return [
        (
            e.position,
            e.event_id,
            e.aggregate_id,
            e.aggregate_type,
            e.version,
            e.type,
            e.schema_version,
            e.data,
            e.metadata,
            e.occurred_at,
            e.recorded_at,
            e.hash,
        )
        for e in chunk
    ]


def payload_array(values: Sequence[dict[str, Any]]) -> pa.Array[Any]:
    """Dicts as one Arrow struct array; :class:`MixedTypes` when they do not fit one."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        raise MixedTypes() from None
    if not pa.types.is_struct(array.type):  # an empty chunk
        array = pa.array(values, type=pa.struct([]))
    return array


def _text(value: Any) -> str | None:
    # What RecordedEvent.actor and friends give: text, or None when absent.
    return value if value is None or type(value) is str else str(value)


def _meta_columns(
    dicts: Sequence[dict[str, Any]] | None, texts: Sequence[str]
) -> list[pa.Array[Any]]:
    if dicts is None:
        try:
            # Only the three fields, typed as text: no per-row Python object.
            table = pa_json.read_json(
                io.BytesIO("\n".join(texts).encode()),
                read_options=pa_json.ReadOptions(block_size=max(1 << 20, 1 + sum(map(len, texts)))),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=_META_SCHEMA, unexpected_field_behavior="ignore"
                ),
            )
            if table.num_rows == len(texts):
                return [table.column(name).combine_chunks() for name in _META_FIELDS]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # a field that is not text somewhere: take the slow road
        dicts = [orjson.loads(text) for text in texts]
    return [pa.array([_text(d.get(name)) for d in dicts], pa.string()) for name in _META_FIELDS]


def chunk_table(
    rows: Sequence[tuple[Any, ...]], *, raw: bool, flatten: bool, as_objects: bool = False
) -> tuple[pa.Table, list[dict[str, Any]] | None]:
    """One chunk as an Arrow table in :data:`EVENT_COLUMNS` order.

    ``raw`` rows carry JSON and ISO-8601 text; others dicts and datetimes.
    ``data`` is JSON text, or with ``flatten`` an Arrow struct (whose leaves
    become columns); with ``as_objects`` (or when the struct cannot be built,
    :class:`MixedTypes`) the payload dicts come back beside the table instead.
    """
    cols: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(ROW_FIELDS)
    column = dict(zip(ROW_FIELDS, cols, strict=True))
    arrays: dict[str, pa.Array[Any]] = {
        "position": pa.array(column["position"], pa.int64()),
        "event_id": pa.array(column["event_id"], pa.string()),
        "aggregate_id": pa.array(column["aggregate_id"], pa.string()),
        "aggregate_type": pa.array(column["aggregate_type"], pa.string()),
        "version": pa.array(column["version"], pa.int64()),
        "type": pa.array(column["type"], pa.string()),
        "schema_version": pa.array(column["schema_version"], pa.int64()),
    }
    for name in ("occurred_at", "recorded_at"):
        values = column[name]
        arrays[name] = pc.cast(pa.array(values, pa.string()), TS) if raw else pa.array(values, TS)
    metadata = column["metadata"]
    meta_texts = metadata if raw else [_encode(m) for m in metadata]
    actor, correlation, causation = _meta_columns(None if raw else metadata, meta_texts)
    arrays |= {"actor": actor, "correlation_id": correlation, "causation_id": causation}
    data = column["data"]
    objects: list[dict[str, Any]] | None = None
    if flatten or as_objects:
        dicts = [orjson.loads(text) for text in data] if raw else list(data)
        if as_objects:
            objects = dicts
        else:
            arrays["data"] = payload_array(dicts)
    else:
        arrays["data"] = pa.array(data if raw else [_encode(d) for d in data], pa.string())
    arrays["metadata"] = pa.array(meta_texts, pa.string())
    arrays["hash"] = pa.array(column["hash"], pa.string())
    names = [name for name in EVENT_COLUMNS if name in arrays]
    return pa.Table.from_arrays([arrays[name] for name in names], names=names), objects


def concat(tables: list[pa.Table]) -> pa.Table:
    """Chunks as one table; struct payloads of different chunks are unified."""
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raise MixedTypes() from None


def flat_arrays(
    name: str, array: pa.ChunkedArray[Any]
) -> Iterator[tuple[str, pa.ChunkedArray[Any]]]:
    """A struct column's leaves as ``name.field`` columns, nested structs too."""
    if not pa.types.is_struct(array.type):
        yield name, array
        return
    for index in range(array.type.num_fields):
        child = pc.struct_field(array, [index])
        yield from flat_arrays(f"{name}.{array.type.field(index).name}", child)


def pandas_type(arrow_type: pa.DataType) -> Any:
    if pa.types.is_int64(arrow_type):
        return pd.Int64Dtype()
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    if pa.types.is_nested(arrow_type):
        return pd.ArrowDtype(arrow_type)
    return None


def to_frame(table: pa.Table, objects: list[dict[str, Any]] | None) -> pd.DataFrame:
    """The DataFrame: categoricals, UTC microsecond times, payload fields last."""
    for name in CATEGORICAL:
        index = table.schema.get_field_index(name)
        if not pa.types.is_dictionary(table.schema.field(index).type):
            table = table.set_column(index, name, pc.dictionary_encode(table.column(name)))
    if "data" in table.column_names and pa.types.is_struct(table.schema.field("data").type):
        flat = list(flat_arrays("data", table.column("data")))
        table = table.drop_columns(["data"])
        for name, array in flat:
            table = table.append_column(name, array)
    # A column at a time, each let go once converted: the peak is the frame
    # plus one column, not the frame plus the whole table.
    columns: list[pd.Series[Any]] = []
    for name in table.column_names:
        part = table.select([name])
        table = table.drop_columns([name])
        column = part.to_pandas(
            types_mapper=pandas_type, coerce_temporal_nanoseconds=False, self_destruct=True
        )[name]
        del part
        if name in ("position", "schema_version"):
            column = column.astype("int64")
        columns.append(column)
    del table
    frame = pd.concat(columns, axis=1) if columns else pd.DataFrame()
    del columns
    if objects is not None:
        normal = pd.json_normalize(objects, sep=".") if objects else pd.DataFrame()
        normal = normal.rename(columns=lambda c: f"data.{c}")
        normal.index = frame.index
        frame = pd.concat([frame, normal], axis=1)
    return frame


def frame_of(
    tables: list[pa.Table], objects: list[dict[str, Any]] | None, flatten: bool
) -> pd.DataFrame:
    """Chunks as one DataFrame (the columns and dtypes stand even with no rows).

    The list is emptied: with no other reference left to the chunks,
    ``to_pandas(self_destruct=True)`` frees each column once it is converted."""
    if not tables:
        tables = [chunk_table([], raw=False, flatten=flatten and objects is None)[0]]
    table = concat(tables)
    tables.clear()
    return to_frame(table, objects)

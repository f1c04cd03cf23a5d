"""A SQLite store read straight into Arrow, through ADBC's SQLite driver.

The store hands over a read as one statement (:meth:`store.EventStore.read_statement`);
the driver runs it on a read-only connection of its own and builds Arrow record
batches in C, so no Python object is made per row or per field. Each batch then
gets the frames' column types (times parsed; ``actor``, ``correlation_id`` and
``causation_id`` taken from the metadata by Arrow's JSON reader) on a worker
thread while the driver reads the next batch: both release the GIL, so two
cores share the work.

Whatever this path cannot do ends it, and the caller goes on through
``read_rows`` after the last row it got: no statement (PostgreSQL, ``:memory:``,
upcasters, an open write transaction), the driver missing, a column
the driver typed otherwise than the schema (its first rows all NULL, or text
where a number was), any error of the driver. So every result, and every
error a person sees, is the one the row path gives.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json

from store import EventStore

from ._columns import (
    _META_FIELDS,
    _META_SCHEMA,
    CATEGORICAL,
    EVENT_COLUMNS,
    ROW_FIELDS,
    TS,
    MixedTypes,
    _meta_columns,
    payload_array,
)

__all__ = ["Chunk", "Resume", "arrow_chunks", "rows_after"]

Chunk = tuple[pa.Table, list[dict[str, Any]] | None]
Resume = tuple[int, int | None]
"""Rows already given and the position of the last one (None: none given)."""

_TYPES: dict[str, Any] = {
    name: pa.int64() if name in ("position", "version", "schema_version") else pa.string()
    for name in ROW_FIELDS
}
_PENDING = 1  # batches converted ahead of the consumer; bounds the memory held


class _Unfit(Exception):
    """A batch whose columns are not typed as the store's schema."""


def _checked(batch: pa.RecordBatch) -> dict[str, pa.Array[Any]]:
    if batch.schema.names != list(ROW_FIELDS):
        raise _Unfit()
    columns: dict[str, pa.Array[Any]] = {}
    for name, array in zip(ROW_FIELDS, batch.columns, strict=True):
        want = _TYPES[name]
        if array.type != want:
            if array.null_count != len(array):
                raise _Unfit()
            array = pa.nulls(len(array), want)  # the driver types an all-NULL column as int
        columns[name] = array
    return columns


def _meta(metadata: Any) -> list[pa.Array[Any]]:
    """actor, correlation_id, causation_id from the metadata JSON, in C."""
    if len(metadata) and metadata.null_count == 0:
        # Each text followed by a newline: one buffer of JSON Lines, no copy per row.
        lines = pc.binary_join_element_wise(metadata, "", "\n", memory_pool=_POOL)
        offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)
        start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
        longest = int(pc.max(pc.binary_length(lines)).as_py())
        try:
            source: Any = pa.BufferReader(lines.buffers()[2].slice(start, end - start))
            table = pa_json.read_json(
                source,
                read_options=pa_json.ReadOptions(block_size=max(1 << 20, 2 * longest)),
                parse_options=pa_json.ParseOptions(
                    explicit_schema=_META_SCHEMA, unexpected_field_behavior="ignore"
                ),
                memory_pool=_POOL,
            )
            if table.num_rows == len(metadata):
                return [table.column(name).combine_chunks(_POOL) for name in _META_FIELDS]
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass  # a field that is not text, or a text spanning lines: the row rule
    texts: list[str] = metadata.to_pylist()
    return _meta_columns(None, texts)


# The driver allocates its batches with malloc; allocating what is kept from
# the same allocator lets each batch's memory be reused for the next copies,
# rather than two allocators each holding freed memory of their own.
_POOL = pa.system_memory_pool()


def _large(array: pa.Array[Any]) -> pa.Array[Any]:
    return pc.cast(array, pa.large_string(), memory_pool=_POOL)


_EMPTY = {kind: pa.array([], kind) for kind in (pa.int64(), pa.string())}


def _own(array: pa.Array[Any]) -> pa.Array[Any]:
    """A column of the driver's batch copied into Arrow's own memory, text as
    pandas keeps it (``large_string``). A column kept as it came would keep the
    whole batch alive (its time and type text too) until the frame is built."""
    copy = pa.concat_arrays([array, _EMPTY[array.type]], memory_pool=_POOL)
    return _large(copy) if copy.type == pa.string() else copy


def _convert(batch: pa.RecordBatch, flatten: bool, as_objects: bool, per_chunk: bool) -> Chunk:
    """One batch as :func:`._columns.chunk_table` makes a chunk of raw rows."""
    column = _checked(batch)
    arrays = {name: _own(column[name]) for name in ROW_FIELDS[:7]}
    for name in ("occurred_at", "recorded_at"):
        arrays[name] = pc.cast(column[name], TS, memory_pool=_POOL)
    actor, correlation, causation = _meta(column["metadata"])
    arrays |= {
        "actor": actor,
        "correlation_id": _large(correlation),
        "causation_id": _large(causation),
    }
    objects: list[dict[str, Any]] | None = None
    if flatten or as_objects:
        payloads: list[Any] = column["data"].to_pylist()
        dicts = [orjson.loads(text) for text in payloads]
        if not as_objects:
            try:
                arrays["data"] = payload_array(dicts)
            except MixedTypes:
                if not per_chunk:
                    raise
                as_objects = True
        if as_objects:
            objects = dicts
    else:
        arrays["data"] = _own(column["data"])
    arrays["metadata"] = _own(column["metadata"])
    arrays["hash"] = _own(column["hash"])
    for name in CATEGORICAL:
        # Here, beside the driver's next read, rather than over the whole table
        # at the end; the text columns are let go a batch at a time.
        arrays[name] = pc.dictionary_encode(arrays[name], memory_pool=_POOL)
    names = [name for name in EVENT_COLUMNS if name in arrays]
    return pa.Table.from_arrays([arrays[name] for name in names], names=names), objects


def _statement(es: EventStore, filters: Mapping[str, Any]) -> Any:
    read_statement = getattr(es, "read_statement", None)
    if not callable(read_statement):
        return None
    statement = read_statement(**filters)
    if statement is None or statement.dialect != "sqlite":
        return None
    return statement


def arrow_chunks(
    es: EventStore,
    filters: Mapping[str, Any],
    size: int,
    *,
    flatten: bool,
    as_objects: bool = False,
    per_chunk: bool = False,
) -> Generator[Chunk, None, Resume | None]:
    """Chunks of at most ``size`` rows; returns None when the read is complete,
    or where the row path must resume (:data:`Resume`).

    The filters are checked by the store first, whichever path reads. A
    :class:`MixedTypes` chunk is raised, or with ``per_chunk`` that chunk's
    payloads come back as dicts (as ``iter_events`` wants).
    """
    statement = _statement(es, filters)
    if statement is None:
        return (0, None)
    given, last = 0, None
    try:
        # Imported here: a command that never loads a frame does not pay for it.
        import adbc_driver_sqlite.dbapi as adbc_sqlite

        conn = adbc_sqlite.connect(statement.database)
    except Exception:
        return (0, None)
    pending: deque[Future[Chunk]] = deque()
    cursor = reader = None
    try:
        with ThreadPoolExecutor(1) as pool:
            cursor = conn.cursor()
            cursor.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(size)})
            cursor.execute(statement.sql, statement.params or None)
            reader = cursor.fetch_record_batch()
            done = False
            while not done:
                try:
                    batch = reader.read_next_batch()
                    pending.append(pool.submit(_convert, batch, flatten, as_objects, per_chunk))
                    del batch
                except StopIteration:
                    done = True
                while pending and (done or len(pending) > _PENDING):
                    table, objects = pending.popleft().result()
                    if table.num_rows:
                        # Counted before the consumer sees it: to_frame lets the
                        # table's buffers go as it converts them.
                        given += table.num_rows
                        last = table.column("position")[-1].as_py()
                        yield table, objects
    except MixedTypes:
        raise
    except Exception:
        # The driver, or a batch it typed otherwise: the row path goes on.
        return (given, last)
    finally:
        for future in pending:
            future.cancel()
        for handle in (reader, cursor, conn):
            if handle is not None:
                # Closing a handle the driver already gave up may fail too.
                with contextlib.suppress(Exception):
                    handle.close()
    if given == 0:
        # No row: the row path gives the typed empty frame (the driver types
        # the columns of an empty result as it likes).
        return (0, None)
    return None


def rows_after(filters: Mapping[str, Any], resume: Resume) -> dict[str, Any] | None:
    """The filters of what is left to read after ``resume``; None when nothing is."""
    given, last = resume
    rest = dict(filters)
    if last is None:
        return rest
    if rest.get("limit") is not None:
        rest["limit"] -= given
        if rest["limit"] <= 0:
            return None
    if rest.get("backwards"):
        if last <= 1:
            return None
        rest["from_position"] = last - 1
    else:
        rest["from_position"] = last + 1
    return rest

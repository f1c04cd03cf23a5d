"""The SQLite backend: the one place that opens connections and sets PRAGMAs."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..backend import Backend, ChainRow, Query, Snapshot, WriteTransaction
from ..codec import loads_stored
from ..counting import KeptCount
from ..errors import (
    CorruptStoreError,
    NotFoundError,
    ReadOnlyError,
    StoreError,
    ValidationError,
)
from ..models import AggregateInfo, ReadStatement, RecordedEvent
from ..sql import SQLITE
from .errors import busy, errorname, translated
from .rows import SQLiteWrite, aggregate_row, events, lenient_text, tree_filled
from .schema import COLUMNS, COUNT_EVENTS, TREE_SCHEMA, ensure_schema, read_columns

__all__ = ["SQLiteBackend"]


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def check_file(path: str, readonly: bool) -> None:
    """Refuse, before SQLite sees it, a path that cannot hold an event store.

    One ``stat`` call: a missing file is NotFoundError when read-only (or when
    its directory is missing); anything that exists and is not a regular file
    is a ValidationError, because SQLite would block forever opening a FIFO,
    read a device as if it were a file, or fail obscurely on a directory or
    socket. Symbolic links are followed, so a link to a store file is fine.
    """
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        if readonly:
            raise NotFoundError(f"no event store at {path}: the file does not exist") from None
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise NotFoundError(
                f"cannot create {path}: directory {parent} does not exist"
            ) from None
        return
    except OSError:
        return  # unreadable metadata (permissions, a loop): SQLite's error says why
    if not stat.S_ISREG(mode):
        raise ValidationError(f"{path} is {_kind(mode)}, not an event store file")


class SQLiteBackend(Backend):
    """An event store in one SQLite file (or ``:memory:``).

    Args:
        path: the file; created with its schema when missing (unless read-only).
        readonly: open with ``mode=ro``; SQLite itself refuses every write.
        durable: ``synchronous=FULL``, so an acknowledged append survives power
            loss. ``False`` gives ``synchronous=NORMAL``: still safe against a
            crashed process, but the last commits may be lost on power loss;
            meant for bulk imports and generated stores.
        timeout: seconds to wait for another writer's lock before LockedError.
    """

    def __init__(
        self, path: str, *, readonly: bool = False, durable: bool = True, timeout: float = 5.0
    ) -> None:
        self.location = self.display = path
        self.readonly = readonly
        self.opened_as = "read-only" if readonly else "read-write"
        self._depth = 0
        self._private_copy: str | None = None
        # What another connection opens to read the same file (read_statement).
        self._read_uri: str | None = None
        memory = path == ":memory:" or path.startswith("file::memory:")
        if not memory:
            check_file(path, readonly)
        if readonly and memory:
            raise ReadOnlyError("a read-only :memory: store would always be empty")
        if memory:
            uri = ":memory:"
        else:
            mode = "ro" if readonly else "rwc"
            uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode={mode}"
            self._read_uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
        deadline = time.monotonic() + timeout
        with translated(path):
            self.conn = self._connect(uri, not memory, timeout)
            try:
                while True:
                    try:
                        self._configure(durable, memory)
                        break
                    except sqlite3.OperationalError as e:
                        # Another process is creating the file or switching it to
                        # WAL: journal_mode=WAL answers SQLITE_BUSY at once, without
                        # the busy handler, so wait here as the timeout allows.
                        if not busy(e) or time.monotonic() >= deadline:
                            raise
                        time.sleep(0.01)
            except sqlite3.Error as e:
                self.conn.close()
                if errorname(e) != "SQLITE_CANTOPEN" or memory:
                    raise
                if readonly:
                    self._open_unwritable(path, timeout)
                elif not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
                    raise ReadOnlyError(
                        f"{path} cannot be written here (read-only media, or a directory "
                        "this user may not write); open it read-only"
                    ) from e
                else:
                    raise
            except BaseException:
                self.conn.close()
                raise

    @staticmethod
    def _connect(uri: str, is_uri: bool, timeout: float) -> sqlite3.Connection:
        # Autocommit mode: transactions are opened explicitly with BEGIN
        # IMMEDIATE, so waiting for the write lock happens up front, once.
        return sqlite3.connect(
            uri,
            uri=is_uri,
            timeout=timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=256,
        )

    def _open_unwritable(self, path: str, timeout: float) -> None:
        """Open a store on read-only media, or in a directory this process may
        not write: a WAL database needs its ``-shm`` file, which cannot be
        created there.

        Without a ``-wal`` file holding data, the main file is the whole store
        and is opened ``immutable=1`` (SQLite then takes no locks: nothing may
        write it meanwhile, which read-only media guarantee). When a ``-wal``
        file holds committed events, the file and its WAL are copied to a
        private temporary directory and the copy is read, so nothing committed
        is missed; the copy is removed on close.
        """
        absolute = os.path.abspath(path)
        wal = absolute + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            self._private_copy = tempfile.mkdtemp(prefix="sss-readonly-")
            copy = os.path.join(self._private_copy, "events.db")
            try:
                shutil.copyfile(absolute, copy)
                shutil.copyfile(wal, copy + "-wal")
            except OSError as e:
                shutil.rmtree(self._private_copy, ignore_errors=True)
                raise NotFoundError(f"cannot read {path}: {e}") from e
            uri = f"file:{urllib.parse.quote(copy)}?mode=ro"
            self._read_uri = uri
            self.opened_as = "read-only, from a private copy of the file and its WAL"
        else:
            uri = f"file:{urllib.parse.quote(absolute)}?mode=ro&immutable=1"
            self._read_uri = uri
            self.opened_as = "read-only, immutable (the directory cannot be written)"
        self.conn = self._connect(uri, True, timeout)
        try:
            self._configure(True, False)
        except BaseException:
            self.close()
            raise

    def _configure(self, durable: bool, memory: bool) -> None:
        conn = self.conn
        try:
            # Fail fast on a file that is not SQLite at all.
            conn.execute("PRAGMA schema_version").fetchone()
        except sqlite3.DatabaseError as e:
            if errorname(e) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
                raise CorruptStoreError(
                    f"{self.location} is not an event store: it is not an SQLite database ({e})"
                ) from e
            raise
        # WAL lets readers (the TUI, follow) run while a writer appends.
        # Switching needs a lock even when the mode is WAL already, so ask first.
        if (
            not self.readonly
            and not memory
            and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal"
        ):
            conn.execute("PRAGMA journal_mode=WAL")
        # FULL syncs the WAL on every commit: an acknowledged append survives
        # power loss. NORMAL only survives a crash of the process.
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # REPLACE must not delete events behind the triggers' back.
        conn.execute("PRAGMA recursive_triggers=ON")
        # Keep hot index pages of large stores in memory (~64 MB).
        conn.execute("PRAGMA cache_size=-65536")
        # Temporary sort structures in memory, not on disk.
        conn.execute("PRAGMA temp_store=MEMORY")
        self.format_version = ensure_schema(self.conn, self.location, self.readonly)
        self._columns, self._chain_columns = read_columns(self.format_version)

    def close(self) -> None:
        if not self.readonly:
            # Refresh the planner's statistics where they went stale, cheaply.
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("PRAGMA optimize")
        self.conn.close()
        if self._private_copy is not None:
            shutil.rmtree(self._private_copy, ignore_errors=True)
            self._private_copy = None

    @contextmanager
    def write(self) -> Iterator[WriteTransaction]:
        if self.readonly:
            raise ReadOnlyError(f"{self.location} is open read-only; writes are refused")
        conn = self.conn
        with translated(self.location):
            if self._depth:
                name = f"sss_{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                self._depth += 1
                try:
                    yield SQLiteWrite(conn)
                except BaseException:
                    # Some errors (a full disk) end the whole transaction;
                    # then there is no savepoint left to roll back to.
                    if conn.in_transaction:
                        conn.execute(f"ROLLBACK TO {name}")
                        conn.execute(f"RELEASE {name}")
                    raise
                else:
                    conn.execute(f"RELEASE {name}")
                finally:
                    self._depth -= 1
                return
            conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield SQLiteWrite(conn)
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # Never leave the write lock held by a half-finished commit.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            finally:
                self._depth = 0

    def head(self) -> int:
        with translated(self.location):
            row = self.conn.execute("SELECT max(position) FROM events").fetchone()
        return row[0] or 0

    def _select(
        self,
        query: Query,
        type_: str | None,
        after: int | None,
        backwards: bool,
        limit: int,
        columns: str = COLUMNS,
    ) -> sqlite3.Cursor:
        if after is None:
            after = self.keyset_start(query, backwards)
        sql, params = SQLITE.page(query, type_, after, backwards, limit, columns)
        return self.conn.execute(sql, params)

    def page(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[RecordedEvent]:
        with translated(self.location):
            rows = self._select(query, type_, after, backwards, limit, self._columns)
            try:
                return events(rows)
            except ValueError as e:
                raise CorruptStoreError(
                    f"{self.location}: a stored event cannot be decoded ({e}); run sss verify"
                ) from e

    def read_statement(
        self, query: Query, limit: int | None, backwards: bool
    ) -> ReadStatement | None:
        if self._read_uri is None or self._depth > 0:
            return None  # :memory:, or rows this connection has not committed
        # One statement in read order: a read of several types needs no merge
        # here, as the statement's consumer takes every row in one pass.
        sql, params = SQLITE.page(
            query, None, None, backwards, -1 if limit is None else limit, COLUMNS
        )
        return ReadStatement("sqlite", self._read_uri, sql, tuple(params))

    def page_rows(
        self, query: Query, type_: str | None, after: int | None, backwards: bool, limit: int
    ) -> list[tuple[Any, ...]]:
        with translated(self.location):
            return self._select(query, type_, after, backwards, limit).fetchall()

    def payloads(self, aggregate_id: str, after_version: int, limit: int) -> list[tuple[int, str]]:
        sql, params = SQLITE.page(
            Query(1, None, aggregate_id), None, after_version, False, limit, "version, data"
        )
        with translated(self.location):
            return self.conn.execute(sql, params).fetchall()

    def explain(self, query: Query, type_: str | None, backwards: bool = False) -> list[str]:
        """The query plan of a page read, for tests and for curious users."""
        sql, params = SQLITE.page(query, type_, 0, backwards, 100, COLUMNS)
        return [row[3] for row in self.conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]

    def count(self, query: Query) -> int:
        sql, params = SQLITE.count(query)
        with translated(self.location):
            return int(self.conn.execute(sql, params).fetchone()[0])

    # recorded_at never decreases as position grows and positions have no gaps,
    # so a time is found by bisecting positions on the primary key: about 25
    # point reads for ten million events, and no recorded_at index to keep
    # current on every append.

    def _recorded_at(self, position: int) -> str:
        row = self.conn.execute(
            "SELECT recorded_at FROM events WHERE position = ?", (position,)
        ).fetchone()
        if row is None:
            raise CorruptStoreError(f"{self.location}: position {position} is missing; run verify")
        return str(row[0])

    def first_position_since(self, since: str) -> int | None:
        with translated(self.location):
            lo, hi = 1, self.head() + 1
            while lo < hi:
                middle = (lo + hi) // 2
                if self._recorded_at(middle) < since:
                    lo = middle + 1
                else:
                    hi = middle
            return None if lo > self.head() else lo

    def last_position_until(self, until: str) -> int:
        with translated(self.location):
            lo, hi = 0, self.head()
            while lo < hi:
                middle = (lo + hi + 1) // 2
                if self._recorded_at(middle) <= until:
                    lo = middle
                else:
                    hi = middle - 1
            return lo

    def aggregate(self, aggregate_id: str) -> AggregateInfo | None:
        with translated(self.location):
            row = self.conn.execute(
                "SELECT * FROM aggregates WHERE aggregate_id = ?", (aggregate_id,)
            ).fetchone()
        return None if row is None else aggregate_row(row)

    def aggregates(
        self, aggregate_type: str | None, after: str | None, limit: int
    ) -> list[AggregateInfo]:
        sql, params = SQLITE.aggregates(aggregate_type, after, limit, "*")
        with translated(self.location):
            rows = self.conn.execute(sql, params).fetchall()
        return [aggregate_row(row) for row in rows]

    def aggregate_types(self) -> dict[str | None, int]:
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_type, count(*) FROM aggregates GROUP BY aggregate_type "
                "ORDER BY aggregate_type"
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def event_types(self, after: int, upto: int) -> dict[str, int]:
        with translated(self.location):
            if after == 0:
                # The whole log: one pass over the covering (type, position) index.
                sql = "SELECT type, count(*) FROM events WHERE position <= ? GROUP BY type"
                rows = self.conn.execute(sql, (upto,)).fetchall()
            else:  # what came since: a range of the primary key
                sql = (
                    "SELECT type, count(*) FROM events WHERE position > ? AND position <= ? "
                    "GROUP BY type"
                )
                rows = self.conn.execute(sql, (after, upto)).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def versions(
        self, after: tuple[str, int] | None, upto: int, limit: int
    ) -> list[tuple[str, int, int]]:
        sql, params = SQLITE.versions(after, upto, limit)
        with translated(self.location):
            return self.conn.execute(sql, params).fetchall()

    def kept_counts(self) -> tuple[int, list[KeptCount]]:
        with translated(self.location):
            conn = self.conn
            outer = conn.in_transaction
            if not outer:
                conn.execute("BEGIN")  # the head and the counts of one snapshot
            try:
                head = conn.execute("SELECT max(position) FROM events").fetchone()[0] or 0
                kept = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sss_counts'"
                ).fetchone()
                # A format 1 store opened read-only has no kept counts yet.
                sql = "SELECT * FROM sss_counts" if kept else COUNT_EVENTS
                rows = [tuple(row) for row in conn.execute(sql)]
            finally:
                if not outer:
                    conn.execute("COMMIT")
        return head, rows

    def version_at(self, aggregate_id: str, position: int) -> int:
        # Within an aggregate, position grows with version: bisect the versions
        # on the (aggregate_id, version) index instead of scanning the stream.
        with translated(self.location):
            row = self.conn.execute(
                "SELECT version, last_position FROM aggregates WHERE aggregate_id = ?",
                (aggregate_id,),
            ).fetchone()
            if row is None:
                return 0
            if row[1] <= position:
                return int(row[0])
            lo, hi = 0, int(row[0])
            while lo < hi:
                middle = (lo + hi + 1) // 2
                found = self.conn.execute(
                    "SELECT position FROM events WHERE aggregate_id = ? AND version = ?",
                    (aggregate_id, middle),
                ).fetchone()
                if found is not None and found[0] <= position:
                    lo = middle
                else:
                    hi = middle - 1
            return lo

    def snapshot(self, aggregate_id: str, fingerprint: str, max_version: int) -> Snapshot | None:
        with translated(self.location):
            row = self.conn.execute(
                "SELECT version, position, state FROM snapshots WHERE aggregate_id = ? "
                "AND fingerprint = ? AND version <= ? ORDER BY version DESC LIMIT 1",
                (aggregate_id, fingerprint, max_version),
            ).fetchone()
        return None if row is None else Snapshot(aggregate_id, row[0], row[1], loads_stored(row[2]))

    def snapshots(self, fingerprint: str) -> Iterator[Snapshot]:
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_id, version, position, state FROM snapshots "
                "WHERE fingerprint = ? ORDER BY aggregate_id, version",
                (fingerprint,),
            ).fetchall()
        return (Snapshot(row[0], row[1], row[2], loads_stored(row[3])) for row in rows)

    def snapshot_page(
        self, after: tuple[str, str, int] | None, limit: int
    ) -> list[tuple[str, Snapshot, str]]:
        where, params = "", []
        if after is not None:
            where, params = "WHERE (aggregate_id, fingerprint, version) > (?, ?, ?)", list(after)
        with translated(self.location):
            rows = self.conn.execute(
                "SELECT aggregate_id, fingerprint, version, position, state, created_at "
                f"FROM snapshots {where} ORDER BY aggregate_id, fingerprint, version LIMIT ?",
                (*params, limit),
            ).fetchall()
        return [(r[1], Snapshot(r[0], r[2], r[3], loads_stored(r[4])), r[5]) for r in rows]

    def chain_page(self, after: int, limit: int) -> list[ChainRow]:
        sql = (
            f"SELECT {self._chain_columns} FROM events WHERE position > ? ORDER BY position LIMIT ?"
        )
        with translated(self.location):
            try:
                return self.conn.execute(sql, (after, limit)).fetchall()
            except sqlite3.OperationalError as e:
                if hasattr(e, "sqlite_errorname"):
                    raise  # SQLite's own error, not Python's decoding of a value
                # A stored text is not UTF-8 (a damaged page): hand the rows
                # over with the bad bytes kept as surrogates, for verify to name.
                self.conn.text_factory = lenient_text
                try:
                    return self.conn.execute(sql, (after, limit)).fetchall()
                finally:
                    self.conn.text_factory = str

    def check_storage(self, full: bool) -> list[str]:
        # integrity_check also compares every index with its table (a damaged
        # index makes filtered reads wrong); quick_check checks the pages only.
        pragma = "integrity_check" if full else "quick_check"
        try:
            rows = self.conn.execute(f"PRAGMA {pragma}(100)").fetchall()
        except sqlite3.DatabaseError as e:
            return [str(e)]
        problems = [str(row[0]) for row in rows]
        return [] if problems == ["ok"] else problems

    def scrub(self) -> str | None:
        if self.location == ":memory:" or self.location.startswith("file::memory:"):
            return None
        with translated(self.location):
            # Copy every page of the WAL into the file and cut the WAL to zero
            # bytes: the old payload's frames are gone with it. A reader
            # holding an old snapshot stops it (busy).
            busy, _, _ = self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            return (
                f"{self.location}: another connection is reading, so the WAL file "
                f"({self.location}-wal) could not be emptied; it may still hold the "
                "erased payloads until the next checkpoint (close the readers and run "
                "sss erase again with the same arguments, which checkpoints)"
            )
        return None

    def change_token(self) -> int:
        with translated(self.location):
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def _has_tree(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sss_tree'"
        ).fetchone()
        return row is not None

    def tree_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], str]:
        with translated(self.location):
            if not keys or not self._has_tree():
                return {}
            found: dict[tuple[int, int], str] = {}
            for level, index in keys:
                row = self.conn.execute(
                    "SELECT hash FROM sss_tree WHERE level = ? AND idx = ?", (level, index)
                ).fetchone()
                if row is not None and isinstance(row[0], str):
                    found[(level, index)] = row[0]
            return found

    def tree_filled(self, level: int) -> int:
        with translated(self.location):
            if not self._has_tree():
                return 0
            row = self.conn.execute(
                "SELECT max(idx) FROM sss_tree WHERE level = ?", (level,)
            ).fetchone()
        return 0 if row[0] is None else tree_filled(row[0], self.location)

    def save_tree_nodes(self, nodes: Sequence[tuple[int, int, str]]) -> bool:
        if self.readonly:
            return False
        try:
            with self.write():
                self.conn.execute(TREE_SCHEMA)
                self.conn.executemany("INSERT OR IGNORE INTO sss_tree VALUES (?, ?, ?)", nodes)
        except StoreError:
            return False  # locked or unwritable: the caller keeps them in memory
        return True

    def info(self) -> dict[str, Any]:
        facts: dict[str, Any] = {"backend": "sqlite", "sqlite_version": sqlite3.sqlite_version}
        with translated(self.location):
            row = self.conn.execute("SELECT value FROM sss_meta WHERE key = 'store_id'").fetchone()
        facts["store_id"] = row[0] if row else None
        if self.location != ":memory:" and os.path.exists(self.location):
            size = os.path.getsize(self.location)
            wal = self.location + "-wal"
            facts["file_size"] = size
            facts["wal_size"] = os.path.getsize(wal) if os.path.exists(wal) else 0
        return facts

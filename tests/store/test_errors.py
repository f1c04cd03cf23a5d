"""The store's errors: their family, their attributes, and the short, safe
descriptions of values and names their messages are made of."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from store import (
    ConcurrencyError,
    CorruptStoreError,
    DuplicateEventError,
    HandlerError,
    LockedError,
    NotFoundError,
    ReadOnlyError,
    StoreError,
    SubscriptionError,
    ValidationError,
)
from store.errors import describe, shorten
from store.sqlite.errors import busy, errorname, translate, translated


def test_the_family_lets_callers_catch_by_kind() -> None:
    assert issubclass(ValidationError, ValueError) and issubclass(ValidationError, StoreError)
    assert issubclass(NotFoundError, LookupError) and issubclass(NotFoundError, StoreError)
    assert issubclass(HandlerError, SubscriptionError)
    assert issubclass(SubscriptionError, StoreError)


def test_a_concurrency_error_names_both_versions() -> None:
    error = ConcurrencyError("order-1", 3, 5)
    assert (error.aggregate_id, error.expected, error.actual) == ("order-1", 3, 5)
    assert str(error) == "expected version 3 of order-1 but it is at 5; reload and retry"
    long = ConcurrencyError("x" * 200, "no stream", 1)
    assert f"expected version no stream of {'x' * 77}... but it is at 1" in str(long)


def test_a_duplicate_event_error_names_the_event() -> None:
    error = DuplicateEventError("e-1", "is stored already with other content")
    assert error.event_id == "e-1"
    assert str(error) == "event e-1 is stored already with other content"


def test_a_handler_error_keeps_where_the_subscription_stands() -> None:
    event = object()
    error = HandlerError("mailer", event, 41, "the handler raised")
    assert (error.subscription, error.event, error.position) == ("mailer", event, 41)
    assert str(error) == "the handler raised"


def test_describe_stays_short_and_never_raises() -> None:
    assert describe(5) == "5" and describe(True) == "True" and describe(None) == "None"
    assert describe(2**127) == str(2**127)  # 128 bits: still shown
    assert describe(2**128) == "an int of 129 bits"
    assert describe(-(2**200)) == "an int of 201 bits"
    assert len(describe("y" * 1000)) <= 60
    assert describe([[[["deep"]]]]) == "[[[[...]]]]"
    # Numbers too long are cut where reprlib would print them whole: inside a list.
    assert describe([2**200]) == f"[{str(2**200)[:18]}...{str(2**200)[-19:]}]"

    class Verbose:
        def __repr__(self) -> str:
            return "V" * 100

    assert describe(Verbose()) == "V" * 28 + "..." + "V" * 29

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "Hostile" in describe(Hostile()) and len(describe(Hostile())) <= 60
    # reprlib walks a value by its type's name: a "list" it cannot iterate.
    impostor = type("list", (), {})()
    assert describe(impostor) == "a list"


def test_shorten_cuts_at_the_width_and_escapes_control_characters() -> None:
    assert shorten("a" * 80) == "a" * 80
    cut = shorten("a" * 81)
    assert cut == "a" * 77 + "..." and len(cut) == 80
    assert shorten("abcdef", width=5) == "ab..."
    assert shorten("abcde", width=5) == "abcde"
    assert shorten("line\nbreak\t") == "line\\nbreak\\t"
    assert shorten("plain text") == "plain text"


def _error(sql: str, conn: sqlite3.Connection) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        conn.execute(sql)
    return caught.value


def test_sqlite_errors_are_translated_by_their_sqlite_name(tmp_path: Path) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    constraint = _error("INSERT INTO t VALUES (1)", conn)
    assert errorname(constraint).startswith("SQLITE_CONSTRAINT")
    translated_error = translate(constraint, "here.db")
    assert type(translated_error) is StoreError
    assert str(translated_error).startswith("here.db: UNIQUE constraint failed")
    syntax = _error("SELEC 1", conn)
    assert errorname(syntax) == "SQLITE_ERROR"
    assert type(translate(syntax, "here.db")) is StoreError
    conn.close()

    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all\n" * 100)
    conn = sqlite3.connect(garbage)
    notadb = _error("SELECT * FROM sqlite_master", conn)
    conn.close()
    error = translate(notadb, "garbage.db")
    assert type(error) is CorruptStoreError
    assert str(error).startswith("garbage.db is not a readable event store: ")

    with pytest.raises(sqlite3.Error) as caught:
        sqlite3.connect(f"file:{tmp_path}/missing/x.db?mode=ro", uri=True)
    error = translate(caught.value, "x.db")
    assert type(error) is NotFoundError and str(error).startswith("cannot open x.db: ")

    store_file = tmp_path / "ro.db"
    sqlite3.connect(store_file).execute("CREATE TABLE t (x)").connection.close()
    conn = sqlite3.connect(f"file:{store_file}?mode=ro", uri=True)
    readonly = _error("INSERT INTO t VALUES (1)", conn)
    conn.close()
    error = translate(readonly, "ro.db")
    assert type(error) is ReadOnlyError and str(error).startswith("ro.db is read-only: ")
    assert not busy(readonly)

    # Python's own errors carry no SQLite name.
    assert errorname(sqlite3.ProgrammingError("closed")) == ""
    assert type(translate(sqlite3.ProgrammingError("closed"), "p.db")) is StoreError


def test_a_held_write_lock_is_busy_and_becomes_a_locked_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        error = _error("BEGIN IMMEDIATE", waiter)
        assert busy(error)
        locked = translate(error, "locked.db")
        assert type(locked) is LockedError
        assert str(locked).startswith("locked.db is locked by another writer; try again")
        with pytest.raises(LockedError) as caught, translated("locked.db"):
            waiter.execute("BEGIN IMMEDIATE")
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
    finally:
        waiter.close()
        holder.execute("ROLLBACK")
        holder.close()

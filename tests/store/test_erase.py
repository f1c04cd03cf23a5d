"""``erase``: the payloads of chosen events are replaced by their erased
form (field names kept, values ``⟨erased⟩``) under a trigger that allows
exactly that; the digests stay, so verify stays ok and counts them; one
``sss.Erased`` receipt records it. The property: replay after an erasure
equals a plain fold in which the erased payloads are the marker form."""

from __future__ import annotations

import os
import sqlite3
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import (
    ANY,
    ERASED,
    DuplicateEventError,
    EventStore,
    NewEvent,
    NotFoundError,
    ReadOnlyError,
    ValidationError,
    copy_store,
    merge_patch,
)
from store.appending import append_receipt

# On a shared PostgreSQL server other sessions' snapshots may keep VACUUM
# from removing old row versions; erase then warns, which is about the
# server, not about what these tests check (the files test retries until
# it can check the bytes).
pytestmark = pytest.mark.filterwarnings("ignore:.*sessions older than the erasure:RuntimeWarning")

MARKER = "MARKER-7c1e-alice@example.com"


def chain(es: EventStore) -> list[tuple[Any, ...]]:
    return list(es.backend.chain_page(0, 10_000))


def fill(es: EventStore) -> None:
    es.append(
        [NewEvent("Registered", {"email": MARKER, "address": {"city": MARKER}, "age": 40})],
        aggregate_id="person-1",
        aggregate_type="Person",
    )
    es.append([NewEvent("Moved", {"address": {"city": "Oslo"}})], aggregate_id="person-1")
    es.append([NewEvent("Registered", {"email": "bob@example.com"})], aggregate_id="person-2")
    es.append([NewEvent("Noted", {"text": MARKER})])  # no aggregate


def test_erase_keeps_every_digest_and_verify_counts(store: EventStore) -> None:
    fill(store)
    before = chain(store)
    receipt = store.erase(aggregate_id="person-1", reason="GDPR art. 17", metadata={"actor": "dpo"})
    after = chain(store)
    assert receipt.type == "sss.Erased" and receipt.position == 5
    assert receipt.aggregate_id is None and receipt.version is None
    assert receipt.data["positions"] == [1, 2]
    assert receipt.data["aggregate_id"] == "person-1"
    assert receipt.data["event_ids"] == [before[0][1], before[1][1]]
    assert receipt.metadata["reason"] == "GDPR art. 17" and receipt.metadata["actor"] == "dpo"
    for old, new in zip(before, after[:4], strict=True):
        # Every column but data and erased_by, data_hash and hash included.
        assert old[:7] + old[8:13] == new[:7] + new[8:13]
    assert [row[13] for row in after] == [5, 5, None, None, None]
    assert [row[7] for row in after[2:4]] == [before[2][7], before[3][7]]
    event = next(store.read())
    assert event.erased and event.erased_by == 5
    assert event.data == {"email": ERASED, "address": ERASED, "age": ERASED}
    report = store.verify()
    assert report.ok and report.erased == 2 and report.checked == 5
    assert report.head_hash == receipt.hash
    assert store.aggregate("person-1").version == 2  # type: ignore[union-attr]


def test_replay_history_show_erased_fields(store: EventStore) -> None:
    fill(store)
    store.erase(positions=[1], reason="asked")
    assert store.state_at("person-1").state == {
        "email": ERASED,
        "address": {"city": "Oslo"},
        "age": ERASED,
    }
    steps = list(store.history("person-1"))
    assert [(c.path, c.new) for c in steps[0].changes] == [
        ("/address", ERASED),
        ("/age", ERASED),
        ("/email", ERASED),
    ]


def test_erasing_again_is_idempotent(store: EventStore) -> None:
    fill(store)
    first = store.erase(positions=[1, 4], reason="asked")
    head, rows = store.head(), chain(store)
    again = store.erase(positions=[4, 1], reason="asked twice")
    assert again == first and store.head() == head and chain(store) == rows
    # A mix erases only what is left, with a receipt of its own.
    third = store.erase(aggregate_id="person-1", reason="the rest")
    assert third.position == head + 1 and third.data["positions"] == [2]
    assert store.verify().erased == 3


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"aggregate_id": "nobody", "reason": "x"}, NotFoundError, "no aggregate"),
        ({"positions": [2, 99], "reason": "x"}, NotFoundError, "position 99"),
        ({"positions": [0], "reason": "x"}, ValidationError, "position"),
        ({"positions": [], "reason": "x"}, ValidationError, "empty"),
        ({"positions": "1", "reason": "x"}, ValidationError, "positions"),
        ({"positions": [1], "reason": "  "}, ValidationError, "reason"),
        ({"positions": [1], "reason": None}, ValidationError, "reason"),
        ({"reason": "x"}, ValidationError, "one of them"),
        ({"positions": [1], "aggregate_id": "person-1", "reason": "x"}, ValidationError, "one"),
        ({"positions": [1], "reason": "x", "metadata": [1]}, ValidationError, "metadata"),
    ],
)
def test_bad_requests_change_nothing(
    store: EventStore, kwargs: dict[str, Any], error: type[Exception], words: str
) -> None:
    fill(store)
    rows = chain(store)
    with pytest.raises(error, match=words):
        store.erase(**kwargs)
    assert chain(store) == rows and store.verify().erased == 0


def test_voids_and_receipts_are_not_erased(store: EventStore) -> None:
    fill(store)
    void = store.void(2, reason="wrong")
    receipt = store.erase(aggregate_id="person-1", reason="asked")
    assert receipt.data["positions"] == [1, 2]  # the void (5) stays
    for position in (void.position, receipt.position):
        with pytest.raises(ValidationError, match="never erased"):
            store.erase(positions=[position], reason="x")
    # The void still skips the voided event.
    assert store.state_at("person-1").state == {"email": ERASED, "address": ERASED, "age": ERASED}
    assert store.verify().ok


def test_read_only_store_refuses(make_store: Any, backend_name: str) -> None:
    if backend_name == "memory":  # there is no read-only :memory: store to erase in
        with pytest.raises(ReadOnlyError):
            make_store(readonly=True)
        return
    es = make_store()
    fill(es)
    rows = chain(es)
    ro = make_store(readonly=True)
    with pytest.raises(ReadOnlyError, match="read-only"):
        ro.erase(positions=[1], reason="x")
    assert chain(es) == rows


def test_reimport_of_an_erased_event(store: EventStore) -> None:
    original = NewEvent("Registered", {"email": MARKER})
    (stored,) = store.append([original], aggregate_id="p", aggregate_type="Person")
    store.erase(positions=[1], reason="asked")
    head = store.head()
    # The very same event again: the kept digest says it is a retry.
    (again,) = store.append([original], aggregate_id="p", aggregate_type="Person")
    assert again.position == 1 and again.erased and store.head() == head
    for other in (
        NewEvent("Registered", {"email": "someone else"}, event_id=original.event_id),
        NewEvent("Registered", {"email": ERASED}, event_id=original.event_id),
    ):
        with pytest.raises(DuplicateEventError, match="other content"):
            store.append([other], aggregate_id="p")
    assert store.head() == head and store.verify().ok
    assert stored.hash == again.hash


def test_snapshots_and_cached_states_lose_the_payload(make_store: Any) -> None:
    es = make_store(snapshot_every=1)
    fill(es)
    assert es.state_at("person-1", version=1).state["email"] == MARKER  # cached now
    es.erase(positions=[1], reason="asked")
    assert es.state_at("person-1", version=1).state["email"] == ERASED
    assert es.state_at("person-1").state["email"] == ERASED
    snapshots = list(es.backend.snapshots(es._fingerprint))
    assert all(MARKER not in repr(s.state) for s in snapshots)
    assert [s.aggregate_id for s in snapshots] == ["person-2"]
    assert es.verify().ok


def test_parked_reasons_that_quote_the_payload_go(store: EventStore) -> None:
    fill(store)

    def handler(event: Any) -> None:
        if event.position == 1:
            raise ValueError(f"bad email {event.data['email']}")

    store.subscribe("mailer", handler, on_error="park", follow=False)
    assert MARKER in store.parked_events("mailer")[0].reason
    store.erase(positions=[1], reason="asked")
    (parked,) = store.parked_events("mailer")
    assert parked.position == 1 and MARKER not in parked.reason and "erased" in parked.reason


def test_copies_carry_erasures_and_replicas_follow_them(make_store: Any, tmp_path: Path) -> None:
    source = make_store()
    fill(source)
    source.erase(positions=[4], reason="asked")
    with EventStore(str(tmp_path / "copy.db")) as target:
        report = copy_store(source, target)
        assert report.head_hash == source.verify().head_hash
        assert [e.erased_by for e in target.read()] == [None, None, None, 5, None]
        # Erased later on the source: the next copy erases it on the target.
        source.erase(aggregate_id="person-1", reason="asked again")
        source.append([NewEvent("Registered", {"email": "carol@example.com"})], aggregate_id="c")
        copy_store(source, target)
        assert chain(target) == chain(source)
        assert target.verify().ok and target.verify().erased == 3
        assert target.state_at("person-1").state["email"] == ERASED
    assert not any(MARKER.encode() in f.read_bytes() for f in tmp_path.glob("copy.db*"))


def test_a_prefix_copy_holds_erased_events_without_their_receipt(
    store: EventStore, tmp_path: Path
) -> None:
    fill(store)
    store.erase(positions=[1], reason="asked")
    with EventStore(str(tmp_path / "backup.db")) as backup:
        copy_store(store, backup, until_position=3)
        report = backup.verify()
        assert report.ok and report.erased == 1 and report.head_position == 3
        # The rest comes later and still verifies.
        copy_store(store, backup)
        assert backup.verify().ok and chain(backup) == chain(store)


# -- every byte: the files of an SQLite store --------------------------------


def _files_holding(directory: Path, text: str) -> list[str]:
    return sorted(f.name for f in directory.iterdir() if text.encode() in f.read_bytes())


def test_marker_bytes_leave_every_file_of_an_sqlite_store(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    big = os.urandom(6000).hex() + MARKER + os.urandom(6000).hex()  # overflow pages
    with EventStore(str(path), snapshot_every=1) as es:
        fill(es)
        es.append([NewEvent("Uploaded", {"scan": big})], aggregate_id="person-1")
        es.subscribe("mailer", lambda e: 1 / 0 if e.position == 1 else None, on_error="park",
                     follow=False)  # fmt: skip
        # A second connection reading meanwhile, as the TUI would.
        with EventStore(str(path), readonly=True) as reader:
            assert reader.state_at("person-1").state["scan"] == big
        assert _files_holding(tmp_path, MARKER)  # the test can fail
        es.erase(aggregate_id="person-1", reason="asked")
        es.erase(positions=[4], reason="asked")
        # While the store is open (WAL and shared memory files present) ...
        assert {f.name for f in tmp_path.iterdir()} >= {"events.db", "events.db-wal"}
        assert _files_holding(tmp_path, MARKER) == []
        assert es.verify().ok and es.verify().erased == 4
    # ... and after it closed.
    assert _files_holding(tmp_path, MARKER) == []


def test_a_reader_holding_the_wal_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        fill(es)
        reader = sqlite3.connect(path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM events").fetchone()  # holds a snapshot
        with pytest.warns(RuntimeWarning, match="could not be emptied"):
            es.erase(positions=[1], reason="asked")
        reader.rollback()
        reader.close()
        # Erasing again (nothing left to erase) checkpoints now.
        es.erase(positions=[1], reason="asked")
        assert _files_holding(tmp_path, MARKER) == ["events.db"]  # position 4 only
        es.erase(positions=[4], reason="asked")
        assert _files_holding(tmp_path, MARKER) == []


# -- the trigger: exactly this change and nothing else -------------------------

ERASED_FORM = "(SELECT json_group_object(key, '\u27e8erased\u27e9') FROM json_each(data))"
REFUSED_SQLITE = [
    "UPDATE events SET data = '{}' WHERE position = 2",
    'UPDATE events SET data = \'{"address":"x"}\', erased_by = 5 WHERE position = 2',
    f"UPDATE events SET data = {ERASED_FORM} WHERE position = 2",  # no receipt named
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 3 WHERE position = 2",  # not a receipt
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5 WHERE position = 3",  # not listed
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5, hash = 'x' WHERE position = 2",
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5, data_hash = 'x' WHERE position = 2",
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5, metadata = '{{}}' WHERE position = 2",
    f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5, type = 'T' WHERE position = 2",
    "UPDATE events SET erased_by = NULL WHERE position = 1",  # un-erase
    "UPDATE events SET erased_by = 6 WHERE position = 1",
    'UPDATE events SET data = \'{"email":"back"}\' WHERE position = 1',
    "UPDATE events SET data = CAST(data AS BLOB) WHERE position = 1",
    "UPDATE events SET position = 9 WHERE position = 4",
    "DELETE FROM events WHERE position = 4",
    "DELETE FROM events",
    "REPLACE INTO events SELECT * FROM events WHERE position = 1",
]


@pytest.mark.parametrize("statement", REFUSED_SQLITE)
def test_the_sqlite_trigger_refuses_every_other_change(tmp_path: Path, statement: str) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        fill(es)
        es.erase(positions=[1], reason="asked")  # the receipt is position 5
        rows = chain(es)
    conn = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(statement)
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        assert chain(es) == rows and es.verify().ok


def test_the_sqlite_trigger_lets_the_erasure_itself_through(tmp_path: Path) -> None:
    """The control: with a receipt that lists the row, the same raw statement
    passes, and the store still verifies."""
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        fill(es)
        append_receipt(
            es,
            [NewEvent("sss.Erased", {"positions": [2], "event_ids": [], "aggregate_id": None})],
            None,
            None,
            ANY,
        )
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"UPDATE events SET data = {ERASED_FORM}, erased_by = 5 WHERE position = 2")
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        assert es.verify().ok and es.verify().erased == 1


# -- the property --------------------------------------------------------------

patches = st.dictionaries(
    st.sampled_from(["a", "b", "c"]),
    st.one_of(st.integers(-3, 3), st.none(), st.fixed_dictionaries({"x": st.integers(0, 2)})),
    max_size=3,
)
actions = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.sampled_from(["p", "q"]), patches),
        st.tuples(st.just("erase"), st.lists(st.integers(0, 40), min_size=1, max_size=3)),
        st.tuples(st.just("forget"), st.sampled_from(["p", "q"])),
        st.tuples(st.just("look"), st.sampled_from(["p", "q"])),
    ),
    min_size=1,
    max_size=20,
)


def _erased_form(data: dict[str, Any]) -> dict[str, Any]:
    return {key: ERASED for key in data}


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(script=actions, every=st.sampled_from([None, 1, 2]))
def test_replay_after_erase_equals_a_fold_of_marker_payloads(
    make_store: Any, script: list[tuple[Any, ...]], every: int | None
) -> None:
    # One store per backend for all examples: each example has aggregates of its own.
    names = {"p": f"p-{uuid.uuid4().hex[:8]}", "q": f"q-{uuid.uuid4().hex[:8]}"}
    payloads: dict[int, tuple[str, dict[str, Any]]] = {}  # position -> (aggregate, data)
    erased: set[int] = set()
    es = make_store(snapshot_every=every)
    already = es.verify().erased
    for action in script:
        if action[0] == "add":
            (event,) = es.append([NewEvent("Set", action[2])], aggregate_id=names[action[1]])
            payloads[event.position] = (action[1], action[2])
        elif action[0] == "erase" and payloads:
            chosen = [sorted(payloads)[i % len(payloads)] for i in action[1]]
            es.erase(positions=chosen, reason="asked")
            erased.update(chosen)
        elif action[0] == "forget" and any(a == action[1] for a, _ in payloads.values()):
            es.erase(aggregate_id=names[action[1]], reason="forget me")
            erased.update(p for p, (a, _) in payloads.items() if a == action[1])
        elif action[0] == "look" and any(a == action[1] for a, _ in payloads.values()):
            es.state_at(names[action[1]])  # in-memory checkpoints before later erasures
    for aggregate in ("p", "q"):
        state: dict[str, Any] = {}
        version = 0
        for position in sorted(payloads):
            owner, data = payloads[position]
            if owner != aggregate:
                continue
            version += 1
            state = merge_patch(state, _erased_form(data) if position in erased else data)
            assert es.state_at(names[aggregate], version=version).state == state
    report = es.verify()
    assert report.ok and report.erased == already + len(erased)
    es.close()


# -- PostgreSQL: the table files and the trigger -------------------------------


def _pg_files_hold(raw: Any, schema: str, text: str) -> list[str]:
    found = []
    for table in ("events", "snapshots", "parked_events"):
        for relation in (f"{schema}.{table}",):
            toast = raw.execute(
                "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = %s::regclass",
                (relation,),
            ).fetchone()[0]
            for name in (relation, toast):
                if name in (None, "-"):
                    continue
                path = raw.execute("SELECT pg_relation_filepath(%s)", (name,)).fetchone()[0]
                size = raw.execute("SELECT size FROM pg_stat_file(%s, true)", (path,)).fetchone()[0]
                if not size:
                    continue
                data = raw.execute("SELECT pg_read_binary_file(%s)", (path,)).fetchone()[0]
                if text.encode() in bytes(data):
                    found.append(f"{table}:{name}")
    return found


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Any:
    from tests.store.pg import fresh_postgres_url

    yield from fresh_postgres_url(request.node.name)


@pytest.fixture
def pg_raw(pg_url: str) -> Any:
    """A plain connection to the test's schema, standing for any SQL client."""
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def _erase_until_vacuumed(es: EventStore, **kwargs: Any) -> None:
    """Other sessions of a shared server may hold old snapshots, which VACUUM
    must respect: erase says so, and erasing again (a no-op) retries."""
    for _ in range(40):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            es.erase(**kwargs)
        if not caught:
            return
        assert "sessions older than the erasure" in str(caught[0].message)
    raise AssertionError("old snapshots outlived every retry")


@pytest.mark.postgres
def test_postgres_vacuum_removes_the_old_row_versions(pg_url: str, pg_raw: Any) -> None:
    schema = pg_raw.execute("SELECT current_schema()").fetchone()[0]
    big = os.urandom(6000).hex() + MARKER + os.urandom(6000).hex()  # stored in TOAST
    with EventStore(pg_url, snapshot_every=1) as es:
        fill(es)
        es.append([NewEvent("Uploaded", {"scan": big})], aggregate_id="person-1")
        es.subscribe("mailer", lambda e: 1 / 0 if e.position == 1 else None, on_error="park",
                     follow=False)  # fmt: skip
        pg_raw.execute("CHECKPOINT")  # the pages reach the table files
        assert _pg_files_hold(pg_raw, schema, MARKER)  # the test can fail
        _erase_until_vacuumed(es, aggregate_id="person-1", reason="asked")
        _erase_until_vacuumed(es, positions=[4], reason="asked")
        pg_raw.execute("CHECKPOINT")
        assert _pg_files_hold(pg_raw, schema, MARKER) == []
        assert es.verify().ok and es.verify().erased == 4


REFUSED_POSTGRES = [
    "UPDATE events SET data = '{}' WHERE position = 2",
    """UPDATE events SET data = '{"address":"x"}', erased_by = 5 WHERE position = 2""",
    "UPDATE events SET data = FORM WHERE position = 2",
    "UPDATE events SET data = FORM, erased_by = 3 WHERE position = 2",
    "UPDATE events SET data = FORM, erased_by = 5 WHERE position = 3",
    "UPDATE events SET data = FORM, erased_by = 5, hash = 'x' WHERE position = 2",
    "UPDATE events SET data = FORM, erased_by = 5, data_hash = 'x' WHERE position = 2",
    "UPDATE events SET data = FORM, erased_by = 5, metadata = '{}' WHERE position = 2",
    "UPDATE events SET data = FORM, erased_by = 5, type = 'T' WHERE position = 2",
    "UPDATE events SET erased_by = NULL WHERE position = 1",
    "UPDATE events SET erased_by = 6 WHERE position = 1",
    """UPDATE events SET data = '{"email":"back"}' WHERE position = 1""",
    "UPDATE events SET position = 9 WHERE position = 4",
    "DELETE FROM events WHERE position = 4",
    "TRUNCATE events",
]


@pytest.mark.postgres
@pytest.mark.parametrize("statement", REFUSED_POSTGRES)
def test_the_postgres_trigger_refuses_every_other_change(
    pg_url: str, pg_raw: Any, statement: str
) -> None:
    import psycopg

    from store.postgres.schema import erased_form

    with EventStore(pg_url) as es:
        fill(es)
        es.erase(positions=[1], reason="asked")
        rows = chain(es)
        with pytest.raises(psycopg.Error, match="append-only"):
            pg_raw.execute(statement.replace("FORM", erased_form("data")).encode())
        assert chain(es) == rows and es.verify().ok


@pytest.mark.postgres
def test_the_postgres_trigger_lets_the_erasure_itself_through(pg_url: str, pg_raw: Any) -> None:
    from store.postgres.schema import erased_form

    with EventStore(pg_url) as es:
        fill(es)
        append_receipt(
            es,
            [NewEvent("sss.Erased", {"positions": [2], "event_ids": [], "aggregate_id": None})],
            None,
            None,
            ANY,
        )
        form = erased_form("data")
        statement = f"UPDATE events SET data = {form}, erased_by = 5 WHERE position = 2"
        pg_raw.execute(statement.encode())
        assert es.verify().ok and es.verify().erased == 1


def test_verify_checks_receipts_against_the_erased_rows(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        fill(es)
        # An event of the receipt's type that erased nothing is an ordinary event.
        append_receipt(es, [NewEvent("sss.Erased", {"positions": "not a list"})], None, None, ANY)
        es.erase(positions=[1, 3], reason="asked")  # receipt at 6
        assert es.verify().ok
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("DROP TRIGGER events_guard_update")
    conn.execute("UPDATE events SET erased_by = NULL WHERE position = 3")  # a row un-named
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok and report.first_bad_position == 3
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE events SET erased_by = 6 WHERE position = 3")
    conn.execute("UPDATE events SET erased_by = 4 WHERE position = 1")  # names a non-receipt
    conn.close()
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok and report.first_bad_position == 1
    assert "not an sss.Erased receipt" in str(report.reason)


def test_erase_inside_a_transaction_is_refused(store: EventStore) -> None:
    fill(store)
    rows = chain(store)
    with store.transaction(), pytest.raises(ValidationError, match="outside"):
        store.erase(positions=[1], reason="asked")
    assert chain(store) == rows

"""verify's reports at its edges: receipts and erased payloads that disagree,
kept counts changed by hand, the database's own check naming one problem or
several, and a checkpoint check whose stored tree cannot be read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from store import ERASED, EventStore, NewEvent, StoreError, ValidationError
from store.integrity import ChainVerifier


def _erased_form(row: tuple[Any, ...], receipt: int) -> tuple[Any, ...]:
    """The row as an erasure by the receipt at ``receipt`` leaves it."""
    fields = {name: ERASED for name in json.loads(row[7])}
    return (*row[:7], json.dumps(fields), *row[8:13], receipt)


@pytest.mark.parametrize("odd_one", ["marked, not listed", "listed, not marked"])
def test_a_receipt_and_the_payloads_it_erased_must_agree(store: EventStore, odd_one: str) -> None:
    for i in range(4):
        store.append([NewEvent("Noted", {"i": i, "who": "someone"})])
    before = list(store.backend.chain_page(0, 10))
    erased = [2] if odd_one == "marked, not listed" else [2, 3]
    receipt = store.erase(positions=erased, reason="asked to").position
    rows = list(store.backend.chain_page(0, 10))
    assert receipt == 5 and [row[13] for row in rows[:4]] == [
        None,
        5,
        5 if 3 in erased else None,
        None,
    ]
    verifier = ChainVerifier()
    assert verifier.feed(rows) and verifier.failure is None  # as erase left it
    if odd_one == "marked, not listed":
        rows[2] = _erased_form(rows[2], receipt)  # names the receipt, which does not list it
    else:
        rows[2] = before[2]  # listed by the receipt, but its payload is whole again
    verifier = ChainVerifier()
    assert verifier.feed(rows) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 3, failure
    assert failure.reason == (
        f"the receipt at position {receipt} and the erased payloads disagree about position 3"
    )


def _counted_store(path: Path) -> None:
    with EventStore(str(path)) as es:
        for i in range(3):
            es.append([NewEvent("Tick", {"i": i})])
        for i in range(2):
            es.append([NewEvent("Opened", {"i": i})], aggregate_id=f"a{i}", aggregate_type="Acct")


def _edit(path: Path, *statements: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        for sql in statements:
            conn.execute(sql)
    conn.close()


def test_a_kept_count_deleted_by_hand_is_named_with_what_the_log_has(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _counted_store(path)
    _edit(path, "DELETE FROM sss_counts WHERE type = 'Tick'")
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok and report.checked == 5, report
    assert (report.reason or "").startswith(
        "the kept counts (sss stats) differ from the log for events of type 'Tick' without "
        "aggregate: kept 0 events, the log has 3 "
    ), report


def test_a_kept_count_of_a_type_the_log_lacks_is_named(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _counted_store(path)
    _edit(
        path,
        "INSERT INTO sss_counts SELECT 'Ghost', 'Acct', 0, 4, 1, first_occurred_at, "
        "last_occurred_at FROM sss_counts WHERE type = 'Opened'",
    )
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok, report
    assert (report.reason or "").startswith(
        "the kept counts (sss stats) differ from the log for events of type 'Ghost' of "
        "aggregate type 'Acct': kept 4 events, the log has 0 "
    ), report


def test_a_kept_row_of_no_events_counts_for_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    _counted_store(path)
    with EventStore(str(path), readonly=True) as es:
        before = es.counts()
    # A row that counts no events, dated long before every event: it changes
    # neither the counts per type nor the span of times, and verify agrees.
    _edit(
        path,
        "INSERT INTO sss_counts SELECT 'Ghost', '', 1, 0, 0, "
        "'1999' || substr(first_occurred_at, 5), '1999' || substr(last_occurred_at, 5) "
        "FROM sss_counts WHERE type = 'Tick'",
    )
    with EventStore(str(path), readonly=True) as es:
        assert es.counts() == before
        assert "Ghost" not in es.event_types()
        assert es.verify().ok


def _damage_type_index(path: Path) -> None:
    """Say the type index is over aggregate_type while its entries are by type:
    integrity_check names each row whose two columns differ."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA writable_schema=ON")
    conn.execute(
        "UPDATE sqlite_master SET sql = replace(sql, '(type, position)', "
        "'(aggregate_type, position)') WHERE name = 'events_by_type'"
    )
    conn.commit()
    conn.close()


@pytest.mark.parametrize(("differing", "more"), [(1, ""), (2, " and 1 more"), (3, " and 2 more")])
def test_the_database_check_names_its_first_problem_and_how_many_more(
    tmp_path: Path, differing: int, more: str
) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("Kind", {})], aggregate_id="a", aggregate_type="Kind")
        for i in range(differing):
            es.append([NewEvent(f"Other{i}", {})], aggregate_id="a")
    _damage_type_index(path)
    with EventStore(str(path), readonly=True) as es:
        report = es.verify()
    assert not report.ok and report.first_bad_position == 2, report
    assert report.reason == (
        "the database file is damaged (integrity_check): row 2 missing from index "
        f"events_by_type{more}; restore it from a backup, or rebuild the indexes with REINDEX"
    )


@pytest.mark.parametrize(
    "damage",
    [
        "DROP TABLE sss_tree; CREATE TABLE sss_tree (x)",
        "INSERT INTO sss_tree VALUES (8, 'not a number', 'ab')",
    ],
)
def test_a_stored_tree_that_cannot_be_read_fails_the_checkpoint_check(
    tmp_path: Path, damage: str
) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(300):  # more than one chunk of the tree
            es.append([NewEvent("Noted", {"i": i})])
        checkpoint = es.checkpoint()
        assert es.verify(checkpoint=checkpoint).ok
    conn = sqlite3.connect(path)
    conn.executescript(damage)
    conn.close()
    for readonly in (True, False):
        with EventStore(str(path), readonly=readonly) as es:
            report = es.verify(checkpoint=checkpoint)
        assert not report.ok and report.checkpoint == checkpoint, report
        assert (report.reason or "").startswith("the tree cannot be read: "), report
        assert report.head_position == 300 and report.checked == 300


def _rehash(row: tuple[Any, ...], data: object, prev: str) -> tuple[Any, ...]:
    """The row with another payload, its digest and hash made again by the
    README's recipe (tests/store/test_forged.py), as a forger would."""
    from tests.store.test_forged import recipe_hash

    changed = (*row[:7], json.dumps(data, separators=(",", ":")), *row[8:])
    data_hash, hash_ = recipe_hash(prev, changed)
    return (*changed[:11], data_hash, hash_, *changed[13:])


@pytest.mark.parametrize("listed", [[2, 5], [2, 9], [0, 2], [2, "2"], [2, True]])
def test_a_receipt_must_list_only_earlier_positions(store: EventStore, listed: list[Any]) -> None:
    for i in range(4):
        store.append([NewEvent("Noted", {"i": i})])
    receipt = store.erase(positions=[2], reason="asked to")
    rows = list(store.backend.chain_page(0, 10))
    data = json.loads(rows[4][7])
    assert receipt.position == 5 and data["positions"] == [2]
    # The forger's recipe gives the stored row back when nothing changes.
    assert _rehash(rows[4], data, rows[3][12]) == rows[4]
    rows[4] = _rehash(rows[4], {**data, "positions": listed}, rows[3][12])
    verifier = ChainVerifier()
    assert verifier.feed(rows) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 5, failure
    assert failure.reason == "an sss.Erased receipt does not list earlier positions"


def test_a_log_whose_pages_fail_is_walked_row_by_row_to_its_end(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When neither the head nor a page can be read but every row can be read
    alone, the walk goes row by row until no row is left, and reports what it
    walked (a damaged file that fails only some reads)."""
    for i in range(7):
        store.append([NewEvent("Noted", {"i": i})], aggregate_id=f"a{i % 2}")
    backend = store.backend
    whole = backend.chain_page

    def no_head() -> Any:
        raise StoreError("the head cannot be read")

    def rows_alone(after: int, limit: int) -> Any:
        if limit > 1:
            raise StoreError("the page cannot be read")
        return whole(after, limit)

    monkeypatch.setattr(backend, "kept_counts", no_head)
    monkeypatch.setattr(backend, "head", no_head)
    monkeypatch.setattr(backend, "chain_page", rows_alone)
    report = store.verify(storage="off")
    assert report.ok and report.checked == 7 and report.head_position == 7, report
    assert report.head_hash == whole(6, 1)[0][12]


def test_a_walk_trusted_from_position_0_must_start_at_the_chain_start(store: EventStore) -> None:
    store.append([NewEvent("Noted", {})])
    report = store.verify(from_position=0, head_hash="f" * 64)
    assert not report.ok and report.first_bad_position == 0 and report.checked == 0, report
    assert report.reason == "the hash trusted at position 0 is not the chain's start"
    assert store.verify(from_position=0, head_hash="0" * 64).ok


@pytest.mark.parametrize("head_readable", [True, False])
def test_a_row_that_cannot_be_read_alone_is_named(
    store: EventStore, monkeypatch: pytest.MonkeyPatch, head_readable: bool
) -> None:
    for i in range(7):
        store.append([NewEvent("Noted", {"i": i})])
    backend = store.backend
    whole = backend.chain_page

    def no_head() -> Any:
        raise StoreError("the head cannot be read")

    def third_row_broken(after: int, limit: int) -> Any:
        if limit > 1 or after == 2:
            raise StoreError("malformed")
        return whole(after, limit)

    if not head_readable:
        monkeypatch.setattr(backend, "kept_counts", no_head)
        monkeypatch.setattr(backend, "head", no_head)
    monkeypatch.setattr(backend, "chain_page", third_row_broken)
    report = store.verify(storage="off")
    assert not report.ok and report.first_bad_position == 3 and report.checked == 2, report
    assert report.reason == "the row cannot be read: malformed"


def test_an_aggregates_table_that_cannot_be_read_fails_verify(
    store: EventStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append([NewEvent("Noted", {})], aggregate_id="a")

    def unreadable(*args: Any) -> Any:
        raise StoreError("no table")

    monkeypatch.setattr(store.backend, "aggregates", unreadable)
    report = store.verify(storage="off")
    assert not report.ok and report.checked == 1 and report.first_bad_position is None, report
    assert report.reason == "the aggregates table cannot be read: no table"
    assert report.head_position == 1 and report.head_hash == store.get(1).hash


@pytest.mark.parametrize("storage", ["bogus", "", 1, None])
def test_the_storage_check_must_be_one_of_three(store: EventStore, storage: Any) -> None:
    store.append([NewEvent("Noted", {})])
    if storage is None:
        assert store.verify(storage=storage).ok  # the default
        return
    with pytest.raises(ValidationError, match="storage must be one of full, quick, off, not "):
        store.verify(storage=storage)


def test_a_walk_from_a_trusted_point_checks_only_the_snapshots_after_it(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path), snapshot_every=2) as es:
        for k in range(6):
            es.append([NewEvent("Set", {"k": k})], aggregate_id="a")
        trusted = {p: es.get(p).hash for p in (2, 3)}
    _edit(path, "UPDATE snapshots SET state = '{\"forged\": true}' WHERE version = 2")
    with EventStore(str(path), snapshot_every=2, readonly=True) as es:
        lying = "the snapshot of a at version 2 differs from its events"
        assert es.verify().reason == lying
        assert es.verify(from_position=2, head_hash=trusted[2]).ok
        assert es.verify(from_position=3, head_hash=trusted[3]).ok
        assert es.verify(from_position=1, head_hash=es.get(1).hash).reason == lying


def test_a_key_needs_a_checkpoint(store: EventStore) -> None:
    store.append([NewEvent("Noted", {})])
    with pytest.raises(ValidationError, match="key checks a checkpoint's signature: give the"):
        store.verify(key="a key")


def test_a_trusted_position_that_is_missing_is_named(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    with EventStore(str(path)) as es:
        for i in range(5):
            es.append([NewEvent("Noted", {"i": i})])
        trusted = es.get(3).hash
    _edit(path, "DROP TRIGGER events_refuse_delete", "DELETE FROM events WHERE position = 3")
    with EventStore(str(path), readonly=True) as es:
        report = es.verify(from_position=3, head_hash=trusted)
    assert not report.ok and report.first_bad_position == 3, report
    assert report.reason == "position 3 is missing"


def test_a_reducer_that_fails_on_the_snapshot_refold_fails_verify(make_store: Any) -> None:
    from store import Reducers

    failing = {"now": False}
    reducers = Reducers()

    @reducers.on(None, "Set")
    def set_(state: dict[str, Any], event: Any) -> dict[str, Any]:
        if failing["now"] and event.version == 2:
            raise ValueError("no longer")
        return {**state, **event.data}

    store = make_store(reducers=reducers)
    for k in range(3):
        store.append([NewEvent("Set", {"k": k})], aggregate_id="a")
    store.snapshot("a")
    failing["now"] = True
    report = store.verify(storage="off")
    assert not report.ok and report.checked == 3, report
    assert report.reason == (
        "the reducer for Set failed on a version 2 (position 2): ValueError: no longer"
    )


def test_a_checkpoint_cannot_go_with_from_position(store: EventStore) -> None:
    store.append([NewEvent("Noted", {})])
    checkpoint = store.checkpoint()
    with pytest.raises(ValidationError, match="it cannot go with from_position"):
        store.verify(checkpoint=checkpoint, from_position=1, head_hash=store.get(1).hash)
    assert store.verify(checkpoint=checkpoint).ok


@pytest.mark.parametrize("named", [1, 2])
def test_an_erased_payload_must_name_a_later_receipt(store: EventStore, named: int) -> None:
    for i in range(4):
        store.append([NewEvent("Noted", {"i": i})])
    store.erase(positions=[2], reason="asked to")
    rows = list(store.backend.chain_page(0, 10))
    rows[1] = (*rows[1][:13], named)  # the erased payload names itself or an earlier event
    verifier = ChainVerifier()
    assert verifier.feed(rows) is False
    failure = verifier.failure
    assert failure is not None and failure.first_bad_position == 2, failure
    assert failure.reason == f"the payload is erased by position {named}, not a later one"

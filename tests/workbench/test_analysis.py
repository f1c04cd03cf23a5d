"""The analysis database (``sss export --format sqlite``): its tables hold what
the store holds, incremental exports equal one export, bad targets are refused."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, Reducers
from tests.workbench.test_cli_app import assert_one_line_error, run
from workbench import frames
from workbench.analysis import AnalysisError, export, flatten
from workbench.demo import generate

# -- helpers -------------------------------------------------------------------------


def reference_flatten(payload: dict[str, Any], prefix: tuple[str, ...] = ()) -> dict[Any, Any]:
    """The documented rule, written plainly: nested objects walked, lists and empty
    objects as JSON text, integers beyond 64 bits as text."""
    out: dict[Any, Any] = {}
    for key, value in payload.items():
        path = (*prefix, key)
        if isinstance(value, dict) and value:
            out.update(reference_flatten(value, path))
        elif isinstance(value, (dict, list)):
            out[path] = Json(value)
        elif type(value) is int and not -(2**63) <= value < 2**63:
            out[path] = str(value)
        else:
            out[path] = value
    return out


class Json:
    """A list or object, held as JSON text: equal to any text that parses to it."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and json.loads(other) == self.value

    def __repr__(self) -> str:
        return f"Json({self.value!r})"


def type_rows(db: sqlite_utils.Database, event_type: str) -> dict[int, dict[Any, Any]]:
    """The rows of an event type's table, keyed by position, as payload path -> cell."""
    table = db.execute(
        "SELECT name FROM _sss_tables WHERE kind = 'type' AND source = ?", [event_type]
    ).fetchone()[0]
    paths = {
        name: tuple(json.loads(path))
        for name, path in db.execute(
            "SELECT name, path FROM _sss_columns WHERE table_name = ?", [table]
        )
    }
    out: dict[int, dict[Any, Any]] = {}
    for row in db[table].rows:
        out[row["position"]] = {
            paths[name]: value for name, value in row.items() if name in paths and value is not None
        }
    return out


def dump(path: Path, skip_meta: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, sorted, for comparing two databases."""
    db = sqlite_utils.Database(path)
    out = {}
    for name in db.table_names():
        if name.startswith("events_fts") or (skip_meta and name == "_sss_analysis"):
            continue
        columns = sorted(db[name].columns_dict)
        rows = db.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{name}]")
        out[name] = sorted(rows.fetchall(), key=repr)
    db.close()
    return out


def small_store(path: Path) -> None:
    with EventStore(path) as es:
        es.append(
            [
                NewEvent(
                    "OrderPlaced",
                    {"total": 30, "address": {"zip": "10115", "city": "Berlin"}, "items": [1, 2]},
                    metadata={"actor": "alice", "correlation_id": "c-1"},
                ),
                NewEvent("OrderShipped", {"status": "shipped", "carrier": "DHL"}, {"actor": "bob"}),
            ],
            aggregate_id="order-1",
            aggregate_type="Order",
        )
        es.append(
            [NewEvent("OrderPlaced", {"total": "007", "position": 9, "Total": 1, "note": None})],
            aggregate_id="order-2",
            aggregate_type="Order",
        )
        es.append([NewEvent("Deployed", {"version": "1.2"})])
        es.append(
            [NewEvent("OrderPlaced", {"address": {"zip": "20095"}, "total": 12.5})],
            aggregate_id="order-3",
            aggregate_type="Order",
        )


# -- the store's own file --------------------------------------------------------------


def test_the_store_file_opens_in_sqlite_utils(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    small_store(path)
    db = sqlite_utils.Database(path)
    rows = list(db["events"].rows_where(order_by="position"))
    with EventStore(path, readonly=True) as es:
        stored = list(es.read())
    assert [r["position"] for r in rows] == [e.position for e in stored] == [1, 2, 3, 4, 5]
    for row, event in zip(rows, stored, strict=True):
        assert row["event_id"] == event.event_id and row["type"] == event.type
        assert json.loads(row["data"]) == event.data
        assert json.loads(row["metadata"]) == event.metadata
        assert row["recorded_at"] == event.recorded_at.isoformat()
    assert {"position", "aggregate_id", "version", "hash"} <= set(db["events"].columns_dict)
    db.close()


# -- the tables ---------------------------------------------------------------------


def test_tables_hold_events_payloads_states_changes_and_search(tmp_path: Path) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    summary = export(source, target)
    assert (summary.added, summary.total, summary.through_position) == (5, 5, 5)
    assert summary.created and summary.verify_ok
    db = sqlite_utils.Database(target)
    assert db["events"].count == 5 and db["OrderPlaced"].count == 3
    placed = db["OrderPlaced"]
    assert [fk.column for fk in placed.foreign_keys] == ["position"]
    assert placed.foreign_keys[0].other_table == "events"
    row = placed.get(1)
    assert row["total"] == 30 and row["address.zip"] == "10115" and row["items"] == "[1,2]"
    assert row["actor"] == "alice" and row["aggregate_id"] == "order-1"
    # "007" stays text beside 30 and 12.5; a field named position or Total gets a column of its own
    other = placed.get(3)
    assert other["total"] == "007" and isinstance(db["OrderPlaced"].get(5)["total"], float)
    assert other["data.position"] == 9 and other["data.Total"] == 1
    # latest states, rebuilt by the store
    with EventStore(source, readonly=True) as es:
        for aggregate in ("order-1", "order-2", "order-3"):
            state = db["Order_state"].get(aggregate)
            assert json.loads(state["state"]) == es.state_at(aggregate).state
        assert db["Order_state"].get("order-1")["status"] == "shipped"
        assert db["Order_state"].get("order-1")["address.city"] == "Berlin"
    # the changes are frames.changes'
    expected = frames.changes(source)
    got = list(db["changes"].rows_where(order_by="position, path"))
    expected = expected.sort_values(["position", "path"])
    assert [(r["position"], r["path"]) for r in got] == list(
        zip(expected["position"], expected["path"], strict=True)
    )
    for r, new in zip(got, expected["new"], strict=True):
        assert (json.loads(r["new"]) if isinstance(new, (list, dict)) else r["new"]) == new
    # full-text search over payloads
    assert [r["position"] for r in db["events"].search("Berlin")] == [1]
    assert [r["position"] for r in db["events"].search("DHL")] == [2]
    # what it was made from
    meta = dict(db.execute("SELECT key, value FROM _sss_analysis").fetchall())
    with EventStore(source, readonly=True) as es:
        report = es.verify()
        assert meta["source_store_id"] == es.info()["store_id"]
    assert meta["verify_ok"] == "true" and meta["chain_head_hash"] == report.head_hash
    assert meta["through_position"] == "5"
    document = json.loads((tmp_path / "analysis.metadata.json").read_text())
    tables = document["databases"]["analysis"]["tables"]
    assert report.head_hash in document["description"]
    described = {
        (table, name): about
        for table, name, about in db.execute(
            "SELECT table_name, name, description FROM _sss_columns"
        )
    }
    for name in db.table_names():
        if name.startswith("events_fts"):
            continue
        assert tables[name]["description"], name
        for column in db[name].columns_dict:
            assert column in tables[name].get("columns", {}) or (name, column) in described
    assert described["OrderPlaced", "total"] == "payload field total (integer | real | text)"
    assert "_sss_columns?table_name=OrderPlaced" in tables["OrderPlaced"]["description_html"]
    db.close()


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
payloads = st.dictionaries(st.text(max_size=6), json_values, max_size=6)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(batch=st.lists(st.tuples(st.sampled_from(["A", "B", "a"]), payloads), min_size=1))
def test_every_type_row_equals_its_flattened_payload(
    tmp_path_factory: pytest.TempPathFactory, batch: list[tuple[str, dict[str, Any]]]
) -> None:
    target = tmp_path_factory.mktemp("roundtrip") / "analysis.db"
    with EventStore(":memory:") as es:
        for index, (event_type, payload) in enumerate(batch):
            try:
                es.append([NewEvent(event_type, payload)], aggregate_id=f"agg-{index % 3}")
            except Exception:
                return  # a payload the store refuses (e.g. beyond JSON's numbers) is not exported
        export(es, target)
        stored = list(es.read())
    db = sqlite_utils.Database(target)
    seen = 0
    for event_type in {e.type for e in stored}:
        rows = type_rows(db, event_type)
        for event in (e for e in stored if e.type == event_type):
            want = {k: v for k, v in reference_flatten(event.data).items() if v is not None}
            assert rows[event.position] == want
            flat = flatten(event.data)
            assert flat == reference_flatten(event.data)
            assert list(flat) == list(reference_flatten(event.data))
            seen += 1
    assert seen == len(stored)
    db.close()


# -- incremental -------------------------------------------------------------------------


def test_exporting_in_steps_equals_exporting_once(tmp_path: Path) -> None:
    source = tmp_path / "demo.db"
    generate(source, events=1200, seed=3)
    once, steps = tmp_path / "once.db", tmp_path / "steps.db"
    export(source, once)
    added = [export(source, steps, filters={"limit": n}).added for n in (1, 400, 300)]
    added.append(export(source, steps).added)
    assert added == [1, 400, 300, 499]
    assert export(source, steps).added == 0
    assert dump(once) == dump(steps)


def test_new_events_update_states_and_changes(tmp_path: Path) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    export(source, target)
    with EventStore(source) as es:
        es.append([NewEvent("OrderCancelled", {"status": "cancelled", "items": None})], "order-1")
    summary = export(source, target)
    assert (summary.added, summary.total, summary.created) == (1, 6, False)
    db = sqlite_utils.Database(target)
    state = db["Order_state"].get("order-1")
    assert state["status"] == "cancelled" and state["items"] is None and state["version"] == 3
    assert {r["path"] for r in db["changes"].rows_where("position = 6")} == {"/status", "/items"}
    assert [r["position"] for r in db["events"].search("cancelled")] == [6]
    db.close()


def test_filters_choose_events_and_states_replay_what_is_left_out(tmp_path: Path) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    export(source, target, filters={"types": ["OrderShipped"]})
    db = sqlite_utils.Database(target)
    assert [r["type"] for r in db["events"].rows] == ["OrderShipped"]
    with EventStore(source, readonly=True) as es:
        assert json.loads(db["Order_state"].get("order-1")["state"]) == es.state_at("order-1").state
    # the change the event made, against the state before it (which the export left out)
    assert {r["path"] for r in db["changes"].rows} == {"/status", "/carrier"}
    db.close()
    with pytest.raises(AnalysisError, match="made with --type OrderShipped, not no filters"):
        export(source, target)


def test_custom_reducers_build_the_states(tmp_path: Path) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    reducers = Reducers()

    @reducers.on("Order", "OrderPlaced")
    def placed(state: dict[str, Any], event: Any) -> dict[str, Any]:
        return {**state, "placed_by": event.actor, "count": state.get("count", 0) + 1}

    with EventStore(source, readonly=True, reducers=reducers) as es:
        export(es, target)
        expected = es.state_at("order-1").state
    db = sqlite_utils.Database(target)
    assert json.loads(db["Order_state"].get("order-1")["state"]) == expected
    assert db["Order_state"].get("order-1")["placed_by"] == "alice"
    db.close()


def test_a_failing_reducer_leaves_nothing_behind(tmp_path: Path) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    reducers = Reducers()

    @reducers.on("Order", "OrderPlaced")
    def broken(state: dict[str, Any], event: Any) -> dict[str, Any]:
        if event.position >= 3:
            raise RuntimeError("boom")
        return {**state, **event.data}

    with EventStore(source, readonly=True, reducers=reducers) as es:
        export(es, target, filters={"limit": 2})
        before = target.read_bytes()
        with pytest.raises(Exception, match="position 3: boom"):
            export(es, target)
        with pytest.raises(Exception, match="boom"):
            export(es, tmp_path / "new.db")
    assert target.read_bytes() == before
    left = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("store.db"))
    assert left == ["analysis.db", "analysis.metadata.json"]


# -- refusals ----------------------------------------------------------------------------


def test_refuses_the_store_itself_other_stores_and_other_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source = tmp_path / "store.db"
    small_store(source)
    other = tmp_path / "other.db"
    with EventStore(other) as es:
        es.append([NewEvent("X", {})])
    text = tmp_path / "notes.txt"
    text.write_text("keep me")
    plain = tmp_path / "plain.db"
    sqlite3.connect(plain).execute("CREATE TABLE t (x)").connection.close()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    device = tmp_path / "null"
    os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # a copy made here, as the rules ask
    link = tmp_path / "link.db"
    link.symlink_to(other)
    cases = {
        device: "not a regular file",
        link: "is an event store",
        source: "is the store being exported",
        other: "is an event store",
        text: "not an SQLite database",
        plain: "not an analysis database",
        tmp_path: "is a directory",
        fifo: "not a regular file",
    }
    for target, message in cases.items():
        before = target.read_bytes() if target.is_file() else None
        code, _, err = run(capsys, "export", source, "--format", "sqlite", "-o", target)
        assert_one_line_error(code, err, str(target), message)
        if before is not None:
            assert target.read_bytes() == before
    code, _, err = run(capsys, "export", source, "--format", "sqlite")
    assert_one_line_error(code, err, "needs -o")
    code, _, err = run(capsys, "export", source, "--format", "sqlite", "-o", "x.db", "--backwards")
    assert_one_line_error(code, err, "--backwards")


def test_refuses_a_database_made_from_another_store_or_another_history(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first, second, target = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "analysis.db"
    small_store(first)
    small_store(second)
    export(first, target)
    before = target.read_bytes()
    code, _, err = run(capsys, "export", second, "--format", "sqlite", "-o", target)
    assert_one_line_error(code, err, "made from another store")
    assert target.read_bytes() == before
    conn = sqlite3.connect(target)
    with conn:
        conn.execute("UPDATE _sss_analysis SET value = 'x' WHERE key = 'through_hash'")
    conn.close()
    code, _, err = run(capsys, "export", first, "--format", "sqlite", "-o", target)
    assert_one_line_error(code, err, "no longer holds the history", "position 5")


def test_the_command_reports_and_shows_progress_only_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    code, out, err = run(capsys, "export", source, "--format", "sqlite", "-o", target)
    assert code == 0 and err == ""
    assert "5 events added, 5 in all, through position 5 (source verified)" in out
    with EventStore(source) as es:
        es.append([NewEvent("X", {"n": 1})])
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    code, out, err = run(capsys, "export", source, "--format", "sqlite", "-o", target)
    assert code == 0 and "updated" in out and "1 events added, 6 in all" in out
    assert "exporting 1 / 1 events" in err


def test_reducers_option_on_the_command_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    (tmp_path / "analysis_reducers.py").write_text(
        "from store import Reducers\n"
        "reducers = Reducers()\n"
        "@reducers.on('Order', 'OrderShipped')\n"
        "def shipped(state, event):\n"
        "    return {**state, 'shipped_by': event.actor}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ("export", source, "--format", "sqlite", "-o", target)
    code, _, err = run(capsys, *args, "--reducers", "analysis_reducers:reducers")
    assert code == 0, err
    db = sqlite_utils.Database(target)
    assert db["Order_state"].get("order-1")["shipped_by"] == "bob"
    db.close()
    code, _, err = run(capsys, *args)
    assert_one_line_error(code, err, "made with other --reducers or --upcasters")


# -- Datasette ---------------------------------------------------------------------------


def test_datasette_serves_a_faceted_type_table(tmp_path: Path) -> None:
    import asyncio

    from datasette.app import Datasette

    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    generate(source, events=600, seed=5)
    summary = export(source, target)
    metadata = json.loads(Path(summary.metadata_path).read_text())
    datasette = Datasette([str(target)], metadata=metadata)

    async def fetch() -> tuple[Any, Any, Any]:
        faceted = await datasette.client.get("/analysis/OrderPlaced.json?_facet=channel&_size=5")
        page = await datasette.client.get("/analysis/OrderPlaced?_facet=channel")
        search = await datasette.client.get("/analysis/events.json?_search=placed&_size=1")
        return faceted, page, search

    faceted, page, search = asyncio.run(fetch())
    assert faceted.status_code == 200 and page.status_code == 200
    body = faceted.json()
    facet = body["facet_results"]["channel"]["results"]
    db = sqlite_utils.Database(target)
    expected = dict(
        db.execute("SELECT channel, count(*) FROM OrderPlaced GROUP BY channel").fetchall()
    )
    assert {r["value"]: r["count"] for r in facet} == expected
    assert "channel" in page.text and "actor" in page.text  # the metadata's default facet too
    assert metadata["databases"]["analysis"]["tables"]["OrderPlaced"]["description"] in page.text
    assert search.status_code == 200 and search.json()["rows"]
    db.close()


# -- PostgreSQL --------------------------------------------------------------------------


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> Any:
    from tests.store.pg import ENV, fresh_postgres_url

    if not os.environ.get(ENV):
        pytest.fail(f"{ENV} is not set; tests marked postgres need it", pytrace=False)
    yield from fresh_postgres_url(request.node.name)


@pytest.mark.postgres
def test_a_postgresql_store_exports_as_its_sqlite_twin(pg_url: str, tmp_path: Path) -> None:
    lite = tmp_path / "demo.db"
    generate(lite, events=500, seed=11)
    generate(pg_url, events=500, seed=11)
    export(lite, tmp_path / "from_sqlite.db", filters={"limit": 200})
    export(lite, tmp_path / "from_sqlite.db")
    export(pg_url, tmp_path / "from_postgres.db", filters={"limit": 300})
    summary = export(pg_url, tmp_path / "from_postgres.db")
    assert (summary.added, summary.total, summary.verify_ok) == (200, 500, True)
    assert dump(tmp_path / "from_sqlite.db") == dump(tmp_path / "from_postgres.db")
    with pytest.raises(AnalysisError, match="made from another store"):
        export(pg_url, tmp_path / "from_sqlite.db")


def test_a_store_that_fails_verify_is_exported_and_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    source, target = tmp_path / "store.db", tmp_path / "analysis.db"
    small_store(source)
    conn = sqlite3.connect(source)
    with conn:
        conn.execute("DROP TRIGGER events_guard_update")
        conn.execute("""UPDATE events SET data = '{"total": 31}' WHERE position = 1""")
    conn.close()
    code, out, err = run(capsys, "export", source, "--format", "sqlite", "-o", target)
    assert code == 0 and "(source FAILED verify)" in out
    assert err.startswith("sss: warning: ") and "first bad position 1" in err
    db = sqlite_utils.Database(target)
    meta = dict(db.execute("SELECT key, value FROM _sss_analysis").fetchall())
    assert (meta["verify_ok"], meta["verify_first_bad_position"]) == ("false", "1")
    document = json.loads((tmp_path / "analysis.metadata.json").read_text())
    assert "verify FAILED at position 1" in document["description"]
    db.close()

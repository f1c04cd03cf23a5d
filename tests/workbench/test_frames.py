"""workbench.frames: events, states, changes and as-of tables as DataFrames."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, Reducers
from workbench import frames

matplotlib.use("Agg")

T0 = datetime(2024, 10, 1, 9, 0, tzinfo=UTC)


def _fill(es: EventStore) -> None:
    es.append(
        [
            NewEvent(
                "OrderPlaced",
                {"total": 30, "address": {"zip": "1000", "city": "Ghent"}, "lines": ["a"]},
                metadata={"actor": "alice", "correlation_id": "c-1"},
                occurred_at=T0,
            ),
            NewEvent(
                "OrderPaid",
                {"paid": True},
                metadata={"actor": "bob", "correlation_id": "c-1", "causation_id": "x"},
            ),
        ],
        aggregate_id="order-1",
        aggregate_type="Order",
    )
    es.append(
        [NewEvent("OrderPlaced", {"total": 12}, metadata={"actor": "carol"})],
        aggregate_id="order-2",
        aggregate_type="Order",
    )
    es.append([NewEvent("Deployed", {"service": "api"}, metadata={"actor": "svc:ci"})])
    es.append(
        [NewEvent("CustomerRegistered", {"name": "Dana"}, metadata={"actor": "dana"})],
        aggregate_id="cust-1",
        aggregate_type="Customer",
    )
    es.append(
        [
            NewEvent(
                "AddressChanged",
                {"address": {"zip": "2000"}, "total": None},
                metadata={"actor": "alice"},
                occurred_at=T0 - timedelta(days=3),
            )
        ],
        aggregate_id="order-1",
    )


@pytest.fixture
def es() -> Any:
    with EventStore(":memory:") as store:
        _fill(store)
        yield store


def test_events_have_proper_dtypes_and_values(es: EventStore) -> None:
    df = frames.events(es)
    assert list(df.columns) == list(frames.EVENT_COLUMNS)
    assert df["position"].dtype == "int64"
    assert df["schema_version"].dtype == "int64"
    assert df["version"].dtype == "Int64"
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert str(df["occurred_at"].dtype) == "datetime64[us, UTC]"
    for name in ("type", "aggregate_type", "actor"):
        assert isinstance(df[name].dtype, pd.CategoricalDtype), name
    stored = list(es.read())
    assert df["position"].tolist() == [e.position for e in stored]
    assert df["event_id"].tolist() == [e.event_id for e in stored]
    assert df["recorded_at"].tolist() == [pd.Timestamp(e.recorded_at) for e in stored]
    assert df["occurred_at"].iloc[0] == pd.Timestamp(T0)
    assert df["actor"].astype(object).tolist() == [e.actor for e in stored]
    assert df["correlation_id"].iloc[1] == "c-1"
    assert df["causation_id"].iloc[1] == "x"
    assert pd.isna(df["version"].iloc[3]) and pd.isna(df["aggregate_id"].iloc[3])
    assert df["hash"].tolist() == [e.hash for e in stored]
    assert df["data"].dtype == "str" and df["metadata"].dtype == "str"
    assert json.loads(df["data"].iloc[0]) == stored[0].data
    assert df["data"].tolist() == [json.dumps(e.data, separators=(",", ":")) for e in stored]
    assert df.sss.payloads().tolist() == [e.data for e in stored]
    assert df.sss.payloads("metadata").iloc[1] == stored[1].metadata


def test_filters_are_those_of_read(es: EventStore) -> None:
    recorded = [e.recorded_at for e in es.read()]
    cases: list[dict[str, Any]] = [
        {"aggregate_type": "Order"},
        {"aggregate_id": "order-1"},
        {"types": ["OrderPlaced", "Deployed"]},
        {"types": "OrderPaid"},
        {"from_position": 3},
        {"limit": 2, "backwards": True},
        {"since": recorded[2], "until": recorded[4]},
    ]
    for filters in cases:
        read_filters = dict(filters)
        if isinstance(read_filters.get("types"), str):
            read_filters["types"] = [read_filters["types"]]
        expected = [e.position for e in es.read(**read_filters)]
        assert frames.events(es, **filters)["position"].tolist() == expected, filters
    text = recorded[2].isoformat()
    assert frames.events(es, since=text)["position"].tolist() == [3, 4, 5, 6]
    # Times read as the command line reads them: a day with a zone, relative.
    day = recorded[0].strftime("%Y-%m-%dZ")
    assert len(frames.events(es, since=day)) == len(recorded)
    assert frames.events(es, since="-1d").empty == (
        recorded[-1] < datetime.now(UTC) - timedelta(days=1)
    )
    with pytest.raises(ValueError, match="not a time"):
        frames.events(es, since="yesterday")


def test_times_of_any_year_the_store_accepts_fit(tmp_path: Path) -> None:
    path = str(tmp_path / "old.db")
    with EventStore(path) as store:
        store.append([NewEvent("Founded", {}, occurred_at=datetime(1, 1, 1, tzinfo=UTC))])
        store.append([NewEvent("Far", {}, occurred_at=datetime(9999, 12, 31, tzinfo=UTC))])
    df = frames.events(path)
    assert df["occurred_at"].dt.year.tolist() == [1, 9999]
    assert df.sss.activity(freq="D").to_numpy().sum() == 2


def test_naive_times_are_refused(es: EventStore) -> None:
    with pytest.raises(ValueError, match="no timezone"):
        frames.events(es, since="2024-10-01T00:00")
    with pytest.raises(ValueError, match="no timezone"):
        frames.as_of(es, "Order", datetime(2024, 10, 1))


def test_flatten_gives_a_column_per_payload_field(es: EventStore) -> None:
    df = frames.events(es, flatten=True)
    assert "data" not in df.columns
    assert {"data.total", "data.address.zip", "data.address.city", "data.paid"} <= set(df.columns)
    assert df["data.total"].dtype == "Int64"
    assert df["data.total"].tolist()[:3] == [30, pd.NA, 12]
    assert df["data.address.zip"].iloc[0] == "1000"
    assert df["data.address.zip"].iloc[5] == "2000"
    assert pd.isna(df["data.address.city"].iloc[5])
    assert df["data.paid"].dtype == "boolean"
    assert df["data.lines"].iloc[0] == ["a"]


def test_payload_fields_of_mixed_types_fall_back_to_objects(tmp_path: Path) -> None:
    with EventStore(tmp_path / "mixed.db") as es:
        es.append([NewEvent("A", {"n": 1})], aggregate_id="a")
        es.append([NewEvent("A", {"n": "one"})], aggregate_id="b")
    df = frames.events(tmp_path / "mixed.db", flatten=True)
    assert df["data.n"].tolist() == [1, "one"]
    assert frames.events(tmp_path / "mixed.db")["data"].tolist() == ['{"n":1}', '{"n":"one"}']
    # Chunks are typed one by one: each gets its own dtype.
    chunks = list(frames.iter_events(tmp_path / "mixed.db", chunksize=1, flatten=True))
    assert [c["data.n"].iloc[0] for c in chunks] == [1, "one"]


def test_mixed_types_across_load_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(frames, "_CHUNK", 2)
    with EventStore(tmp_path / "mixed.db") as es:
        for n in (1, 2.5, "three", {"four": 4}):
            es.append([NewEvent("A", {"n": n, "k": "x"})], aggregate_id="a")
        df = frames.events(es, flatten=True)
    assert df["data.n"].tolist()[:3] == [1, 2.5, "three"]
    assert df["data.n.four"].tolist()[3] == 4 and df["data.k"].tolist() == ["x"] * 4


def test_empty_selection_keeps_the_columns_and_dtypes(es: EventStore) -> None:
    df = frames.events(es, types=["NoSuchType"])
    assert df.empty and list(df.columns) == list(frames.EVENT_COLUMNS)
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert df["version"].dtype == "Int64"
    assert frames.events(es, types=["NoSuchType"], flatten=True).empty


def test_iter_events_chunks_add_up_to_events(es: EventStore) -> None:
    chunks = list(frames.iter_events(es, chunksize=4))
    assert [len(c) for c in chunks] == [4, 2]
    whole = frames.events(es)
    assert pd.concat(chunks)["position"].tolist() == whole["position"].tolist()
    assert chunks[1]["position"].tolist() == [5, 6]
    assert str(chunks[1]["recorded_at"].dtype) == "datetime64[us, UTC]"
    with pytest.raises(ValueError, match="chunksize"):
        next(frames.iter_events(es, chunksize=0))


def test_a_path_is_opened_read_only(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with EventStore(path) as es:
        _fill(es)
        head = es.head()
    assert len(frames.events(path)) == head
    assert len(frames.events(str(path))) == head
    with EventStore(path) as es:
        assert es.head() == head
    with pytest.raises(TypeError, match="EventStore or a path"):
        frames.events(42)  # type: ignore[arg-type]


def test_states_one_row_per_version(es: EventStore) -> None:
    df = frames.states(es, "order-1")
    assert df["version"].tolist() == [1, 2, 3]
    assert df["position"].tolist() == [1, 2, 6]
    assert df["type"].astype(str).tolist() == ["OrderPlaced", "OrderPaid", "AddressChanged"]
    for row in df.itertuples():
        assert row.state == es.state_at("order-1", version=row.version).state
    assert df["state.address.zip"].tolist() == ["1000", "1000", "2000"]
    assert df["state.total"].tolist()[:2] == [30, 30] and pd.isna(df["state.total"].iloc[2])
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert list(frames.states(es, "order-1", flatten=False).columns)[-1] == "state"


def test_changes_of_one_aggregate(es: EventStore) -> None:
    df = frames.changes(es, aggregate_id="order-1")
    assert list(df.columns) == list(frames.CHANGE_COLUMNS)
    assert df["position"].dtype == "int64" and df["version"].dtype == "int64"
    assert str(df["recorded_at"].dtype) == "datetime64[us, UTC]"
    assert isinstance(df["type"].dtype, pd.CategoricalDtype)
    assert frames.changes(es, aggregate_type="Nothing").empty
    last = df[df["version"] == 3].set_index("path")
    assert last.loc["/address/zip", "old"] == "1000" and last.loc["/address/zip", "new"] == "2000"
    assert last.loc["/total", "old"] == 30 and last.loc["/total", "new"] is None
    assert set(last["actor"].astype(str)) == {"alice"}
    first = df[df["version"] == 1]
    assert sorted(first["path"]) == ["/address", "/lines", "/total"]


def test_changes_of_a_type_in_one_pass_match_history(es: EventStore) -> None:
    df = frames.changes(es, aggregate_type="Order")
    assert set(df["aggregate_id"]) == {"order-1", "order-2"}
    for aggregate_id, group in df.groupby("aggregate_id"):
        expected = frames.changes(es, aggregate_id=str(aggregate_id))
        assert group[["position", "path"]].values.tolist() == (
            expected[["position", "path"]].values.tolist()
        )
    every = frames.changes(es)
    assert set(every["aggregate_id"]) == {"order-1", "order-2", "cust-1"}


def test_custom_reducers_are_used_and_may_mutate(tmp_path: Path) -> None:
    reducers = Reducers()

    @reducers.on("Counter", "Added")
    def add(state: dict[str, Any], event: Any) -> dict[str, Any]:
        state["n"] = state.get("n", 0) + event.data["by"]  # mutates its input
        return state

    with EventStore(tmp_path / "c.db", reducers=reducers) as es:
        for by in (1, 2, 3):
            es.append([NewEvent("Added", {"by": by})], aggregate_id="c", aggregate_type="Counter")
        df = frames.changes(es, aggregate_type="Counter")
        assert df[["old", "new"]].values.tolist() == [[None, 1], [1, 3], [3, 6]]
        assert frames.as_of(es, "Counter", datetime.now(UTC))["state.n"].tolist() == [6]
        assert frames.states(es, "c")["state.n"].tolist() == [1, 3, 6]


def test_as_of_is_every_aggregate_at_a_moment(es: EventStore) -> None:
    recorded = {e.position: e.recorded_at for e in es.read()}
    now = frames.as_of(es, "Order", datetime.now(UTC))
    assert now["aggregate_id"].tolist() == ["order-1", "order-2"]
    assert now["version"].tolist() == [3, 1]
    for row in now.itertuples():
        assert row.state == es.state_at(row.aggregate_id).state
    then = frames.as_of(es, "Order", recorded[2])
    assert then["aggregate_id"].tolist() == ["order-1"]  # order-2 came later
    assert then["version"].tolist() == [2]
    assert then["state"].iloc[0] == es.state_at("order-1", at=recorded[2]).state
    assert then["state.address.zip"].tolist() == ["1000"]
    assert str(then["updated_at"].dtype) == "datetime64[us, UTC]"
    assert frames.as_of(es, "Order", datetime(2000, 1, 1, tzinfo=UTC)).empty
    everything = frames.as_of(es, None, datetime.now(UTC))
    assert set(everything["aggregate_id"]) == {"order-1", "order-2", "cust-1"}


def test_as_of_in_business_time_counts_back_dated_events(es: EventStore) -> None:
    # AddressChanged was recorded last but happened three days before T0.
    df = frames.as_of(es, "Order", T0 - timedelta(days=1), time="occurred_at")
    assert df["aggregate_id"].tolist() == ["order-1"]
    assert df["state"].iloc[0] == {"address": {"zip": "2000"}}
    with pytest.raises(ValueError, match="time must be"):
        frames.as_of(es, "Order", T0, time="valid_at")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.dictionaries(
                st.sampled_from(["x", "y", "z"]),
                st.one_of(
                    st.none(), st.integers(-5, 5), st.dictionaries(st.just("k"), st.booleans())
                ),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=15,
    ),
    st.data(),
)
def test_as_of_one_pass_equals_state_at(
    events: list[tuple[str, dict[str, Any]]], data: Any
) -> None:
    with EventStore(":memory:") as es:
        for aggregate_id, payload in events:
            es.append(
                [NewEvent("Set", copy.deepcopy(payload))],
                aggregate_id=aggregate_id,
                aggregate_type="T",
            )
        stored = list(es.read())
        cut = data.draw(st.integers(1, len(stored)))
        at = stored[cut - 1].recorded_at
        table = frames.as_of(es, "T", at, flatten=False)
        expected = {
            info.aggregate_id: es.state_at(info.aggregate_id, at=at) for info in es.aggregates("T")
        }
        expected = {k: v for k, v in expected.items() if v.version > 0}
        assert set(table["aggregate_id"]) == set(expected)
        for row in table.itertuples():
            assert row.state == expected[row.aggregate_id].state
            assert row.version == expected[row.aggregate_id].version


def test_audit_accessor_views(es: EventStore) -> None:
    df = frames.events(es)
    activity = df.sss.activity("D")
    assert activity.to_numpy().sum() == len(df)
    assert activity.loc[:, "OrderPlaced"].sum() == 2
    by_actor = df.sss.activity("h", by="actor")
    assert by_actor["alice"].sum() == 2
    actors = df.sss.actors()
    assert actors.index[0] == "alice" and actors.loc["alice"].sum() == 2
    assert actors.loc["bob", "OrderPaid"] == 1
    gaps = df.sss.gaps()
    assert gaps.isna().tolist() == [True, False, True, True, True, False]
    assert gaps.iloc[5] == df["recorded_at"].iloc[5] - df["recorded_at"].iloc[1]
    assert frames.activity(es, "D").equals(activity)
    assert frames.activity(es, "D", chunksize=2).equals(activity)
    for plot in (df.sss.plot_activity, df.sss.plot_actors, df.sss.plot_gaps):
        assert plot().figure is not None
    with pytest.raises(AttributeError, match=r"frames\.events"):
        _ = pd.DataFrame({"a": [1]}).sss


class _ObjectStore(EventStore):
    """A store without ``read_rows``, so frames takes the RecordedEvent path."""

    read_rows = None  # type: ignore[assignment]


def test_the_columnar_read_path_gives_the_same_frames(tmp_path: Path) -> None:
    with EventStore(tmp_path / "a.db") as es:
        _fill(es)
        es.append([NewEvent("Odd", {"n": 1}, metadata={"actor": 7, "extra": [1]})], "x-1")
    with (
        _ObjectStore(tmp_path / "a.db", readonly=True) as plain,
        EventStore(tmp_path / "a.db", readonly=True) as rows,
    ):
        assert callable(rows.read_rows) and plain.read_rows is None
        for options in ({}, {"flatten": True}, {"aggregate_type": "Order", "limit": 2}):
            pd.testing.assert_frame_equal(
                frames.events(rows, **options), frames.events(plain, **options)
            )
        for left, right in zip(
            frames.iter_events(rows, chunksize=4),
            frames.iter_events(plain, chunksize=4),
            strict=True,
        ):
            pd.testing.assert_frame_equal(left, right)
        assert frames.events(rows)["actor"].astype(object).tolist()[-1] == "7"


def test_notebook_helpers_and_reports_do_not_import_the_tui() -> None:
    code = (
        "import sys, workbench.frames, workbench.reports, workbench.cli.report; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

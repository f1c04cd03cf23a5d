"""The one set of rules for what people type, shared by the CLI, the TUI and frames."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store import EventStore, NewEvent, StoreError, ValidationError
from workbench import frames
from workbench.inputs import (
    MAX_JSON_DEPTH,
    InputError,
    load_user_object,
    open_store,
    parse_json,
    parse_position,
    parse_time,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-2h", NOW - timedelta(hours=2)),
        ("- 15 min", NOW - timedelta(minutes=15)),
        ("now", NOW),
        ("2024-04-30Z", datetime(2024, 4, 30, tzinfo=UTC)),
        ("2024-04-30T10:30Z", datetime(2024, 4, 30, 10, 30, tzinfo=UTC)),
        ("2024-04-30 12:30+02:00", datetime(2024, 4, 30, 10, 30, tzinfo=UTC)),
    ],
)
def test_times_with_a_zone_or_relative(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2024-04-30", "has no timezone"),
        ("2024-04-30T10:30", "has no timezone"),
        ("-99999999999d", "out of the calendar"),
        ("-" + "9" * 5000 + "w", "out of the calendar"),
        ("0001-01-01T00:00+01:00", "out of range in UTC"),
        ("", "is not a time"),
        ("x" * 10_000, "is not a time"),
    ],
)
def test_refusals_are_one_validation_error(text: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_time(text, "since", now=NOW)
    message = str(caught.value)
    assert fragment in message and message.startswith("since ")
    assert "\n" not in message and len(message) < 300


def test_frames_refuses_naive_times_with_the_stores_error(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with EventStore(str(path)) as es:
        es.append([NewEvent("A")])
    for bad in ("2024-05-01T00:00", datetime(2024, 5, 1), "-99999999999d"):
        with pytest.raises(ValidationError):
            frames.events(path, since=bad)


def test_frames_does_not_import_the_command_line() -> None:
    code = (
        "import sys, workbench.frames, workbench.reports;"
        "print([m for m in sys.modules if m.startswith('workbench.cli')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@given(st.text(max_size=40))
@settings(max_examples=400, deadline=None)
def test_any_text_is_a_time_or_one_input_error(text: str) -> None:
    try:
        value = parse_time(text, now=NOW)
    except InputError as e:
        assert "\n" not in str(e)
    else:
        assert value.utcoffset() == timedelta(0)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_json_nesting_limit_is_named() -> None:
    assert parse_json(nested(MAX_JSON_DEPTH), "--data") is not None
    for depth in (MAX_JSON_DEPTH + 1, 5_000, 200_000):
        with pytest.raises(InputError, match=f"more than {MAX_JSON_DEPTH} levels"):
            parse_json(nested(depth), "--data")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("1" * 5000, "more than 4300 digits"),
        ("NaN", "NaN is not JSON"),
        ('{"x": -Infinity}', "Infinity is not JSON"),
        ("1e999", "beyond what a float holds"),
        ("{", "not valid JSON"),
    ],
)
def test_json_refusals(text: str, fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        parse_json(text, "--data")


def test_positions() -> None:
    assert parse_position("#12") == 12
    for bad in ("#" + "9" * 5000, str(2**63), "١٢"):
        with pytest.raises(InputError):
            parse_position(bad)


def test_user_objects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mine.py").write_text(
        "from store import Reducers\nreducers = Reducers()\nnumber = 3\ndef boom():\n    pass\n"
    )
    (tmp_path / "broken.py").write_text("raise SystemExit('no')\n")
    monkeypatch.chdir(tmp_path)
    from store import Reducers

    assert isinstance(load_user_object("mine:reducers", "--reducers", Reducers), Reducers)
    for spec, fragment in [
        ("mine", "module:attribute"),
        ("mine:number", "must be a store.Reducers"),
        ("mine:absent", "no attribute"),
        ("broken:x", "no"),
        ("nowhere:x", "nowhere"),
    ]:
        with pytest.raises(InputError, match=fragment):
            load_user_object(spec, "--reducers", Reducers)


def test_open_store_refuses_odd_locations(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        open_store(42)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="does not exist"):
        open_store(str(tmp_path / "missing.db"), write=True, create=False)
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(StoreError):
        open_store(str(tmp_path / "missing.db"))


def test_parse_json_round_trips_what_it_accepts() -> None:
    value = {"a": [1, 2.5, None, True, "é"], "b": {"c": []}}
    assert parse_json(json.dumps(value), "x") == value

"""Parsing of the shared read filters: times (absolute and relative) and their arguments."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

import pytest

from workbench.cli.common import CliError, add_filter_arguments, join_relative_times, read_filters
from workbench.inputs import InputError, parse_time

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T12:00:00Z", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01T14:00:00+02:00", datetime(2024, 5, 1, 12, tzinfo=UTC)),
        ("2024-05-01 12:00:00.250000+00:00", datetime(2024, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("now", NOW),
        ("NOW", NOW),
        ("-2h", NOW - timedelta(hours=2)),
        ("-3d", NOW - timedelta(days=3)),
        ("-30m", NOW - timedelta(minutes=30)),
        ("-45s", NOW - timedelta(seconds=45)),
        ("-1w", NOW - timedelta(weeks=1)),
        ("-1.5h", NOW - timedelta(minutes=90)),
        (" -2H ", NOW - timedelta(hours=2)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    parsed = parse_time(text, "--since", now=NOW)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("2024-05-01T12:00:00", "has no timezone"),
        ("2024-05-01", "has no timezone"),
        ("yesterday", "is not a time"),
        ("-2 fortnights", "is not a time"),
        ("2h", "is not a time"),
        ("", "is not a time"),
        ("-999999999d", "out of the calendar"),
    ],
)
def test_parse_time_rejects(text: str, fragment: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_time(text, "--since", now=NOW)
    assert fragment in str(caught.value) and "--since" in str(caught.value)


def test_join_relative_times_only_touches_time_options() -> None:
    argv = ["events", "x.db", "--since", "-2h", "--until", "-30m", "--limit", "5", "--at", "now"]
    assert join_relative_times(argv) == [
        "events", "x.db", "--since=-2h", "--until=-30m", "--limit", "5", "--at", "now",
    ]  # fmt: skip
    assert join_relative_times(["--type", "-2h"]) == ["--type", "-2h"]
    assert join_relative_times(["--since"]) == ["--since"]


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_filter_arguments(parser)
    return parser.parse_args(join_relative_times(argv))


def test_read_filters_maps_every_option() -> None:
    args = parse(
        "--from-position", "7", "--aggregate", "order-1", "--aggregate-type", "Order",
        "--type", "A", "--type", "B", "--since", "-1d", "--until", "2024-05-01T13:00:00+01:00",
        "--limit", "10", "--backwards",
    )  # fmt: skip
    assert read_filters(args, now=NOW) == {
        "from_position": 7,
        "aggregate_id": "order-1",
        "aggregate_type": "Order",
        "types": ["A", "B"],
        "since": NOW - timedelta(days=1),
        "until": NOW,
        "limit": 10,
        "backwards": True,
    }


def test_read_filters_defaults_read_everything() -> None:
    assert read_filters(parse(), now=NOW) == {
        "from_position": None, "aggregate_id": None, "aggregate_type": None, "types": None,
        "since": None, "until": None, "limit": None, "backwards": False,
    }  # fmt: skip


def test_read_filters_without_ordering_options() -> None:
    parser = argparse.ArgumentParser()
    add_filter_arguments(parser, ordering=False)
    filters = read_filters(parser.parse_args(["--type", "A"]), now=NOW)
    assert "limit" not in filters and "backwards" not in filters and filters["types"] == ["A"]


def test_read_filters_rejects_an_empty_window() -> None:
    with pytest.raises(CliError, match="is after --until"):
        read_filters(parse("--since", "-1h", "--until", "-2h"), now=NOW)


def test_a_day_with_a_zone_means_its_midnight() -> None:
    assert parse_time("2024-01-10Z") == datetime(2024, 1, 10, tzinfo=UTC)
    assert parse_time("2024-01-10+02:00") == datetime(2024, 1, 9, 22, tzinfo=UTC)
